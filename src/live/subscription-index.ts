import type { Task } from '../tasks/task.js';
import type { TaskEventFilter } from './subscription-state.js';

interface TenantIndex<S> {
  /** Subscriptions that name no task, parent or type: every event of the tenant is a candidate. */
  all: Set<S>;
  byId: Map<string, Set<S>>;
  byParent: Map<string, Set<S>>;
  byType: Map<string, Set<S>>;
}

type Entry<S> = [Map<string, Set<S>> | undefined, string | undefined];

/**
 * Subscriptions by tenant, then by the narrowest thing their filter names
 * (ids, else parent, else task type, else all), so a change reaches only
 * the candidates that could want it, not every subscriber.
 */
export class SubscriptionIndex<S extends { tenantCode: string; filter: TaskEventFilter }> {
  private readonly tenants = new Map<string, TenantIndex<S>>();

  hasTenant(tenantCode: string): boolean {
    return this.tenants.has(tenantCode);
  }

  add(subscription: S): void {
    let index = this.tenants.get(subscription.tenantCode);
    if (!index) {
      index = { all: new Set(), byId: new Map(), byParent: new Map(), byType: new Map() };
      this.tenants.set(subscription.tenantCode, index);
    }
    for (const [map, key] of this.entriesOf(subscription, index)) {
      if (!map) index.all.add(subscription);
      else {
        let set = map.get(key!);
        if (!set) map.set(key!, (set = new Set()));
        set.add(subscription);
      }
    }
  }

  remove(subscription: S): void {
    const index = this.tenants.get(subscription.tenantCode);
    if (!index) return;
    for (const [map, key] of this.entriesOf(subscription, index)) {
      if (!map) index.all.delete(subscription);
      else {
        const set = map.get(key!);
        set?.delete(subscription);
        if (set?.size === 0) map.delete(key!);
      }
    }
    if (index.all.size + index.byId.size + index.byParent.size + index.byType.size === 0) {
      this.tenants.delete(subscription.tenantCode);
    }
  }

  /** The subscriptions a change of this task could concern (their filters still decide). */
  candidatesOf(task: Task): Iterable<S> {
    const index = this.tenants.get(task.tenantCode);
    if (!index) return [];
    const sets = [
      index.all,
      index.byId.get(task.id),
      index.byType.get(task.type),
      index.byParent.get(task.id),
      task.parentId ? index.byParent.get(task.parentId) : undefined,
    ].filter((set): set is Set<S> => set !== undefined && set.size > 0);
    if (sets.length === 1) return sets[0]!;
    const union = new Set<S>();
    for (const set of sets) for (const subscription of set) union.add(subscription);
    return union;
  }

  private entriesOf(subscription: S, index: TenantIndex<S>): Entry<S>[] {
    const { filter } = subscription;
    if (filter.ids?.length) return filter.ids.map((id) => [index.byId, id]);
    if (filter.parentId) return [[index.byParent, filter.parentId]];
    if (filter.taskType) return [[index.byType, filter.taskType]];
    return [[undefined, undefined]];
  }
}
