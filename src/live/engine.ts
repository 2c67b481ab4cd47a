import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { TaskError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Task } from '../tasks/task.js';
import type { Metrics } from './metrics.js';
import type { SharedOperation } from './shared-operation.js';
import type { LiveSink } from './sink.js';
import { SubscriptionIndex } from './subscription-index.js';
import type { SubscriptionState } from './subscription-state.js';
import type { TaskEvent, TaskStatusEvent } from './task-event.js';

/** Stands for the per-subscriber cursor in a shared payload until it is sent. */
const CURSOR_SLOT = `\u0001cursor-${Math.random().toString(36).slice(2)}\u0001`;
const CURSOR_SLOT_JSON = JSON.stringify(CURSOR_SLOT);

/** One event's result for one selection, serialized once and split around the cursor slot. */
type Payload = string[];

export class Subscription {
  /**
   * Events held back, the latest per task in the order of those latest
   * events: while the snapshot is read (the handoff), and while the sink is
   * backed up. Undefined while events go straight out.
   */
  held: Map<string, TaskEvent> | undefined = new Map();
  flushing = false;
  closed = false;
  private finish!: () => void;
  /** Resolves when the subscription ends, however it ends. */
  readonly finished = new Promise<void>((resolve) => (this.finish = resolve));

  constructor(
    readonly tenantCode: string,
    readonly state: SubscriptionState,
    readonly sink: LiveSink,
    /** The selection the engine executes for this sink (shared); absent when the transport executes itself. */
    readonly operation: SharedOperation | undefined,
  ) {}

  get filter() {
    return this.state.filter;
  }

  /** @internal */
  ended(): void {
    this.finish();
  }
}

export interface EngineOptions {
  metrics: Metrics;
  logger: Logger;
  /** Tasks held (latest event each) for a backed-up sink before it is dropped as a slow consumer. */
  maxQueuedEvents: number;
  /** Subscribers served before yielding to the event loop. @default 512 */
  sliceSize?: number;
}

/**
 * The transport-agnostic core of taskStatusChanged. It owns the index, the
 * snapshot-then-live handoff, per-task ordering (SubscriptionState) and one
 * backpressure policy; transports plug in a LiveSink. Events are fanned out
 * one at a time, in arrival order, in slices that yield to the event loop;
 * a selection is executed once per event and distinct selection.
 */
export class SubscriptionEngine {
  private readonly index = new SubscriptionIndex<Subscription>();
  private readonly all = new Set<Subscription>();
  private readonly jobs: TaskEvent[] = [];
  private draining = false;
  private readonly sliceSize: number;

  constructor(private readonly options: EngineOptions) {
    this.sliceSize = options.sliceSize ?? 512;
  }

  /** Registers a subscription; live events are held for it until `start` has sent its snapshot. */
  open(tenantCode: string, state: SubscriptionState, sink: LiveSink, operation?: SharedOperation): Subscription {
    const subscription = new Subscription(tenantCode, state, sink, operation);
    this.index.add(subscription);
    this.all.add(subscription);
    this.options.metrics.subscriptions.inc();
    return subscription;
  }

