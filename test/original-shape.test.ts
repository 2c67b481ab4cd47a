import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { DocumentSender } from '../src/aws/dynamo-client.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backfillIndexKeys } from '../src/aws/backfill.js';
import { createDynamoClients, type DynamoClients } from '../src/aws/dynamo-client.js';
import { TASK_STATUSES } from '../src/tasks/status.js';
import {
  CREATE_SFN_TASK,
  CREATE_TASK,
  GET_TASK,
  LIST_SUB_TASKS,
  LIST_TASKS,
  UPDATE_STATUS,
  errorCode,
  startTestApp,
  type GraphQLResponse,
  type TestApp,
} from './helpers/app.js';
import { subscribeSse, subscribeWs, wsClient, type Collected } from './helpers/live.js';
import { OriginalWriter, type Item, type OriginalCaller } from './helpers/original-items.js';
import { until } from './helpers/wait.js';

/**
 * Items written exactly as @mbc-cqrs-serverless/task writes them (see
 * helpers/original-items.ts: `version` 0, no `attributes` until a status
 * update, no index attributes, `+00:00` timestamps in whole seconds, status
 * updates that replace `attributes` whole), and every query and subscription
 * of this service over them, through real GraphQL over HTTP, SSE and WebSocket.
 */

let app: TestApp;
/** Runs tasks (ECHO): for the sub-tasks and parents this service writes itself. */
let execApp: TestApp;
let dynamo: DynamoClients;
let execDynamo: DynamoClients;
let original: OriginalWriter;

beforeAll(async () => {
  [app, execApp] = await Promise.all([startTestApp(), startTestApp({ TASK_EXECUTION: 'true', EXAMPLE_HANDLERS: 'true' })]);
  dynamo = createDynamoClients({ endpoint: app.dynamoEndpoint, local: true });
  execDynamo = createDynamoClients({ endpoint: execApp.dynamoEndpoint, local: true });
  original = new OriginalWriter(dynamo.doc, app.store.tableName);
});
afterAll(() => {
  dynamo?.client.destroy();
  execDynamo?.client.destroy();
});

// ---- fixtures ----

/** Whole seconds, an hour ago: the original's items are older than anything this service writes here. */
const T0 = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
const at = (seconds: number) => T0 + seconds * 1000;
const iso = (ms: number) => new Date(ms).toISOString();

const CALLER: OriginalCaller = { userId: 'original-user', requestId: 'aws-request-1', sourceIp: '203.0.113.7' };
const FINISHER = { userId: 'original-worker', sourceIp: '203.0.113.9' };
const ROWS = Array.from({ length: 12 }, (_, i) => ({ row: i }));
/** The order of the sub-tasks' `sk` (`<parentSk>#<index>`, compared as text): the original's getAllSubTask order. */
const KEY_ORDER = [0, 1, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9];
const INDEX_ATTRIBUTES = ['listKey', 'listTypeKey', 'listStatusKey', 'listTypeStatusKey', 'parentId', 'subTaskIndex'];

/** The original's task, and its Step Functions task after its queue handler wrote the 12 sub-tasks. */
async function seedOriginal(tenantCode: string) {
  const task = await original.createTask(
    { tenantCode, taskType: 'REPORT', name: 'Monthly report', input: { month: '2026-10' } },
    CALLER,
    at(0),
  );
  const created = await original.createStepFunctionTask(
    { tenantCode, taskType: 'IMPORT', name: 'Import rows', input: ROWS },
    CALLER,
    at(1),
  );
  const { parent, subTasks } = await original.startStepFunctionTask(created, at(2));
  return { task, parent, subTasks };
}

// ---- GraphQL ----

function ok<T = Record<string, any>>(response: GraphQLResponse<T>): T {
  expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
  return response.data!;
}

const readTask = async (token: string, id: string, on = app) => ok(await on.gql(GET_TASK, { id }, token)).task;

async function listIds(token: string, filter: Record<string, unknown>, first = 100): Promise<string[]> {
  return ok(await app.gql(LIST_TASKS, { filter, first }, token)).tasks.edges.map((edge: any) => edge.node.id);
}

/** Every page of `subTasks`, `first` at a time. */
async function subTaskPages(token: string, parentId: string, first = 5, on = app) {
  const pages: { nodes: any[]; hasNextPage: boolean }[] = [];
  let after: string | undefined;
  do {
    const connection = ok(await on.gql(LIST_SUB_TASKS, { parentId, first, after }, token)).subTasks;
    pages.push({ nodes: connection.edges.map((edge: any) => edge.node), hasNextPage: connection.pageInfo.hasNextPage });
    after = connection.pageInfo.hasNextPage ? connection.pageInfo.endCursor : undefined;
  } while (after && pages.length < 20);
  return pages;
}

const rawItem = async (key: Item, db: DocumentSender = dynamo.doc, table = app.store.tableName) =>
  (await db.send(new GetCommand({ TableName: table, Key: { pk: key.pk, sk: key.sk }, ConsistentRead: true }))).Item as Item;

