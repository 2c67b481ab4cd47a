import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseTaskId } from '../src/tasks/keys.js';
import type { Task } from '../src/tasks/task.js';
import { CREATE_SFN_TASK, CREATE_TASK, GET_TASK, startTestApp, type TestApp } from './helpers/app.js';
import { until } from './helpers/wait.js';

/**
 * The worker's bookkeeping (attempt, lease, nextAttemptAt, subTasksWritten,
 * pendingSweep) is stored beside `attributes`, never in it. Items stored
 * before it moved out keep it inside `attributes`: they read the same, show
 * clean attributes, and a change of a key moves it out.
 */

let app: TestApp;
let db: DynamoDBDocumentClient;
const worker = { userId: 'worker', tenantCode: 'tenant-a', isAdmin: true };

beforeAll(async () => {
  app = await startTestApp({ TASK_EXECUTION: 'true', EXAMPLE_HANDLERS: 'true' });
  db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: app.dynamoEndpoint, region: 'local', credentials: { accessKeyId: 'l', secretAccessKey: 'l' } }),
  );
});
afterAll(() => db.destroy());

const rawItem = async (id: string) => {
  const { pk, sk } = parseTaskId(id)!;
  const { Item } = await db.send(new GetCommand({ TableName: app.store.tableName, Key: { pk, sk }, ConsistentRead: true }));
  return Item!;
};

/** A task no worker runs, once the queue has taken it (nothing changes it after that). */
const queuedTask = async () => {
  const created = await app.gql(CREATE_TASK, { input: { taskType: 'NO_HANDLER', input: {} } });
  const id = created.data!.createTask.id as string;
  await until(
    'the task to be queued',
    async () => (await rawItem(id)).status,
    (status) => status === 'QUEUED',
  );
  return id;
};

/** Puts bookkeeping where items written before it moved out kept it. */
const writeLegacy = async (id: string, status: string, attributes: Record<string, unknown>) => {
  const { pk, sk } = parseTaskId(id)!;
  await db.send(
    new UpdateCommand({
      TableName: app.store.tableName,
      Key: { pk, sk },
      UpdateExpression: 'SET #status = :status, #attributes = :attributes',
      ExpressionAttributeNames: { '#status': 'status', '#attributes': 'attributes' },
      ExpressionAttributeValues: { ':status': status, ':attributes': attributes },
    }),
  );
};

describe('the worker keeps its bookkeeping out of attributes', () => {
  test('a run task shows its attempt as a field, and its attributes hold only the result', async () => {
    const created = await app.gql(CREATE_TASK, { input: { taskType: 'ECHO', input: { hello: 1 } } });
    const id = created.data!.createTask.id as string;
    const done = await until(
      'the task to complete',
      async () => (await app.gql(GET_TASK, { id })).data!.task,
      (task) => task.status === 'COMPLETED',
    );
    expect(done.attempt).toBe(1);
    expect(done.attributes).toEqual({ result: { hello: 1 } });
    const item = await rawItem(id);
    expect(item.attempt).toBe(1);
    expect(item.attributes).toEqual({ result: { hello: 1 } });
    // The lease ends with the run.
    expect(item).not.toHaveProperty('lease');
  });

  test("a Step Functions task's sub-tasks-written mark is stored beside its attributes", async () => {
    const created = await app.gql(CREATE_SFN_TASK, { input: { taskType: 'ECHO', input: [1, 2] } });
    const id = created.data!.createStepFunctionTask.id as string;
    await until(
      'the parent to complete',
      async () => (await app.gql(GET_TASK, { id })).data!.task.status,
      (s) => s === 'COMPLETED',
    );
    const item = await rawItem(id);
    expect(item.subTasksWritten).toBe(true);
    expect(Object.keys(item.attributes).sort()).toEqual(
      ['failurePolicy', 'subTaskCount', 'subTaskFailedCount', 'subTaskRunningCount', 'subTaskSucceedCount', 'subTasks'].sort(),
    );
  });
});

