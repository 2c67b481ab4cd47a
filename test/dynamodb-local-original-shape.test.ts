import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { enableTaskTableStream } from '../src/aws/task-table.js';
import { createStreamHandlerFromEnv } from '../src/lambda/stream-handler.js';
import { GET_TASK, LIST_SUB_TASKS, LIST_TASKS, startTestApp, type TestApp } from './helpers/app.js';
import { DYNAMODB_LOCAL_ENV, LOCAL_CLIENT_CONFIG, StreamReader } from './helpers/dynamodb-local.js';
import { subscribeWs, wsClient } from './helpers/live.js';
import { OriginalWriter, type OriginalCaller } from './helpers/original-items.js';

/**
 * Stream mode over items in the original package's exact shape (see
 * test/original-shape.test.ts for everything that needs no stream): what the
 * original writes reaches this service's listings and subscribers through the
 * table's stream handler, with no backfill. Records are read from DynamoDB
 * Local's stream and handed to the handler as Lambda would; its SNS publishes
 * are mocked and handed to the app's event bus, as the SNS bridge would.
 */
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:tasks';
const TENANT = 'orig-stream';
const CALLER: OriginalCaller = { userId: 'original-user', requestId: 'aws-request-1', sourceIp: '203.0.113.7' };
const T0 = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
const at = (seconds: number) => T0 + seconds * 1000;
const iso = (ms: number) => new Date(ms).toISOString();

let app: TestApp;
let client: DynamoDBClient;
let original: OriginalWriter;
let stream: StreamReader;
let handle: ReturnType<typeof createStreamHandlerFromEnv>;
let token: string;
const snsClient = new SNSClient({ region: 'us-east-1' });
const sns = mockClient(snsClient);

describe.runIf(Boolean(process.env[DYNAMODB_LOCAL_ENV]))('stream mode over the original’s items', () => {
  beforeAll(async () => {
    app = await startTestApp();
    client = new DynamoDBClient({ endpoint: app.dynamoEndpoint, ...LOCAL_CLIENT_CONFIG });
    original = new OriginalWriter(DynamoDBDocumentClient.from(client), app.store.tableName);
    stream = new StreamReader(app.dynamoEndpoint!, await enableTaskTableStream(client, app.store.tableName));
    handle = createStreamHandlerFromEnv(
      {
        TASKS_TABLE: app.store.tableName,
        DYNAMODB_ENDPOINT: app.dynamoEndpoint,
        AWS_REGION: 'local',
        SNS_TOPIC_ARN: TOPIC,
        LOG_LEVEL: 'silent',
      },
      { sns: snsClient },
    );
    token = await app.token(TENANT, { userId: 'watcher' });
  });
  afterAll(() => client.destroy());
  beforeEach(() => {
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'message-1' });
  });

  /** Hands the stream's records to the handler until it is quiet (the handler's own repairs included); returns what it published. */
  async function deliverAll(min: number) {
    for (let first = true; ; first = false) {
      const records = await stream.read(first ? min : 1, first ? 5_000 : 400);
      if (records.length === 0) break;
      expect(await handle({ Records: records })).toEqual({ batchItemFailures: [] });
    }
    const messages = sns.commandCalls(PublishCommand).map((call) => JSON.parse(call.args[0].input.Message!));
    sns.resetHistory();
    return messages;
  }
  const listIds = async (filter: Record<string, unknown>) =>
    (await app.gql(LIST_TASKS, { filter, first: 100 }, token)).data!.tasks.edges.map((edge: any) => edge.node.id);

  test('a task: listed once written; its whole-attribute status update is listed under the new status and reaches a subscriber live', async () => {
    const task = await original.createTask({ tenantCode: TENANT, taskType: 'REPORT', input: { n: 1 } }, CALLER, at(0));
    const [created] = await deliverAll(1);
    // Notifications carry timestamps in UTC, whatever offset the writer used.
    expect(created).toMatchObject({ id: task.id, version: 0, updatedAt: iso(at(0)), content: { status: 'CREATED', attributes: {} } });
    expect(await listIds({ status: 'CREATED' })).toEqual([task.id]);

    const ws = subscribeWs(wsClient(app.url, token), { filter: { ids: [task.id] } });
    const [snapshot] = await ws.waitFor(1);
    expect(snapshot).toMatchObject({ replayed: true, task: { version: 0, status: 'CREATED', updatedAt: iso(at(0)) } });

    await original.updateStatus(task, 'PROCESSING', { progress: { current: 1, total: 2 } }, at(5));
    const messages = await deliverAll(1);
    expect(messages).toHaveLength(1);
    // The handler gives the change the next version, so subscribers (who drop versions they have) take it.
    expect(messages[0]).toMatchObject({ version: 1, previousStatus: 'CREATED', content: { status: 'PROCESSING' } });
    expect(await listIds({ status: 'PROCESSING' })).toEqual([task.id]);
    expect(await listIds({ status: 'CREATED' })).toEqual([]);

    await app.bus.dispatch(messages[0]);
    const [, live] = await ws.waitFor(2);
    expect(live).toMatchObject({
      replayed: false,
      previousStatus: 'CREATED',
      task: { id: task.id, version: 1, status: 'PROCESSING', attributes: { progress: { current: 1, total: 2 } }, updatedAt: iso(at(5)) },
    });
    expect((await app.gql(GET_TASK, { id: task.id }, token)).data!.task).toMatchObject({
      version: 1,
      status: 'PROCESSING',
      updatedAt: iso(at(5)),
    });
    ws.stop();
  });

  test("a Step Functions task's sub-tasks: published as sub-task changes of their parent, all listed, in key order", async () => {
    const rows = Array.from({ length: 12 }, (_, i) => ({ row: i }));
    const created = await original.createStepFunctionTask({ tenantCode: TENANT, taskType: 'IMPORT', input: rows }, CALLER, at(10));
    const { parent, subTasks } = await original.startStepFunctionTask(created, at(11));
    const messages = await deliverAll(1 + 2 + 12);
    const subMessages = messages.filter((message) => message.action === 'sub-task-status');
    expect(subMessages.map((message) => message.subTaskIndex).sort((x, y) => x - y)).toEqual(rows.map((_, i) => i));
    for (const message of subMessages) expect(message).toMatchObject({ parentId: parent.id, version: 0 });
    expect(await listIds({ kind: 'SFN_TASK', status: 'PROCESSING' })).toEqual([parent.id]);

    const listed = (await app.gql(LIST_SUB_TASKS, { parentId: parent.id, first: 100 }, token)).data!.subTasks.edges;
    expect(listed.map((edge: any) => edge.node.subTaskIndex)).toEqual([0, 1, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(listed.map((edge: any) => edge.node.code).sort()).toEqual(subTasks.map((sub) => sub.code).sort());
  });
});
