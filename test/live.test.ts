import { beforeAll, describe, expect, test } from 'vitest';
import { CREATE_TASK, UPDATE_STATUS, startTestApp, type TestApp } from './helpers/app.js';
import { subscribeSse, subscribeWs, wsClient } from './helpers/live.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});

async function create(token: string, taskType = 'LIVE') {
  const res = await app.gql(CREATE_TASK, { input: { taskType, input: { n: 1 } } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.createTask;
}
const update = (token: string, id: string, status: string, attributes?: Record<string, unknown>) =>
  app.gql(UPDATE_STATUS, { input: { id, status, attributes } }, token);

/**
 * Waits until the server counts exactly `n` active subscriptions (they are
 * registered before their snapshot, and released a moment after a client leaves).
 */
async function subscriptionsActive(n: number) {
  for (let i = 0; i < 500 && app.metrics.subscriptions.get() !== n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(app.metrics.subscriptions.get()).toBe(n);
}

describe('taskStatusChanged', () => {
  test('a mutation reaches a WebSocket and an SSE subscriber', async () => {
    const token = await app.token('live-both');
    await subscriptionsActive(0); // what earlier tests opened is released
    const before = 0;
    const ws = subscribeWs(wsClient(app.url, token));
    const sse = subscribeSse(app.url, token);
    await subscriptionsActive(before + 2);

    const task = await create(token);
    await update(token, task.id, 'QUEUED');
    for (const stream of [ws, sse]) {
      const events = await stream.waitFor(2);
      expect(events.map((e) => [e.task.id, e.task.status, e.task.version, e.previousStatus, e.replayed])).toEqual([
        [task.id, 'CREATED', 1, null, false],
        [task.id, 'QUEUED', 2, 'CREATED', false],
      ]);
      expect(events[0].action).toBe('task-status');
      expect(typeof events[1].cursor).toBe('string');
    }
    expect(await sse.status).toBe(200);
    ws.stop();
    sse.stop();
  });

  test('per-task order holds under a burst of updates', async () => {
    const token = await app.token('live-burst');
    await subscriptionsActive(0); // what earlier tests opened is released
    const before = 0;
    const ws = subscribeWs(wsClient(app.url, token));
    await subscriptionsActive(before + 1);
    const tasks = await Promise.all([create(token), create(token), create(token)]);
    await Promise.all(
      tasks.map(async (task) => {
        await update(token, task.id, 'PROCESSING');
        for (let i = 1; i <= 10; i++) await update(token, task.id, 'PROCESSING', { progress: { current: i, total: 10 } });
        await update(token, task.id, 'COMPLETED');
      }),
    );
    const events = await ws.waitFor(3 * 13);
    for (const task of tasks) {
      const versions = events.filter((e) => e.task.id === task.id).map((e) => e.task.version);
      expect(versions).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    }
    ws.stop();
  });

  test('ids: snapshot first, then live changes, then completion when terminal', async () => {
    const token = await app.token('live-ids');
    const task = await create(token);
    await update(token, task.id, 'PROCESSING', { progress: 10 });
    const ws = subscribeWs(wsClient(app.url, token), { filter: { ids: [task.id] } });
    const [snapshot] = await ws.waitFor(1);
    expect(snapshot).toMatchObject({ replayed: true, task: { status: 'PROCESSING', version: 2, attributes: { progress: 10 } } });
    await update(token, task.id, 'PROCESSING', { progress: 50 });
    await update(token, task.id, 'COMPLETED', { result: 'ok' });
    await ws.done;
    expect(ws.errors).toEqual([]);
    expect(ws.events.map((e) => [e.task.version, e.task.status, e.replayed])).toEqual([
      [2, 'PROCESSING', true],
      [3, 'PROCESSING', false],
      [4, 'COMPLETED', false],
    ]);
  });

  test('a task already terminal delivers its snapshot and completes', async () => {
    const token = await app.token('live-terminal');
    const task = await create(token);
    await update(token, task.id, 'FAILED', { error: 'boom' });
    const sse = subscribeSse(app.url, token, { filter: { ids: [task.id] } });
    await sse.done;
    expect(sse.events.map((e) => [e.task.status, e.replayed])).toEqual([['FAILED', true]]);
  });

  test('since: a reconnecting client gets every change it missed, once', async () => {
    const token = await app.token('live-resume');
    const [a, b] = [await create(token), await create(token)];
    await subscriptionsActive(0); // what earlier tests opened is released
    const before = 0;
    const first = subscribeWs(wsClient(app.url, token));
    await subscriptionsActive(before + 1);
    await update(token, a.id, 'QUEUED');
    const seen = await first.waitFor(1);
    const cursor = seen.at(-1).cursor;
    first.stop();

    // While disconnected: several changes to both tasks, and a new task.
    await update(token, a.id, 'PROCESSING');
    await update(token, a.id, 'PROCESSING', { progress: 1 });
    await update(token, b.id, 'QUEUED');
    const c = await create(token);

    const resumed = subscribeWs(wsClient(app.url, token), { since: cursor });
    const replay = await resumed.waitFor(3);
    const byId = new Map(replay.map((e) => [e.task.id, e]));
    expect(byId.get(a.id)).toMatchObject({ replayed: true, task: { version: 4, attributes: { progress: 1 } } });
    expect(byId.get(b.id)).toMatchObject({ replayed: true, task: { version: 2, status: 'QUEUED' } });
    expect(byId.get(c.id)).toMatchObject({ replayed: true, task: { version: 1 } });
    expect(replay).toHaveLength(3);

    await update(token, b.id, 'PROCESSING');
    const all = await resumed.waitFor(4);
    expect(all[3]).toMatchObject({ replayed: false, task: { id: b.id, version: 3 } });
    const keys = all.map((e) => `${e.task.id}@${e.task.version}`);
    expect(new Set(keys).size).toBe(keys.length);
    resumed.stop();
  });

  test("tenant B hears nothing of tenant A's tasks, even naming them", async () => {
    const [tokenA, tokenB] = await Promise.all([app.token('live-iso-a'), app.token('live-iso-b')]);
    const taskA = await create(tokenA);
    await subscriptionsActive(0); // what earlier tests opened is released
    const before = 0;
    const all = subscribeWs(wsClient(app.url, tokenB));
    const named = subscribeWs(wsClient(app.url, tokenB), { filter: { ids: [taskA.id] } });
    const forbidden = subscribeWs(wsClient(app.url, tokenB), { filter: { tenantCode: 'live-iso-a' } });
    const sse = subscribeSse(app.url, tokenB, { filter: { includeSubTasks: true } });
    const watcherA = subscribeWs(wsClient(app.url, tokenA), { filter: { ids: [taskA.id] } });
    await watcherA.waitFor(1);
    await subscriptionsActive(before + 3);
    await forbidden.done;
    expect(forbidden.events).toEqual([]);
    expect(forbidden.errors.map((error: any) => error.extensions.code)).toEqual(['FORBIDDEN']);

    await update(tokenA, taskA.id, 'QUEUED');
    await update(tokenA, taskA.id, 'FAILED');
    await watcherA.done; // tenant A's own subscriber saw every change
    expect(watcherA.events.map((e) => e.task.version)).toEqual([1, 2, 3]);
    // B's named subscription knew no such task: it completed at once with nothing.
    await named.done;
    expect(named.events).toEqual([]);
    // And a change of B's own reaches B's open streams, after everything of A's.
    const own = await create(tokenB);
    const [first] = await all.waitFor(1);
    const [viaSse] = await sse.waitFor(1);
    expect(first.task.id).toBe(own.id);
    expect(viaSse.task.id).toBe(own.id);
    expect([...all.events, ...sse.events].every((e) => e.task.tenantCode === 'live-iso-b')).toBe(true);
    all.stop();
    sse.stop();
  });
});

describe('the WebSocket fast path', () => {
  const RICH = `subscription($filter: TaskEventFilter, $withInput: Boolean!) {
    changed: taskStatusChanged(filter: $filter) {
      __typename action previousStatus replayed cursor
      task { ...TaskParts input @include(if: $withInput) }
    }
  }
  fragment TaskParts on Task { __typename id code kind type name tenantCode status version attributes parentId createdAt updatedAt createdBy updatedBy }`;

  test('delivers exactly what the plain execution path (SSE) delivers, for the same events', async () => {
    const token = await app.token('live-same');
    await subscriptionsActive(0);
    const variants = [true, false].map((withInput) => ({
      ws: subscribeWs(wsClient(app.url, token), { withInput }, RICH),
      sse: subscribeSse(app.url, token, { withInput }, RICH),
    }));
    await subscriptionsActive(4);
    const task = await create(token);
    await update(token, task.id, 'PROCESSING', { progress: { current: 1, total: 2 } });
    await update(token, task.id, 'COMPLETED', { result: { ok: true } });
    for (const { ws, sse } of variants) {
      // The query aliases the field, so the collectors hold whole `data` objects.
      const [viaWs, viaSse] = await Promise.all([ws.waitFor(3), sse.waitFor(3)]);
      expect(viaWs).toHaveLength(3);
      expect(viaWs.map((data) => data.changed.task.version)).toEqual([1, 2, 3]);
      expect('input' in viaWs[0].changed.task).toBe(viaWs === variants[0]!.ws.events);
      expect(viaWs).toEqual(viaSse);
      ws.stop();
      sse.stop();
    }
  });
});

describe('long-lived tokens', () => {
  test('a token valid for 30 days (past setTimeout range) keeps SSE and WebSocket subscriptions open', async () => {
    const token = await app.token('live-long', { expiresIn: '30d' });
    await subscriptionsActive(0);
    const sse = subscribeSse(app.url, token);
    const ws = subscribeWs(wsClient(app.url, token));
    await subscriptionsActive(2);
    // Give a wrongly armed expiry timer (one that fires at once) time to fire.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const task = await create(token);
    const [viaSse] = await sse.waitFor(1);
    const [viaWs] = await ws.waitFor(1);
    expect(sse.errors).toEqual([]);
    expect(ws.errors).toEqual([]);
    expect(viaSse.task.id).toBe(task.id);
    expect(viaWs.task.id).toBe(task.id);
    sse.stop();
    ws.stop();
  });
});
