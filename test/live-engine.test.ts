/**
 * The subscription engine over fake sinks: indexing, the snapshot-to-live
 * handoff, per-task ordering, shared execution, backpressure and slow
 * consumers. No server, no table, no real time.
 */
import { describe, expect, test } from 'vitest';
import { TaskError } from '../src/errors.js';
import { SubscriptionEngine } from '../src/live/engine.js';
import { createMetrics } from '../src/live/metrics.js';
import type { SharedOperation } from '../src/live/shared-operation.js';
import { SubscriptionIndex } from '../src/live/subscription-index.js';
import { SubscriptionState, type TaskEventFilter } from '../src/live/subscription-state.js';
import { createLogger } from '../src/logger.js';
import type { Task } from '../src/tasks/task.js';
import { FakeSink, live, settle, task } from './helpers/live-fakes.js';

function setup(maxQueuedEvents = 100, sliceSize?: number) {
  const metrics = createMetrics();
  const engine = new SubscriptionEngine({ metrics, logger: createLogger('silent'), maxQueuedEvents, sliceSize });
  /** Opens and starts a subscription; `initial` are the tasks "read from the table". */
  const subscribe = async (filter: TaskEventFilter = {}, initial: Task[] = [], operation?: SharedOperation, tenantCode = 't1') => {
    const sink = new FakeSink();
    const subscription = engine.open(tenantCode, new SubscriptionState(filter), sink, operation);
    await engine.start(subscription, toAsync(initial));
    return { sink, subscription };
  };
  return { metrics, engine, subscribe };
}

async function* toAsync<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

