import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { enableTaskTableStream } from '../src/aws/task-table.js';
import { createStreamHandlerFromEnv } from '../src/lambda/stream-handler.js';
import { notificationOf } from '../src/live/notification.js';
import { CREATE_TASK, LIST_TASKS, UPDATE_STATUS, startTestApp, type TestApp } from './helpers/app.js';
import { DYNAMODB_LOCAL_ENV, LOCAL_CLIENT_CONFIG, StreamReader } from './helpers/dynamodb-local.js';

/**
 * Stream mode (src/lambda/stream-handler.ts) over DynamoDB Local's own
 * stream: records read with the Streams API are handed to the handler as
 * Lambda would, and SNS is mocked at the SDK boundary.
 */
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:tasks';
const ALARM_TOPIC = 'arn:aws:sns:us-east-1:123456789012:task-alarms';

let app: TestApp;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;
let stream: StreamReader;
let handle: ReturnType<typeof createStreamHandlerFromEnv>;
const snsClient = new SNSClient({ region: 'us-east-1' });
const sns = mockClient(snsClient);

describe.runIf(Boolean(process.env[DYNAMODB_LOCAL_ENV]))('stream mode on DynamoDB Local', () => {
  beforeAll(async () => {
    app = await startTestApp();
    client = new DynamoDBClient({ endpoint: app.dynamoEndpoint, ...LOCAL_CLIENT_CONFIG });
    doc = DynamoDBDocumentClient.from(client);
    stream = new StreamReader(app.dynamoEndpoint!, await enableTaskTableStream(client, app.store.tableName));
    handle = createStreamHandlerFromEnv(
      {
        TASKS_TABLE: app.store.tableName,
        DYNAMODB_ENDPOINT: app.dynamoEndpoint,
        AWS_REGION: 'local',
        SNS_TOPIC_ARN: TOPIC,
        SNS_ALARM_TOPIC_ARN: ALARM_TOPIC,
        LOG_LEVEL: 'silent',
      },
      { sns: snsClient },
    );
  });
  afterAll(() => client.destroy());
  beforeEach(() => {
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'message-1' });
  });

  const published = () => sns.commandCalls(PublishCommand).map((call) => call.args[0].input);
  const attributesOf = (action: string, tenantCode = 'tenant-a') => ({
    action: { DataType: 'String', StringValue: action },
    tenantCode: { DataType: 'String', StringValue: tenantCode },
  });
  /** Hands what the stream holds (at least `min` records) to the handler, as one Lambda batch. */
  async function deliver(min = 1) {
    const records = await stream.read(min);
    return { records, response: await handle({ Records: records }) };
  }
  const itemOf = async (key: { pk: string; sk: string }) =>
    (await doc.send(new GetCommand({ TableName: app.store.tableName, Key: { pk: key.pk, sk: key.sk } }))).Item!;
  const listed = async (filter: Record<string, string>) =>
    (await app.gql(LIST_TASKS, { filter, first: 100 })).data!.tasks.edges.map((edge: { node: { id: string } }) => edge.node.id);

  test('a change by the service is published once, in its notification shape; the idempotency record is not', async () => {
    const created = await app.gql(CREATE_TASK, { input: { taskType: 'STREAMED', input: { n: 1 }, idempotencyKey: 'stream-1' } });
    const task = created.data!.createTask;
    const { records, response } = await deliver(2);
    expect(records.map((record) => [record.eventName, record.dynamodb.Keys.pk.S])).toEqual([
      ['INSERT', 'IDEMPOTENCY#tenant-a'],
      ['INSERT', 'TASK#tenant-a'],
    ]);
    expect(response).toEqual({ batchItemFailures: [] });
    expect(published()).toEqual([{ TopicArn: TOPIC, Message: expect.any(String), MessageAttributes: attributesOf('task-status') }]);
    expect(JSON.parse(published()[0]!.Message!)).toEqual({
      action: 'task-status',
      id: task.id,
      table: app.store.tableName,
      pk: 'TASK#tenant-a',
      sk: task.sk,
      tenantCode: 'tenant-a',
      content: { status: 'CREATED', attributes: {} },
      version: 1,
      updatedAt: task.updatedAt,
      kind: 'TASK',
      type: 'STREAMED',
      name: 'STREAMED',
      code: task.code,
      createdAt: task.createdAt,
      createdBy: 'user-a',
      updatedBy: 'user-a',
    });
    // The service's items need no repair: the handler wrote nothing.
    expect(await stream.read(1, 300)).toEqual([]);

    const updated = await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'QUEUED', attributes: { step: 1 } } });
    sns.resetHistory();
    await deliver();
    expect(published()).toHaveLength(1);
    // The same message the service's own publish builds (notificationOf), previous status included.
    expect(JSON.parse(published()[0]!.Message!)).toEqual(
      JSON.parse(
        JSON.stringify(
          notificationOf({ task: (await app.store.get(task))!, previous: { ...task, status: 'CREATED' } }, app.store.tableName),
        ),
      ),
    );
    expect(JSON.parse(published()[0]!.Message!)).toMatchObject({
      version: 2,
      previousStatus: 'CREATED',
      content: { status: 'QUEUED', attributes: { step: 1 } },
    });
    expect(updated.data!.updateStatus.version).toBe(2);
  });

  test('an UpdateItem by another writer (no version, no list keys): list keys repaired, next version, published once', async () => {
    const task = (await app.gql(CREATE_TASK, { input: { taskType: 'OTHER', input: {} } })).data!.createTask;
    await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'QUEUED' } });
    await deliver(2);
    sns.resetHistory();

    // What @mbc-cqrs-serverless/task does: status and attributes, nothing of ours.
    await doc.send(
      new UpdateCommand({
        TableName: app.store.tableName,
        Key: { pk: task.pk, sk: task.sk },
        UpdateExpression: 'SET #status = :status, #attributes = :attributes, updatedAt = :at',
        ExpressionAttributeNames: { '#status': 'status', '#attributes': 'attributes' },
        ExpressionAttributeValues: { ':status': 'PROCESSING', ':attributes': { by: 'original' }, ':at': '2026-06-01T00:00:00.000Z' },
      }),
    );
    expect(await itemOf(task)).toMatchObject({ status: 'PROCESSING', version: 2, listStatusKey: 'TASK#tenant-a#QUEUED' });
    expect(await listed({ status: 'PROCESSING' })).not.toContain(task.id);

    await deliver();
    expect(await itemOf(task)).toMatchObject({
      status: 'PROCESSING',
      version: 3,
      listKey: 'TASK#tenant-a',
      listTypeKey: 'TASK#tenant-a#OTHER',
      listStatusKey: 'TASK#tenant-a#PROCESSING',
      listTypeStatusKey: 'TASK#tenant-a#OTHER#PROCESSING',
    });
    expect(await listed({ status: 'PROCESSING' })).toContain(task.id);
    expect(await listed({ status: 'QUEUED', taskType: 'OTHER' })).not.toContain(task.id);
    expect(published()).toEqual([{ TopicArn: TOPIC, Message: expect.any(String), MessageAttributes: attributesOf('task-status') }]);
    expect(JSON.parse(published()[0]!.Message!)).toMatchObject({
      id: task.id,
      version: 3,
      previousStatus: 'QUEUED',
      updatedAt: '2026-06-01T00:00:00.000Z',
      content: { status: 'PROCESSING', attributes: { by: 'original' } },
    });

    // The repair's own record changes nothing else: it is not published again.
    sns.resetHistory();
    const echo = await deliver();
    expect(echo.records).toHaveLength(1);
    expect(published()).toEqual([]);
  });

  test('a PutItem by another writer (the original package’s item): list keys added, published; its deletion is not', async () => {
    const code = '01JB0000000000000000000000';
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
      attributes: {},
      createdAt: '2026-06-01T00:00:00.000Z',
      updatedAt: '2026-06-01T00:00:00.000Z',
    };
    await doc.send(new PutCommand({ TableName: app.store.tableName, Item: item }));
    await deliver();
    expect(await itemOf(item)).toMatchObject({ listTypeStatusKey: 'TASK#tenant-a#ORIGINAL#CREATED' });
    expect(await itemOf(item)).not.toHaveProperty('version');
    expect(await listed({ taskType: 'ORIGINAL' })).toEqual([item.id]);
    expect(published()).toHaveLength(1);
    expect(JSON.parse(published()[0]!.Message!)).toEqual({
      action: 'task-status',
      id: item.id,
      table: app.store.tableName,
      pk: item.pk,
      sk: item.sk,
      tenantCode: 'tenant-a',
      content: { status: 'CREATED', attributes: {} },
      version: 0,
      updatedAt: item.updatedAt,
      kind: 'TASK',
      type: 'ORIGINAL',
      name: 'original',
      code,
      createdAt: item.createdAt,
    });

    sns.resetHistory();
    await doc.send(new DeleteCommand({ TableName: app.store.tableName, Key: { pk: item.pk, sk: item.sk } }));
    const { records } = await deliver(2);
    expect(records.map((record) => record.eventName)).toEqual(['MODIFY', 'REMOVE']);
    expect(published()).toEqual([]);
  });

  test('a repair pinned to what it saw never overwrites a newer change; the newer one is published, FAILED with its alarm', async () => {
    const task = (await app.gql(CREATE_TASK, { input: { taskType: 'RACE', input: {} } })).data!.createTask;
    await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'QUEUED' } });
    await deliver(2);
    sns.resetHistory();

    await doc.send(
      new UpdateCommand({
        TableName: app.store.tableName,
        Key: { pk: task.pk, sk: task.sk },
        UpdateExpression: 'SET #status = :status, updatedAt = :at',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':status': 'PROCESSING', ':at': '2026-06-02T00:00:00.000Z' },
      }),
    );
    const stale = await stream.read(1);
    // Before the handler sees the other writer's change, the service moves the task on.
    const failed = await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'FAILED', attributes: { error: 'boom' } } });
    expect(failed.errors).toBeUndefined();
    const after = await itemOf(task);
    expect(after).toMatchObject({ status: 'FAILED', version: 3, listStatusKey: 'TASK#tenant-a#FAILED' });

    await handle({ Records: stale });
    expect(await itemOf(task)).toEqual(after);
    expect(published()).toEqual([]);

    await deliver();
    expect(published().map((input) => [input.TopicArn, JSON.parse(input.Message!).action, JSON.parse(input.Message!).version])).toEqual([
      [TOPIC, 'task-status', 3],
      [ALARM_TOPIC, 'sfn-alarm', undefined],
    ]);
    expect(published()[1]).toEqual({ TopicArn: ALARM_TOPIC, Message: expect.any(String), MessageAttributes: attributesOf('sfn-alarm') });
    expect(JSON.parse(published()[1]!.Message!)).toEqual({
      action: 'sfn-alarm',
      id: task.id,
      table: app.store.tableName,
      pk: task.pk,
      sk: task.sk,
      tenantCode: 'tenant-a',
      content: { errorMessage: 'boom', status: 'FAILED', type: 'RACE' },
    });
    expect(JSON.parse(published()[0]!.Message!)).toMatchObject({ previousStatus: 'PROCESSING', content: { status: 'FAILED' } });
  });
});
