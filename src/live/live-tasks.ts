import { TaskError, quotaExceeded } from '../errors.js';
import type { Logger } from '../logger.js';
import { parseTaskId } from '../tasks/keys.js';
import { isTerminal, type TaskStatus } from '../tasks/status.js';
import type { Actor, Task, TaskKind } from '../tasks/task.js';
import { TASK_KINDS } from '../tasks/task.js';
import type { TaskService } from '../tasks/task-service.js';
import { resolveTenant } from '../tasks/tenancy.js';
import { EventQueue, SlowConsumerError } from './event-queue.js';
import { Lru } from '../lru.js';
import type { Metrics } from './metrics.js';
import { parseSince, ResumeTracker, type ResumePosition } from './resume-cursor.js';
import type { TaskEvent } from './task-event.js';
import type { TaskEventBus } from './task-event-bus.js';

export interface TaskEventFilter {
  ids?: readonly string[] | null;
  parentId?: string | null;
  kind?: TaskKind | null;
  taskType?: string | null;
  statuses?: readonly TaskStatus[] | null;
  includeSubTasks?: boolean | null;
  tenantCode?: string | null;
}

export interface TaskStatusEvent extends TaskEvent {
  cursor: string;
}

export interface LiveLimits {
  /** Events buffered per subscription before coalescing to the latest per task. */
  maxQueuedEvents: number;
  maxConnectionsPerTenant: number;
  maxSubscriptionsPerConnection: number;
}

export interface SubscribeOptions {
  /** Called when the subscriber falls too far behind; the transport closes its connection. */
  onSlowConsumer?: () => void;
  /**
   * Set for transports where a subscription is its own connection (SSE): it
   * takes a tenant connection slot and ends when the token expires (epoch seconds).
   * WebSocket connections do both per socket instead.
   */
  ownConnection?: { expiresAt: number };
}

const PAGE = 100;
const MAX_IDS = 100;

/**
 * taskStatusChanged: the current state of named tasks first (snapshot), or of
 * every task changed since a resume position, then live changes. Live events
 * are queued from before the first read, and per task only versions newer than
 * the last delivered one go out, so nothing falls in the gap between the table
 * read and the live stream and nothing arrives twice.
 */
export class LiveTasks {
  private readonly connectionsByTenant = new Map<string, number>();

  constructor(
    private readonly deps: {
      bus: TaskEventBus;
      tasks: TaskService;
      metrics: Metrics;
      logger: Logger;
      limits: LiveLimits;
    },
  ) {}

  get limits(): LiveLimits {
    return this.deps.limits;
  }

