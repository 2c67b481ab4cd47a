/**
 * LiveTasks over fakes: shared executions answer as no subscriber, token
 * expiry on an injected clock, and the SSE sink yoga pulls from.
 */
import { GraphQLObjectType, GraphQLSchema, GraphQLString, parse, subscribe as graphqlSubscribe, type GraphQLError } from 'graphql';
import { describe, expect, test } from 'vitest';
import { TaskError } from '../src/errors.js';
import { IteratorSink } from '../src/live/iterator-sink.js';
import { LiveTasks } from '../src/live/live-tasks.js';
import { createMetrics } from '../src/live/metrics.js';
import type { LiveSink } from '../src/live/sink.js';
import type { TaskEvent, TaskStatusEvent } from '../src/live/task-event.js';
import type { TaskEventBus } from '../src/live/task-event-bus.js';
import { createLogger } from '../src/logger.js';
import type { Actor } from '../src/tasks/task.js';
import type { TaskService } from '../src/tasks/task-service.js';
import { FakeClock, FakeSink, live as liveEvent, settle } from './helpers/live-fakes.js';

function setup() {
  let publish!: (event: TaskEvent) => void;
  const bus = {
    observeAll: (listener: (event: TaskEvent) => void) => {
      publish = listener;
      return () => {};
    },
  } as unknown as TaskEventBus;
  const metrics = createMetrics();
  const clock = new FakeClock();
  const live = new LiveTasks({
    bus,
    tasks: {} as TaskService,
    metrics,
    logger: createLogger('silent'),
    limits: { maxQueuedEvents: 10, maxConnectionsPerTenant: 10, maxSubscriptionsPerConnection: 10 },
    maskError: (error: GraphQLError) => error,
    clock,
  });
  return { live, metrics, clock, publish: (event: TaskEvent) => publish(event) };
}

const actor = (userId: string, tenantCode = 't1'): Actor => ({ userId, tenantCode, isAdmin: false });

describe('shared executions', () => {
  // A field that reads the context, as a future resolver might (`ctx.actor`).
  const Event = new GraphQLObjectType<TaskStatusEvent, { actor: Actor }>({
    name: 'Event',
    fields: {
      id: { type: GraphQLString, resolve: (event) => event.task.id },
      viewer: { type: GraphQLString, resolve: (_event, _args, ctx) => ctx.actor.userId },
      tenant: { type: GraphQLString, resolve: (_event, _args, ctx) => ctx.actor.tenantCode },
    },
  });
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { ok: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType<unknown, { actor: Actor; live: LiveTasks; sink: LiveSink }>({
      name: 'Subscription',
      fields: {
        changed: {
          type: Event,
          subscribe: (_root, _args, ctx, info) => ctx.live.subscribe(ctx.actor, {}, null, { sink: ctx.sink, selection: info }),
          resolve: (event) => event,
        },
      },
    }),
  });

  test('run with a context of their own: no subscriber is answered as another user', async () => {
    const { live, publish } = setup();
    // One parsed document, as yoga's cache gives every subscriber of the same text: the execution is shared.
    const document = parse('subscription { changed { id viewer tenant } }');
    const sinks = { alice: new FakeSink(), bob: new FakeSink() };
    for (const [user, sink] of Object.entries(sinks)) {
      const result = await graphqlSubscribe({ schema, document, contextValue: { actor: actor(user), live, sink } });
      expect(Symbol.asyncIterator in result).toBe(true);
    }
    publish(liveEvent('a', 1));
    await settle();
    await settle();
    const answers = Object.values(sinks).map((sink) => JSON.parse(sink.messages[0] as string).data.changed);
    // Neither alice's identity for bob nor the reverse: the tenant only.
    expect(answers).toEqual([
      { id: 'a', viewer: '', tenant: 't1' },
      { id: 'a', viewer: '', tenant: 't1' },
    ]);
  });
});

describe('token expiry on the injected clock', () => {
  test('an SSE subscription fails with UNAUTHENTICATED at expiresAt and gives its slot back', async () => {
    const { live, metrics, clock } = setup();
    const events = live.subscribe(actor('u'), {}, null, { ownConnection: { expiresAt: 60 } });
    expect(metrics.connections.get()).toBe(1);
    const next = events.next();
    clock.advanceTo(59_999);
    await settle();
    expect(metrics.subscriptions.get()).toBe(1);
    clock.advanceTo(60_000);
    await expect(next).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await settle();
    expect(metrics.connections.get()).toBe(0);
    expect(metrics.subscriptions.get()).toBe(0);
  });

  test('a subscription that ends first cancels its timer', async () => {
    const { live, metrics, clock } = setup();
    const events = live.subscribe(actor('u'), {}, null, { ownConnection: { expiresAt: 60 } });
    expect(clock.pending).toBe(1);
    await events.return!();
    await settle();
    expect(clock.pending).toBe(0);
    expect(metrics.connections.get()).toBe(0);
  });
});

describe('IteratorSink (SSE)', () => {
  test('backed up while an event is not pulled; drains when it is', async () => {
    let cancelled = false;
    const sink = new IteratorSink(() => (cancelled = true));
    const drains: string[] = [];
    expect(sink.backedUp).toBe(false);
    sink.send({ ...liveEvent('a', 1), cursor: 'c1' });
    expect(sink.backedUp).toBe(true);
    sink.onDrain(() => drains.push('drained'));
    expect((await sink.next()).value?.task.id).toBe('a');
    await settle();
    expect(drains).toEqual(['drained']);
    expect(sink.backedUp).toBe(false);
    await sink.return();
    expect(cancelled).toBe(true);
  });

  test('completes after what is pending; an error reaches a waiting reader and discards what is pending', async () => {
    const sink = new IteratorSink(() => {});
    sink.send({ ...liveEvent('a', 1), cursor: 'c1' });
    sink.close();
    expect((await sink.next()).done).toBe(false);
    expect((await sink.next()).done).toBe(true);

    const failing = new IteratorSink(() => {});
    const waiting = failing.next();
    failing.close(new TaskError('SLOW_CONSUMER', 'too slow'));
    await expect(waiting).rejects.toMatchObject({ code: 'SLOW_CONSUMER' });
  });
});
