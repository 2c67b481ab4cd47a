/**
 * watchTasks: the package's resuming subscription client, against real
 * servers. The restart test runs two servers one after the other on the same
 * port and data directory, as a deploy would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildSchema,
  getNamedType,
  isNonNullType,
  isObjectType,
  parse,
  validate,
  type FieldNode,
  type GraphQLObjectType,
  type SelectionSetNode,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { startApp, type RunningApp } from '../src/app.js';
import { mintToken } from '../src/auth/mint-token.js';
import { DeliveredVersions } from '../src/client/delivered-versions.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import {
  TASK_STATUS_EVENT_SELECTION,
  watchTasks,
  watchTasksDocument,
  type TaskStatusEvent,
  type TaskWatch,
  type WatchTasksError,
  type WatchedTask,
} from '../src/index.js';
import { CREATE_TASK, startTestApp, TEST_SECRET, UPDATE_STATUS, type TestApp } from './helpers/app.js';
import { until } from './helpers/wait.js';

const logger = createLogger('silent');
const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function gql(url: string, token: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const create = async (url: string, token: string, taskType = 'REPORT') =>
  (await gql(url, token, CREATE_TASK, { input: { taskType, input: {} } })).createTask as { id: string; version: number };
const update = async (url: string, token: string, id: string, status: string, attributes?: unknown) =>
  (await gql(url, token, UPDATE_STATUS, { input: { id, status, attributes } })).updateStatus as { version: number };

/** A watch whose callbacks are recorded; disposed after the file. */
function watch(options: Omit<Parameters<typeof watchTasks>[0], 'onEvent'>) {
  const seen = { events: [] as TaskStatusEvent[], errors: [] as WatchTasksError[], completed: 0 };
  const handle: TaskWatch = watchTasks({
    webSocketImpl: WebSocket,
    ...options,
    onEvent: (event) => seen.events.push(event),
    onError: (error) => seen.errors.push(error),
    onComplete: () => seen.completed++,
  });
  cleanup.push(() => handle.dispose());
  return { ...seen, seen, handle, versions: (id: string) => seen.events.filter((e) => e.task.id === id).map((e) => e.task.version) };
}

const describeEvents = (events: TaskStatusEvent[]) => JSON.stringify(events.map((e) => `${e.task.id.slice(-6)}@${e.task.version}`));

describe('resuming across a server restart', () => {
  test('nothing is lost or repeated: changes before the stop, on the restarted server before the client is back, racing the re-subscription, and after', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tasks-watch-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const env = { DATA_DIR: dataDir, JWT_SECRET: TEST_SECRET, HOST: '127.0.0.1', TASK_EXECUTION: 'false' };
    let server: RunningApp = await startApp(loadConfig({ ...env, PORT: '0' }), { logger });
    cleanup.push(() => server.stop());
    const { url } = server;
    const port = new URL(url).port;
    const token = await mintToken({ secret: TEST_SECRET, tenantCode: 'restart', userId: 'u' });

    // The first reconnection waits for the test: changes are made while the client is away.
    let letBack!: () => void;
    const back = new Promise<void>((resolve) => (letBack = resolve));
    const waits: number[] = [];
    const w = watch({
      url,
      token,
      retryWait: async (retries) => {
        waits.push(retries);
        await back;
        await sleep(50);
      },
    });
    await until(
      () => 'the first subscription',
      () => server.metrics.subscriptions.get() === 1,
    );

    const a = await create(url, token);
    const b = await create(url, token);
    const d = await create(url, token);
    await update(url, token, a.id, 'QUEUED');
    await until(
      () => `4 events, got ${describeEvents(w.events)}`,
      () => w.events.length === 4,
    );

    await server.stop();
    await until(
      () => 'the client to notice the stop',
      () => waits.length === 1,
    );
    expect(w.events).toHaveLength(4);

    server = await startApp(loadConfig({ ...env, PORT: port }), { logger });
    expect(server.url).toBe(url);
    // Right after the restart, before the client is back. A resume replays each
    // task's current state, so one change per task here keeps every version visible.
    await update(url, token, a.id, 'PROCESSING', { progress: { current: 1, total: 2 } });
    await update(url, token, b.id, 'QUEUED');
    const c = await create(url, token);
    await sleep(100);
    expect(w.events).toHaveLength(4);

    letBack();
    // Racing the re-subscription: replayed or live, it must arrive once.
    await update(url, token, d.id, 'QUEUED');
    await until(
      () => 'the re-subscription',
      () => server.metrics.subscriptions.get() === 1,
    );
    // Live again.
    await update(url, token, a.id, 'COMPLETED');
    await update(url, token, b.id, 'PROCESSING');
    await update(url, token, c.id, 'FAILED');

    const expected = { [a.id]: [1, 2, 3, 4], [b.id]: [1, 2, 3], [c.id]: [1, 2], [d.id]: [1, 2] };
    const delivered = () => Object.fromEntries(Object.keys(expected).map((id) => [id, w.versions(id)]));
    await until(
      () => describeEvents(w.events),
      () => w.events.length >= 11,
    );
    await sleep(200); // no late repeat
    expect(delivered()).toEqual(expected);
    expect(w.events).toHaveLength(11);
    expect(w.events.find((e) => e.task.id === a.id && e.task.version === 3)).toMatchObject({
      replayed: true,
      task: { status: 'PROCESSING', attributes: { progress: { current: 1, total: 2 } } },
    });
    expect(waits).toEqual([0]);
    expect(w.errors).toEqual([]);
    expect(w.completed).toBe(0);
  });
});

