import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { DocumentSender } from '../src/aws/dynamo-client.js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backfillIndexKeys, type BackfillOptions } from '../src/aws/backfill.js';
import { CheckpointMismatchError, fileCheckpoint, memoryCheckpoint, type BackfillCheckpoint } from '../src/aws/backfill-checkpoint.js';
import { createDynamoClients, type DynamoClients } from '../src/aws/dynamo-client.js';
import { DynamoTaskStore, fromItem } from '../src/aws/dynamo-task-store.js';
import { createTaskTable } from '../src/aws/task-table.js';
import { INDEX_ATTRIBUTES, SUB_TASK_INDEX } from '../src/aws/task-table-schema.js';
import { TokenBucket, type Clock } from '../src/aws/token-bucket.js';
import { OriginalWriter } from './helpers/original-items.js';
import { writeStatusChange } from './helpers/status-change.js';
import { CREATE_TASK, LIST_SUB_TASKS, LIST_TASKS, startTestApp, type GraphQLResponse, type TestApp } from './helpers/app.js';

type Item = Record<string, any>;

let app: TestApp;
let dynamo: DynamoClients;
let doc: DocumentSender;
beforeAll(async () => {
  app = await startTestApp();
  // The service's own client settings, on the app's endpoint (dynalite, or DynamoDB Local in that run).
  dynamo = createDynamoClients({ endpoint: app.dynamoEndpoint, local: true });
  doc = dynamo.doc;
});
afterAll(() => dynamo?.client.destroy());

/** A fresh task table beside the app's, so counts are exact. */
async function newTable(): Promise<string> {
  const name = `backfill-${randomUUID()}`;
  await createTaskTable(dynamo.client, name);
  return name;
}

// ---- the original package's writes: test/helpers/original-items.ts (raw requests in its exact shape) ----

const CALLER = { userId: 'original-user', requestId: 'req-1', sourceIp: '10.0.0.1' };
const keyOf = (item: Item) => ({ pk: String(item.pk), sk: String(item.sk) });
const atUtc = (iso: string) => Date.parse(iso);

/** `count` original tasks of one tenant and type, a minute apart from `from`. */
async function originalTasks(writer: OriginalWriter, count: number, tenantCode: string, taskType = 'ROW', from = '2026-11-30T10:00:00Z') {
  const items: Item[] = [];
  for (let i = 0; i < count; i++) {
    items.push(await writer.createTask({ tenantCode, taskType, input: { i } }, CALLER, atUtc(from) + i * 60_000));
  }
  return items;
}

/** Puts items as they are (idempotency records, as this service writes them). */
async function putAll(table: string, items: Item[]): Promise<void> {
  for (let start = 0; start < items.length; start += 25) {
    const { UnprocessedItems } = await doc.send(
      new BatchWriteCommand({
        RequestItems: { [table]: items.slice(start, start + 25).map((Item) => ({ PutRequest: { Item } })) },
      }),
    );
    expect(UnprocessedItems?.[table] ?? []).toEqual([]);
  }
}