/** An async iterable the test feeds, standing for a slow table read. */
function gate<T>() {
  const items: T[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  return {
    push(item: T) {
      items.push(item);
      wake?.();
    },
    end() {
      done = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      while (true) {
        if (items.length > 0) yield items.shift()!;
        else if (done) return;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

describe('SubscriptionIndex', () => {
  test('a change reaches only subscriptions of its tenant that name it, its parent, its type, or nothing', () => {
    const index = new SubscriptionIndex<{ name: string; tenantCode: string; filter: TaskEventFilter }>();
    const subs = {
      all: { name: 'all', tenantCode: 't1', filter: {} },
      byId: { name: 'byId', tenantCode: 't1', filter: { ids: ['a', 'b'] } },
      byParent: { name: 'byParent', tenantCode: 't1', filter: { parentId: 'p' } },
      byType: { name: 'byType', tenantCode: 't1', filter: { taskType: 'mail' } },
      otherTenant: { name: 'otherTenant', tenantCode: 't2', filter: {} },
    };
    for (const sub of Object.values(subs)) index.add(sub);
    const names = (t: Task) => [...index.candidatesOf(t)].map((sub) => sub.name).sort();

    expect(names(task('a', 1))).toEqual(['all', 'byId']);
    expect(names(task('x', 1, { type: 'mail' }))).toEqual(['all', 'byType']);
    expect(names(task('p', 1))).toEqual(['all', 'byParent']);
    expect(names(task('c', 1, { parentId: 'p' }))).toEqual(['all', 'byParent']);
    expect(names(task('a', 1, { tenantCode: 't2' }))).toEqual(['otherTenant']);
    expect(names(task('a', 1, { tenantCode: 't3' }))).toEqual([]);

    index.remove(subs.byId);
    expect(names(task('a', 1))).toEqual(['all']);
    index.remove(subs.otherTenant);
    expect(index.hasTenant('t2')).toBe(false);
    expect(index.hasTenant('t1')).toBe(true);
  });
});

describe('SubscriptionEngine', () => {
  test('events go out in arrival order, each only to subscriptions whose filter takes it', async () => {
    const { engine, subscribe } = setup();
    const all = await subscribe();
    const mails = await subscribe({ taskType: 'mail' });
    const other = await subscribe({}, [], undefined, 't2');
    engine.dispatch(live('a', 1));
    engine.dispatch(live('b', 1, { type: 'mail' }));
    engine.dispatch(live('a', 2));
    engine.dispatch(live('s', 1, { parentId: 'a' }));
    await settle();
    // Sub-tasks only when asked for; other tenants never.
    expect(all.sink.trail).toEqual(['a@1', 'b@1', 'a@2']);
    expect(mails.sink.trail).toEqual(['b@1']);
    expect(other.sink.trail).toEqual([]);
    // Each event carries a cursor to resume from.
    expect(all.sink.events.every((event) => typeof event.cursor === 'string' && event.cursor.length > 0)).toBe(true);
  });

  test('handoff: live events that come during the snapshot wait for it; stale versions are dropped', async () => {
    const { engine } = setup();
    const sink = new FakeSink();
    const subscription = engine.open('t1', new SubscriptionState({ ids: ['a', 'b'] }), sink);
    const reads = gate<Task>();
    const started = engine.start(subscription, reads);
    // While the table is read: b moves to 3, a to 2.
    engine.dispatch(live('b', 3));
    engine.dispatch(live('a', 2));
    await settle();
    expect(sink.trail).toEqual([]);
    reads.push(task('a', 1)); // read before its live change: older
    reads.push(task('b', 4)); // read after its live change: newer
    reads.end();
    await started;
    await settle();
    expect(sink.trail).toEqual(['a@1r', 'b@4r', 'a@2']);
    // After the handoff, events go straight out.
    engine.dispatch(live('b', 5));
    await settle();
    expect(sink.trail.at(-1)).toBe('b@5');
  });

  test('a subscription by ids completes when every named task is terminal', async () => {
    const { engine, metrics, subscribe } = setup();
    const { sink, subscription } = await subscribe({ ids: ['a'] }, [task('a', 1)]);
    expect(metrics.subscriptions.get()).toBe(1);
    engine.dispatch(live('a', 2, { status: 'COMPLETED' }));
    await subscription.finished;
    expect(sink.trail).toEqual(['a@1r', 'a@2']);
    expect(sink.closed).toEqual({ error: undefined });
    expect(metrics.subscriptions.get()).toBe(0);
  });

  test('a selection is executed once per event for every subscriber that has it; each gets its own cursor', async () => {
    const { engine, subscribe } = setup(100, 2);
    let executions = 0;
    const operation: SharedOperation = {
      key: 'k',
      async execute(event) {
        executions++;
        return { data: { id: event.task.id, cursor: event.cursor } };
      },
    };
    const first = await subscribe({}, [], operation);
    const second = await subscribe({ taskType: 'demo' }, [], operation);
    const third = await subscribe({}, [], operation);
    await subscribe({}, [], operation, 't2');
    engine.dispatch(live('a', 1));
    for (let i = 0; i < 4; i++) await settle();
    expect(executions).toBe(1);
    const parsed = [first, second, third].map(({ sink }) => JSON.parse(sink.messages[0] as string));
    expect(parsed.map((payload) => payload.data.id)).toEqual(['a', 'a', 'a']);
    // A real cursor in place of the shared slot.
    for (const payload of parsed) expect(payload.data.cursor).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  test('backpressure: a backed-up sink gets the latest event per task, in order, once it drains', async () => {
    const { engine, metrics, subscribe } = setup(10);
    const { sink } = await subscribe();
    sink.backedUp = true;
    for (const event of [live('a', 1), live('b', 1), live('a', 2), live('c', 1), live('a', 3)]) engine.dispatch(event);
    await settle();
    expect(sink.trail).toEqual([]);
    expect(metrics.eventsCoalesced.get()).toBe(2);
    expect(sink.drainWaiters).toBe(1);
    sink.drain();
    await settle();
    // Latest per task, in the order of those latest events.
    expect(sink.trail).toEqual(['b@1', 'c@1', 'a@3']);
    engine.dispatch(live('b', 2));
    await settle();
    expect(sink.trail.at(-1)).toBe('b@2');
  });

  test('a flush stops when the sink backs up again, and events arriving meanwhile stay behind the held ones', async () => {
    const { engine, subscribe } = setup(10);
    const { sink } = await subscribe();
    sink.backedUp = true;
    engine.dispatch(live('a', 1));
    engine.dispatch(live('b', 1));
    await settle();
    // The sink takes one event, then is backed up again.
    const send = sink.send.bind(sink);
    sink.send = (message) => {
      send(message);
      sink.backedUp = true;
    };
    sink.drain();
    await settle();
    expect(sink.trail).toEqual(['a@1']);
    engine.dispatch(live('a', 2));
    await settle();
    sink.send = send;
    sink.drain();
    await settle();
    expect(sink.trail).toEqual(['a@1', 'b@1', 'a@2']);
  });

  test('slow consumer: more held tasks than maxQueuedEvents ends the subscription with SLOW_CONSUMER', async () => {
    const { engine, metrics, subscribe } = setup(3);
    const { sink, subscription } = await subscribe();
    sink.backedUp = true;
    for (const id of ['a', 'b', 'c']) engine.dispatch(live(id, 1));
    await settle();
    expect(sink.closed).toBeUndefined();
    engine.dispatch(live('d', 1));
    await subscription.finished;
    expect(sink.closed?.error).toBeInstanceOf(TaskError);
    expect((sink.closed!.error as TaskError).code).toBe('SLOW_CONSUMER');
    expect(metrics.eventsDropped.get({ reason: 'slow_consumer' })).toBe(1);
    expect(metrics.subscriptions.get()).toBe(0);
    // Nothing is sent to a closed sink (FakeSink would throw), even after a drain.
    sink.drain();
    engine.dispatch(live('a', 2));
    await settle();
    expect(sink.trail).toEqual([]);
  });

  test('the snapshot is paced by the sink: a backed-up sink is not sent more initial states until it drains', async () => {
    const { engine } = setup(2);
    const sink = new FakeSink();
    const subscription = engine.open('t1', new SubscriptionState({ ids: ['a', 'b', 'c', 'd'] }), sink);
    sink.backedUp = true;
    const started = engine.start(subscription, toAsync(['a', 'b', 'c', 'd'].map((id) => task(id, 1))));
    await settle();
    expect(sink.trail).toEqual([]);
    // More initial states than maxQueuedEvents: waited for, never a slow consumer.
    for (let i = 0; i < 4; i++) {
      sink.drain();
      await settle();
      sink.backedUp = true;
    }
    sink.backedUp = false;
    await started;
    expect(sink.trail).toEqual(['a@1r', 'b@1r', 'c@1r', 'd@1r']);
    expect(sink.closed).toBeUndefined();
  });

  test('a failed table read ends the subscription with the error, for the transport to report', async () => {
    const { engine, metrics } = setup();
    const sink = new FakeSink();
    const subscription = engine.open('t1', new SubscriptionState({ ids: ['a'] }), sink);
    // biome-ignore lint/correctness/useYield: a table read that fails before its first item
    const failing = (async function* (): AsyncGenerator<Task> {
      throw new Error('table unavailable');
    })();
    await engine.start(subscription, failing);
    expect(sink.closed?.error?.message).toBe('table unavailable');
    expect(metrics.subscriptions.get()).toBe(0);
  });

  test('close() completes every subscription', async () => {
    const { engine, metrics, subscribe } = setup();
    const a = await subscribe();
    const b = await subscribe({ ids: ['x'] });
    engine.close();
    expect([a.sink.closed, b.sink.closed]).toEqual([{ error: undefined }, { error: undefined }]);
    expect(metrics.subscriptions.get()).toBe(0);
  });
});
