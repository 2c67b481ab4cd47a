import type { GraphQLError, GraphQLResolveInfo } from 'graphql';
import { TaskError, quotaExceeded } from '../errors.js';
import type { Logger } from '../logger.js';
import { parseTaskId, requireTaskId } from '../tasks/keys.js';
import { checkTaskType } from '../tasks/limits.js';
import type { Actor, Task } from '../tasks/task.js';
import { TASK_KINDS } from '../tasks/task.js';
import type { TaskService } from '../tasks/task-service.js';
import { resolveTenant } from '../tasks/tenancy.js';
import { assertCanWatch } from '../tasks/viewer-scope.js';
import { systemClock, type Clock } from '../timers.js';
import { SubscriptionEngine, type Subscription } from './engine.js';
import { IteratorSink } from './iterator-sink.js';
import type { Metrics } from './metrics.js';
import { parseSince, type ResumePosition } from './resume-cursor.js';
import { sharedOperation } from './shared-operation.js';
import type { LiveSink } from './sink.js';
import { SubscriptionState, type TaskEventFilter } from './subscription-state.js';
import type { TaskStatusEvent } from './task-event.js';
import type { TaskEventBus } from './task-event-bus.js';
import { UntilEnd } from './until-end.js';

export type { TaskEventFilter } from './subscription-state.js';
export type { TaskStatusEvent } from './task-event.js';

export interface LiveLimits {
  /** Tasks held (latest event each) for a subscriber whose transport is backed up, before it is dropped as a slow consumer. */
  maxQueuedEvents: number;
  maxConnectionsPerTenant: number;
  maxSubscriptionsPerConnection: number;
}

export type SubscribeOptions =
  /** A transport with a sink of its own (WebSocket): the engine executes the selection, shared by all who have the same. */
  | { sink: LiveSink; selection: GraphQLResolveInfo; ownConnection?: undefined }
  /**
   * A transport that pulls and executes itself (SSE). With `ownConnection`
   * the subscription is its own connection: it takes a tenant connection slot
   * and ends when the token expires (epoch seconds).
   */
  | { sink?: undefined; ownConnection?: { expiresAt: number } };

/** What a shared execution may see: the tenant, the viewer scope, the read service; never a subscriber. */
export interface SharedExecutionContext {
  actor: Actor;
  tasks: TaskService;
}

const PAGE = 100;
const MAX_IDS = 100;

/**
 * taskStatusChanged: validation, quotas and token expiry, and the table reads
 * of the initial states; the SubscriptionEngine does the rest, for every
 * transport.
 */
export class LiveTasks {
  private readonly connectionsByTenant = new Map<string, number>();
  private readonly engine: SubscriptionEngine;
  private readonly clock: Clock;

  constructor(
    private readonly deps: {
      bus: TaskEventBus;
      tasks: TaskService;
      metrics: Metrics;
      logger: Logger;
      limits: LiveLimits;
      /** Masks errors of shared executions as yoga masks its own: the server's one masking function. */
      maskError: (error: GraphQLError) => GraphQLError;
      /** Timers of token expiry. @default the system clock */
      clock?: Clock;
      /** Subscribers served before yielding to the event loop. */
      sliceSize?: number;
    },
  ) {
    this.clock = deps.clock ?? systemClock;
    this.engine = new SubscriptionEngine({
      metrics: deps.metrics,
      logger: deps.logger,
      maxQueuedEvents: deps.limits.maxQueuedEvents,
      sliceSize: deps.sliceSize,
    });
    deps.bus.observeAll((event) => this.engine.dispatch(event));
  }

  /** Shutdown: every subscription completes (an SSE stream ends with a complete event). */
  close(): void {
    this.engine.close();
  }

  get limits(): LiveLimits {
    return this.deps.limits;
  }

  /** The live path's timers: the WebSocket transport closes expired connections by it too. */
  get timers(): Clock {
    return this.clock;
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

  subscribe(
    actor: Actor,
    filter: TaskEventFilter = {},
    since?: string | null,
    options: SubscribeOptions = {},
  ): AsyncIterableIterator<TaskStatusEvent> {
    assertCanWatch(actor, filter);
    const tenantCode = resolveTenant(actor, filter.tenantCode);
    if (filter.ids && (filter.ids.length === 0 || filter.ids.length > MAX_IDS)) {
      throw new TaskError('BAD_USER_INPUT', `ids names 1-${MAX_IDS} tasks`, { field: 'ids' });
    }
    for (const id of filter.ids ?? []) requireTaskId(id, 'ids');
    if (filter.parentId) requireTaskId(filter.parentId, 'parentId');
    if (filter.taskType) checkTaskType(filter.taskType);
    const state = new SubscriptionState(filter, since ? parseSince(since) : undefined);
    const initialStates = this.initialStates(actor, tenantCode, state.filter, state.position);

    if (options.sink) {
      // Subscribers share one execution per key: a viewer's is never a full token's, nor the reverse.
      const shareKey = actor.scope ? `${tenantCode}\u0000viewer\u0000${JSON.stringify(actor.scope)}` : tenantCode;
      const context = (): SharedExecutionContext => ({
        actor: { userId: '', tenantCode, isAdmin: false, scope: actor.scope },
        tasks: this.deps.tasks,
      });
      const operation = sharedOperation(options.selection, shareKey, context, this.deps.maskError);
      const subscription = this.engine.open(tenantCode, state, options.sink, operation);
      void this.engine.start(subscription, initialStates);
      return new UntilEnd(this.engine, subscription);
    }

    const release = options.ownConnection ? this.acquireConnection(tenantCode) : undefined;
    let subscription!: Subscription;
    const sink = new IteratorSink(() => this.engine.end(subscription));
    subscription = this.engine.open(tenantCode, state, sink);
    const expiry =
      options.ownConnection &&
      this.clock.at(options.ownConnection.expiresAt * 1000, () =>
        this.engine.end(subscription, new TaskError('UNAUTHENTICATED', 'The token has expired')),
      );
    void subscription.finished.then(() => {
      expiry?.cancel();
      release?.();
    });
    void this.engine.start(subscription, initialStates);
    return sink;
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