const backfill = async () => {
  const result = await backfillIndexKeys({ db: dynamo.doc, tableName: app.store.tableName, writesPerSecond: Infinity });
  expect(result.complete).toBe(true);
  return result;
};

/**
 * The events a subscription replays, in order: creates a marker task, then
 * (once the marker arrived, so the subscription is live) changes it. Live
 * events follow the whole replay, so everything before the marker's change is
 * the replay. Returns each stream's events without the marker's.
 */
async function replayed(token: string, streams: Collected[], create: { mutation: string; field: string; input: Record<string, unknown> }) {
  const marker = ok(await app.gql(create.mutation, { input: create.input }, token))[create.field].id as string;
  for (const stream of streams) {
    await until(
      'the marker',
      () => stream.events.length,
      () => stream.events.some((e) => e.task.id === marker) || stream.completed,
    );
  }
  ok(await app.gql(UPDATE_STATUS, { input: { id: marker, status: 'QUEUED' } }, token));
  return {
    marker,
    events: await Promise.all(
      streams.map(async (stream) => {
        await until(
          'the marker’s change',
          () => stream.events.length,
          () => stream.events.some((e) => e.task.id === marker && e.task.version === 2) || stream.completed,
        );
        expect(stream.errors).toEqual([]);
        stream.stop();
        return stream.events.filter((e) => e.task.id !== marker);
      }),
    ),
  };
}

/** Both transports, each with its own client. */
function subscribeBoth(token: string, variables: Record<string, unknown>): { ws: Collected; sse: Collected } {
  return { ws: subscribeWs(wsClient(app.url, token), variables), sse: subscribeSse(app.url, token, variables) };
}

// ---- the suite ----