/** Every item of a table, sorted by key. */
async function rawItems(table: string): Promise<Item[]> {
  const items: Item[] = [];
  let startKey: Item | undefined;
  do {
    const page = await doc.send(new ScanCommand({ TableName: table, ExclusiveStartKey: startKey, ConsistentRead: true }));
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items.sort((a, b) => `${a.pk}\u0000${a.sk}`.localeCompare(`${b.pk}\u0000${b.sk}`));
}

const rawItem = async (table: string, key: Item) =>
  (await doc.send(new GetCommand({ TableName: table, Key: { pk: key.pk, sk: key.sk }, ConsistentRead: true }))).Item;

const withoutIndexAttributes = (item: Item) =>
  Object.fromEntries(Object.entries(item).filter(([name]) => !INDEX_ATTRIBUTES.includes(name)));

/** The sub-task index itself (subTasksByParent), in its order. */
async function subTaskIndexOf(table: string, parentId: string): Promise<Item[]> {
  const { Items } = await doc.send(
    new QueryCommand({
      TableName: table,
      IndexName: SUB_TASK_INDEX.name,
      KeyConditionExpression: '#p = :p',
      ExpressionAttributeNames: { '#p': SUB_TASK_INDEX.partitionKey },
      ExpressionAttributeValues: { ':p': parentId },
      ScanIndexForward: true,
    }),
  );
  return Items ?? [];
}

/** A clock whose sleeps move virtual time on at once (for one sleeper at a time). */
function virtualClock(): Clock & { sleeps: number[]; time: number } {
  const clock = {
    time: 0,
    sleeps: [] as number[],
    now: () => clock.time,
    async sleep(ms: number, signal?: AbortSignal) {
      signal?.throwIfAborted();
      clock.sleeps.push(ms);
      clock.time += ms;
    },
  };
  return clock;
}

const backfill = (options: Partial<BackfillOptions> & { tableName: string }) =>
  backfillIndexKeys({ db: doc, writesPerSecond: Infinity, ...options });

// ---- GraphQL ----

async function listIds(token: string, filter: Record<string, unknown>): Promise<string[]> {
  const res = await app.gql(LIST_TASKS, { filter, first: 100 }, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!.tasks.edges.map((edge: any) => edge.node.id);
}

/** Every sub-task of a parent through `subTasks`, following endCursor, `first` a page. */
async function subTaskNodes(token: string, parentId: string, first: number): Promise<any[]> {
  const nodes: any[] = [];
  let after: string | null = null;
  for (let page = 0; page < 50; page++) {
    const res: GraphQLResponse = await app.gql(LIST_SUB_TASKS, { parentId, first, after }, token);
    expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
    nodes.push(...res.data!.subTasks.edges.map((edge: any) => edge.node));
    if (!res.data!.subTasks.pageInfo.hasNextPage) return nodes;
    after = res.data!.subTasks.pageInfo.endCursor;
  }
  throw new Error('subTasks pagination does not end');
}

describe("the original package's items, on the service's own table", () => {
  // Tenant A holds only the original's items; tenant B a task of this service whose status the original changed.
  const A = 'orig-a';
  const B = 'orig-b';
  let table: string;
  let writer: OriginalWriter;
  let tokenA: string;
  let tokenB: string;
  let report1: Item;
  let report2: Item;
  let importTask: Item;
  let bulk: Item;
  let subTasks: Item[];
  let ours: { id: string; pk: string; sk: string };
  let idempotent: { id: string };
  let before: Item[];

  beforeAll(async () => {
    table = app.store.tableName;
    writer = new OriginalWriter(doc, table);
    tokenA = await app.token(A);
    tokenB = await app.token(B);
    report1 = await writer.createTask({ tenantCode: A, taskType: 'REPORT', input: { month: 10 } }, CALLER, atUtc('2026-11-30T10:00:00Z'));
    report2 = await writer.createTask({ tenantCode: A, taskType: 'REPORT', input: { month: 11 } }, CALLER, atUtc('2026-11-30T10:05:00Z'));
    importTask = await writer.createTask({ tenantCode: A, taskType: 'IMPORT', input: {} }, CALLER, atUtc('2026-12-01T09:00:00Z'));
    // 12 elements: the sk suffix sorts "10" before "2"; input order is numeric.
    const input = Array.from({ length: 12 }, (_, row) => ({ row }));
    const created = await writer.createStepFunctionTask({ tenantCode: A, taskType: 'BULK', input }, CALLER, atUtc('2026-12-01T10:00:00Z'));
    ({ parent: bulk, subTasks } = await writer.startStepFunctionTask(created, atUtc('2026-12-01T10:00:01Z')));
    await writer.updateStatus(keyOf(report2), 'PROCESSING', { result: { step: 1 } }, atUtc('2026-11-30T10:30:00Z'));
    for (const sub of subTasks.slice(0, 3))
      await writer.updateStatus(keyOf(sub), 'COMPLETED', { result: 'ok' }, atUtc('2026-12-01T10:05:00Z'));

    // This service's tasks: one the original then fails (stale status keys), one with an idempotency record.
    const createdOurs = await app.gql(CREATE_TASK, { input: { taskType: 'OURS', input: {} } }, tokenB);
    ours = createdOurs.data!.createTask;
    await writer.updateStatus(ours, 'FAILED', { error: 'from the original' }, Date.now());
    const keyed = await app.gql(CREATE_TASK, { input: { taskType: 'OURS', input: {}, idempotencyKey: 'k-1' } }, tokenB);
    idempotent = keyed.data!.createTask;
    before = await rawItems(table);
  });

  test('before the backfill, `tasks` does not list them, nor the failed task under FAILED; the sub-task index is empty', async () => {
    expect(await listIds(tokenA, {})).toEqual([]);
    expect(await listIds(tokenA, { taskType: 'REPORT' })).toEqual([]);
    expect(await listIds(tokenA, { kind: 'SFN_TASK' })).toEqual([]);
    expect(await subTaskIndexOf(table, bulk.id)).toEqual([]);
    expect(await listIds(tokenB, { status: 'FAILED' })).toEqual([]);
    expect(await listIds(tokenB, {})).toEqual([idempotent.id, ours.id]);
    expect(before.filter((item) => item.pk === `IDEMPOTENCY#${B}`)).toHaveLength(1);
    // The original's shape: no index attributes, version 0, its timestamps.
    expect(before.find((item) => item.id === report1.id)).toMatchObject({ version: 0, createdAt: '2026-11-30T10:00:00+00:00' });
    expect(
      before
        .filter((item) => item.pk.startsWith(`TASK#${A}`) || item.pk.startsWith(`SFN_TASK#${A}`))
        .every((item) => INDEX_ATTRIBUTES.every((name) => !(name in item))),
    ).toBe(true);
  });

  test('a dry run writes nothing and counts what it would write', async () => {
    const result = await backfill({ tableName: table, dryRun: true, segments: 3, pageSize: 4, sampleSize: 3 });
    expect(await rawItems(table)).toEqual(before);
    // 4 top-level tasks + 12 sub-tasks of the original, and ours with stale status keys; the idempotent one is right.
    expect(result.counts).toMatchObject({
      scanned: before.length,
      tasks: before.length - 1,
      others: 1,
      unrecognized: 0,
      stale: 17,
      repaired: 0,
      changedMeanwhile: 0,
    });
    expect(result.complete).toBe(true);
    expect(result.samples).toHaveLength(3);
    for (const sample of result.samples) {
      const item = before.find((candidate) => `${candidate.pk}#${candidate.sk}` === sample.id)!;
      if (item.sk.split('#').length === 3) expect(sample.set).toEqual({ parentId: bulk.id, subTaskIndex: Number(item.sk.split('#')[2]) });
      else expect(sample.set).toHaveProperty('listTypeStatusKey', `${item.pk}#${item.type}#${item.status}`);
    }
  });

  test('a real run writes only index attributes; `tasks` lists each task under every filter it matches', async () => {
    const result = await backfill({ tableName: table, segments: 3, pageSize: 4 });
    expect(result.counts).toMatchObject({ scanned: before.length, tasks: before.length - 1, stale: 17, repaired: 17, changedMeanwhile: 0 });

    const after = await rawItems(table);
    // Nothing but index attributes changed: not version, not updatedAt, not attributes; the idempotency record is untouched.
    expect(after.map(withoutIndexAttributes)).toEqual(before.map(withoutIndexAttributes));
    expect(after.find((item) => item.pk === `IDEMPOTENCY#${B}`)).toEqual(before.find((item) => item.pk === `IDEMPOTENCY#${B}`));
    expect(await rawItem(table, report2)).toMatchObject({
      version: 0,
      status: 'PROCESSING',
      attributes: { result: { step: 1 } },
      updatedAt: '2026-11-30T10:30:00+00:00',
      listKey: `TASK#${A}`,
      listTypeKey: `TASK#${A}#REPORT`,
      listStatusKey: `TASK#${A}#PROCESSING`,
      listTypeStatusKey: `TASK#${A}#REPORT#PROCESSING`,
      // The by-change indexes sort by the instant, in UTC.
      listUpdatedAt: '2026-11-30T10:30:00.000Z',
    });

    expect(await listIds(tokenA, {})).toEqual([importTask.id, report2.id, report1.id]);
    expect(await listIds(tokenA, { order: 'ASC' })).toEqual([report1.id, report2.id, importTask.id]);
    expect(await listIds(tokenA, { taskType: 'REPORT' })).toEqual([report2.id, report1.id]);
    expect(await listIds(tokenA, { status: 'PROCESSING' })).toEqual([report2.id]);
    expect(await listIds(tokenA, { status: 'CREATED' })).toEqual([importTask.id, report1.id]);
    expect(await listIds(tokenA, { taskType: 'REPORT', status: 'CREATED' })).toEqual([report1.id]);
    expect(await listIds(tokenA, { updatedSince: '2026-11-30T10:15:00Z' })).toEqual([importTask.id, report2.id]);
    expect(await listIds(tokenA, { updatedSince: '2026-11-30T12:00:00Z' })).toEqual([importTask.id]);
    expect(await listIds(tokenA, { updatedSince: '2026-11-30T09:00:00Z', taskType: 'REPORT', status: 'PROCESSING' })).toEqual([report2.id]);
    expect(await listIds(tokenA, { kind: 'SFN_TASK' })).toEqual([bulk.id]);
    expect(await listIds(tokenA, { kind: 'SFN_TASK', status: 'PROCESSING', updatedSince: '2026-12-01T00:00:00Z' })).toEqual([bulk.id]);
    // Sub-tasks stay out of the list indexes.
    expect(await rawItem(table, subTasks[5]!)).not.toHaveProperty('listKey');
  });

  test("the original's sub-tasks are in the sub-task index, in input order; `subTasks` lists each of them", async () => {
    const indexed = await subTaskIndexOf(table, bulk.id);
    expect(indexed.map((item) => item.subTaskIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(indexed.map((item) => item.id)).toEqual(subTasks.map((sub) => sub.id));
    expect(indexed.map((item) => item.input)).toEqual(bulk.input);
    for (const first of [50, 5]) {
      const nodes = await subTaskNodes(tokenA, bulk.id, first);
      expect(new Set(nodes.map((node) => node.id))).toEqual(new Set(subTasks.map((sub) => sub.id)));
      expect(nodes).toHaveLength(12);
      for (const node of nodes) {
        expect(node).toMatchObject({ parentId: bulk.id, subTaskIndex: Number(node.sk.split('#')[2]) });
        expect(node.status).toBe(node.subTaskIndex < 3 ? 'COMPLETED' : 'CREATED');
      }
    }
  });

  test('stale status keys are moved: the failed task is listed under FAILED and no longer under CREATED', async () => {
    expect(await rawItem(table, ours)).toMatchObject({
      status: 'FAILED',
      listStatusKey: `TASK#${B}#FAILED`,
      listTypeStatusKey: `TASK#${B}#OURS#FAILED`,
    });
    expect(await listIds(tokenB, { status: 'FAILED' })).toEqual([ours.id]);
    expect(await listIds(tokenB, { status: 'CREATED' })).toEqual([idempotent.id]);
    expect(await listIds(tokenB, { taskType: 'OURS', status: 'FAILED' })).toEqual([ours.id]);
  });

  test('a second run finds nothing to repair and writes nothing', async () => {
    const repaired = await rawItems(table);
    const result = await backfill({ tableName: table, segments: 2 });
    expect(result.counts).toMatchObject({ scanned: before.length, stale: 0, repaired: 0 });
    expect(await rawItems(table)).toEqual(repaired);
  });

  test('an original status change after the backfill is listed under its new status after the next run', async () => {
    await writer.updateStatus(keyOf(report1), 'COMPLETED', { result: 'done' }, atUtc('2026-12-02T10:00:00Z'));
    expect(await listIds(tokenA, { status: 'COMPLETED' })).toEqual([]);
    const result = await backfill({ tableName: table });
    expect(result.counts).toMatchObject({ stale: 1, repaired: 1 });
    expect(await listIds(tokenA, { status: 'COMPLETED' })).toEqual([report1.id]);
    expect(await listIds(tokenA, { status: 'CREATED' })).toEqual([importTask.id]);
  });
});

describe('an item changed between scan and write is never overwritten', () => {
  test('a newer original change is repaired from a fresh read; a change by this service is left as is; one that keeps changing is left for the next run', async () => {
    const table = await newTable();
    const writer = new OriginalWriter(doc, table);
    const store = new DynamoTaskStore(doc, table);
    const [moved, ours, busy] = [
      await writer.createTask({ tenantCode: 'race', taskType: 'MOVED', input: {} }, CALLER, atUtc('2026-11-30T10:00:00Z')),
      await writer.createTask({ tenantCode: 'race', taskType: 'OURS', input: {} }, CALLER, atUtc('2026-11-30T10:01:00Z')),
      await writer.createTask({ tenantCode: 'race', taskType: 'BUSY', input: {} }, CALLER, atUtc('2026-11-30T10:02:00Z')),
    ];

    const attempts: string[] = [];
    const result = await backfill({
      tableName: table,
      beforeRepair: async (seen, attempt) => {
        attempts.push(`${seen.type}:${attempt}:${seen.status}`);
        if (seen.type === 'MOVED' && attempt === 1) {
          await writer.updateStatus(keyOf(moved), 'PROCESSING', { step: 'newer' }, atUtc('2026-11-30T11:00:00Z'));
        }
        if (seen.type === 'OURS' && attempt === 1) {
          // This service's own write (version-pinned) sets the right index keys with the status.
          await writeStatusChange(store, fromItem(seen), { status: 'QUEUED', updatedAt: '2026-11-30T11:00:00.000Z' }, { version: 0 });
        }
        if (seen.type === 'BUSY') {
          await writer.updateStatus(
            keyOf(busy),
            attempt === 1 ? 'PROCESSING' : 'COMPLETED',
            { step: attempt },
            atUtc(`2026-11-30T11:0${attempt}:00Z`),
          );
        }
      },
    });
    expect(result.counts).toMatchObject({
      stale: 3,
      changedMeanwhile: 3,
      settledMeanwhile: 1,
      repairedOnReread: 1,
      repaired: 1,
      unresolved: 1,
    });
    expect(attempts.sort()).toEqual(['BUSY:1:CREATED', 'BUSY:2:PROCESSING', 'MOVED:1:CREATED', 'MOVED:2:PROCESSING', 'OURS:1:CREATED']);

    // The newer change survives; the keys follow it, never the scanned status.
    expect(await rawItem(table, moved)).toMatchObject({
      status: 'PROCESSING',
      attributes: { step: 'newer' },
      updatedAt: '2026-11-30T11:00:00+00:00',
      version: 0,
      listStatusKey: 'TASK#race#PROCESSING',
      listTypeStatusKey: 'TASK#race#MOVED#PROCESSING',
    });
    expect(await rawItem(table, ours)).toMatchObject({ status: 'QUEUED', version: 1, listStatusKey: 'TASK#race#QUEUED' });
    const left = await rawItem(table, busy);
    expect(left).toMatchObject({ status: 'COMPLETED', attributes: { step: 2 }, version: 0 });
    expect(left).not.toHaveProperty('listKey');

    // The next run repairs what kept changing.
    const again = await backfill({ tableName: table });
    expect(again.counts).toMatchObject({ stale: 1, repaired: 1, changedMeanwhile: 0 });
    expect(await rawItem(table, busy)).toMatchObject({
      status: 'COMPLETED',
      attributes: { step: 2 },
      listStatusKey: 'TASK#race#COMPLETED',
    });
  });
});

describe('resuming from a checkpoint', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'backfill-'));
  });
  afterAll(() => rm(directory, { recursive: true, force: true }));

  test('an interrupted run saves its place; the next run continues after the last whole page and rescans nothing', async () => {
    const table = await newTable();
    const items = await originalTasks(new OriginalWriter(doc, table), 30, 'resume');
    const path = join(directory, 'checkpoint.json');
    const firstIds: string[] = [];
    const stop = new AbortController();
    const first = await backfill({
      tableName: table,
      segments: 1,
      pageSize: 10,
      checkpoint: fileCheckpoint(path),
      signal: stop.signal,
      beforeRepair: (seen) => void firstIds.push(String(seen.id)),
      onProgress: () => stop.abort(),
    });
    expect(first).toMatchObject({ aborted: true, complete: false, resumed: false, segmentsDone: 0 });
    expect(first.counts).toMatchObject({ pages: 1, scanned: 10, repaired: 10 });
    const saved = JSON.parse(await readFile(path, 'utf8')) as BackfillCheckpoint;
    expect(saved).toMatchObject({ format: 'task-backfill/1', table, totalSegments: 1, dryRun: false });
    expect(saved.segments).toHaveLength(1);
    expect(saved.segments[0]).toMatchObject({ done: false, counts: { scanned: 10, repaired: 10 } });
    expect(saved.segments[0]!.lastEvaluatedKey).toEqual({ pk: expect.any(String), sk: expect.any(String) });

    // Other settings refuse the checkpoint before reading anything.
    const untouched = await rawItems(table);
    await expect(backfill({ tableName: table, segments: 2, pageSize: 10, checkpoint: fileCheckpoint(path) })).rejects.toThrow(
      /written with 1 segments, not 2/,
    );
    await expect(backfill({ tableName: 'another-table', segments: 1, checkpoint: fileCheckpoint(path) })).rejects.toThrow(
      CheckpointMismatchError,
    );
    await expect(backfill({ tableName: table, segments: 1, dryRun: true, checkpoint: fileCheckpoint(path) })).rejects.toThrow(
      /written by a real run/,
    );
    expect(await rawItems(table)).toEqual(untouched);

    const secondIds: string[] = [];
    const second = await backfill({
      tableName: table,
      segments: 1,
      pageSize: 10,
      checkpoint: fileCheckpoint(path),
      beforeRepair: (seen) => void secondIds.push(String(seen.id)),
    });
    expect(second).toMatchObject({ aborted: false, complete: true, resumed: true, segmentsDone: 1 });
    expect(second.counts).toMatchObject({ scanned: 20, repaired: 20, stale: 20 });
    expect(second.totals).toMatchObject({ scanned: 30, repaired: 30, stale: 30 });
    expect(secondIds.filter((id) => firstIds.includes(id))).toEqual([]);
    expect(new Set([...firstIds, ...secondIds])).toEqual(new Set(items.map((item) => item.id)));
    expect((await rawItems(table)).every((item) => item.listKey === 'TASK#resume')).toBe(true);

    // Finished: a rerun with the same checkpoint has nothing left to scan.
    const third = await backfill({ tableName: table, segments: 1, pageSize: 10, checkpoint: fileCheckpoint(path) });
    expect(third).toMatchObject({ complete: true, resumed: true });
    expect(third.counts).toMatchObject({ pages: 0, scanned: 0 });
  });

  test("a dry run's checkpoint is refused by a real run (its pages were not written)", async () => {
    const table = await newTable();
    await originalTasks(new OriginalWriter(doc, table), 1, 'dry');
    const checkpoint = memoryCheckpoint();
    const dry = await backfill({ tableName: table, segments: 2, dryRun: true, checkpoint });
    expect(dry.counts).toMatchObject({ stale: 1, repaired: 0 });
    expect(checkpoint.current).toMatchObject({ dryRun: true, segments: [{ done: true }, { done: true }] });
    await expect(backfill({ tableName: table, segments: 2, checkpoint })).rejects.toThrow(/written by a dry run/);
  });
});

