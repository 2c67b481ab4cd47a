import type { GraphQLError, GraphQLResolveInfo } from 'graphql';
import { TaskError, quotaExceeded } from '../errors.js';
import type { Logger } from '../logger.js';
import { createMaskError } from '../server/mask-error.js';
import { parseTaskId, requireTaskId } from '../tasks/keys.js';
import { checkTaskType } from '../tasks/limits.js';
import type { Actor, Task } from '../tasks/task.js';
import { TASK_KINDS } from '../tasks/task.js';
import type { TaskService } from '../tasks/task-service.js';
import { resolveTenant } from '../tasks/tenancy.js';
import { assertCanWatch } from '../tasks/viewer-scope.js';
import { atTime } from '../timers.js';
import { EventQueue, SlowConsumerError } from './event-queue.js';
import { FanOut, FastSubscription, type SocketSink } from './fanout.js';
import type { Metrics } from './metrics.js';
import { parseSince, type ResumePosition } from './resume-cursor.js';
import { sharedOperation } from './shared-operation.js';
import { SubscriptionState, type TaskEventFilter } from './subscription-state.js';
import type { TaskEvent } from './task-event.js';
import type { TaskEventBus } from './task-event-bus.js';

export type { TaskEventFilter } from './subscription-state.js';

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
  /** WebSocket: the fan-out writes frames straight to this socket; the selection is executed once per event and selection. */
  socket?: { sink: SocketSink; info: GraphQLResolveInfo; context: unknown };
}

const PAGE = 100;
const MAX_IDS = 100;

/**
 * taskStatusChanged: the current state of named tasks first (snapshot), or of
 * every task changed since a resume position, then live changes. Live events
 * are taken from before the first read, and per task only versions newer than
 * the last delivered one go out, so nothing falls in the gap between the table
 * read and the live stream and nothing arrives twice.
 *
 * Two paths share that logic (SubscriptionState): WebSocket subscriptions go
 * through the fan-out; others (SSE) through a per-subscription queue that
 * graphql-js executes.
 */
export class LiveTasks {
  private readonly connectionsByTenant = new Map<string, number>();
  /** The queues of open SSE subscriptions: ended on shutdown, so each stream completes cleanly. */
  private readonly openQueues = new Set<EventQueue<TaskEvent>>();
  private readonly fanOut: FanOut;
  private readonly maskError: (error: GraphQLError) => GraphQLError;

  constructor(
    private readonly deps: {
      bus: TaskEventBus;
      tasks: TaskService;
      metrics: Metrics;
      logger: Logger;
      limits: LiveLimits;
      /** Masks errors of fan-out executions as yoga masks its own (the default uses the same function). */
      maskError?: (error: GraphQLError) => GraphQLError;
      /** Fan-out tuning. */
      sliceSize?: number;
      highWaterBytes?: number;
    },
  ) {
    this.fanOut = new FanOut({
      metrics: deps.metrics,
      logger: deps.logger,
      sliceSize: deps.sliceSize ?? 512,
      highWaterBytes: deps.highWaterBytes ?? 1 << 20,
      maxHeld: deps.limits.maxQueuedEvents,
    });
    const mask = createMaskError(deps.logger);
    this.maskError = deps.maskError ?? ((error) => mask(error, 'Unexpected error.', false) as GraphQLError);
    deps.bus.observeAll((event) => this.fanOut.dispatch(event));
  }

