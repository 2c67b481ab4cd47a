/**
 * The live transports' edges: WebSocket authentication and token expiry,
 * per-connection and per-tenant quotas, slow consumers (coalescing, then 4008),
 * keep-alive, and the /metrics exposition. Real clients against real servers on
 * loopback ephemeral ports; every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { mintToken } from '../src/auth/mint-token.js';
import { SLOW_CONSUMER_CLOSE_CODE, TOKEN_EXPIRED_CLOSE_CODE, TOO_MANY_CONNECTIONS_CLOSE_CODE } from '../src/live/close-codes.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { FakeClock } from './helpers/live-fakes.js';
import { SUBSCRIBE, subscribeSse, subscribeWs, wsClient } from './helpers/live.js';
import { until } from './helpers/wait.js';

const PROTOCOL = 'graphql-transport-ws';

let main: TestApp;
/** main's settings on a fake clock: token expiry without waiting for it. */
let timed: TestApp;
const clock = new FakeClock();
let quota: TestApp;
let slow: TestApp;
let keepAlive: TestApp;

const MAX_QUEUED = 20;

beforeAll(async () => {
  [main, timed, quota, slow, keepAlive] = await Promise.all([
    startTestApp(),
    startTestApp({}, { clock }),
    startTestApp({ MAX_SUBSCRIPTIONS_PER_CONNECTION: '2', MAX_CONNECTIONS_PER_TENANT: '2' }),
    // No pings: a paused client could not answer them, and would be reaped (1006) instead of closed (4008).
    startTestApp({ MAX_QUEUED_EVENTS: String(MAX_QUEUED), WS_KEEPALIVE_MS: '0' }),
    startTestApp({ WS_KEEPALIVE_MS: '200' }),
  ]);
});

// ---------------------------------------------------------------------------
// Bounded waiting

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
  ]);
}

/** Polls until `check` holds; fails with `what` after `timeoutMs`. */

// ---------------------------------------------------------------------------
// A raw graphql-transport-ws client: every frame and the close code are visible.

interface Message {
  type: string;
  id?: string;
  payload?: any;
}

const rawClients: RawClient[] = [];
afterAll(() => {
  for (const client of rawClients.splice(0)) client.socket.terminate();
});

class RawClient {
  readonly socket: WebSocket;
  readonly messages: Message[] = [];
  pings = 0;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly listeners = new Set<() => void>();