describe('parallel segments', () => {
  test('4 segments read every item exactly once and leave idempotency records alone', async () => {
    const table = await newTable();
    const writer = new OriginalWriter(doc, table);
    const tasks: Item[] = [];
    for (let i = 0; i < 320; i++) {
      const dto = { tenantCode: `t${i % 40}`, taskType: `TYPE${i % 4}` };
      const at = atUtc('2026-11-30T00:00:00Z') + i * 1000;
      tasks.push(
        i % 5 === 0
          ? await writer.createStepFunctionTask({ ...dto, input: [] }, CALLER, at)
          : await writer.createTask({ ...dto, input: { i } }, CALLER, at),
      );
    }
    const records = Array.from({ length: 40 }, (_, i) => ({
      pk: `IDEMPOTENCY#t${i % 40}`,
      sk: `key-${i}`,
      tenantCode: `t${i % 40}`,
      key: `key-${i}`,
      taskKey: { pk: tasks[i]!.pk, sk: tasks[i]!.sk },
      fingerprint: 'f',
      expiresAt: 4102444800,
    }));
    await putAll(table, records);

    const repairedIds: string[] = [];
    const checkpoint = memoryCheckpoint();
    const progress: number[] = [];
    const result = await backfill({
      tableName: table,
      segments: 4,
      pageSize: 25,
      checkpoint,
      beforeRepair: (seen) => void repairedIds.push(String(seen.id)),
      onProgress: ({ segment }) => void progress.push(segment),
    });
    expect(result.counts).toMatchObject({ scanned: 360, tasks: 320, others: 40, stale: 320, repaired: 320 });
    expect(repairedIds).toHaveLength(320);
    expect(new Set(repairedIds)).toEqual(new Set(tasks.map((task) => task.id)));
    // Every segment scanned its share, and the shares add up to the table.
    const shares = checkpoint.current!.segments.map((segment) => segment.counts.scanned);
    expect(
      shares.every((share) => share > 0),
      JSON.stringify(shares),
    ).toBe(true);
    expect(shares.reduce((sum, share) => sum + share, 0)).toBe(360);
    expect(new Set(progress)).toEqual(new Set([0, 1, 2, 3]));

    const after = await rawItems(table);
    const byKey = (a: Item, b: Item) => `${a.pk}\u0000${a.sk}`.localeCompare(`${b.pk}\u0000${b.sk}`);
    expect(after.filter((item) => item.pk.startsWith('IDEMPOTENCY#'))).toEqual(records.sort(byKey));
    const repairedTasks = after.filter((item) => !item.pk.startsWith('IDEMPOTENCY#'));
    expect(repairedTasks.every((item) => item.listTypeStatusKey === `${item.pk}#${item.type}#CREATED`)).toBe(true);
  });
});

