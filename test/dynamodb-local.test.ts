import { DescribeTimeToLiveCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { checkTaskTable, createTaskTable } from '../src/aws/task-table.js';
import { MAX_JSON_DEPTH } from '../src/tasks/limits.js';
import { StatusChangeRefused } from '../src/tasks/status-change.js';
import { CREATE_TASK, GET_TASK, LIST_TASKS, UPDATE_STATUS, errorCode, startTestApp, type TestApp } from './helpers/app.js';
import { DYNAMODB_LOCAL_ENV, LOCAL_CLIENT_CONFIG } from './helpers/dynamodb-local.js';
import { writeStatusChange } from './helpers/status-change.js';

/**
 * What DynamoDB refuses and dynalite stores, each with the fix that keeps the
 * service inside DynamoDB's rules. The API checks run in both runs (`npm test`
 * on dynalite, `npm run test:dynamodb-local`); those that show DynamoDB's own
 * refusal, or read the table settings, run on DynamoDB Local only.
 */
const onDynamoDbLocal = Boolean(process.env[DYNAMODB_LOCAL_ENV]);

let app: TestApp;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
beforeAll(async () => {
  app = await startTestApp();
  client = new DynamoDBClient({ endpoint: app.dynamoEndpoint, ...LOCAL_CLIENT_CONFIG });
  doc = DynamoDBDocumentClient.from(client);
});
afterAll(() => client.destroy());

const table = () => app.store.tableName;
const nested = (levels: number, wrap: (inner: unknown) => unknown = (inner) => ({ a: inner })) => {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = wrap(value);
  return value;
};
const refusal = (write: Promise<unknown>) =>
  write.then(
    () => undefined,
    (error: Error) => `${error.name}: ${error.message}`,
  );

describe.runIf(onDynamoDbLocal)('on DynamoDB Local', () => {
  test('every app gets its own table on the run’s DynamoDB Local, created by createTaskTable with TTL on', async () => {
    expect(app.dynamoEndpoint).toBe(inject('dynamoDbLocalEndpoint'));
    expect(table()).toMatch(/^tasks-/);
    await expect(checkTaskTable(client, table())).resolves.toBeUndefined();
    const { TimeToLiveDescription } = await client.send(new DescribeTimeToLiveCommand({ TableName: table() }));
    expect(TimeToLiveDescription).toMatchObject({ AttributeName: 'expiresAt', TimeToLiveStatus: 'ENABLED' });
    // A second run of `npm run create-table`: DynamoDB refuses enabling TTL again; that is no failure.
    await expect(createTaskTable(client, table())).resolves.toBe(false);
  });

  test('DynamoDB refuses an attribute nested 32 levels (the item counts as one) and an empty map key', async () => {
    const put = (sk: string, input: unknown) => doc.send(new PutCommand({ TableName: table(), Item: { pk: 'RAW', sk, input } }));
    expect(
      await refusal(
        put(
          'depth-31',
          nested(MAX_JSON_DEPTH, (inner) => [inner]),
        ),
      ),
    ).toBeUndefined();
    expect(
      await refusal(
        put(
          'depth-32',
          nested(MAX_JSON_DEPTH + 1, (inner) => [inner]),
        ),
      ),
    ).toMatch(/ValidationException: Nesting Levels/);
    expect(await refusal(put('empty-key', { a: [{ '': 1 }] }))).toMatch(/ValidationException: Empty attribute name/);
  });
});

describe('storable values: what DynamoDB refuses is BAD_USER_INPUT, and nothing is written', () => {
  test(`input and attributes nest at most ${MAX_JSON_DEPTH} levels; both are stored and read back at the limit`, async () => {
    const deepest = nested(MAX_JSON_DEPTH, (inner) => [inner]);
    const created = await app.gql(CREATE_TASK, { input: { taskType: 'DEEP', input: deepest } });
    expect(created.errors).toBeUndefined();
    const { id } = created.data!.createTask;
    // The attributes map is one of the levels: a key's value nests one level less.
    const attributes = { deep: nested(MAX_JSON_DEPTH - 1) };
    const updated = await app.gql(UPDATE_STATUS, { input: { id, status: 'PROCESSING', attributes } });
    expect(updated.errors).toBeUndefined();
    const read = await app.gql(GET_TASK, { id });
    expect(read.data!.task).toMatchObject({ input: deepest, attributes, version: 2 });

    const before = await app.itemCount();
    const over = await app.gql(UPDATE_STATUS, { input: { id, status: 'PROCESSING', attributes: { deep: nested(MAX_JSON_DEPTH) } } });
    expect(over.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'attributes', limit: MAX_JSON_DEPTH });
    expect(await app.itemCount()).toBe(before);
    expect((await app.gql(GET_TASK, { id })).data!.task.version).toBe(2);
  });

  test.each([
    ['input', { '': 1 }],
    ['input', [{ nested: { '': 'x' } }]],
  ])('createTask: an empty key in %s (%j) is BAD_USER_INPUT', async (field, input) => {
    const before = await app.itemCount();
    const res = await app.gql(CREATE_TASK, { input: { taskType: 'EMPTY_KEY', input } });
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(res.errors![0]!.extensions).toMatchObject({ field });
    expect(res.errors![0]!.message).toMatch(/empty key/);
    expect(await app.itemCount()).toBe(before);
  });

  test('updateStatus: an empty attribute name, at the top or nested, is BAD_USER_INPUT; empty string values are stored', async () => {
    const { id } = (await app.gql(CREATE_TASK, { input: { taskType: 'EMPTY_KEY', input: {} } })).data!.createTask;
    for (const attributes of [{ '': 1 }, { a: { '': 1 } }]) {
      const res = await app.gql(UPDATE_STATUS, { input: { id, status: 'PROCESSING', attributes } });
      expect(errorCode(res)).toBe('BAD_USER_INPUT');
      expect(res.errors![0]!.extensions).toMatchObject({ field: 'attributes' });
    }
    const ok = await app.gql(UPDATE_STATUS, { input: { id, status: 'PROCESSING', attributes: { note: '', list: [''] } } });
    expect(ok.errors).toBeUndefined();
    expect(ok.data!.updateStatus).toMatchObject({ version: 2, attributes: { note: '', list: [''] } });
  });
});