describe('tokens, completion and refusal', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });

  test('getToken is asked again before a reconnection: a token that expires is replaced, and nothing is lost', async () => {
    const tokens: string[] = [];
    const refreshed = watch({
      url: app.url,
      getToken: async () => {
        // The first token expires in 2 s: the server closes with 4401, and a new one is asked for.
        const token = await mintToken({
          secret: TEST_SECRET,
          tenantCode: 'refresh',
          userId: `u${tokens.length}`,
          expiresIn: tokens.length === 0 ? '2s' : '1h',
        });
        tokens.push(token);
        return token;
      },
      retryWait: async () => void (await sleep(20)),
    });
    // Without getToken the same close ends the watch.
    const fixed = watch({
      url: app.url,
      token: await mintToken({ secret: TEST_SECRET, tenantCode: 'refresh-fixed', userId: 'u', expiresIn: '2s' }),
      retryWait: async () => void (await sleep(20)),
    });
    const token = await app.token('refresh');
    await until(
      () => 'both subscriptions',
      () => app.metrics.subscriptions.get() >= 2,
    );
    const task = await create(app.url, token);
    await until(
      () => 'the first event',
      () => refreshed.events.length === 1,
    );

    await until(
      () => `a second getToken, have ${tokens.length}`,
      () => tokens.length === 2,
      undefined,
      5_000,
    );
    await update(app.url, token, task.id, 'QUEUED');
    await until(
      () => describeEvents(refreshed.events),
      () => refreshed.versions(task.id).length === 2,
    );
    expect(refreshed.versions(task.id)).toEqual([1, 2]);
    expect(refreshed.errors).toEqual([]);

    await until(
      () => 'the fixed-token watch to end',
      () => fixed.errors.length === 1,
    );
    expect(fixed.errors[0]!.closeCode).toBe(4401);
    expect(fixed.completed).toBe(0);
  });

  test('a watch of named tasks completes when all are terminal, after their snapshot', async () => {
    const token = await app.token('complete');
    const a = await create(app.url, token);
    const b = await create(app.url, token);
    await update(app.url, token, a.id, 'QUEUED');
    const w = watch({ url: app.url, token, filter: { ids: [a.id, b.id] } });
    await until(
      () => describeEvents(w.events),
      () => w.events.length === 2,
    );
    expect(w.events.every((e) => e.replayed)).toBe(true);
    await update(app.url, token, a.id, 'FAILED');
    await update(app.url, token, b.id, 'FAILED');
    await until(
      () => `completion after ${describeEvents(w.events)}`,
      () => w.seen.completed === 1,
    );
    expect(w.versions(a.id)).toEqual([2, 3]);
    expect(w.versions(b.id)).toEqual([1, 2]);
    expect(w.errors).toEqual([]);
  });

  test('a refused subscription ends with the server error, without retrying', async () => {
    const waits: number[] = [];
    const w = watch({
      url: app.url,
      token: await app.token('refused'),
      since: 'not-a-cursor',
      retryWait: async (n) => void waits.push(n),
    });
    await until(
      () => 'the error',
      () => w.errors.length === 1,
    );
    expect(w.errors[0]!.graphQLErrors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(waits).toEqual([]);
  });

  test('a wrong token ends the watch with 4401', async () => {
    const w = watch({ url: app.url, token: 'not-a-jwt', retryWait: async () => void (await sleep(10)) });
    await until(
      () => 'the error',
      () => w.errors.length === 1,
    );
    expect(w.errors[0]!.closeCode).toBe(4401);
  });
});