describe('throttling', () => {
  test('ProvisionedThroughputExceeded on scans and writes is retried with backoff, not fatal', async () => {
    const table = await newTable();
    await originalTasks(new OriginalWriter(doc, table), 6, 'slow');
    // Throttled twice on Scan and twice on Update, before the client's own retries could see it.
    const failures: Record<string, number> = { ScanCommand: 2, UpdateCommand: 2 };
    const throttled: DocumentSender = {
      send: (async (command: object) => {
        const name = command.constructor.name;
        if ((failures[name] ?? 0) > 0) {
          failures[name]!--;
          throw new ProvisionedThroughputExceededException({ message: 'Rate of requests exceeds the allowed throughput', $metadata: {} });
        }
        return dynamo.doc.send(command as never);
      }) as DocumentSender['send'],
    };
    const clock = virtualClock();
    const result = await backfillIndexKeys({
      db: throttled,
      tableName: table,
      segments: 1,
      writesPerSecond: Infinity,
      clock,
      throttleBackoff: { baseMs: 100, maxMs: 1000 },
    });
    expect(result.counts).toMatchObject({ scanned: 6, repaired: 6, throttled: 4 });
    expect(failures).toEqual({ ScanCommand: 0, UpdateCommand: 0 });
    // Exponential, jittered between half and all of base · 2^attempt.
    expect(clock.sleeps).toHaveLength(4);
    expect(clock.sleeps[0]).toBeGreaterThanOrEqual(50);
    expect(clock.sleeps[0]).toBeLessThanOrEqual(100);
    expect(clock.sleeps[1]).toBeGreaterThanOrEqual(100);
    expect(clock.sleeps[1]).toBeLessThanOrEqual(200);
  });

  test('other errors fail the run, after saving the checkpoint', async () => {
    const table = await newTable();
    await originalTasks(new OriginalWriter(doc, table), 4, 'err');
    const checkpoint = memoryCheckpoint();
    let calls = 0;
    await expect(
      backfill({
        tableName: table,
        segments: 1,
        pageSize: 2,
        checkpoint,
        beforeRepair: () => {
          if (++calls === 3) throw new Error('boom');
        },
      }),
    ).rejects.toThrow('boom');
    // The first page (2 items) is checkpointed; the second, cut short at its first item, is not.
    const saved = checkpoint.current!.segments[0]!;
    expect(saved).toMatchObject({ done: false, counts: { pages: 2, scanned: 3, stale: 3, repaired: 2 } });
    const resumed = await backfill({ tableName: table, segments: 1, pageSize: 2, checkpoint });
    expect(resumed.counts).toMatchObject({ scanned: 2, repaired: 2 });
    // The failed item was read twice; every item was written once.
    expect(resumed.totals).toMatchObject({ scanned: 5, repaired: 4 });
    expect((await rawItems(table)).every((item) => item.listKey === 'TASK#err')).toBe(true);
  });
});