  constructor(httpUrl: string, options: WebSocket.ClientOptions = {}) {
    this.socket = new WebSocket(httpUrl.replace(/^http/, 'ws'), PROTOCOL, options);
    rawClients.push(this);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
    // A reset after the server terminates the socket is expected; 'close' follows it.
    this.socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      this.socket.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.notify();
      }),
    );
    this.socket.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()) as Message);
      this.notify();
    });
    this.socket.on('ping', () => {
      this.pings++;
      this.notify();
    });
  }

  private notify() {
    for (const listener of [...this.listeners]) listener();
  }

  get isOpen() {
    return this.socket.readyState === WebSocket.OPEN;
  }

  send(message: Message) {
    this.socket.send(JSON.stringify(message));
  }

  /** Sends connection_init with `Authorization: Bearer <token>` (or the given payload). */
  async init(tokenOrPayload: string | Record<string, unknown> | null) {
    await this.opened;
    const payload =
      tokenOrPayload === null ? {} : typeof tokenOrPayload === 'string' ? { authorization: `Bearer ${tokenOrPayload}` } : tokenOrPayload;
    this.send({ type: 'connection_init', payload });
  }

  /** Opens and waits for connection_ack. */
  async connect(token: string) {
    await this.init(token);
    await this.waitFor((m) => m.type === 'connection_ack', 'connection_ack');
  }

  subscribe(id: string, variables: Record<string, unknown> = {}, query = SUBSCRIBE) {
    this.send({ id, type: 'subscribe', payload: { query, variables } });
  }

  complete(id: string) {
    this.send({ id, type: 'complete' });
  }

  /** `taskStatusChanged` payloads of `next` messages for a subscription. */
  events(id: string): any[] {
    return this.messages.filter((m) => m.id === id && m.type === 'next').map((m) => m.payload.data?.taskStatusChanged);
  }

  errors(id: string): any[] {
    return this.messages.filter((m) => m.id === id && m.type === 'error').flatMap((m) => m.payload);
  }

  /** Resolves with the first message matching (already received or not); fails when closed first or after timeoutMs. */
  waitFor(match: (message: Message) => boolean, what: string, timeoutMs = 5_000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.find(match);
        if (found) return finish(() => resolve(found));
        if (this.socket.readyState === WebSocket.CLOSED) {
          finish(() => reject(new Error(`socket closed while waiting for ${what}; got ${this.describe()}`)));
        }
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${this.describe()}`))),
        timeoutMs,
      );
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Resolves once `check()` holds, re-checked on every frame; bounded. */
  async waitUntil(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
    if (check()) return;
    await new Promise<void>((resolve, reject) => {
      const listener = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${this.describe()}`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  closedWithin(ms: number) {
    return within(this.closed, ms, `the server to close the socket; got ${this.describe()}`);
  }

  describe() {
    const frames = this.messages.slice(-5).map((m) => `${m.type}${m.id ? `#${m.id}` : ''}`);
    return `${this.messages.length} frames (last: ${frames.join(', ')}), readyState ${this.socket.readyState}`;
  }
}

// ---------------------------------------------------------------------------
// Task mutations with small selections (events carry the attributes; responses need not).

const CREATE = `mutation($input: CreateTaskInput!) { createTask(input: $input) { id version } }`;
const UPDATE = `mutation($input: UpdateStatusInput!) { updateStatus(input: $input) { id version status } }`;

async function create(app: TestApp, token: string, taskType = 'TRANSPORT'): Promise<{ id: string; version: number }> {
  const res = await app.gql(CREATE, { input: { taskType, input: { n: 1 } } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.createTask;
}

async function update(app: TestApp, token: string, id: string, attributes?: Record<string, unknown>, status = 'PROCESSING') {
  const res = await app.gql(UPDATE, { input: { id, status, attributes } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.updateStatus as { id: string; version: number; status: string };
}

/**
 * A change in `tenant`, to wake its idle subscription streams. A stream waiting for
 * its next event does not see its cancellation until one arrives (see the last
 * describe block); tests that check releases after a close say so with this.
 */
async function nudge(app: TestApp, tenant: string) {
  await create(app, await app.token(tenant), 'NUDGE');
}

// ---------------------------------------------------------------------------

describe('WebSocket authentication', () => {
  const cases: { name: string; payload: () => Promise<Record<string, unknown>>; reason: string }[] = [
    { name: 'no token', payload: async () => ({}), reason: 'Send Authorization: Bearer <token>' },
    { name: 'a garbage token', payload: async () => ({ authorization: 'Bearer not.a.jwt' }), reason: 'The token is invalid' },
    {
      name: 'an expired token',
      payload: async () => ({ authorization: `Bearer ${await main.token('ws-auth', { expiresIn: '-1h' })}` }),
      reason: 'The token has expired',
    },
    {
      name: 'a token signed with another secret',
      payload: async () => ({
        authorization: `Bearer ${await mintToken({ secret: 'another-secret-that-is-also-at-least-32-chars', tenantCode: 'ws-auth', userId: 'u' })}`,
      }),
      reason: 'The token signature is invalid',
    },
  ];

  test.each(cases)('connection_init with $name is closed with 4401, unacknowledged', async ({ payload, reason }) => {
    const connectionsBefore = main.metrics.connections.get();
    const client = new RawClient(main.url);
    await client.init(await payload());
    const closed = await client.closedWithin(5_000);
    expect(closed).toEqual({ code: TOKEN_EXPIRED_CLOSE_CODE, reason });
    expect(client.messages).toEqual([]);
    expect(main.metrics.connections.get()).toBe(connectionsBefore);
  });

  test('a subscribe sent right behind a refused connection_init never runs', async () => {
    const before = { subscriptions: main.metrics.subscriptions.get(), delivered: main.metrics.eventsDelivered.get() };
    const expired = await main.token('ws-auth-sub', { expiresIn: '-1h' });
    const client = new RawClient(main.url);
    await client.init(expired);
    client.subscribe('1');
    client.subscribe('2', { filter: { ids: ['nonexistent'] } });
    const { code } = await client.closedWithin(5_000);
    expect(code).toBe(TOKEN_EXPIRED_CLOSE_CODE);
    expect(client.messages.map((m) => m.type)).toEqual([]);
    expect(main.metrics.subscriptions.get()).toBe(before.subscriptions);
    expect(main.metrics.eventsDelivered.get()).toBe(before.delivered);
  });

  test('the graphql-ws client sees the 4401 close as its subscription error', async () => {
    const expired = await main.token('ws-auth-client', { expiresIn: '-1h' });
    const closeCodes: number[] = [];
    const client = wsClient(main.url, expired, { on: { closed: (event) => closeCodes.push((event as { code: number }).code) } });
    const sub = subscribeWs(client);
    await within(sub.done, 5_000, 'the subscription to fail');
    expect(closeCodes).toEqual([TOKEN_EXPIRED_CLOSE_CODE]);
    expect(sub.errors).toHaveLength(1);
    expect(sub.errors[0]).toMatchObject({ code: TOKEN_EXPIRED_CLOSE_CODE, reason: 'The token has expired' });
    expect(sub.events).toEqual([]);
  });

  test('an open connection is closed with 4401 when its token expires', async () => {
    const before = { connections: timed.metrics.connections.get(), subscriptions: timed.metrics.subscriptions.get() };
    const token = await timed.token('ws-expiring', { expiresIn: '1h' });
    const client = new RawClient(timed.url);
    await client.connect(token);
    client.subscribe('1');
    await until('the subscription to start', () => timed.metrics.subscriptions.get() === before.subscriptions + 1);
    expect(timed.metrics.connections.get()).toBe(before.connections + 1);

    clock.advanceTo(expiresAtMs(token) - 1);
    await sleep(50);
    expect(client.isOpen).toBe(true);
    clock.advanceTo(expiresAtMs(token));
    const closed = await client.closedWithin(10_000);
    expect(closed).toEqual({ code: TOKEN_EXPIRED_CLOSE_CODE, reason: 'Token expired' });
    expect(client.errors('1')).toEqual([]);
    await nudge(timed, 'ws-expiring');
    await until(
      () => `gauges back to ${JSON.stringify(before)}, are ${timed.metrics.connections.get()}/${timed.metrics.subscriptions.get()}`,
      () => timed.metrics.subscriptions.get() === before.subscriptions && timed.metrics.connections.get() === before.connections,
    );
  });

  test('an SSE subscription ends with UNAUTHENTICATED when its token expires, and frees its slot', async () => {
    const before = timed.metrics.connections.get();
    const token = await timed.token('sse-expiring', { expiresIn: '1h' });
    const sse = subscribeSse(timed.url, token);
    await until('the SSE subscription to take a connection slot', () => timed.metrics.connections.get() === before + 1);
    clock.advanceTo(expiresAtMs(token));
    await within(sse.done, 10_000, 'the SSE stream to end');
    await until('the SSE slot to be released', () => timed.metrics.connections.get() === before);
    expect(sse.errors.map((error: any) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
  });
});

/** A token's `exp`, in epoch milliseconds. */
function expiresAtMs(token: string): number {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp * 1000;
}

describe('quotas', () => {
  test('a subscription over the per-connection quota gets QUOTA_EXCEEDED; the socket stays open and the others keep receiving', async () => {
    const token = await quota.token('sub-quota-any');
    const before = quota.metrics.subscriptions.get();
    const client = new RawClient(quota.url);
    await client.connect(token);
    // Subscribe one at a time until one is refused: never more than the limit (2), bounded at limit + 1 attempts.
    const accepted: string[] = [];
    let refused: string | undefined;
    for (let n = 1; n <= 3 && !refused; n++) {
      const id = String(n);
      client.subscribe(id);
      await until(
        `subscription ${id} to start or fail`,
        () => quota.metrics.subscriptions.get() === before + accepted.length + 1 || client.errors(id).length > 0,
      );
      if (client.errors(id).length > 0) refused = id;
      else accepted.push(id);
    }
    expect(refused, 'a subscription refused within limit + 1').toBeDefined();
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    expect(accepted.length).toBeLessThanOrEqual(2);
    expect(client.errors(refused!)).toMatchObject([{ extensions: { code: 'QUOTA_EXCEEDED', limit: 2 } }]);
    expect(quota.metrics.subscriptions.get()).toBe(before + accepted.length);
    expect(client.isOpen).toBe(true);

    const task = await create(quota, token);
    await client.waitUntil(() => accepted.every((id) => client.events(id).length >= 1), 'an event on every accepted subscription');
    for (const id of accepted) expect(client.events(id).map((e) => e.task.id)).toEqual([task.id]);
    expect(client.events(refused!)).toEqual([]);
    client.socket.close(1000);
    await client.closedWithin(5_000);
  });

  // BUG (src/server/graphql-ws.ts onSubscribe): graphql-ws registers the new id in
  // ctx.subscriptions *before* calling onSubscribe, so `Object.keys(ctx.subscriptions).length`
  // already counts the subscription being checked: with MAX_SUBSCRIPTIONS_PER_CONNECTION=2 the
  // second subscription is refused (and with 1, every subscription). Remove `.fails` once fixed.
  test('MAX_SUBSCRIPTIONS_PER_CONNECTION=2: a third subscription on the socket gets QUOTA_EXCEEDED; the first two keep receiving', async () => {
    const token = await quota.token('sub-quota');
    const before = quota.metrics.subscriptions.get();
    const client = new RawClient(quota.url);
    await client.connect(token);
    client.subscribe('1');
    await until('subscription 1 to start', () => quota.metrics.subscriptions.get() === before + 1);
    client.subscribe('2');
    await until('subscription 2 to start or fail', () => quota.metrics.subscriptions.get() === before + 2 || client.errors('2').length > 0);
    expect(client.errors('2')).toEqual([]);

    client.subscribe('3');
    await client.waitFor((m) => m.id === '3' && m.type === 'error', 'the error for subscription 3');
    expect(client.errors('3')).toMatchObject([{ extensions: { code: 'QUOTA_EXCEEDED', limit: 2 } }]);
    expect(quota.metrics.subscriptions.get()).toBe(before + 2);

    const task = await create(quota, token);
    await update(quota, token, task.id, { step: 1 });
    await client.waitUntil(() => client.events('1').length >= 2 && client.events('2').length >= 2, 'events on 1 and 2');
    for (const id of ['1', '2']) {
      expect(client.events(id).map((e) => [e.task.id, e.task.version])).toEqual([
        [task.id, 1],
        [task.id, 2],
      ]);
    }
    expect(client.events('3')).toEqual([]);

    // Completing one frees its place on the socket.
    client.complete('1');
    await until('subscription 1 to end', () => quota.metrics.subscriptions.get() === before + 1);
    client.subscribe('4');
    await until('subscription 4', () => quota.metrics.subscriptions.get() === before + 2 || client.errors('4').length > 0);
    expect(client.errors('4')).toEqual([]);
    expect(client.isOpen).toBe(true);
  });

  test('MAX_CONNECTIONS_PER_TENANT=2: a third connection gets 4029, other tenants still connect, SSE gets QUOTA_EXCEEDED; closing frees a slot', async () => {
    const [token, otherToken] = await Promise.all([quota.token('conn-quota'), quota.token('conn-quota-other')]);
    const before = quota.metrics.connections.get();
    const first = new RawClient(quota.url);
    const second = new RawClient(quota.url);
    await Promise.all([first.connect(token), second.connect(token)]);
    expect(quota.metrics.connections.get()).toBe(before + 2);

    const third = new RawClient(quota.url);
    await third.init(token);
    expect(await third.closedWithin(5_000)).toEqual({
      code: TOO_MANY_CONNECTIONS_CLOSE_CODE,
      reason: 'Too many connections for this tenant',
    });
    expect(third.messages).toEqual([]);
    expect(quota.metrics.connections.get()).toBe(before + 2);

    // Another tenant is not affected.
    const other = new RawClient(quota.url);
    await other.connect(otherToken);
    expect(quota.metrics.connections.get()).toBe(before + 3);

    // An SSE subscription is a connection of its own: refused for the full tenant.
    const refused = subscribeSse(quota.url, token);
    await within(refused.done, 5_000, 'the refused SSE stream to end');
    expect(refused.events).toEqual([]);
    expect(refused.errors.map((error: any) => error.extensions?.code)).toEqual(['QUOTA_EXCEEDED']);

    // Closing one connection frees its slot...
    first.socket.close(1000, 'done');
    await first.closedWithin(5_000);
    await until('the closed connection to be released', () => quota.metrics.connections.get() === before + 2);
    // ...which an SSE subscription can take, after which the tenant is full again.
    const sse = subscribeSse(quota.url, token);
    await until('the SSE subscription to take the slot', () => quota.metrics.connections.get() === before + 3);
    const fourth = new RawClient(quota.url);
    await fourth.init(token);
    expect((await fourth.closedWithin(5_000)).code).toBe(TOO_MANY_CONNECTIONS_CLOSE_CODE);

    // The SSE subscription is live, and gives its slot back when it ends.
    const task = await create(quota, token);
    const [event] = await sse.waitFor(1, 5_000);
    expect(event.task.id).toBe(task.id);
    sse.stop();
    await nudge(quota, 'conn-quota');
    await until('the SSE slot to be released', () => quota.metrics.connections.get() === before + 2);
    const fifth = new RawClient(quota.url);
    await fifth.connect(token);
    expect(fifth.isOpen).toBe(true);
    expect(quota.metrics.connections.get()).toBe(before + 3);

    for (const client of [second, other, fifth]) client.socket.close(1000);
    await until('all connections released', () => quota.metrics.connections.get() === before);
  });
});

describe('slow consumers', () => {
  /** Large enough that a few dozen events fill loopback socket buffers; small enough to stay in the SNS-sized notification. */
  const BLOB = 'x'.repeat(200_000);
  /** Bounds on the load: rounds of updates, never time. */
  const MAX_FILL_ROUNDS = 100;

  /**
   * Updates `tasks` round-robin with large attributes until the server has coalesced
   * events for this paused subscriber. Returns the versions written per task.
   */
  async function fillUntilCoalesced(token: string, tasks: { id: string }[], coalescedBefore: number) {
    const versions = new Map<string, number[]>(tasks.map((t) => [t.id, []]));
    let rounds = 0;
    while (slow.metrics.eventsCoalesced.get() === coalescedBefore && rounds < MAX_FILL_ROUNDS) {
      rounds++;
      for (const task of tasks) {
        const updated = await update(slow, token, task.id, { blob: BLOB, round: rounds });
        versions.get(task.id)!.push(updated.version);
      }
    }
    expect(slow.metrics.eventsCoalesced.get(), `coalescing after ${rounds} rounds`).toBeGreaterThan(coalescedBefore);
    return versions;
  }

  test('a paused subscriber gets, per task, increasing versions ending with the latest', async () => {
    const token = await slow.token('slow-latest');
    const tasks = await Promise.all([create(slow, token), create(slow, token), create(slow, token)]);
    const sentinel = await create(slow, token);
    const coalescedBefore = slow.metrics.eventsCoalesced.get();
    const droppedBefore = slow.metrics.eventsDropped.get({ reason: 'slow_consumer' });
    const before = slow.metrics.subscriptions.get();

    const client = new RawClient(slow.url);
    await client.connect(token);
    client.subscribe('1');
    await until('the subscription to start', () => slow.metrics.subscriptions.get() === before + 1);
    client.socket.pause();

    const written = await fillUntilCoalesced(token, tasks, coalescedBefore);
    const finals = new Map<string, number>();
    for (const task of tasks) finals.set(task.id, (await update(slow, token, task.id, { final: true })).version);
    await update(slow, token, sentinel.id, { sentinel: true });
    // Fewer distinct tasks than the bound: coalescing, never overflow.
    expect(slow.metrics.eventsDropped.get({ reason: 'slow_consumer' })).toBe(droppedBefore);

    client.socket.resume();
    await client.waitUntil(() => client.events('1').some((e) => e.task.id === sentinel.id), 'the sentinel event', 15_000);
    const events = client.events('1');
    expect(client.errors('1')).toEqual([]);
    for (const task of tasks) {
      const versions = events.filter((e) => e.task.id === task.id).map((e) => e.task.version);
      // Strictly increasing, the final version last, and not every version (some were coalesced away).
      expect(
        versions.every((v, i) => i === 0 || v > versions[i - 1]!),
        `versions of ${task.id}: ${versions}`,
      ).toBe(true);
      expect(versions.at(-1)).toBe(finals.get(task.id));
      // Attributes merge: the last event carries the final update's marker.
      const last = events.filter((e) => e.task.id === task.id).at(-1);
      expect(last.task.attributes.final).toBe(true);
    }
    const writtenCount = [...written.values()].reduce((n, v) => n + v.length + 1, 0);
    const receivedCount = events.filter((e) => tasks.some((t) => t.id === e.task.id)).length;
    expect(receivedCount).toBeLessThan(writtenCount);

    // Still connected and live.
    expect(client.isOpen).toBe(true);
    await update(slow, token, sentinel.id, { after: true });
    await client.waitUntil(() => client.events('1').filter((e) => e.task.id === sentinel.id).length === 2, 'a later event');
    client.socket.close(1000);
    await client.closedWithin(5_000);
    await nudge(slow, 'slow-latest');
    await until('the subscription to end', () => slow.metrics.subscriptions.get() === before);
  });

  test('a subscriber too slow to coalesce is closed with 4008 and its subscription released', async () => {
    const token = await slow.token('slow-overflow');
    const hot = await Promise.all(Array.from({ length: 4 }, () => create(slow, token)));
    const cold: { id: string }[] = [];
    for (let i = 0; i < MAX_QUEUED + 5; i++) cold.push(await create(slow, token));
    const before = { subscriptions: slow.metrics.subscriptions.get(), connections: slow.metrics.connections.get() };
    const coalescedBefore = slow.metrics.eventsCoalesced.get();
    const droppedBefore = slow.metrics.eventsDropped.get({ reason: 'slow_consumer' });

    const client = new RawClient(slow.url);
    await client.connect(token);
    client.subscribe('1');
    await until('the subscription to start', () => slow.metrics.subscriptions.get() === before.subscriptions + 1);
    client.socket.pause();

    // First the server coalesces the few hot tasks' events...
    await fillUntilCoalesced(token, hot, coalescedBefore);
    expect(slow.metrics.eventsDropped.get({ reason: 'slow_consumer' })).toBe(droppedBefore);
    // ...then more distinct tasks change than the bound allows: coalescing cannot help.
    for (const task of cold) await update(slow, token, task.id, { touched: true });
    expect(slow.metrics.eventsDropped.get({ reason: 'slow_consumer' })).toBe(droppedBefore + 1);

    // The close frame waits behind what the client has not read.
    client.socket.resume();
    expect(await client.closedWithin(15_000)).toEqual({ code: SLOW_CONSUMER_CLOSE_CODE, reason: 'Slow consumer' });
    await until(
      () => `gauges back to ${JSON.stringify(before)}, are ${slow.metrics.connections.get()}/${slow.metrics.subscriptions.get()}`,
      () => slow.metrics.subscriptions.get() === before.subscriptions && slow.metrics.connections.get() === before.connections,
    );
    // The client never got a cold task's event: the queue holding them was failed.
    expect(client.events('1').filter((e) => cold.some((t) => t.id === e.task.id))).toEqual([]);
  });
});

describe('keep-alive (WS_KEEPALIVE_MS=200)', () => {
  test('a client that does not answer pings is terminated and its connection released', async () => {
    const token = await keepAlive.token('ka-silent');
    const before = keepAlive.metrics.connections.get();
    const client = new RawClient(keepAlive.url, { autoPong: false });
    await client.connect(token);
    expect(keepAlive.metrics.connections.get()).toBe(before + 1);
    const { code } = await client.closedWithin(5_000);
    // Terminated, not closed: no close frame, so the client sees an abnormal closure.
    expect(code).toBe(1006);
    expect(client.pings).toBeGreaterThanOrEqual(1);
    await until('the connection to be released', () => keepAlive.metrics.connections.get() === before);
  });

  test('a client that answers pings stays connected across several intervals', async () => {
    const token = await keepAlive.token('ka-alive');
    const before = keepAlive.metrics.connections.get();
    const client = new RawClient(keepAlive.url);
    await client.connect(token);
    client.subscribe('1');
    await client.waitUntil(() => client.pings >= 5, 'five pings', 10_000);
    expect(client.isOpen).toBe(true);
    expect(keepAlive.metrics.connections.get()).toBe(before + 1);
    const task = await create(keepAlive, token);
    await client.waitUntil(() => client.events('1').length >= 1, 'an event after the pings');
    expect(client.events('1')[0].task.id).toBe(task.id);
    client.socket.close(1000);
    await client.closedWithin(5_000);
  });
});

describe('GET /metrics', () => {
  const NAMES = {
    tasks_live_connections: 'gauge',
    tasks_live_subscriptions: 'gauge',
    tasks_live_events_received_total: 'counter',
    tasks_live_events_delivered_total: 'counter',
    tasks_live_events_dropped_total: 'counter',
    tasks_live_events_coalesced_total: 'counter',
    tasks_sns_messages_rejected_total: 'counter',
  } as const;

  interface Sample {
    name: string;
    labels: string;
    value: number;
  }

  async function scrape(app: TestApp): Promise<{ text: string; samples: Sample[]; contentType: string | null }> {
    const response = await fetch(new URL('/metrics', app.url));
    expect(response.status).toBe(200);
    const text = await response.text();
    const samples: Sample[] = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+)$/.exec(line);
      expect(match, `a Prometheus sample line: ${JSON.stringify(line)}`).not.toBeNull();
      samples.push({ name: match![1]!, labels: match![2] ?? '', value: Number(match![3]) });
    }
    return { text, samples, contentType: response.headers.get('content-type') };
  }

  const value = (samples: Sample[], name: string, labels = '') => samples.find((s) => s.name === name && s.labels === labels)?.value;

  test('exposes the live series in the text format, and delivered counts rise when an event reaches a subscriber', async () => {
    const first = await scrape(main);
    expect(first.contentType).toMatch(/^text\/plain/);
    expect(first.text.endsWith('\n')).toBe(true);
    for (const [name, type] of Object.entries(NAMES)) {
      expect(first.text).toMatch(new RegExp(`^# HELP ${name} \\S.*$`, 'm'));
      expect(first.text).toMatch(new RegExp(`^# TYPE ${name} ${type}$`, 'm'));
      expect(
        first.samples.some((s) => s.name === name),
        `a sample of ${name}`,
      ).toBe(true);
    }

    const token = await main.token('metrics');
    const beforeSubs = main.metrics.subscriptions.get();
    const sub = subscribeWs(wsClient(main.url, token));
    await until('the subscription to start', () => main.metrics.subscriptions.get() === beforeSubs + 1);
    const before = await scrape(main);
    expect(value(before.samples, 'tasks_live_subscriptions')).toBe(main.metrics.subscriptions.get());
    expect(value(before.samples, 'tasks_live_connections')).toBe(main.metrics.connections.get());
    expect(value(before.samples, 'tasks_live_connections')).toBeGreaterThanOrEqual(1);

    const task = await create(main, token);
    await update(main, token, task.id, { step: 1 });
    await sub.waitFor(2, 5_000);
    const after = await scrape(main);
    const delta = (name: string) => value(after.samples, name)! - value(before.samples, name)!;
    expect(delta('tasks_live_events_delivered_total')).toBeGreaterThanOrEqual(2);
    expect(delta('tasks_live_events_received_total')).toBeGreaterThanOrEqual(2);

    // A notification of the wrong shape is counted as rejected, with its reason as a label.
    await main.bus.dispatch({ not: 'a task notification' });
    const rejected = await scrape(main);
    expect(value(rejected.samples, 'tasks_sns_messages_rejected_total', '{reason="shape"}')).toBe(
      (value(after.samples, 'tasks_sns_messages_rejected_total', '{reason="shape"}') ?? 0) + 1,
    );
    sub.stop();
    await nudge(main, 'metrics');
    await until('the subscription to end', () => main.metrics.subscriptions.get() === beforeSubs);
    expect(value((await scrape(main)).samples, 'tasks_live_subscriptions')).toBe(beforeSubs);
  });
});

// BUG (src/live/live-tasks.ts stream()): the stream is an async generator that,
// between events, is suspended inside `await queue.next()`. An async generator's
// return() is queued until it next reaches a `yield`, so when a client leaves
// (graphql-ws `complete` or socket close, SSE abort) the stream's `finally`
// (unsubscribe, queue.end, releasing the SSE slot, the subscriptions gauge) does
// not run until the tenant's next event. Over WebSocket, graphql-ws awaits every
// subscription's return() before onClose, so the connection slot is held too: a
// tenant whose reconnecting clients had idle subscriptions runs into
// MAX_CONNECTIONS_PER_TENANT (4029) although nothing is connected.
// Remove `.fails` once fixed.
describe('teardown of idle subscriptions', () => {
  test('closing a socket releases its idle subscription and its connection slot without waiting for an event', async () => {
    const token = await main.token('idle-ws');
    const before = { connections: main.metrics.connections.get(), subscriptions: main.metrics.subscriptions.get() };
    const client = new RawClient(main.url);
    await client.connect(token);
    client.subscribe('1');
    await until('the subscription to start', () => main.metrics.subscriptions.get() === before.subscriptions + 1);
    client.socket.close(1000);
    await client.closedWithin(5_000);
    await until(
      () => `gauges back to ${JSON.stringify(before)}, are ${main.metrics.connections.get()}/${main.metrics.subscriptions.get()}`,
      () => main.metrics.subscriptions.get() === before.subscriptions && main.metrics.connections.get() === before.connections,
      undefined,
      2_000,
    );
  });

  test('aborting an idle SSE subscription releases its connection slot without waiting for an event', async () => {
    const token = await main.token('idle-sse');
    const before = main.metrics.connections.get();
    const sse = subscribeSse(main.url, token);
    await until('the SSE subscription to take a slot', () => main.metrics.connections.get() === before + 1);
    sse.stop();
    await until(
      () => `connections back to ${before}, are ${main.metrics.connections.get()}`,
      () => main.metrics.connections.get() === before,
      undefined,
      2_000,
    );
  });
});