describe('dropping repeats', () => {
  test('a version already delivered, or an older one, is dropped; memory stays bounded', () => {
    const seen = new DeliveredVersions(3);
    expect(seen.admit('a', 1)).toBe(true);
    expect(seen.admit('a', 1)).toBe(false);
    expect(seen.admit('a', 2)).toBe(true);
    expect(seen.admit('a', 1)).toBe(false);
    for (const id of ['b', 'c', 'd']) seen.admit(id, 1);
    expect(seen.size).toBe(3);
    // 'a' changed least recently, so it was forgotten first.
    expect(seen.admit('a', 2)).toBe(true);
    expect(seen.admit('c', 1)).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// TaskStatusEvent against schema.graphql

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type NullableKeys<T> = { [K in keyof T]-?: null extends T[K] ? K : never }[keyof T];

// Checked by tsc: these lists are exactly the TS types' keys, and their nullable keys.
const EVENT_KEYS = ['action', 'cursor', 'previousStatus', 'replayed', 'task'] as const;
const EVENT_NULLABLE = ['previousStatus'] as const;
const TASK_KEYS = [
  'id',
  'pk',
  'sk',
  'code',
  'kind',
  'type',
  'name',
  'tenantCode',
  'status',
  'attributes',
  'version',
  'attempt',
  'parentId',
  'subTaskIndex',
  'rerunOf',
  'createdAt',
  'updatedAt',
  'createdBy',
  'updatedBy',
] as const;
const TASK_NULLABLE = ['attempt', 'parentId', 'subTaskIndex', 'rerunOf', 'createdBy', 'updatedBy'] as const;
const typeChecks: [
  Equals<keyof TaskStatusEvent, (typeof EVENT_KEYS)[number]>,
  Equals<NullableKeys<TaskStatusEvent>, (typeof EVENT_NULLABLE)[number]>,
  Equals<keyof WatchedTask, (typeof TASK_KEYS)[number]>,
  Equals<NullableKeys<WatchedTask>, (typeof TASK_NULLABLE)[number]>,
] = [true, true, true, true];

describe('TaskStatusEvent', () => {
  const schema = buildSchema(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8'));

  test('the default selection is valid against schema.graphql', () => {
    expect(validate(schema, parse(watchTasksDocument()))).toEqual([]);
    expect(validate(schema, parse(watchTasksDocument('action task { status }')))).toEqual([]);
  });

  test("the TS types' keys are the default selection's fields, nullable exactly where the schema says", () => {
    expect(typeChecks).toEqual([true, true, true, true]);
    const selection = parse(`{ ${TASK_STATUS_EVENT_SELECTION} }`).definitions[0] as { selectionSet: SelectionSetNode };
    const fields = (set: SelectionSetNode) => set.selections.map((s) => (s as FieldNode).name.value);
    const taskSet = (selection.selectionSet.selections.find((s) => (s as FieldNode).name.value === 'task') as FieldNode).selectionSet!;
    expect(fields(selection.selectionSet).sort()).toEqual([...EVENT_KEYS].sort());
    expect(fields(taskSet).sort()).toEqual([...TASK_KEYS].sort());

    const nullable = (type: GraphQLObjectType, keys: readonly string[]) =>
      keys.filter((key) => !isNonNullType(type.getFields()[key]!.type)).sort();
    const eventType = schema.getType('TaskStatusEvent') as GraphQLObjectType;
    const taskType = getNamedType(eventType.getFields().task!.type);
    expect(isObjectType(taskType)).toBe(true);
    expect(nullable(eventType, EVENT_KEYS)).toEqual([...EVENT_NULLABLE].sort());
    expect(nullable(taskType as GraphQLObjectType, TASK_KEYS)).toEqual([...TASK_NULLABLE].sort());
  });
});