describe('rate limit', () => {
  test('the token bucket spaces permits at the rate, after a burst', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(10, 1, clock);
    for (let i = 0; i < 21; i++) await bucket.take();
    expect(clock.time).toBe(2000);
    expect(clock.sleeps).toEqual(Array(20).fill(100));
  });

  test('concurrent callers reserve distinct, evenly spaced slots', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(10, 1, clock);
    const sleeps: number[] = [];
    const original = clock.sleep;
    clock.sleep = async (ms, signal) => {
      sleeps.push(ms);
      // Time does not move while they queue: each reservation sees the same instant.
      signal?.throwIfAborted();
    };
    await Promise.all(Array.from({ length: 5 }, () => bucket.take()));
    expect(sleeps).toEqual([100, 200, 300, 400]);
    clock.sleep = original;
  });

  test('an idle bucket saves up at most `burst` permits; at most burst + rate · t in t seconds', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(10, 5, clock);
    clock.time = 60_000;
    const start = clock.time;
    let granted = 0;
    for (;;) {
      await bucket.take();
      if (clock.time - start > 3000) break;
      granted++;
    }
    expect(granted).toBe(5 + 30);
    // The five saved permits came at once, then one every 100 ms.
    expect(clock.sleeps).toEqual(Array(31).fill(100));
  });

  test('an aborted wait gives its permit back', async () => {
    const clock = virtualClock();
    const bucket = new TokenBucket(1, 1, clock);
    await bucket.take();
    const aborted = AbortSignal.abort();
    clock.sleep = async (ms, signal) => {
      clock.sleeps.push(ms);
      signal?.throwIfAborted();
      clock.time += ms;
    };
    await expect(bucket.take(aborted)).rejects.toThrow();
    await bucket.take();
    expect(clock.sleeps).toEqual([1000]);
  });

  test('the backfill takes one permit per write: 20 writes at 5/s take 3.8 s of (virtual) time', async () => {
    const table = await newTable();
    await originalTasks(new OriginalWriter(doc, table), 20, 'rate');
    await putAll(table, [{ pk: 'IDEMPOTENCY#rate', sk: 'k', tenantCode: 'rate', key: 'k', fingerprint: 'f', expiresAt: 4102444800 }]);
    const dry = virtualClock();
    const dryRun = await backfillIndexKeys({ db: doc, tableName: table, segments: 1, writesPerSecond: 5, dryRun: true, clock: dry });
    expect(dryRun.counts).toMatchObject({ stale: 20, repaired: 0 });
    expect(dry.sleeps).toEqual([]);

    const clock = virtualClock();
    const result = await backfillIndexKeys({ db: doc, tableName: table, segments: 1, writesPerSecond: 5, clock });
    expect(result.counts).toMatchObject({ scanned: 21, repaired: 20 });
    expect(clock.sleeps).toEqual(Array(19).fill(200));
    expect(clock.time).toBe(3800);
  });
});