  /** Shutdown: every SSE subscription completes (its stream ends with a complete event). */
  close(): void {
    for (const queue of this.openQueues) queue.end();
  }

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
    return options.socket
      ? this.fast(actor, tenantCode, state, options.socket)
      : this.queued(actor, tenantCode, state, options);
  }

  /** The WebSocket path: registered with the fan-out, which writes frames; the iterator only marks the end. */
  private fast(
    actor: Actor,
    tenantCode: string,
    state: SubscriptionState,
    socket: NonNullable<SubscribeOptions['socket']>,
  ): AsyncIterableIterator<TaskStatusEvent> {
    const { metrics, logger } = this.deps;
    // Subscribers share one execution context per key: a viewer's is never a full token's, nor the reverse.
    const shareKey = actor.scope ? `${tenantCode}\u0000viewer\u0000${JSON.stringify(actor.scope)}` : tenantCode;
    const operation = sharedOperation(socket.info, socket.context, shareKey, this.maskError);
    const subscription = new FastSubscription(tenantCode, state, socket.sink, operation);
    this.fanOut.add(subscription);
    metrics.subscriptions.inc();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      subscription.closed = true;
      this.fanOut.remove(subscription);
      metrics.subscriptions.dec();
    };
    void subscription.finished.then(release);

    const start = async () => {
      for await (const task of this.initialStates(actor, tenantCode, state.filter, state.position)) {
        if (subscription.closed) return;
        if (state.wantsInitial(task)) {
          await this.fanOut.deliverOne(subscription, { action: task.parentId ? 'sub-task-status' : 'task-status', task, replayed: true });
        }
      }
      state.initialStatesDone();
      if (state.finished) return subscription.end();
      // Live events that came during the reads, then the fan-out takes over.
      while (subscription.buffer && subscription.buffer.length > 0) {
        const event = subscription.buffer.shift()!;
        if (!subscription.closed) await this.fanOut.deliverOne(subscription, event);
      }
      subscription.buffer = undefined;
    };
    start().catch((error) => {
      logger.error('reading the initial states of a subscription failed', error);
      socket.sink.socket.close(1011, 'Internal error');
      subscription.end();
    });

    const done: IteratorResult<TaskStatusEvent> = { done: true, value: undefined };
    return {
      next: () => subscription.finished.then(() => done),
      return: async () => {
        subscription.end();
        return done;
      },
      throw: async () => {
        subscription.end();
        return done;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  /** Other transports (SSE): a bounded per-subscription queue, executed by graphql-js per event. */
  private queued(
    actor: Actor,
    tenantCode: string,
    state: SubscriptionState,
    options: SubscribeOptions,
  ): AsyncIterableIterator<TaskStatusEvent> {
    const { metrics, limits } = this.deps;
    const queue = new EventQueue<TaskEvent>(limits.maxQueuedEvents, (event) => event.task.id, {
      onCoalesced: (dropped) => metrics.eventsCoalesced.inc({}, dropped),
      onOverflow: () => {
        metrics.eventsDropped.inc({ reason: 'slow_consumer' });
        options.onSlowConsumer?.();
      },
    });
    this.openQueues.add(queue);
    const events = this.stream(actor, tenantCode, state, options, queue);
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
    };
  }

  private async *stream(
    actor: Actor,
    tenantCode: string,
    state: SubscriptionState,
    options: SubscribeOptions,
    queue: EventQueue<TaskEvent>,
  ): AsyncGenerator<TaskStatusEvent> {
    const { bus, metrics } = this.deps;
    const release = options.ownConnection ? this.acquireConnection(tenantCode) : undefined;
    const cancelExpiry =
      options.ownConnection &&
      atTime(options.ownConnection.expiresAt * 1000, () =>
        queue.fail(new TaskError('UNAUTHENTICATED', 'The token has expired')),
      );
    const unsubscribe = bus.subscribe(tenantCode, (event) => {
      if (state.inScope(event.task)) queue.push(event);
    });
    metrics.subscriptions.inc();

    /** The event to send, or undefined when it is stale or filtered out. */
    const accept = (event: TaskEvent): TaskStatusEvent | undefined => {
      const skip = state.accept(event);
      if (skip === 'stale') metrics.eventsDropped.inc({ reason: 'stale' });
      if (skip) return undefined;
      metrics.eventsDelivered.inc();
      return { ...event, cursor: state.cursor() };
    };

    try {
      for await (const task of this.initialStates(actor, tenantCode, state.filter, state.position)) {
        if (!state.wantsInitial(task)) continue;
        const event = accept({ action: task.parentId ? 'sub-task-status' : 'task-status', task, replayed: true });
        if (event) yield event;
      }
      state.initialStatesDone();
      if (state.finished) return;
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
        if (state.finished) return;
      }
    } finally {
      unsubscribe();
      queue.end();
      this.openQueues.delete(queue);
      if (cancelExpiry) cancelExpiry();
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
