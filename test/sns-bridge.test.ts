import { PublishCommand, SNSClient, SubscribeCommand, UnsubscribeCommand, type PublishCommandInput } from '@aws-sdk/client-sns';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { startApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { MAX_NOTIFICATION_BYTES, notificationOf, type TaskNotification } from '../src/live/notification.js';
import { createLogger } from '../src/logger.js';
import type { TaskStatus } from '../src/tasks/status.js';
import type { Task } from '../src/tasks/task.js';
import { CREATE_TASK, TEST_SECRET, UPDATE_STATUS, startTestApp, type TestApp } from './helpers/app.js';
import { subscribeWs, wsClient, type Collected } from './helpers/live.js';
import { startSnsStandIn, type Fields, type SnsStandIn } from './helpers/sns.js';
import { until } from './helpers/wait.js';

/**
 * The SNS side of live status, end to end over loopback: what the service
 * publishes at the SDK boundary (aws-sdk-client-mock), its self-subscription,
 * and signed SNS deliveries POSTed to /sns reaching WebSocket subscribers of
 * two replicas.
 */

const REGION = 'eu-west-1';
const TOPIC = `arn:aws:sns:${REGION}:123456789012:tasks`;
const ALARM_TOPIC = `arn:aws:sns:${REGION}:123456789012:task-alarms`;
const TABLE = 'tasks';
/**
 * Backends drive every transition here (as with the original package): no
 * in-process worker picks tasks up, so each change below is the test's own.
 */
const NO_WORKER = { TASK_EXECUTION: 'false' };

// ---------------------------------------------------------------------------
// Bounded waiting, never a fixed sleep.
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// Reading what reached the mocked SNS client.
// ---------------------------------------------------------------------------
type SnsMock = AwsClientStub<SNSClient>;

interface Published {
  input: PublishCommandInput;
  message: Record<string, any>;
}

function published(sns: SnsMock, topicArn: string, id?: string): Published[] {
  return sns
    .commandCalls(PublishCommand)
    .map((call) => call.args[0].input)
    .filter((input) => input.TopicArn === topicArn)
    .map((input) => ({ input, message: JSON.parse(input.Message ?? 'null') as Record<string, any> }))
    .filter((entry) => id === undefined || entry.message.id === id);
}

const stringAttribute = (value: string) => ({ DataType: 'String', StringValue: value });

// ---------------------------------------------------------------------------
// The service over HTTP.
// ---------------------------------------------------------------------------
async function create(app: TestApp, token: string, taskType = 'BRIDGE') {
  const res = await app.gql(CREATE_TASK, { input: { taskType, input: { n: 1 } } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.createTask;
}

async function update(app: TestApp, token: string, id: string, status: TaskStatus, attributes?: Record<string, unknown>) {
  const res = await app.gql(UPDATE_STATUS, { input: { id, status, attributes } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.updateStatus;
}

/** The value of one series line in GET /metrics, e.g. `tasks_publish_failures_total` or `name{reason="x"}`; undefined when absent. */
async function metric(app: TestApp, series: string): Promise<number | undefined> {
  const response = await fetch(new URL('/metrics', app.url));
  expect(response.status).toBe(200);
  const text = await response.text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** POSTs an SNS envelope to the app's /sns as SNS does (JSON as text/plain). */
async function postSns(app: TestApp, envelope: Fields): Promise<{ status: number; text: string }> {
  const response = await fetch(new URL('/sns', app.url), {
    method: 'POST',
    headers: { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': envelope.Type ?? '' },
    body: JSON.stringify(envelope),
  });
  return { status: response.status, text: (await response.text()).trim() };
}

async function subscriptionsActive(app: TestApp, n: number) {
  await until(`${n} active subscriptions`, () => app.metrics.subscriptions.get() >= n);
}

// ===========================================================================
describe('publishing to SNS at the SDK boundary', () => {
  const client = new SNSClient({ region: REGION });
  const sns = mockClient(client);
  let app: TestApp;
  let token: string;

  beforeAll(async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'published' });
    app = await startTestApp({ ...NO_WORKER, SNS_TOPIC_ARN: TOPIC, SNS_ALARM_TOPIC_ARN: ALARM_TOPIC }, { sns: client });
    token = await app.token('pub-a');
  });

  /** A later publish, so that anything still due for earlier changes has been sent by the time it arrives. */
  async function barrier() {
    const task = await create(app, token, 'BARRIER');
    await until('the barrier publish', () => published(sns, TOPIC, task.id).length > 0);
  }

  test('createTask and each updateStatus send exactly one PublishCommand, in the original shape', async () => {
    const created = await create(app, token, 'PUB');
    const states = [
      created,
      await update(app, token, created.id, 'QUEUED'),
      await update(app, token, created.id, 'PROCESSING', { progress: 50 }),
      await update(app, token, created.id, 'COMPLETED', { result: { rows: 3 } }),
    ];
    await until(`${states.length} publishes`, () => published(sns, TOPIC, created.id).length >= states.length);
    await barrier();

    const calls = published(sns, TOPIC, created.id);
    expect(calls.map((call) => call.message.version)).toEqual([1, 2, 3, 4]);
    calls.forEach(({ input, message }, i) => {
      const state = states[i]!;
      expect(input.TopicArn).toBe(TOPIC);
      expect(input.MessageAttributes).toEqual({ action: stringAttribute('task-status'), tenantCode: stringAttribute('pub-a') });
      expect(message).toMatchObject({
        action: 'task-status',
        id: created.id,
        table: TABLE,
        pk: 'TASK#pub-a',
        sk: created.sk,
        tenantCode: 'pub-a',
        version: state.version,
        updatedAt: state.updatedAt,
        kind: 'TASK',
        type: 'PUB',
        name: 'PUB',
        code: created.code,
      });
      expect(message.content).toEqual({ status: state.status, attributes: state.attributes });
      expect(message.previousStatus).toBe(states[i - 1]?.status);
      expect(message).not.toHaveProperty('parentId'); // a top-level task
      expect(message).not.toHaveProperty('input'); // never travels
      expect(message).not.toHaveProperty('attributesOmitted');
    });
    expect(calls[3]!.message.content.attributes).toEqual({ progress: 50, result: { rows: 3 } });
    // None of these transitions raised an alarm.
    expect(published(sns, ALARM_TOPIC, created.id)).toEqual([]);
  });

  test('a task moving to FAILED also sends the alarm; other transitions (ERRORED included) send none', async () => {
    const failing = await create(app, token, 'PUB');
    await update(app, token, failing.id, 'PROCESSING');
    const failed = await update(app, token, failing.id, 'FAILED', { error: { message: 'disk full', code: 'ENOSPC' } });
    const retried = await create(app, token, 'PUB');
    await update(app, token, retried.id, 'PROCESSING');
    await update(app, token, retried.id, 'ERRORED', { error: 'transient' });
    await update(app, token, retried.id, 'QUEUED');
    await until('the alarm', () => published(sns, ALARM_TOPIC, failing.id).length > 0);
    await until("the retried task's publishes", () => published(sns, TOPIC, retried.id).length >= 4);
    await barrier();

    const alarms = published(sns, ALARM_TOPIC, failing.id);
    expect(alarms).toHaveLength(1);
    expect(alarms[0]!.input.TopicArn).toBe(ALARM_TOPIC);
    expect(alarms[0]!.input.MessageAttributes).toEqual({ action: stringAttribute('sfn-alarm'), tenantCode: stringAttribute('pub-a') });
    expect(alarms[0]!.message).toEqual({
      action: 'sfn-alarm',
      id: failing.id,
      table: TABLE,
      pk: failing.pk,
      sk: failing.sk,
      tenantCode: 'pub-a',
      content: { errorMessage: 'disk full', status: 'FAILED', type: 'PUB' },
    });
    // The FAILED change itself went to the task topic too, once.
    expect(published(sns, TOPIC, failing.id).map((call) => [call.message.version, call.message.content.status])).toEqual([
      [1, 'CREATED'],
      [2, 'PROCESSING'],
      [3, 'FAILED'],
    ]);
    expect(published(sns, TOPIC, failing.id)[2]!.message.content.attributes).toEqual(failed.attributes);
    // Only the failed task ever reached the alarm topic.
    expect(new Set(published(sns, ALARM_TOPIC).map((call) => call.message.id))).toEqual(new Set([failing.id]));
    expect(published(sns, ALARM_TOPIC, retried.id)).toEqual([]);
  });
});

// ===========================================================================
describe('publishing to SNS when it fails', () => {
  const client = new SNSClient({ region: REGION });
  const sns = mockClient(client);
  let app: TestApp;
  let token: string;

  beforeAll(async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'published' });
    app = await startTestApp({ ...NO_WORKER, SNS_TOPIC_ARN: TOPIC, SNS_ALARM_TOPIC_ARN: ALARM_TOPIC }, { sns: client });
    token = await app.token('pub-retry');
  });

  test('a rejected publish is retried until it succeeds, and the mutation is unaffected', async () => {
    const task = await create(app, token);
    await until('the create publish', () => published(sns, TOPIC, task.id).length > 0);

    sns.reset(); // fresh behaviours and history: the next two publishes are refused, then SNS recovers
    sns
      .on(PublishCommand)
      .rejectsOnce(new Error('Rate exceeded'))
      .rejectsOnce(new Error('Service unavailable'))
      .resolves({ MessageId: 'eventually' });

    const updated = await update(app, token, task.id, 'PROCESSING', { progress: 1 });
    expect(updated).toMatchObject({ status: 'PROCESSING', version: 2 });
    const stored = await app.store.get({ pk: task.pk, sk: task.sk });
    expect(stored).toMatchObject({ status: 'PROCESSING', version: 2, attributes: { progress: 1 } });

    const attempts = await until('the publish to be retried to success', () => {
      const calls = published(sns, TOPIC, task.id);
      return calls.length >= 3 && calls;
    });
    expect(attempts.length).toBeGreaterThan(1);
    expect(attempts).toHaveLength(3); // two refusals, one success, then no more
    // Each attempt sent the same message.
    expect(new Set(attempts.map((call) => call.input.Message)).size).toBe(1);
    expect(attempts[0]!.message).toMatchObject({ id: task.id, version: 2, content: { status: 'PROCESSING' } });
    expect(await metric(app, 'tasks_publish_failures_total')).toBe(0);
  });

  test('a publish that keeps failing is given up, counted in /metrics, and the change stays stored', async () => {
    const task = await create(app, token);
    await until('the create publish', () => published(sns, TOPIC, task.id).length > 0);

    sns.reset();
    sns.on(PublishCommand).rejects(new Error('SNS is down'));

    const updated = await update(app, token, task.id, 'QUEUED');
    expect(updated).toMatchObject({ status: 'QUEUED', version: 2 });
    expect(await app.store.get({ pk: task.pk, sk: task.sk })).toMatchObject({ status: 'QUEUED', version: 2 });

    // Bounded by the retry schedule (well under the default 10 s wait).
    const failures = await until('tasks_publish_failures_total to count the failure', async () => {
      const value = await metric(app, 'tasks_publish_failures_total');
      return value !== undefined && value > 0 && value;
    });
    expect(failures).toBe(1);
    const attempts = published(sns, TOPIC, task.id);
    expect(attempts.length).toBeGreaterThan(1);
    expect(attempts.every((call) => call.message.version === 2)).toBe(true);

    // The service still reads it back over GraphQL.
    const read = await app.gql(`query($id: ID!) { task(id: $id) { status version } }`, { id: task.id }, token);
    expect(read.data?.task).toEqual({ status: 'QUEUED', version: 2 });
  });
});

// ===========================================================================
describe('self-subscription to the topic', () => {
  const SUBSCRIPTION_ARN = `${TOPIC}:6f1c6a1e-0000-4000-8000-000000000001`;

  async function startSubscribed(publicUrl: string) {
    const client = new SNSClient({ region: REGION });
    const sns = mockClient(client);
    sns.on(SubscribeCommand).resolves({ SubscriptionArn: SUBSCRIPTION_ARN });
    sns.on(UnsubscribeCommand).resolves({});
    const config = loadConfig({
      ...NO_WORKER,
      JWT_SECRET: TEST_SECRET,
      DATA_DIR: ':memory:',
      HOST: '127.0.0.1',
      PORT: '0',
      SNS_TOPIC_ARN: TOPIC,
      PUBLIC_URL: publicUrl,
    });
    const app = await startApp(config, { logger: createLogger('silent'), sns: client });
    return { app, sns };
  }

  test('start-up subscribes <PUBLIC_URL>/sns over http; stop() unsubscribes that subscription', async () => {
    const { app, sns } = await startSubscribed('http://127.0.0.1:9/x');
    let stopped = false;
    try {
      expect(sns.commandCalls(SubscribeCommand).map((call) => call.args[0].input)).toEqual([
        { TopicArn: TOPIC, Protocol: 'http', Endpoint: 'http://127.0.0.1:9/x/sns', ReturnSubscriptionArn: true },
      ]);
      expect(sns.commandCalls(UnsubscribeCommand)).toHaveLength(0);
      // The subscribed route exists on this server (GET is refused, not unknown).
      expect((await fetch(new URL('/sns', app.url))).status).toBe(405);
      await app.stop();
      stopped = true;
    } finally {
      if (!stopped) await app.stop();
    }
    expect(sns.commandCalls(UnsubscribeCommand).map((call) => call.args[0].input)).toEqual([{ SubscriptionArn: SUBSCRIPTION_ARN }]);
    expect(sns.commandCalls(SubscribeCommand)).toHaveLength(1);
  });

  test('a trailing slash on PUBLIC_URL does not double the path', async () => {
    const { app, sns } = await startSubscribed('http://127.0.0.1:9/x/');
    try {
      expect(sns.commandCalls(SubscribeCommand).map((call) => call.args[0].input.Endpoint)).toEqual(['http://127.0.0.1:9/x/sns']);
    } finally {
      await app.stop();
    }
  });
});

// ===========================================================================
describe('SNS deliveries reach the WebSocket subscribers of two replicas', () => {
  const client1 = new SNSClient({ region: REGION });
  const client2 = new SNSClient({ region: REGION });
  const sns1 = mockClient(client1);
  const sns2 = mockClient(client2);
  let standIn: SnsStandIn;
  let app1: TestApp;
  let app2: TestApp;
  let tokenA: string;
  let tokenB: string;
  /** Tenant A's subscriber on each replica. */
  let ws1: Collected;
  let ws2: Collected;
  let taskA: Task;
  let taskB: Task;
  let nextVersionOfA: number;
  const apps = () => [app1, app2] as const;
  const clients = () => [ws1, ws2] as const;

  beforeAll(async () => {
    standIn = await startSnsStandIn();
    sns1.on(PublishCommand).resolves({ MessageId: 'from-1' });
    sns2.on(PublishCommand).resolves({ MessageId: 'from-2' });
    const trust = { isTrustedSnsUrl: standIn.isTrustedSnsUrl };
    app1 = await startTestApp({ ...NO_WORKER, SNS_TOPIC_ARN: TOPIC, AWS_REGION: REGION }, { sns: client1, snsEndpoint: trust });
    // The second replica shares the first one's table, as replicas do (DynamoDB mode on its dynalite).
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'local');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'local');
    app2 = await startTestApp(
      { ...NO_WORKER, SNS_TOPIC_ARN: TOPIC, AWS_REGION: REGION, DYNAMODB_ENDPOINT: app1.dynamoEndpoint!, TASKS_TABLE: TABLE },
      { sns: client2, snsEndpoint: trust },
    );
    [tokenA, tokenB] = await Promise.all([app1.token('bridge-a'), app1.token('bridge-b')]);

    // Created before anyone subscribes: the subscribers hear only what arrives through /sns (or later changes).
    const [a, b] = [await create(app1, tokenA), await create(app1, tokenB)];
    taskA = (await app1.store.get({ pk: a.pk, sk: a.sk }))!;
    taskB = (await app1.store.get({ pk: b.pk, sk: b.sk }))!;
    expect(taskA.version).toBe(1);
    nextVersionOfA = 2;

    ws1 = subscribeWs(wsClient(app1.url, tokenA));
    ws2 = subscribeWs(wsClient(app2.url, tokenA));
    await subscriptionsActive(app1, 1);
    await subscriptionsActive(app2, 1);
  });

  afterAll(async () => {
    vi.unstubAllEnvs();
    await standIn?.close();
  });

  /** A newer change of a task stored on app 1, as notificationOf builds it for SNS. */
  function newerOf(task: Task, version: number, status: TaskStatus, attributes: Task['attributes'] = {}): TaskNotification {
    const updatedAt = new Date(Date.parse(task.updatedAt) + version * 1000).toISOString();
    return notificationOf({ task: { ...task, version, status, attributes, updatedAt }, previous: task }, TABLE);
  }

  /** POSTs the same signed envelope to both replicas (SNS fans out to every subscription); returns the statuses. */
  async function fanOut(envelope: Fields): Promise<number[]> {
    return Promise.all(apps().map(async (app) => (await postSns(app, envelope)).status));
  }

  /** A fresh tenant-A change fanned out to both replicas and awaited on both clients: everything sent before it has been handled. */
  async function marker(): Promise<number> {
    const version = nextVersionOfA++;
    const counts = clients().map((ws) => ws.events.length);
    const envelope = standIn.signedNotification({
      topicArn: TOPIC,
      message: newerOf(taskA, version, 'PROCESSING', { marker: version }),
      version: '1',
    });
    expect(await fanOut(envelope)).toEqual([200, 200]);
    await Promise.all(clients().map((ws, i) => ws.waitFor(counts[i]! + 1)));
    for (const ws of clients()) expect(ws.events.at(-1).task).toMatchObject({ id: taskA.id, version });
    return version;
  }

  const seen = (ws: Collected, from: number) =>
    ws.events.slice(from).map((event) => [event.task.id, event.task.version, event.task.status, event.task.tenantCode, event.replayed]);

  test('each replica delivers a verified notification to its own subscriber exactly once; a redelivered MessageId is dropped', async () => {
    const counts = clients().map((ws) => ws.events.length);
    const version = nextVersionOfA++;
    const envelope = standIn.signedNotification({
      topicArn: TOPIC,
      message: newerOf(taskA, version, 'PROCESSING', { progress: 40 }),
      version: '2',
    });
    expect(await fanOut(envelope)).toEqual([200, 200]);
    for (const [i, ws] of clients().entries()) {
      await ws.waitFor(counts[i]! + 1);
      expect(seen(ws, counts[i]!)).toEqual([[taskA.id, version, 'PROCESSING', 'bridge-a', false]]);
      expect(ws.events.at(-1)).toMatchObject({ action: 'task-status', previousStatus: 'CREATED', task: { attributes: { progress: 40 } } });
    }

    // SNS redelivers the same MessageId: acknowledged, never handed to the bus again.
    const received = apps().map((app) => app.metrics.eventsReceived.get());
    const replies = await Promise.all(apps().map((app) => postSns(app, envelope)));
    expect(replies.map((reply) => reply.status)).toEqual([200, 200]);
    expect(apps().map((app) => app.metrics.eventsReceived.get())).toEqual(received);

    const after = await marker();
    for (const [i, ws] of clients().entries()) {
      expect(seen(ws, counts[i]!).map(([, v]) => v)).toEqual([version, after]);
    }
  });

  test("a notification of tenant B's task never reaches tenant A's subscribers", async () => {
    const counts = clients().map((ws) => ws.events.length);
    const received = apps().map((app) => app.metrics.eventsReceived.get());
    const envelope = standIn.signedNotification({ topicArn: TOPIC, message: newerOf(taskB, 2, 'PROCESSING'), version: '1' });
    expect(await fanOut(envelope)).toEqual([200, 200]);
    // It was accepted and reached each replica's bus...
    expect(apps().map((app) => app.metrics.eventsReceived.get())).toEqual(received.map((n) => n + 1));
    // ...and by the time a later tenant-A change arrives, tenant A has heard only that one.
    const after = await marker();
    for (const [i, ws] of clients().entries()) {
      expect(seen(ws, counts[i]!)).toEqual([[taskA.id, after, 'PROCESSING', 'bridge-a', false]]);
      expect(ws.events.every((event) => event.task.tenantCode === 'bridge-a')).toBe(true);
    }
  });

  test('a tampered message is refused with 403 on both replicas, reaches nobody, and is counted', async () => {
    const counts = clients().map((ws) => ws.events.length);
    const before = await Promise.all(apps().map((app) => metric(app, 'tasks_sns_messages_rejected_total{reason="bad-signature"}')));
    const version = nextVersionOfA++; // a version the subscribers would take as new
    const genuine = newerOf(taskA, version, 'PROCESSING');
    const signed = standIn.signedNotification({ topicArn: TOPIC, message: genuine, version: '2' });
    const tampered = {
      ...signed,
      Message: JSON.stringify({ ...genuine, content: { status: 'COMPLETED', attributes: { result: 'forged' } } }),
    };
    expect(await fanOut(tampered)).toEqual([403, 403]);

    const after = await marker();
    for (const [i, ws] of clients().entries()) {
      expect(seen(ws, counts[i]!)).toEqual([[taskA.id, after, 'PROCESSING', 'bridge-a', false]]);
      expect(ws.events.some((event) => event.task.attributes?.result === 'forged')).toBe(false);
    }
    const counted = await Promise.all(apps().map((app) => metric(app, 'tasks_sns_messages_rejected_total{reason="bad-signature"}')));
    expect(counted).toEqual(before.map((n) => (n ?? 0) + 1));
  });

  test('a change too large for SNS travels without attributes and reaches subscribers with them, read back from the table', async () => {
    const counts = clients().map((ws) => ws.events.length);
    const blob = 'x'.repeat(250_000);
    const task = await create(app1, tokenA, 'BIG');
    await update(app1, tokenA, task.id, 'PROCESSING', { blob, progress: 1 });

    // What app 1 published: attributes left out, within SNS's limit.
    const sent = await until("app 1's two publishes", () => {
      const calls = published(sns1, TOPIC, task.id);
      return calls.length >= 2 && calls;
    });
    expect(sent.map((call) => call.message.version)).toEqual([1, 2]);
    const large = sent[1]!;
    expect(large.message).toMatchObject({ id: task.id, version: 2, attributesOmitted: true, content: { status: 'PROCESSING' } });
    expect(large.message.content).not.toHaveProperty('attributes');
    expect(Buffer.byteLength(large.input.Message!)).toBeLessThanOrEqual(MAX_NOTIFICATION_BYTES);

    // SNS fans app 1's messages out to both replicas (app 1 already dispatched them in-process).
    for (const call of sent) {
      expect(await fanOut(standIn.signedNotification({ topicArn: TOPIC, message: call.input.Message!, version: '1' }))).toEqual([200, 200]);
    }
    for (const [i, ws] of clients().entries()) {
      await ws.waitFor(counts[i]! + 2);
      expect(seen(ws, counts[i]!).slice(0, 2)).toEqual([
        [task.id, 1, 'CREATED', 'bridge-a', false],
        [task.id, 2, 'PROCESSING', 'bridge-a', false],
      ]);
      const big = ws.events[counts[i]! + 1];
      expect(big.task.attributes).toEqual({ blob, progress: 1 });
    }
    // Exactly once each, on both replicas.
    const after = await marker();
    for (const [i, ws] of clients().entries()) {
      expect(seen(ws, counts[i]!).map(([id, v]) => `${id === task.id ? 'big' : 'a'}@${v}`)).toEqual(['big@1', 'big@2', `a@${after}`]);
    }
    expect(published(sns2, TOPIC)).toEqual([]); // app 2 made no change of its own
  });
});