describe("a task's head (what each sub-task reads of its parent)", () => {
  test('is the task without its input and sub-task list: every other field, the counters, the policy and the bookkeeping', async () => {
    const created = await app.gql(CREATE_SFN_TASK, { input: { taskType: 'ECHO', input: [1, 2, 3] } });
    const id = created.data!.createStepFunctionTask.id as string;
    await until(
      'the parent to complete',
      async () => (await app.gql(GET_TASK, { id })).data!.task.status,
      (s) => s === 'COMPLETED',
    );
    const { input, attributes, ...fields } = (await app.store.get(parseTaskId(id)!))!;
    expect(input).toEqual([1, 2, 3]);
    expect(attributes.subTasks).toHaveLength(3);
    const head = await app.store.getHead(parseTaskId(id)!);
    expect(head).toEqual({
      ...fields,
      attributes: { failurePolicy: 'CONTINUE', subTaskCount: 3, subTaskRunningCount: 0, subTaskSucceedCount: 3, subTaskFailedCount: 0 },
    });
    expect(await app.store.getHead({ pk: fields.pk, sk: `${fields.sk}-missing` })).toBeUndefined();
  });

  test('lifts bookkeeping an item keeps inside attributes', async () => {
    const id = await queuedTask();
    const sweep = { code: 'CANCELLED' };
    await writeLegacy(id, 'FAILED', { pendingSweep: sweep, attempt: 3, note: 'not read' });
    const head = await app.store.getHead(parseTaskId(id)!);
    expect(head).toMatchObject({ status: 'FAILED', pendingSweep: sweep, attempt: 3, attributes: {} });
  });
});

describe('items stored with bookkeeping inside attributes', () => {
  test('read with clean attributes and their attempt; a change moves the key out', async () => {
    const id = await queuedTask();
    const lease = { owner: 'old-worker', until: Date.now() + 60_000 };
    await writeLegacy(id, 'PROCESSING', { attempt: 2, lease, nextAttemptAt: '2026-01-01T00:00:00.000Z', note: 'kept' });

    const read = (await app.gql(GET_TASK, { id })).data!.task;
    expect(read.attributes).toEqual({ note: 'kept' });
    expect(read.attempt).toBe(2);
    const stored = (await app.store.get(parseTaskId(id)!)) as Task;
    expect(stored).toMatchObject({ attempt: 2, lease, nextAttemptAt: '2026-01-01T00:00:00.000Z' });
    expect(stored.attributes).toEqual({ note: 'kept' });

    // The worker drops the lease and schedules nothing: both leave `attributes` for good.
    await app.tasks.updateStatus(worker, {
      id,
      status: 'COMPLETED',
      attributes: { result: 'ok' },
      bookkeeping: { lease: null, nextAttemptAt: null },
    });
    const item = await rawItem(id);
    expect(item.attributes).toEqual({ attempt: 2, note: 'kept', result: 'ok' });
    expect(item).not.toHaveProperty('lease');
    expect(item).not.toHaveProperty('nextAttemptAt');
    const after = (await app.store.get(parseTaskId(id)!)) as Task;
    expect(after.lease).toBeUndefined();
    expect(after.nextAttemptAt).toBeUndefined();
    expect(after.attempt).toBe(2);
    expect(after.attributes).toEqual({ note: 'kept', result: 'ok' });
  });

  test('an item without an attributes map takes bookkeeping at the top level', async () => {
    const id = await queuedTask();
    const { pk, sk } = parseTaskId(id)!;
    await db.send(
      new UpdateCommand({
        TableName: app.store.tableName,
        Key: { pk, sk },
        UpdateExpression: 'REMOVE #attributes',
        ExpressionAttributeNames: { '#attributes': 'attributes' },
      }),
    );
    await app.tasks.updateStatus(worker, { id, status: 'PROCESSING', bookkeeping: { attempt: 1, lease: { owner: 'w', until: 1 } } });
    const item = await rawItem(id);
    expect(item).toMatchObject({ status: 'PROCESSING', attempt: 1, lease: { owner: 'w', until: 1 }, attributes: {} });
  });

  test('a pending sweep kept inside attributes is still found by recovery', async () => {
    const id = await queuedTask();
    await writeLegacy(id, 'FAILED', { pendingSweep: { code: 'CANCELLED' }, error: { code: 'CANCELLED' } });
    const found: Task[] = [];
    for await (const task of app.store.scanUnfinished(['QUEUED'])) if (task.id === id) found.push(task);
    expect(found).toHaveLength(1);
    expect(found[0]!.pendingSweep).toEqual({ code: 'CANCELLED' });
    expect(found[0]!.attributes).toEqual({ error: { code: 'CANCELLED' } });
  });
});