  /** Takes one of the tenant's connection slots; the returned function gives it back. */
  acquireConnection(tenantCode: string): () => void {
    const open = this.connectionsByTenant.get(tenantCode) ?? 0;
    if (open >= this.deps.limits.maxConnectionsPerTenant) {
      throw quotaExceeded(`Tenant ${tenantCode} has ${open} live connections, the most allowed`, {
        limit: this.deps.limits.maxConnectionsPerTenant,
      });
    }
    this.connectionsByTenant.set(tenantCode, open + 1);
    this.deps.metrics.connections.inc();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.deps.metrics.connections.dec();
      const left = (this.connectionsByTenant.get(tenantCode) ?? 1) - 1;
      if (left <= 0) this.connectionsByTenant.delete(tenantCode);
      else this.connectionsByTenant.set(tenantCode, left);
    };
  }

  subscribe(actor: Actor, filter: TaskEventFilter = {}, since?: string | null, options: SubscribeOptions = {}) {
    const tenantCode = resolveTenant(actor, filter.tenantCode);
    if (filter.ids && (filter.ids.length === 0 || filter.ids.length > MAX_IDS)) {
      throw new TaskError('BAD_USER_INPUT', `ids names 1-${MAX_IDS} tasks`, { field: 'ids' });
    }
    for (const id of [...(filter.ids ?? []), ...(filter.parentId ? [filter.parentId] : [])]) {
      if (!parseTaskId(id)) throw new TaskError('BAD_USER_INPUT', `${JSON.stringify(id)} is not a task id`, { field: 'ids' });
    }
    const position = since ? parseSince(since) : undefined;
    const { metrics, limits } = this.deps;
    const queue = new EventQueue<TaskEvent>(limits.maxQueuedEvents, (event) => event.task.id, {
      onCoalesced: (dropped) => metrics.eventsCoalesced.inc({}, dropped),
      onOverflow: () => {
        metrics.eventsDropped.inc({ reason: 'slow_consumer' });
        options.onSlowConsumer?.();
      },
    });
    const events = this.stream(actor, tenantCode, filter, position, options, queue);
    // An async generator parked in `await queue.next()` would run its cleanup only
    // at the next event; ending the queue first lets a leaving client go at once.
    return {
      next: () => events.next(),
      return: () => {
        queue.end();
        return events.return(undefined);
      },
      throw: (error: unknown) => {
        queue.end();
        return events.throw(error);
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    } satisfies AsyncIterableIterator<TaskStatusEvent>;
  }

  private async *stream(
    actor: Actor,
    tenantCode: string,
    filter: TaskEventFilter,
    position: ResumePosition | undefined,
    options: SubscribeOptions,
    queue: EventQueue<TaskEvent>,
  ): AsyncGenerator<TaskStatusEvent> {
    const { bus, metrics } = this.deps;
    const inScope = scopeOf(filter);
    const statuses = filter.statuses?.length ? new Set(filter.statuses) : undefined;
    const delivered = new Lru<string, number>(10_000);
    for (const [id, version] of position?.delivered ?? []) delivered.set(id, version);
    const resume = new ResumeTracker();
    // Named tasks not yet terminal; the subscription completes when none is left.
    const open = filter.ids ? new Set(filter.ids) : undefined;

    const release = options.ownConnection ? this.acquireConnection(tenantCode) : undefined;
    const expiry = options.ownConnection && setTimeout(
      () => queue.fail(new TaskError('UNAUTHENTICATED', 'The token has expired')),
      Math.max(0, options.ownConnection.expiresAt * 1000 - Date.now()),
    );
    const unsubscribe = bus.subscribe(tenantCode, (event) => {
      if (inScope(event.task)) queue.push(event);
    });
    metrics.subscriptions.inc();

    /** The event to send, or undefined when it is stale or filtered out. */
    const accept = (event: TaskEvent): TaskStatusEvent | undefined => {
      const { task } = event;
      const last = delivered.get(task.id);
      if (last !== undefined && task.version <= last) {
        metrics.eventsDropped.inc({ reason: 'stale' });
        return undefined;
      }
      delivered.set(task.id, task.version);
      if (open && isTerminal(task.status)) open.delete(task.id);
      if (statuses && !statuses.has(task.status)) return undefined;
      metrics.eventsDelivered.inc();
      return { ...event, cursor: resume.delivered(task.id, task.version, task.updatedAt) };
    };

    try {
      for await (const task of this.initialStates(actor, tenantCode, filter, position)) {
        if (!inScope(task)) continue;
        if (position && task.updatedAt < position.from) continue;
        const event = accept({ action: task.parentId ? 'sub-task-status' : 'task-status', task, replayed: true });
        if (event) yield event;
      }
      if (open) {
        // Absent (or foreign) ids have nothing to wait for.
        for (const id of [...open]) if (!delivered.get(id)) open.delete(id);
        if (open.size === 0) return;
      }
      while (true) {
        let next: IteratorResult<TaskEvent>;
        try {
          next = await queue.next();
        } catch (error) {
          throw error instanceof SlowConsumerError ? new TaskError('SLOW_CONSUMER', error.message) : error;
        }
        if (next.done) return;
        const event = accept(next.value);
        if (event) yield event;
        if (open && open.size === 0) return;
      }
    } finally {
      unsubscribe();
      queue.end();
      if (expiry) clearTimeout(expiry);
      release?.();
      metrics.subscriptions.dec();
    }
  }

  /** Current states read from the table: named tasks, a parent with its sub-tasks, or changes since a position. */
  private async *initialStates(
    actor: Actor,
    tenantCode: string,
    filter: TaskEventFilter,
    position: ResumePosition | undefined,
  ): AsyncGenerator<Task> {
    const { tasks } = this.deps;
    const own = (id: string) => parseTaskId(id)?.tenantCode === tenantCode;
    if (filter.ids) {
      for (const id of filter.ids) {
        const task = own(id) ? await tasks.getTask(actor, id) : null;
        if (task) yield task;
      }
      return;
    }
    if (filter.parentId) {
      const parent = own(filter.parentId) ? await tasks.getTask(actor, filter.parentId) : null;
      if (!parent) return;
      yield parent;
      let after: string | undefined;
      do {
        const page = await tasks.listSubTasks(actor, parent.id, PAGE, after);
        for (const edge of page.edges) yield edge.node;
        after = page.pageInfo.hasNextPage ? (page.pageInfo.endCursor ?? undefined) : undefined;
      } while (after);
      return;
    }
    if (!position) return;
    for (const kind of filter.kind ? [filter.kind] : TASK_KINDS) {
      let after: string | undefined;
      do {
        const page = await tasks.listTasks(
          actor,
          { kind, tenantCode, taskType: filter.taskType, updatedSince: new Date(position.from), order: 'ASC' },
          PAGE,
          after,
        );
        for (const edge of page.edges) yield edge.node;
        after = page.pageInfo.hasNextPage ? (page.pageInfo.endCursor ?? undefined) : undefined;
      } while (after);
    }
  }
}

/** Which tasks a filter is about, statuses aside (a status filter must not hide a task's completion). */
function scopeOf(filter: TaskEventFilter): (task: Task) => boolean {
  const ids = filter.ids ? new Set(filter.ids) : undefined;
  return (task) => {
    if (ids && !ids.has(task.id)) return false;
    if (filter.parentId && task.id !== filter.parentId && task.parentId !== filter.parentId) return false;
    // Sub-tasks come only when asked for: by id, by parent, or with includeSubTasks.
    if (!ids && !filter.parentId && task.parentId && !filter.includeSubTasks) return false;
    if (filter.kind && task.kind !== filter.kind) return false;
    if (filter.taskType && task.type !== filter.taskType) return false;
    return true;
  };
}
