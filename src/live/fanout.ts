import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { WebSocket } from 'ws';
import type { Logger } from '../logger.js';
import { SLOW_CONSUMER_CLOSE_CODE } from './close-codes.js';
import type { TaskStatusEvent } from './live-tasks.js';
import type { Metrics } from './metrics.js';
import type { SharedOperation } from './shared-operation.js';
import type { SubscriptionState } from './subscription-state.js';
import type { TaskEvent } from './task-event.js';

/** A WebSocket subscription served by the fan-out: where its frames go. */
export interface SocketSink {
  socket: WebSocket;
  /** The graphql-transport-ws operation id. */
  id: string;
}

/** Stands for the per-subscriber cursor in a shared payload until it is framed. */
const CURSOR_SLOT = `\u0001cursor-${Math.random().toString(36).slice(2)}\u0001`;
const CURSOR_SLOT_JSON = JSON.stringify(CURSOR_SLOT);

/** One event's payload for one selection: serialized once, framed per subscriber. */
interface Payload {
  /** The payload split around the cursor slot: one part when the selection has no cursor. */
  parts: string[];
}

export class FastSubscription {
  /** Until its initial states are out, live events wait here (in order). */
  buffer: TaskEvent[] | undefined = [];
  /** Frames held back while the socket is over its high-water mark: the latest per task. */
  held: Map<string, string> | undefined;
  readonly frameHead: string;
  private finish!: () => void;
  readonly finished = new Promise<void>((resolve) => (this.finish = resolve));
  closed = false;

  constructor(
    readonly tenantCode: string,
    readonly state: SubscriptionState,
    readonly sink: SocketSink,
    readonly operation: SharedOperation,
  ) {
    this.frameHead = `{"id":${JSON.stringify(sink.id)},"type":"next","payload":`;
  }

  /** Ends the subscription: graphql-ws then sends `complete` (after the frames already written). */
  end(): void {
    this.closed = true;
    this.finish();
  }
}

interface TenantIndex {
  /** Subscriptions that name no task, parent or type: every event of the tenant is a candidate. */
  all: Set<FastSubscription>;
  byId: Map<string, Set<FastSubscription>>;
  byParent: Map<string, Set<FastSubscription>>;
  byType: Map<string, Set<FastSubscription>>;
}

export interface FanOutOptions {
  metrics: Metrics;
  logger: Logger;
  /** Subscribers served before yielding to the event loop. */
  sliceSize: number;
  /** A socket with more than this many bytes unsent gets the latest event per task only. */
  highWaterBytes: number;
  /** Held tasks per subscriber before it is disconnected as a slow consumer. */
  maxHeld: number;
}

/**
 * The WebSocket fast path of taskStatusChanged. A change reaches only the
 * subscriptions its tenant, id, parent or type index names; the selection is
 * executed once per distinct selection and event and serialized once; each
 * subscriber gets that payload framed with its own id (and cursor) and written
 * straight to its socket. Events are fanned out one at a time, in order, in
 * slices that yield to the event loop, so pings, HTTP and new connections stay
 * responsive during a large broadcast.
 */
export class FanOut {
  private readonly tenants = new Map<string, TenantIndex>();
  private readonly jobs: TaskEvent[] = [];
  private draining = false;

  constructor(private readonly options: FanOutOptions) {}

  add(subscription: FastSubscription): void {
    const index = this.indexOf(subscription.tenantCode);
    for (const [map, key] of this.keysOf(subscription, index)) {
      if (!map) index.all.add(subscription);
      else {
        let set = map.get(key!);
        if (!set) map.set(key!, (set = new Set()));
        set.add(subscription);
      }
    }
  }

  remove(subscription: FastSubscription): void {
    const index = this.tenants.get(subscription.tenantCode);
    if (!index) return;
    for (const [map, key] of this.keysOf(subscription, index)) {
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

  /** Called for every event on the bus; events go out in arrival order. */
  dispatch(event: TaskEvent): void {
    if (!this.tenants.has(event.task.tenantCode)) return;
    this.jobs.push(event);
    if (!this.draining) void this.drain();
  }

  /** Sends one subscriber one event (initial states, buffered events): its own execution. */
  async deliverOne(subscription: FastSubscription, event: TaskEvent): Promise<void> {
    const payload = await this.payloadOf(subscription.operation, event);
    this.deliver(subscription, event, payload);
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
    const candidates = this.candidatesOf(event);
    const groups = new Map<string, { operation: SharedOperation; members: FastSubscription[] }>();
    for (const subscription of candidates) {
      if (subscription.closed || !subscription.state.inScope(event.task)) continue;
      if (subscription.buffer) {
        subscription.buffer.push(event);
        continue;
      }
      const key = subscription.operation.key;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { operation: subscription.operation, members: [] }));
      group.members.push(subscription);
    }
    if (groups.size === 0) return;
    const payloads = await Promise.all([...groups.values()].map((group) => this.payloadOf(group.operation, event)));
    let served = 0;
    let index = 0;
    for (const group of groups.values()) {
      const payload = payloads[index++]!;
      for (const subscription of group.members) {
        this.deliver(subscription, event, payload);
        if (++served % this.options.sliceSize === 0) await yieldToEventLoop();
      }
    }
  }