describe("the original's items are stored in its shape (the fixture itself)", () => {
  test('version 0, no attributes, no index attributes, offset timestamps; a status update replaces attributes whole', async () => {
    const { task, parent, subTasks } = await seedOriginal('orig-shape');
    const stored = await rawItem(task);
    expect(stored).toEqual(task);
    expect(stored).not.toHaveProperty('attributes');
    expect(stored.version).toBe(0);
    expect(stored.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    for (const item of [stored, await rawItem(parent), await rawItem(subTasks[10]!)]) {
      for (const name of INDEX_ATTRIBUTES) expect(item).not.toHaveProperty(name);
    }
    const storedParent = await rawItem(parent);
    expect(storedParent).toMatchObject({ version: 0, status: 'PROCESSING', updatedAt: original.stamp(at(2)) });
    expect(storedParent.attributes.subTasks).toEqual(subTasks.map((sub) => ({ pk: sub.pk, sk: sub.sk, status: 'CREATED' })));
    expect(await rawItem(subTasks[3]!)).toMatchObject({
      requestId: CALLER.requestId,
      createdIp: CALLER.sourceIp,
      updatedIp: CALLER.sourceIp,
      name: 'Import rows',
    });
  });
});

describe('task(id) over the original’s items', () => {
  let token: string;
  let seeded: Awaited<ReturnType<typeof seedOriginal>>;
  beforeAll(async () => {
    token = await app.token('orig-read', { userId: 'reader' });
    seeded = await seedOriginal('orig-read');
  });

  test('a task: every field, version 0, attributes {} when absent, attempt null, timestamps served as DateTime', async () => {
    const { task } = seeded;
    expect(await readTask(token, task.id)).toEqual({
      id: task.id,
      pk: 'TASK#orig-read',
      sk: `REPORT#${task.code}`,
      code: task.code,
      kind: 'TASK',
      type: 'REPORT',
      name: 'Monthly report',
      tenantCode: 'orig-read',
      status: 'CREATED',
      input: { month: '2026-10' },
      attributes: {},
      version: 0,
      attempt: null,
      parentId: null,
      subTaskIndex: null,
      // `2026-…T…+00:00` is served as the same instant, in the scalar's own form.
      createdAt: iso(at(0)),
      updatedAt: iso(at(0)),
      createdBy: 'original-user',
      updatedBy: 'original-user',
    });
  });

  test('a Step Functions parent: kind, the attributes its queue handler wrote (progress derived from them)', async () => {
    const { parent, subTasks } = seeded;
    expect(await readTask(token, parent.id)).toEqual({
      id: parent.id,
      pk: 'SFN_TASK#orig-read',
      sk: `IMPORT#${parent.code}`,
      code: parent.code,
      kind: 'SFN_TASK',
      type: 'IMPORT',
      name: 'Import rows',
      tenantCode: 'orig-read',
      status: 'PROCESSING',
      input: ROWS,
      attributes: {
        subTaskCount: 12,
        subTaskSucceedCount: 0,
        subTaskFailedCount: 0,
        subTaskRunningCount: 0,
        subTasks: subTasks.map((sub) => ({ pk: sub.pk, sk: sub.sk, status: 'CREATED' })),
        progress: { current: 0, total: 12 },
      },
      version: 0,
      attempt: null,
      parentId: null,
      subTaskIndex: null,
      createdAt: iso(at(1)),
      updatedAt: iso(at(2)),
      createdBy: 'original-user',
      updatedBy: 'original-user',
    });
  });

  test('a sub-task: parentId and subTaskIndex derived from its key, its own code, the parent’s name', async () => {
    const { parent, subTasks } = seeded;
    const sub = subTasks[10]!;
    expect(sub.code).not.toBe(parent.code);
    expect(await readTask(token, sub.id)).toEqual({
      id: `${parent.id}#10`,
      pk: parent.pk,
      sk: `${parent.sk}#10`,
      code: sub.code,
      kind: 'SFN_TASK',
      type: 'IMPORT',
      name: 'Import rows',
      tenantCode: 'orig-read',
      status: 'CREATED',
      input: { row: 10 },
      attributes: {},
      version: 0,
      attempt: null,
      parentId: parent.id,
      subTaskIndex: 10,
      createdAt: iso(at(2)),
      updatedAt: iso(at(2)),
      createdBy: 'original-user',
      updatedBy: 'original-user',
    });
  });

  test('a timestamp written with a non-zero offset (a process in UTC+9) is served as the same instant', async () => {
    const tokyo = new OriginalWriter(dynamo.doc, app.store.tableName, 9 * 60);
    const task = await tokyo.createTask({ tenantCode: 'orig-read', taskType: 'REPORT', input: {} }, CALLER, at(5));
    expect(task.createdAt).toMatch(/\+09:00$/);
    const read = await readTask(token, task.id);
    expect([read.createdAt, read.updatedAt]).toEqual([iso(at(5)), iso(at(5))]);
  });
});

describe('subTasks(parentId)', () => {
  test("the original's 12 sub-tasks, without any backfill: in key order, 5 a page, none twice, none missing", async () => {
    const token = await app.token('orig-subs');
    const { parent, subTasks } = await seedOriginal('orig-subs');
    const pages = await subTaskPages(token, parent.id, 5);
    expect(pages.map((page) => [page.nodes.length, page.hasNextPage])).toEqual([
      [5, true],
      [5, true],
      [2, false],
    ]);
    const nodes = pages.flatMap((page) => page.nodes);
    // As the original's getAllSubTask reads them: by `sk`, where `#10` sorts before `#2`.
    expect(nodes.map((node) => node.subTaskIndex)).toEqual(KEY_ORDER);
    expect(nodes.map((node) => node.id)).toEqual(KEY_ORDER.map((index) => subTasks[index]!.id));
    expect(new Set(nodes.map((node) => node.id)).size).toBe(12);
    for (const node of nodes) {
      expect(node).toMatchObject({ parentId: parent.id, kind: 'SFN_TASK', version: 0, status: 'CREATED', attributes: {} });
      expect(node.input).toEqual({ row: node.subTaskIndex });
      expect(node.code).toBe(subTasks[node.subTaskIndex]!.code);
    }
  });
});

describe('a Step Functions task this service writes', () => {
  const REQUEST_ID = 'req-original-shape-1';
  let token: string;
  let parentId: string;
  let rawParent: Item;
  let rawSubs: Item[];

  beforeAll(async () => {
    token = await execApp.token('svc-sfn', { userId: 'carol' });
    const created = await execApp.gql(CREATE_SFN_TASK, { input: { taskType: 'ECHO', input: ROWS } }, token, { 'x-request-id': REQUEST_ID });
    parentId = ok(created).createStepFunctionTask.id;
    await until(
      'the parent to complete',
      async () => (await readTask(token, parentId, execApp)).status,
      (s) => s === 'COMPLETED',
      20_000,
    );
    const key = { pk: parentId.split('#').slice(0, 2).join('#'), sk: parentId.split('#').slice(2).join('#') };
    rawParent = await rawItem(key, execDynamo.doc, execApp.store.tableName);
    rawSubs = await Promise.all(ROWS.map((_, i) => rawItem({ pk: key.pk, sk: `${key.sk}#${i}` }, execDynamo.doc, execApp.store.tableName)));
  });

  test('lists its sub-tasks in input order, 5 a page', async () => {
    expect(rawParent.subTasksWritten).toBe(true);
    const pages = await subTaskPages(token, parentId, 5, execApp);
    expect(pages.map((page) => [page.nodes.length, page.hasNextPage])).toEqual([
      [5, true],
      [5, true],
      [2, false],
    ]);
    expect(pages.flatMap((page) => page.nodes.map((node) => node.subTaskIndex))).toEqual(ROWS.map((_, i) => i));
  });

  test("its sub-task items copy requestId, createdIp and updatedIp from the parent, as the original's do", async () => {
    expect(rawParent.requestId).toBe(REQUEST_ID);
    expect(typeof rawParent.createdIp).toBe('string');
    expect(rawParent.createdIp).not.toBe('');
    for (const sub of rawSubs) {
      expect(sub).toBeDefined();
      expect({ requestId: sub.requestId, createdIp: sub.createdIp, updatedIp: sub.updatedIp }).toEqual({
        requestId: REQUEST_ID,
        createdIp: rawParent.createdIp,
        updatedIp: rawParent.updatedIp,
      });
    }
  });

  test("the parent item carries attributes.subTasks [{ pk, sk, status }] as the original's does", async () => {
    const refs = rawParent.attributes.subTasks;
    expect(Array.isArray(refs), JSON.stringify(rawParent.attributes)).toBe(true);
    expect(refs.map((ref: Item) => ({ pk: ref.pk, sk: ref.sk }))).toEqual(rawSubs.map((sub) => ({ pk: sub.pk, sk: sub.sk })));
    for (const [index, ref] of refs.entries()) {
      expect(Object.keys(ref).sort()).toEqual(['pk', 'sk', 'status']);
      expect(TASK_STATUSES).toContain(ref.status);
      // Written again when the parent settles: each shows where its sub-task ended.
      expect(ref.status).toBe(rawSubs[index]!.status);
    }
    expect(rawSubs.map((sub) => sub.status)).toEqual(ROWS.map(() => 'COMPLETED'));
  });
});

describe('tasks(filter) and since-replay, before and after the backfill', () => {
  const TENANT = 'orig-list';
  let token: string;
  let a: Item;
  let b: Item;
  let c: Item;
  let parent: Item;
  let subTasks: Item[];
  /** Step Functions tasks this service creates in the tenant to mark the end of a replay. */
  const markers: string[] = [];

  beforeAll(async () => {
    token = await app.token(TENANT, { userId: 'lister' });
    a = await original.createTask({ tenantCode: TENANT, taskType: 'REPORT', input: { n: 'a' } }, CALLER, at(0));
    ({ parent, subTasks } = await original.startStepFunctionTask(
      await original.createStepFunctionTask({ tenantCode: TENANT, taskType: 'IMPORT', input: ROWS }, CALLER, at(1)),
      at(2),
    ));
    b = await original.createTask({ tenantCode: TENANT, taskType: 'REPORT', input: { n: 'b' } }, CALLER, at(3));
    c = await original.createTask({ tenantCode: TENANT, taskType: 'EXPORT', input: { n: 'c' } }, CALLER, at(4));
  });

  /** What a subscription with `since` replays, over WebSocket and SSE (the marker: a Step Functions task of the tenant). */
  async function replayUntilMarker(since: string) {
    const { ws, sse } = subscribeBoth(token, { since });
    const { marker, events } = await replayed(token, [ws, sse], {
      mutation: CREATE_SFN_TASK,
      field: 'createStepFunctionTask',
      input: { taskType: 'MARKER', input: [1] },
    });
    markers.unshift(marker);
    return events;
  }

  test('before the backfill: listed under no filter, and a since-replay does not replay them', async () => {
    // The original writes none of the list-index attributes (listKey, listTypeKey, listStatusKey,
    // listTypeStatusKey): the sparse indexes serving `tasks` have no entry for its items until the
    // backfill (or this service's next write of each item) adds them. `since` replays from the same
    // indexes, so it cannot see them either. `task(id)`, `subTasks` and subscriptions by ids/parentId
    // read by key and do see them (tested apart).
    for (const filter of [
      {},
      { kind: 'SFN_TASK' },
      { taskType: 'REPORT' },
      { status: 'CREATED' },
      { kind: 'SFN_TASK', status: 'PROCESSING' },
      { taskType: 'REPORT', status: 'CREATED' },
      { updatedSince: iso(at(-60)) },
    ]) {
      expect(await listIds(token, filter), JSON.stringify(filter)).toEqual([]);
    }
    for (const events of await replayUntilMarker(iso(at(-60)))) expect(events).toEqual([]);
  });

  test('after the backfill: listed under kind, taskType, status, both, and updatedSince; sub-tasks never', async () => {
    const result = await backfill();
    expect(result.counts.repaired).toBeGreaterThanOrEqual(3 + 1 + 12);
    // Listed newest first (by code); every list is exactly the original's items of that facet.
    expect(await listIds(token, {})).toEqual([c.id, b.id, a.id]);
    expect(await listIds(token, { kind: 'TASK' })).toEqual([c.id, b.id, a.id]);
    expect(await listIds(token, { kind: 'SFN_TASK' })).toEqual([...markers, parent.id]);
    expect(await listIds(token, { taskType: 'REPORT' })).toEqual([b.id, a.id]);
    expect(await listIds(token, { kind: 'SFN_TASK', taskType: 'IMPORT' })).toEqual([parent.id]);
    expect(await listIds(token, { status: 'CREATED' })).toEqual([c.id, b.id, a.id]);
    expect(await listIds(token, { kind: 'SFN_TASK', status: 'PROCESSING' })).toEqual([parent.id]);
    expect(await listIds(token, { taskType: 'REPORT', status: 'CREATED' })).toEqual([b.id, a.id]);
    expect(await listIds(token, { kind: 'SFN_TASK', taskType: 'IMPORT', status: 'PROCESSING' })).toEqual([parent.id]);
    // By last change: their offset timestamps order and bound like any others.
    expect(await listIds(token, { updatedSince: iso(at(-60)) })).toEqual([c.id, b.id, a.id]);
    expect(await listIds(token, { updatedSince: iso(at(-60)), order: 'ASC' })).toEqual([a.id, b.id, c.id]);
    expect(await listIds(token, { updatedSince: iso(at(3) + 500) })).toEqual([c.id]);
    expect(await listIds(token, { updatedSince: iso(at(5)) })).toEqual([]);
    expect(await listIds(token, { kind: 'SFN_TASK', taskType: 'IMPORT', updatedSince: iso(at(1) + 500) })).toEqual([parent.id]);
    // Served nodes are read right from the repaired items: version still 0 (the backfill bumps nothing).
    const nodes = ok(await app.gql(LIST_TASKS, { filter: { kind: 'SFN_TASK', taskType: 'IMPORT' } }, token)).tasks.edges;
    expect(nodes[0].node).toMatchObject({ id: parent.id, version: 0, status: 'PROCESSING', updatedAt: iso(at(2)), createdAt: iso(at(1)) });
    const everyListed = new Set((await Promise.all([listIds(token, {}), listIds(token, { kind: 'SFN_TASK' })])).flat());
    for (const sub of subTasks) expect(everyListed.has(sub.id)).toBe(false);
  });

  test('after the backfill: since (an ISO timestamp before their updatedAt) replays each of them once, over SSE and WebSocket', async () => {
    const earlier = markers.slice();
    for (const events of await replayUntilMarker(iso(at(-60)))) {
      const ids = events.map((event) => event.task.id);
      expect(new Set(ids).size).toBe(ids.length);
      // TASK kind first, oldest change first; then SFN_TASK: the original's parent, then earlier markers.
      expect(ids).toEqual([a.id, b.id, c.id, parent.id, ...earlier.slice().reverse()]);
      for (const event of events.slice(0, 4)) {
        expect(event).toMatchObject({ replayed: true, previousStatus: null, task: { version: 0 } });
      }
      expect(events[3].task).toMatchObject({ status: 'PROCESSING', kind: 'SFN_TASK', updatedAt: iso(at(2)) });
      expect(events[0].task).toMatchObject({ status: 'CREATED', kind: 'TASK', updatedAt: iso(at(0)), attributes: {} });
    }
  });

  test('after an original-style status update, a status filter never lists the task under the status it left', async () => {
    await original.updateStatus(b, 'PROCESSING', { progress: { current: 1, total: 2 } }, at(10), FINISHER);
    // The original moved the status, not the list keys: the index entry under CREATED is stale.
    expect(await rawItem(b)).toMatchObject({ status: 'PROCESSING', version: 0, listStatusKey: `TASK#${TENANT}#CREATED` });

    expect(await listIds(token, { status: 'CREATED' })).toEqual([c.id, a.id]);
    expect(await listIds(token, { taskType: 'REPORT', status: 'CREATED' })).toEqual([a.id]);
    expect(await listIds(token, { status: 'CREATED', updatedSince: iso(at(-60)) })).toEqual([c.id, a.id]);
    // Pages stay full past the stale entry (between c and a in the index).
    const page = ok(await app.gql(LIST_TASKS, { filter: { status: 'CREATED' }, first: 2 }, token)).tasks;
    expect(page.edges.map((edge: any) => edge.node.id)).toEqual([c.id, a.id]);
    expect(page.pageInfo.hasNextPage).toBe(false);
    // The by-change indexes sort on listUpdatedAt (updatedAt in UTC), which the original does not move
    // either: until a backfill (or the stream handler) repairs it, the task stays at its old place there.
    expect(await listIds(token, { updatedSince: iso(at(9)) })).toEqual([]);
    const node = ok(await app.gql(LIST_TASKS, { filter: { taskType: 'REPORT' } }, token)).tasks.edges[0].node;
    expect(node).toMatchObject({
      id: b.id,
      status: 'PROCESSING',
      version: 0,
      attributes: { progress: { current: 1, total: 2 } },
      updatedAt: iso(at(10)),
      updatedBy: 'original-worker',
    });

    // The next backfill moves its entries to the status and the time it has.
    await backfill();
    expect(await listIds(token, { status: 'PROCESSING' })).toEqual([b.id]);
    expect(await listIds(token, { updatedSince: iso(at(9)) })).toEqual([b.id]);
    expect(await listIds(token, { status: 'CREATED' })).toEqual([c.id, a.id]);
  });
});

describe('updateStatus through this service on an original item', () => {
  const TENANT = 'orig-update';
  let token: string;
  beforeAll(async () => {
    token = await app.token(TENANT, { userId: 'svc-user' });
  });

  test('version 0 → 1 with expectedVersion 0; attributes merged into the map the original replaced; list keys written; the original’s next write read right', async () => {
    const task = await original.createTask({ tenantCode: TENANT, taskType: 'REPORT', input: { n: 1 } }, CALLER, at(0));
    await original.updateStatus(task, 'PROCESSING', { progress: { current: 1, total: 4 } }, at(1), FINISHER);

    const updated = ok(
      await app.gql(
        UPDATE_STATUS,
        { input: { id: task.id, status: 'PROCESSING', attributes: { note: 'svc' }, expectedVersion: 0 } },
        token,
      ),
    ).updateStatus;
    expect(updated).toMatchObject({
      status: 'PROCESSING',
      version: 1,
      attributes: { progress: { current: 1, total: 4 }, note: 'svc' },
      createdAt: iso(at(0)),
      updatedBy: 'svc-user',
    });
    let stored = await rawItem(task);
    expect(stored).toMatchObject({
      version: 1,
      attributes: { progress: { current: 1, total: 4 }, note: 'svc' },
      listKey: `TASK#${TENANT}`,
      listTypeKey: `TASK#${TENANT}#REPORT`,
      listStatusKey: `TASK#${TENANT}#PROCESSING`,
      listTypeStatusKey: `TASK#${TENANT}#REPORT#PROCESSING`,
      // What the service does not write stays as the original wrote it.
      createdAt: task.createdAt,
      createdBy: 'original-user',
      createdIp: CALLER.sourceIp,
      requestId: CALLER.requestId,
      code: task.code,
    });
    // Listed at once, with no backfill.
    expect(await listIds(token, { status: 'PROCESSING' })).toEqual([task.id]);
    // The version moved: expectedVersion 0 is stale now.
    const stale = await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'PROCESSING', expectedVersion: 0 } }, token);
    expect(errorCode(stale)).toBe('CONFLICT');

    // The original's next status update: attributes replaced whole, version and list keys untouched.
    await original.updateStatus(task, 'COMPLETED', { result: { rows: 4 } }, at(2), FINISHER);
    stored = await rawItem(task);
    expect(stored).toMatchObject({ status: 'COMPLETED', version: 1, attributes: { result: { rows: 4 } } });
    expect(stored.listStatusKey).toBe(`TASK#${TENANT}#PROCESSING`);

    expect(await readTask(token, task.id)).toMatchObject({
      status: 'COMPLETED',
      version: 1,
      attributes: { result: { rows: 4 } },
      updatedAt: iso(at(2)),
      createdAt: iso(at(0)),
      updatedBy: 'original-worker',
    });
    expect(await listIds(token, { status: 'PROCESSING' })).toEqual([]);
    // A terminal task takes no further move.
    const after = await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'PROCESSING' } }, token);
    expect(errorCode(after)).toBe('INVALID_TRANSITION');
  });

  test('an item with no attributes map at all takes a merge, then keeps it', async () => {
    const task = await original.createTask({ tenantCode: TENANT, taskType: 'BARE', input: {} }, CALLER, at(0));
    const first = ok(
      await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'QUEUED', attributes: { step: 1 }, expectedVersion: 0 } }, token),
    ).updateStatus;
    expect(first).toMatchObject({ status: 'QUEUED', version: 1, attributes: { step: 1 } });
    const second = ok(
      await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'PROCESSING', expectedVersion: 1 } }, token),
    ).updateStatus;
    expect(second).toMatchObject({ status: 'PROCESSING', version: 2, attributes: { step: 1 } });
    expect(await rawItem(task)).toMatchObject({ version: 2, attributes: { step: 1 }, listTypeStatusKey: `TASK#${TENANT}#BARE#PROCESSING` });
  });

  test('a sub-task the original wrote: version 0 → 1, its index attributes (parentId, subTaskIndex) written, no list keys', async () => {
    const { subTasks } = await seedOriginal(TENANT);
    const sub = subTasks[11]!;
    const updated = ok(
      await app.gql(UPDATE_STATUS, { input: { id: sub.id, status: 'PROCESSING', attributes: { step: 1 }, expectedVersion: 0 } }, token),
    ).updateStatus;
    expect(updated).toMatchObject({ status: 'PROCESSING', version: 1, subTaskIndex: 11, attributes: { step: 1 } });
    const stored = await rawItem(sub);
    expect(stored).toMatchObject({ version: 1, parentId: updated.parentId, subTaskIndex: 11, code: sub.code });
    for (const name of ['listKey', 'listTypeKey', 'listStatusKey', 'listTypeStatusKey']) expect(stored).not.toHaveProperty(name);
  });
});