// ===========================================================================
describe('NOTIFICATIONS=stream: the table stream publishes, the service does not', () => {
  const client = new SNSClient({ region: REGION });
  const sns = mockClient(client);
  let app: TestApp;

  beforeAll(async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'published' });
    app = await startTestApp(
      {
        TASK_EXECUTION: 'true',
        EXAMPLE_HANDLERS: 'false',
        SNS_TOPIC_ARN: TOPIC,
        SNS_ALARM_TOPIC_ARN: ALARM_TOPIC,
        NOTIFICATIONS: 'stream',
      },
      { sns: client },
    );
  });

  test('no task-status or alarm publish; task-execute still goes to the topic; local subscribers still hear the change', async () => {
    const token = await app.token('stream-mode');
    const ws = wsClient(app.url, token);
    const events = subscribeWs(ws, {});
    await subscriptionsActive(app, 1);
    const created = await create(app, token, 'STREAMED');
    const executes = () =>
      sns.commandCalls(PublishCommand).filter((call) => JSON.parse(call.args[0].input.Message!).action === 'task-execute');
    await until('the task-execute publish', () => executes().length === 1);
    await update(app, token, created.id, 'FAILED', { error: { message: 'x' } });
    await events.waitFor(3); // CREATED, QUEUED, FAILED: dispatched in-process
    const actions = sns.commandCalls(PublishCommand).map((call) => JSON.parse(call.args[0].input.Message!).action);
    expect(actions).toEqual(['task-execute']);
    expect(executes()[0]!.args[0].input.TopicArn).toBe(TOPIC);
  });

  test('NOTIFICATIONS accepts service or stream only', () => {
    expect(loadConfig({ NOTIFICATIONS: 'stream' }).sns.notifications).toBe('stream');
    expect(loadConfig({}).sns.notifications).toBe('service');
    expect(() => loadConfig({ NOTIFICATIONS: 'both' })).toThrow(/NOTIFICATIONS must be service or stream/);
  });
});