  /** Executes a selection for an event once and serializes it, leaving a slot for the cursor. */
  private async payloadOf(operation: SharedOperation, event: TaskEvent): Promise<Payload> {
    const result = await operation.execute({ ...event, cursor: CURSOR_SLOT } as TaskStatusEvent);
    return { parts: JSON.stringify(result).split(CURSOR_SLOT_JSON) };
  }

  /** Frames and writes one event to one subscriber; false when it was not sent. */
  private deliver(subscription: FastSubscription, event: TaskEvent, payload: Payload): boolean {
    if (subscription.closed) return false;
    const { metrics } = this.options;
    const skip = subscription.state.accept(event);
    if (skip) {
      if (skip === 'stale') metrics.eventsDropped.inc({ reason: 'stale' });
      if (subscription.state.finished) this.end(subscription);
      return false;
    }
    const { parts } = payload;
    const body = parts.length === 1 ? parts[0] : parts.join(JSON.stringify(subscription.state.cursor()));
    const frame = `${subscription.frameHead}${body}}`;
    const { socket } = subscription.sink;
    if (subscription.held || socket.bufferedAmount > this.options.highWaterBytes) this.hold(subscription, event, frame);
    else socket.send(frame);
    metrics.eventsDelivered.inc();
    if (subscription.state.finished) this.end(subscription);
    return true;
  }

  /** A backed-up socket keeps only the latest frame per task until it drains; too many tasks, and it is dropped. */
  private hold(subscription: FastSubscription, event: TaskEvent, frame: string): void {
    const { metrics, maxHeld } = this.options;
    if (!subscription.held) {
      subscription.held = new Map();
      const raw = (subscription.sink.socket as unknown as { _socket?: NodeJS.EventEmitter })._socket;
      const flush = () => this.flushHeld(subscription);
      if (raw) raw.once('drain', flush);
      else setTimeout(flush, 50);
    }
    if (subscription.held.delete(event.task.id)) metrics.eventsCoalesced.inc();
    subscription.held.set(event.task.id, frame);
    if (subscription.held.size > maxHeld) {
      metrics.eventsDropped.inc({ reason: 'slow_consumer' });
      subscription.held = undefined;
      subscription.sink.socket.close(SLOW_CONSUMER_CLOSE_CODE, 'Slow consumer');
      this.end(subscription);
    }
  }

  private flushHeld(subscription: FastSubscription): void {
    const held = subscription.held;
    subscription.held = undefined;
    if (!held || subscription.sink.socket.readyState !== subscription.sink.socket.OPEN) return;
    for (const frame of held.values()) subscription.sink.socket.send(frame);
  }

  private end(subscription: FastSubscription): void {
    this.remove(subscription);
    subscription.end();
  }

  private candidatesOf(event: TaskEvent): Set<FastSubscription> | FastSubscription[] {
    const index = this.tenants.get(event.task.tenantCode);
    if (!index) return [];
    const { task } = event;
    const sets = [
      index.all,
      index.byId.get(task.id),
      index.byType.get(task.type),
      index.byParent.get(task.id),
      task.parentId ? index.byParent.get(task.parentId) : undefined,
    ].filter((set): set is Set<FastSubscription> => set !== undefined && set.size > 0);
    if (sets.length === 1) return sets[0]!;
    const union = new Set<FastSubscription>();
    for (const set of sets) for (const subscription of set) union.add(subscription);
    return union;
  }

  private indexOf(tenantCode: string): TenantIndex {
    let index = this.tenants.get(tenantCode);
    if (!index) {
      index = { all: new Set(), byId: new Map(), byParent: new Map(), byType: new Map() };
      this.tenants.set(tenantCode, index);
    }
    return index;
  }

  /** The index entries of a subscription: its ids, else its parent, else its type, else "all". */
  private keysOf(subscription: FastSubscription, index: TenantIndex): [Map<string, Set<FastSubscription>> | undefined, string | undefined][] {
    const { filter } = subscription.state;
    if (filter.ids?.length) return filter.ids.map((id) => [index.byId, id]);
    if (filter.parentId) return [[index.byParent, filter.parentId]];
    if (filter.taskType) return [[index.byType, filter.taskType]];
    return [[undefined, undefined]];
  }
}