describe('cancelTask of an original task', () => {
  const TENANT = 'orig-cancel';
  let token: string;
  beforeAll(async () => {
    token = await app.token(TENANT, { userId: 'canceller' });
  });
  const CANCEL = `mutation($id: ID!) { cancelTask(id: $id) { id status version attributes } }`;

  test('a task: FAILED with error CANCELLED, version 1, list keys written', async () => {
    const task = await original.createTask({ tenantCode: TENANT, taskType: 'REPORT', input: {} }, CALLER, at(0));
    const cancelled = ok(await app.gql(CANCEL, { id: task.id }, token)).cancelTask;
    expect(cancelled).toMatchObject({
      id: task.id,
      status: 'FAILED',
      version: 1,
      attributes: { error: { code: 'CANCELLED', by: 'canceller' } },
    });
    expect(await rawItem(task)).toMatchObject({ status: 'FAILED', version: 1, listStatusKey: `TASK#${TENANT}#FAILED` });
    expect(await listIds(token, { status: 'FAILED' })).toEqual([task.id]);
    expect(errorCode(await app.gql(CANCEL, { id: task.id }, token))).toBe('INVALID_TRANSITION');
  });

  test('a running Step Functions task: its unfinished sub-tasks fail, what the original finished keeps its result', async () => {
    const { parent, subTasks } = await seedOriginal(TENANT);
    await original.updateStatus(subTasks[3]!, 'COMPLETED', { result: { row: 3 } }, at(3));
    await original.updateStatus(subTasks[10]!, 'PROCESSING', undefined, at(3));

    const cancelled = ok(await app.gql(CANCEL, { id: parent.id }, token)).cancelTask;
    expect(cancelled).toMatchObject({ id: parent.id, status: 'FAILED', attributes: { error: { code: 'CANCELLED' } } });

    const stored = await Promise.all(subTasks.map((sub) => rawItem(sub)));
    // Soft: every difference is reported, not just the first.
    // What the original finished keeps its status and result.
    expect.soft(stored[3]).toMatchObject({ status: 'COMPLETED', attributes: { result: { row: 3 } } });
    for (const [index, item] of stored.entries()) {
      if (index === 3) continue;
      expect.soft(item, `sub-task ${index}`).toMatchObject({ status: 'FAILED', attributes: { error: { code: 'CANCELLED' } } });
    }
    // Still the original's items: their own codes and names, none rewritten whole.
    expect.soft(stored.map((item) => item.code)).toEqual(subTasks.map((sub) => sub.code));
    expect.soft(stored.map((item) => item.name)).toEqual(subTasks.map(() => 'Import rows'));
    const final = await readTask(token, parent.id);
    expect.soft(final).toMatchObject({
      status: 'FAILED',
      attributes: { subTaskCount: 12, subTaskSucceedCount: 1, subTaskFailedCount: 11, subTaskRunningCount: 0 },
    });
    // Its list of sub-tasks, as the original keeps it, shows where each ended.
    const byKey = (refs: Item[]) => [...refs].sort((x, y) => (x.sk < y.sk ? -1 : 1));
    expect
      .soft(byKey(final.attributes.subTasks ?? []))
      .toEqual(byKey(subTasks.map((sub, index) => ({ pk: sub.pk, sk: sub.sk, status: index === 3 ? 'COMPLETED' : 'FAILED' }))));
    expect(await rawItem(parent)).not.toHaveProperty('pendingSweep');
  });
});