  /**
   * The one snapshot-to-live handoff: the current states (read after the
   * subscription was registered, so nothing falls in between), paced by the
   * sink, then the live events held meanwhile; stale versions are dropped.
   */
  async start(subscription: Subscription, initialStates: AsyncIterable<Task>): Promise<void> {
    const { state, sink } = subscription;
    try {
      for await (const task of initialStates) {
        if (subscription.closed) return;
        if (!state.wantsInitial(task)) continue;
        if (sink.backedUp) await Promise.race([new Promise<void>((resolve) => sink.onDrain(resolve)), subscription.finished]);
        if (subscription.closed) return;
        await this.sendOne(subscription, { action: task.parentId ? 'sub-task-status' : 'task-status', task, replayed: true });
      }
      if (subscription.closed) return;
      state.initialStatesDone();
      if (state.finished) return this.end(subscription);
      await this.flush(subscription);
    } catch (error) {
      this.options.logger.error('reading the initial states of a subscription failed', error);
      this.end(subscription, error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Ends a subscription: out of the index, its sink closed (completed, or failed with `error`). */
  end(subscription: Subscription, error?: Error): void {
    if (subscription.closed) return;
    subscription.closed = true;
    subscription.held = undefined;
    this.index.remove(subscription);
    this.all.delete(subscription);
    this.options.metrics.subscriptions.dec();
    subscription.sink.close(error);
    subscription.ended();
  }

  /** Shutdown: every subscription completes. */
  close(): void {
    for (const subscription of [...this.all]) this.end(subscription);
  }

  /** Called for every event on the bus; events go out in arrival order. */
  dispatch(event: TaskEvent): void {
    if (!this.index.hasTenant(event.task.tenantCode)) return;
    this.jobs.push(event);
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.jobs.length > 0) {
        const event = this.jobs.shift()!;
        try {
          await this.fanOut(event);
        } catch (error) {
          this.options.logger.error('fanning out an event failed', { id: event.task.id }, error);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async fanOut(event: TaskEvent): Promise<void> {
    const groups = new Map<string, { operation: SharedOperation | undefined; members: Subscription[] }>();
    for (const subscription of this.index.candidatesOf(event.task)) {
      if (subscription.closed || !subscription.state.inScope(event.task)) continue;
      if (subscription.held) {
        this.hold(subscription, event);
        continue;
      }
      const key = subscription.operation?.key ?? '';
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { operation: subscription.operation, members: [] }));
      group.members.push(subscription);
    }
    if (groups.size === 0) return;
    const payloads = await Promise.all([...groups.values()].map((group) => this.payloadOf(group.operation, event)));
    let served = 0;
    let index = 0;
    for (const group of groups.values()) {
      const payload = payloads[index++];
      for (const subscription of group.members) {
        if (!subscription.closed) {
          if (subscription.held || subscription.sink.backedUp) this.hold(subscription, event);
          else this.write(subscription, event, payload);
        }
        if (++served % this.sliceSize === 0) await yieldToEventLoop();
      }
    }
  }

  /** Sends one subscriber one event with an execution of its own (snapshot, held events). */
  private async sendOne(subscription: Subscription, event: TaskEvent): Promise<void> {
    const payload = await this.payloadOf(subscription.operation, event);
    if (!subscription.closed) this.write(subscription, event, payload);
  }

  /** Executes a selection for an event once and serializes it, leaving a slot for the cursor. */
  private async payloadOf(operation: SharedOperation | undefined, event: TaskEvent): Promise<Payload | undefined> {
    if (!operation) return undefined;
    const result = await operation.execute({ ...event, cursor: CURSOR_SLOT });
    return JSON.stringify(result).split(CURSOR_SLOT_JSON);
  }

  private write(subscription: Subscription, event: TaskEvent, payload: Payload | undefined): void {
    const { state, sink } = subscription;
    const skip = state.accept(event);
    if (skip) {
      if (skip === 'stale') this.options.metrics.eventsDropped.inc({ reason: 'stale' });
    } else {
      if (payload) sink.send(payload.length === 1 ? payload[0]! : payload.join(JSON.stringify(state.cursor())));
      else sink.send({ ...event, cursor: state.cursor() } satisfies TaskStatusEvent);
      this.options.metrics.eventsDelivered.inc();
    }
    if (state.finished) this.end(subscription);
  }

  /**
   * The one backpressure policy: while a sink is backed up, keep only the
   * latest event per task; more tasks than `maxQueuedEvents`, and coalescing
   * cannot help: the subscriber is dropped as a slow consumer.
   */
  private hold(subscription: Subscription, event: TaskEvent): void {
    const { metrics, maxQueuedEvents } = this.options;
    if (!subscription.held) {
      subscription.held = new Map();
      subscription.sink.onDrain(() => void this.flush(subscription));
    }
    const { held } = subscription;
    if (held.delete(event.task.id)) metrics.eventsCoalesced.inc();
    held.set(event.task.id, event);
    if (held.size > maxQueuedEvents) {
      metrics.eventsDropped.inc({ reason: 'slow_consumer' });
      this.end(subscription, new TaskError('SLOW_CONSUMER', `More than ${maxQueuedEvents} tasks changed faster than the subscriber reads`));
    }
  }

  /** Sends what was held, in order, while the sink takes it; events arriving meanwhile queue behind. */
  private async flush(subscription: Subscription): Promise<void> {
    const { held } = subscription;
    if (!held || subscription.flushing) return;
    subscription.flushing = true;
    try {
      for (const [id, event] of held) {
        if (subscription.closed) return;
        if (subscription.sink.backedUp) return subscription.sink.onDrain(() => void this.flush(subscription));
        held.delete(id);
        await this.sendOne(subscription, event);
      }
      if (!subscription.closed) subscription.held = undefined;
    } finally {
      subscription.flushing = false;
    }
  }
}