describe('update expressions within 4 KB', () => {
  const wide = (n: number, value: (i: number) => unknown) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`key${i}`, value(i)]));

  test('updateStatus with 1,000 attribute keys (an expression of ~25 KB key by key) stores them all, and removes them', async () => {
    const { id } = (await app.gql(CREATE_TASK, { input: { taskType: 'WIDE', input: {} } })).data!.createTask;
    const first = await app.gql(UPDATE_STATUS, {
      input: { id, status: 'PROCESSING', attributes: { kept: true, ...wide(1000, (i) => i) } },
    });
    expect(first.errors).toBeUndefined();
    expect(Object.keys(first.data!.updateStatus.attributes)).toHaveLength(1001);
    // Removal key by key: null for each of them.
    const second = await app.gql(UPDATE_STATUS, { input: { id, status: 'PROCESSING', attributes: wide(1000, () => null) } });
    expect(second.errors).toBeUndefined();
    expect(second.data!.updateStatus).toMatchObject({ version: 3, attributes: { kept: true } });
    expect((await app.gql(GET_TASK, { id })).data!.task.attributes).toEqual({ kept: true });
  });

  test('the whole-map write a wide update falls back to is pinned to the version it merged from: a change in between is never lost', async () => {
    const { id, pk, sk } = (await app.gql(CREATE_TASK, { input: { taskType: 'WIDE', input: {} } })).data!.createTask;
    await app.gql(UPDATE_STATUS, { input: { id, status: 'PROCESSING' } });
    const read = (await app.store.get({ pk, sk }))!;
    // Another writer moves the task on, without changing its status, between the store's read and its whole-map write.
    const store = Object.create(app.store) as typeof app.store;
    store.get = async (key) => {
      const current = await app.store.get(key);
      await app.gql(UPDATE_STATUS, { input: { id, status: 'PROCESSING', attributes: { progress: 50 } } });
      return current;
    };
    const refused = await writeStatusChange(store, read, { attributes: wide(500, (i) => i) }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StatusChangeRefused);
    expect((refused as StatusChangeRefused).current).toMatchObject({ version: read.version + 1, attributes: { progress: 50 } });
    expect((await app.store.get({ pk, sk }))!.attributes).toEqual({ progress: 50 });

    // Through the service, the unpinned update writes again and succeeds, keeping both.
    const res = await app.gql(UPDATE_STATUS, { input: { id, status: 'PROCESSING', attributes: wide(500, (i) => i) } });
    expect(res.errors).toBeUndefined();
    expect(res.data!.updateStatus.attributes).toMatchObject({ progress: 50, key0: 0, key499: 499 });
  });
});

describe('a task written by @mbc-cqrs-serverless/task (no version, attributes map or list keys)', () => {
  test('updateStatus with attributes writes the map whole, adds the list keys, and the task is listed', async () => {
    const code = '01JA0000000000000000000000';
    const item = {
      pk: 'TASK#tenant-a',
      sk: `ORIGINAL#${code}`,
      id: `TASK#tenant-a#ORIGINAL#${code}`,
      code,
      type: 'ORIGINAL',
      name: 'original',
      tenantCode: 'tenant-a',
      status: 'CREATED',
      input: { from: 'original' },
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:00.000Z',
    };
    await doc.send(new PutCommand({ TableName: table(), Item: item }));
    const res = await app.gql(UPDATE_STATUS, { input: { id: item.id, status: 'PROCESSING', attributes: { progress: 1 } } });
    expect(res.errors).toBeUndefined();
    expect(res.data!.updateStatus).toMatchObject({ status: 'PROCESSING', version: 1, attributes: { progress: 1 } });
    const { Item } = await doc.send(new GetCommand({ TableName: table(), Key: { pk: item.pk, sk: item.sk } }));
    expect(Item).toMatchObject({ listKey: 'TASK#tenant-a', listTypeStatusKey: 'TASK#tenant-a#ORIGINAL#PROCESSING', version: 1 });
    const listed = await app.gql(LIST_TASKS, { filter: { taskType: 'ORIGINAL', status: 'PROCESSING' } });
    expect(listed.data!.tasks.edges.map((edge: { node: { id: string } }) => edge.node.id)).toEqual([item.id]);
  });
});