describe('taskStatusChanged over the original’s items', () => {
  const TENANT = 'orig-live';
  let token: string;
  beforeAll(async () => {
    token = await app.token(TENANT, { userId: 'watcher' });
  });

  test('ids: the snapshot delivers their current states (replayed) over SSE and WebSocket; a change through this service arrives live', async () => {
    const { task, parent, subTasks } = await seedOriginal(TENANT);
    const sub = subTasks[10]!;
    const { ws, sse } = subscribeBoth(token, { filter: { ids: [task.id, parent.id, sub.id] } });
    for (const stream of [ws, sse]) {
      const snapshot = await stream.waitFor(3);
      expect(stream.errors).toEqual([]);
      expect(snapshot.map((event) => [event.task.id, event.replayed, event.previousStatus, event.action])).toEqual([
        [task.id, true, null, 'task-status'],
        [parent.id, true, null, 'task-status'],
        [sub.id, true, null, 'sub-task-status'],
      ]);
      expect(snapshot[0].task).toMatchObject({
        status: 'CREATED',
        version: 0,
        attempt: null,
        attributes: {},
        kind: 'TASK',
        parentId: null,
        updatedAt: iso(at(0)),
      });
      expect(snapshot[1].task).toMatchObject({
        status: 'PROCESSING',
        version: 0,
        kind: 'SFN_TASK',
        parentId: null,
        updatedAt: iso(at(2)),
        attributes: { subTaskCount: 12, subTasks: subTasks.map((s) => ({ pk: s.pk, sk: s.sk, status: 'CREATED' })) },
      });
      expect(snapshot[2].task).toMatchObject({ status: 'CREATED', version: 0, attributes: {}, kind: 'SFN_TASK', parentId: parent.id });
    }

    ok(await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'QUEUED', attributes: { by: 'svc' } } }, token));
    for (const stream of [ws, sse]) {
      const [, , , live] = await stream.waitFor(4);
      expect(live).toMatchObject({
        replayed: false,
        previousStatus: 'CREATED',
        task: { id: task.id, status: 'QUEUED', version: 1, attributes: { by: 'svc' } },
      });
      expect(stream.completed).toBe(false);
      stream.stop();
    }
  });

  test('ids naming a task the original completed: its snapshot, then the subscription completes', async () => {
    const task = await original.createTask({ tenantCode: TENANT, taskType: 'REPORT', input: {} }, CALLER, at(0));
    await original.updateStatus(task, 'COMPLETED', { result: { ok: true } }, at(1), FINISHER);
    const { ws, sse } = subscribeBoth(token, { filter: { ids: [task.id] } });
    for (const stream of [ws, sse]) {
      await Promise.race([stream.done, new Promise((_, reject) => setTimeout(() => reject(new Error('not completed')), 10_000))]);
      expect(stream.errors).toEqual([]);
      expect(stream.events).toHaveLength(1);
      expect(stream.events[0]).toMatchObject({
        replayed: true,
        task: { id: task.id, status: 'COMPLETED', version: 0, attributes: { result: { ok: true } }, updatedAt: iso(at(1)) },
      });
    }
  });

  test('parentId: the parent and its 12 sub-tasks as a snapshot, each once; a sub-task change arrives live', async () => {
    const { parent, subTasks } = await seedOriginal(TENANT);
    const { ws, sse } = subscribeBoth(token, { filter: { parentId: parent.id } });
    for (const stream of [ws, sse]) {
      const snapshot = await stream.waitFor(13);
      expect(stream.errors).toEqual([]);
      expect(snapshot[0].task).toMatchObject({ id: parent.id, status: 'PROCESSING', version: 0 });
      const ids = snapshot.map((event) => event.task.id);
      expect(new Set(ids).size).toBe(13);
      expect(ids.slice(1).sort()).toEqual(subTasks.map((sub) => sub.id).sort());
      for (const event of snapshot) expect(event.replayed).toBe(true);
      for (const event of snapshot.slice(1)) expect(event.task).toMatchObject({ parentId: parent.id, version: 0, status: 'CREATED' });
    }

    const sub = subTasks[7]!;
    ok(await app.gql(UPDATE_STATUS, { input: { id: sub.id, status: 'PROCESSING', expectedVersion: 0 } }, token));
    for (const stream of [ws, sse]) {
      const events = await stream.waitFor(14);
      expect(events[13]).toMatchObject({
        replayed: false,
        action: 'sub-task-status',
        previousStatus: 'CREATED',
        task: { id: sub.id, version: 1, status: 'PROCESSING', parentId: parent.id },
      });
      stream.stop();
    }
  });
});

describe('timestamps with a non-zero offset (the original in a process whose TZ is not UTC)', () => {
  const TENANT = 'orig-tz';
  let token: string;
  beforeAll(async () => {
    token = await app.token(TENANT, { userId: 'tz' });
  });

  test('updatedSince bounds them by instant, not by text', async () => {
    const tokyo = new OriginalWriter(dynamo.doc, app.store.tableName, 9 * 60);
    const early = await tokyo.createTask({ tenantCode: TENANT, taskType: 'REPORT', input: { n: 'early' } }, CALLER, at(0));
    const late = await original.createTask({ tenantCode: TENANT, taskType: 'REPORT', input: { n: 'late' } }, CALLER, at(600));
    await backfill();
    // `early` changed ten minutes before `late`; its text (`…+09:00`, nine hours ahead) sorts after it.
    expect.soft(await listIds(token, { updatedSince: iso(at(300)) })).toEqual([late.id]);
    expect.soft(await listIds(token, { updatedSince: iso(at(-60)), order: 'ASC' })).toEqual([early.id, late.id]);
  });

  test('since replays only what changed after it, by instant', async () => {
    const tokyo = new OriginalWriter(dynamo.doc, app.store.tableName, 9 * 60);
    // `early`, in Tokyo time, changed five minutes before `since`; its text (`…+09:00`) sorts after it.
    await tokyo.createTask({ tenantCode: TENANT, taskType: 'SINCE', input: { n: 'early' } }, CALLER, at(0));
    const late = await original.createTask({ tenantCode: TENANT, taskType: 'SINCE', input: { n: 'late' } }, CALLER, at(600));
    await backfill();
    const ws = subscribeWs(wsClient(app.url, token), { filter: { kind: 'TASK', taskType: 'SINCE' }, since: iso(at(300)) });
    const { events } = await replayed(token, [ws], { mutation: CREATE_TASK, field: 'createTask', input: { taskType: 'SINCE', input: {} } });
    expect(events[0]!.map((event) => event.task.id)).toEqual([late.id]);
  });

  test('updatedSince includes a task changed exactly at that instant', async () => {
    const task = await original.createTask({ tenantCode: TENANT, taskType: 'EXACT', input: {} }, CALLER, at(30));
    await backfill();
    // "at or after": `…:30+00:00` is the same instant as `…:30.000Z`.
    expect(await listIds(token, { taskType: 'EXACT', updatedSince: iso(at(30)) })).toEqual([task.id]);
  });
});
