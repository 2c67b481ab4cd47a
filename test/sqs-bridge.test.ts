import { ListSubscriptionsByTopicCommand, SNSClient, SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
  TagQueueCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { startSqsBridge, type SqsBridge, type SqsBridgeOptions } from '../src/aws/sqs-bridge.js';
import { loadConfig } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import { createAwsBroker, type AwsBroker } from './helpers/aws-broker.js';
import { CREATE_TASK, TEST_SECRET, UPDATE_STATUS, startTestApp, type TestApp } from './helpers/app.js';
import { subscribeWs, wsClient } from './helpers/live.js';
import { until } from './helpers/wait.js';

/**
 * SNS_BRIDGE=sqs: each replica hears the others through a queue of its own
 * subscribed to the task topic. First the exact commands at the SDK boundary
 * (aws-sdk-client-mock), then two servers whose SNS and SQS clients share an
 * in-memory broker (test/helpers/aws-broker.ts; storage stays dynalite).
 */

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const TOPIC = `arn:aws:sns:${REGION}:${ACCOUNT}:tasks`;
const queueUrlOf = (name: string) => `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${name}`;
const queueArnOf = (name: string) => `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`;
const BRIDGE_NAME = /^task-bridge-[0-9A-HJKMNP-TV-Z]{26}$/;
const FILTER_POLICY = JSON.stringify({ action: ['task-status', 'sub-task-status'] });
const policyFor = (queueArn: string) => ({
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'TaskTopicOnly',
      Effect: 'Allow',
      Principal: { Service: 'sns.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Resource: queueArn,
      Condition: { ArnEquals: { 'aws:SourceArn': TOPIC } },
    },
  ],
});

// ===========================================================================
describe('SNS_BRIDGE in loadConfig', () => {
  const base = { JWT_SECRET: TEST_SECRET };
  const aws = { ...base, TASKS_TABLE: 'tasks', AWS_REGION: REGION };

  test('defaults: sqs on AWS with a topic and no PUBLIC_URL; http with PUBLIC_URL; off without a topic, embedded or on a local endpoint', () => {
    const bridgeOf = (env: Record<string, string>) => loadConfig(env).sns.bridge;
    expect(bridgeOf({ ...aws, SNS_TOPIC_ARN: TOPIC })).toBe('sqs');
    expect(bridgeOf({ ...aws, SNS_TOPIC_ARN: TOPIC, PUBLIC_URL: 'https://replica-1.example.com' })).toBe('http');
    expect(bridgeOf({ ...aws })).toBe('off');
    expect(bridgeOf({ ...base })).toBe('off');
    expect(bridgeOf({ ...base, SNS_TOPIC_ARN: TOPIC })).toBe('off'); // embedded: one process, no other replicas
    expect(bridgeOf({ ...aws, SNS_TOPIC_ARN: TOPIC, DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000' })).toBe('off');
    expect(loadConfig({ ...aws, SNS_TOPIC_ARN: TOPIC }).sns.bridgeQueuePrefix).toBe('task-bridge-');
  });

  test('explicit modes, and the combinations they need', () => {
    expect(loadConfig({ ...base, SNS_TOPIC_ARN: TOPIC, SNS_BRIDGE: 'SQS' }).sns.bridge).toBe('sqs');
    expect(loadConfig({ ...aws, SNS_TOPIC_ARN: TOPIC, SNS_BRIDGE: 'off' }).sns.bridge).toBe('off');
    expect(loadConfig({ ...aws, SNS_TOPIC_ARN: TOPIC, BRIDGE_QUEUE_PREFIX: 'prod_bridge-' }).sns.bridgeQueuePrefix).toBe('prod_bridge-');
    expect(() => loadConfig({ ...aws, SNS_TOPIC_ARN: TOPIC, SNS_BRIDGE: 'kafka' })).toThrow(/SNS_BRIDGE must be one of sqs, http, off/);
    expect(() => loadConfig({ ...aws, SNS_BRIDGE: 'sqs' })).toThrow(/SNS_BRIDGE=sqs .*SNS_TOPIC_ARN/);
    expect(() => loadConfig({ ...aws, SNS_TOPIC_ARN: TOPIC, SNS_BRIDGE: 'http' })).toThrow(/SNS_BRIDGE=http .*PUBLIC_URL/);
    expect(() => loadConfig({ ...aws, SNS_TOPIC_ARN: TOPIC, SNS_BRIDGE: 'sqs', PUBLIC_URL: 'https://r.example.com' })).toThrow(
      /PUBLIC_URL .*SNS_BRIDGE=sqs/,
    );
    expect(() => loadConfig({ ...aws, SNS_TOPIC_ARN: TOPIC, BRIDGE_QUEUE_PREFIX: 'bad.prefix' })).toThrow(/BRIDGE_QUEUE_PREFIX/);
    expect(() => loadConfig({ ...aws, SNS_TOPIC_ARN: TOPIC, BRIDGE_QUEUE_PREFIX: 'x'.repeat(55) })).toThrow(/BRIDGE_QUEUE_PREFIX/);
  });
});

/** The second argument of `send` (the mock's typings list only the command). */
const sendOptionsOf = (call: { args: unknown[] }) => call.args[1] as { abortSignal?: AbortSignal } | undefined;

// ===========================================================================
describe('the bridge at the SDK boundary', () => {
  const NOW = Date.parse('2030-01-01T00:00:00.000Z');
  const SUBSCRIPTION = `${TOPIC}:00000000-0000-4000-8000-000000000001`;
  const started: SqsBridge[] = [];
  afterEach(async () => {
    for (const bridge of started.splice(0)) await bridge.stop();
  });

  function logger() {
    return { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() } satisfies Logger;
  }

  /**
   * Mocked clients answering as AWS does. `batches` are handed out by
   * ReceiveMessage one per call; an empty long poll lasts 20 ms.
   * `order` lists every command sent to either client.
   */
  function setup(batches: Message[][] = []) {
    const snsClient = new SNSClient({ region: REGION });
    const sqsClient = new SQSClient({ region: REGION });
    const sns = mockClient(snsClient);
    const sqs = mockClient(sqsClient);
    const order: string[] = [];
    // Answers are promises, as the SDK's send returns.
    const noting =
      <T>(name: string, answer: (input: any) => T) =>
      async (input: any) => {
        order.push(name);
        return answer(input);
      };
    sqs.on(CreateQueueCommand).callsFake(noting('CreateQueue', (input) => ({ QueueUrl: queueUrlOf(input.QueueName) })));
    sqs
      .on(GetQueueAttributesCommand)
      .callsFake(noting('GetQueueAttributes', (input) => ({ Attributes: { QueueArn: queueArnOf(input.QueueUrl.split('/').pop()) } })));
    sqs.on(SetQueueAttributesCommand).callsFake(noting('SetQueueAttributes', () => ({})));
    sqs.on(TagQueueCommand).callsFake(noting('TagQueue', () => ({})));
    sqs
      .on(DeleteMessageBatchCommand)
      .callsFake(
        noting('DeleteMessageBatch', (input) => ({ Successful: input.Entries.map((entry: any) => ({ Id: entry.Id })), Failed: [] })),
      );
    sqs.on(DeleteQueueCommand).callsFake(noting('DeleteQueue', () => ({})));
    sqs.on(ReceiveMessageCommand).callsFake(
      noting('ReceiveMessage', async () => {
        const batch = batches.shift();
        if (batch) return { Messages: batch };
        await new Promise((resolve) => setTimeout(resolve, 20));
        return {};
      }),
    );
    sns.on(SubscribeCommand).callsFake(noting('Subscribe', () => ({ SubscriptionArn: SUBSCRIPTION })));
    sns.on(UnsubscribeCommand).callsFake(noting('Unsubscribe', () => ({})));
    const delivered: unknown[] = [];
    const rejected: string[] = [];
    const log = logger();
    const options: SqsBridgeOptions = {
      sns: snsClient,
      sqs: sqsClient,
      topicArn: TOPIC,
      replicaId: 'replica-1',
      logger: log,
      deliver: async (message) => {
        delivered.push(message);
      },
      onRejected: (reason) => rejected.push(reason),
      now: () => NOW,
    };
    const start = async (overrides: Partial<SqsBridgeOptions> = {}) => {
      const bridge = await startSqsBridge({ ...options, ...overrides });
      started.push(bridge);
      return bridge;
    };
    return { sns, sqs, order, delivered, rejected, log, start };
  }

  test('start: CreateQueue (retention, long poll, tags), GetQueueAttributes for its ARN, the topic-only policy, Subscribe with raw delivery', async () => {
    const { sns, sqs, order, start } = setup();
    const bridge = await start();
    const name = bridge.queueUrl.split('/').pop()!;
    expect(name).toMatch(BRIDGE_NAME);
    expect(order.slice(0, 4)).toEqual(['CreateQueue', 'GetQueueAttributes', 'SetQueueAttributes', 'Subscribe']);

    expect(sqs.commandCalls(CreateQueueCommand).map((call) => call.args[0].input)).toEqual([
      {
        QueueName: name,
        Attributes: { MessageRetentionPeriod: '300', ReceiveMessageWaitTimeSeconds: '20' },
        tags: { owner: 'replica-1', heartbeat: '2030-01-01T00:00:00.000Z', topic: 'tasks' },
      },
    ]);
    expect(sqs.commandCalls(GetQueueAttributesCommand).map((call) => call.args[0].input)).toEqual([
      { QueueUrl: queueUrlOf(name), AttributeNames: ['QueueArn'] },
    ]);
    const [setPolicy] = sqs.commandCalls(SetQueueAttributesCommand).map((call) => call.args[0].input);
    expect(sqs.commandCalls(SetQueueAttributesCommand)).toHaveLength(1);
    expect(setPolicy).toEqual({ QueueUrl: queueUrlOf(name), Attributes: { Policy: expect.any(String) } });
    expect(JSON.parse(setPolicy!.Attributes!.Policy!)).toEqual(policyFor(queueArnOf(name)));
    expect(sns.commandCalls(SubscribeCommand).map((call) => call.args[0].input)).toEqual([
      {
        TopicArn: TOPIC,
        Protocol: 'sqs',
        Endpoint: queueArnOf(name),
        Attributes: { RawMessageDelivery: 'true', FilterPolicy: FILTER_POLICY },
        ReturnSubscriptionArn: true,
      },
    ]);
    expect(bridge).toMatchObject({ queueUrl: queueUrlOf(name), queueArn: queueArnOf(name), subscriptionArn: SUBSCRIPTION });
    // Nothing else at start: no heartbeat or sweep before their time.
    expect(sns.commandCalls(UnsubscribeCommand)).toHaveLength(0);
    expect(sqs.commandCalls(TagQueueCommand)).toHaveLength(0);
    expect(sqs.commandCalls(ListQueuesCommand)).toHaveLength(0);
  });

  test('a start that fails after CreateQueue deletes the queue and throws', async () => {
    const { sns, sqs, order, start } = setup();
    sns.on(SubscribeCommand).rejects(new Error('AuthorizationError'));
    await expect(start()).rejects.toThrow('AuthorizationError');
    expect(order).toEqual(['CreateQueue', 'GetQueueAttributes', 'SetQueueAttributes', 'DeleteQueue']);
    const created = sqs.commandCalls(CreateQueueCommand)[0]!.args[0].input.QueueName!;
    expect(sqs.commandCalls(DeleteQueueCommand).map((call) => call.args[0].input)).toEqual([{ QueueUrl: queueUrlOf(created) }]);
  });

  test('polling: each body goes to deliver in order; handled and malformed messages are deleted in one batch, a failed delivery is kept', async () => {
    const message = (n: number, body: string): Message => ({ MessageId: `m${n}`, ReceiptHandle: `r${n}`, Body: body });
    const { sqs, delivered, rejected, log, start } = setup([
      [
        message(1, JSON.stringify({ action: 'task-status', id: 'a', version: 2 })),
        message(2, '{not json'),
        message(3, JSON.stringify({ action: 'task-status', id: 'b', version: 5 })),
        message(4, JSON.stringify({ action: 'task-status', id: 'fails', version: 1 })),
      ],
    ]);
    const bridge = await start({
      deliver: async (body: any) => {
        if (body.id === 'fails') throw new Error('DynamoDB is throttling');
        delivered.push(body);
      },
    });
    await until(
      'the batch delete',
      () => sqs.commandCalls(DeleteMessageBatchCommand).length,
      (n) => n > 0,
    );

    const receives = sqs.commandCalls(ReceiveMessageCommand);
    expect(receives[0]!.args[0].input).toEqual({ QueueUrl: bridge.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 });
    expect(sendOptionsOf(receives[0]!)?.abortSignal).toBeInstanceOf(AbortSignal);
    expect(delivered).toEqual([
      { action: 'task-status', id: 'a', version: 2 },
      { action: 'task-status', id: 'b', version: 5 },
    ]);
    expect(sqs.commandCalls(DeleteMessageBatchCommand).map((call) => call.args[0].input)).toEqual([
      {
        QueueUrl: bridge.queueUrl,
        Entries: [
          { Id: '0', ReceiptHandle: 'r1' },
          { Id: '1', ReceiptHandle: 'r2' },
          { Id: '2', ReceiptHandle: 'r3' },
        ],
      },
    ]);
    expect(rejected).toEqual(['malformed-json']);
    expect(log.warn).toHaveBeenCalledWith('sqs bridge: deleting a message that is not JSON', { messageId: 'm2', body: '{not json' });
    expect(log.error).toHaveBeenCalledWith(
      'sqs bridge: delivering a notification failed; the queue delivers it again',
      { messageId: 'm4' },
      expect.any(Error),
    );
    // The long poll goes on.
    const count = receives.length;
    await until(
      'another receive',
      () => sqs.commandCalls(ReceiveMessageCommand).length,
      (n) => n > count,
    );
  });

  test('a failed receive is logged and retried after a pause that doubles', async () => {
    const { sqs, log, start } = setup();
    const at: number[] = [];
    sqs.on(ReceiveMessageCommand).callsFake(async () => {
      at.push(Date.now());
      if (at.length <= 2) throw new Error('Throttling');
      await new Promise((resolve) => setTimeout(resolve, 20));
      return {};
    });
    await start({ receiveErrorDelayMs: 60 });
    await until(
      'the third receive',
      () => at.length,
      (n) => n >= 3,
    );
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(55);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(115);
    expect(log.error).toHaveBeenCalledWith(
      'sqs bridge: receiving failed; retrying',
      expect.objectContaining({ retryInMs: 60 }),
      expect.objectContaining({ message: 'Throttling' }),
    );
    expect(log.error).toHaveBeenCalledWith(
      'sqs bridge: receiving failed; retrying',
      expect.objectContaining({ retryInMs: 120 }),
      expect.anything(),
    );
  });

  test('stop() aborts the long poll at once, then sends Unsubscribe and DeleteQueue, in that order, once', async () => {
    const { sns, sqs, order, start } = setup();
    // A long poll that never answers (the mock ignores the abort signal: stop must not wait for it).
    sqs.on(ReceiveMessageCommand).callsFake(() => {
      order.push('ReceiveMessage');
      return new Promise(() => {});
    });
    const bridge = await start();
    await until(
      'the long poll',
      () => sqs.commandCalls(ReceiveMessageCommand).length,
      (n) => n === 1,
    );

    const began = Date.now();
    await Promise.all([bridge.stop(), bridge.stop()]);
    expect(Date.now() - began).toBeLessThan(1000);
    expect(sendOptionsOf(sqs.commandCalls(ReceiveMessageCommand)[0]!)?.abortSignal?.aborted).toBe(true);
    expect(order).toEqual([
      'CreateQueue',
      'GetQueueAttributes',
      'SetQueueAttributes',
      'Subscribe',
      'ReceiveMessage',
      'Unsubscribe',
      'DeleteQueue',
    ]);
    expect(sns.commandCalls(UnsubscribeCommand).map((call) => call.args[0].input)).toEqual([{ SubscriptionArn: SUBSCRIPTION }]);
    expect(sqs.commandCalls(DeleteQueueCommand).map((call) => call.args[0].input)).toEqual([{ QueueUrl: bridge.queueUrl }]);
    await bridge.stop();
    expect(sqs.commandCalls(DeleteQueueCommand)).toHaveLength(1);
  });

  test('when Unsubscribe fails at stop, the queue is left for the sweep (a deleted queue would hide its subscription)', async () => {
    const { sns, sqs, log, start } = setup();
    sns.on(UnsubscribeCommand).rejects(new Error('Throttled'));
    const bridge = await start();
    await bridge.stop();
    expect(sns.commandCalls(UnsubscribeCommand)).toHaveLength(1);
    expect(sqs.commandCalls(DeleteQueueCommand)).toHaveLength(0);
    expect(log.warn).toHaveBeenCalledWith(expect.stringMatching(/unsubscribing failed/), { queueUrl: bridge.queueUrl }, expect.any(Error));
  });

  test('heartbeat: TagQueue with the current time, now and every heartbeatEveryMs', async () => {
    const { sqs, start } = setup();
    let now = NOW;
    const bridge = await start({ now: () => now, heartbeatEveryMs: 40 });
    now = NOW + 61_000;
    await bridge.heartbeat();
    expect(sqs.commandCalls(TagQueueCommand)[0]!.args[0].input).toEqual({
      QueueUrl: bridge.queueUrl,
      Tags: { heartbeat: '2030-01-01T00:01:01.000Z' },
    });
    await until(
      'periodic heartbeats',
      () => sqs.commandCalls(TagQueueCommand).length,
      (n) => n >= 3,
    );
    for (const call of sqs.commandCalls(TagQueueCommand)) expect(Object.keys(call.args[0].input.Tags!)).toEqual(['heartbeat']);
  });

  test('sweep: a queue of this topic with a stale heartbeat is unsubscribed and deleted; fresh, foreign and its own queue are left alone', async () => {
    const { sns, sqs, start } = setup();
    const bridge = await start();
    const own = bridge.queueUrl;
    const names = {
      stale: 'task-bridge-01HZZZZZZZZZZZZZZZZZZZZZZA',
      fresh: 'task-bridge-01HZZZZZZZZZZZZZZZZZZZZZZB',
      untagged: 'task-bridge-01HZZZZZZZZZZZZZZZZZZZZZZC',
      otherTopic: 'task-bridge-01HZZZZZZZZZZZZZZZZZZZZZZD',
      notOurs: 'task-bridge-orders', // matches the prefix, not the name pattern
    };
    const ago = (ms: number) => new Date(NOW - ms).toISOString();
    sqs
      .on(ListQueuesCommand)
      .resolvesOnce({ QueueUrls: [own, queueUrlOf(names.stale), queueUrlOf(names.fresh)], NextToken: 'page-2' })
      .resolvesOnce({ QueueUrls: [queueUrlOf(names.untagged), queueUrlOf(names.otherTopic), queueUrlOf(names.notOurs)] });
    sqs.on(ListQueueTagsCommand, { QueueUrl: own }).resolves({ Tags: { owner: 'replica-1', heartbeat: ago(3_600_000), topic: 'tasks' } });
    sqs
      .on(ListQueueTagsCommand, { QueueUrl: queueUrlOf(names.stale) })
      .resolves({ Tags: { owner: 'dead', heartbeat: ago(301_000), topic: 'tasks' } });
    sqs
      .on(ListQueueTagsCommand, { QueueUrl: queueUrlOf(names.fresh) })
      .resolves({ Tags: { owner: 'alive', heartbeat: ago(60_000), topic: 'tasks' } });
    sqs.on(ListQueueTagsCommand, { QueueUrl: queueUrlOf(names.untagged) }).resolves({});
    sqs
      .on(ListQueueTagsCommand, { QueueUrl: queueUrlOf(names.otherTopic) })
      .resolves({ Tags: { heartbeat: ago(3_600_000), topic: 'other' } });
    const staleSubscription = `${TOPIC}:stale-subscription`;
    sns
      .on(ListSubscriptionsByTopicCommand)
      .resolvesOnce({
        Subscriptions: [{ SubscriptionArn: `${TOPIC}:worker`, Protocol: 'sqs', Endpoint: queueArnOf('task-execute') }],
        NextToken: 'subs-2',
      })
      .resolvesOnce({
        Subscriptions: [
          { SubscriptionArn: SUBSCRIPTION, Protocol: 'sqs', Endpoint: bridge.queueArn },
          { SubscriptionArn: staleSubscription, Protocol: 'sqs', Endpoint: queueArnOf(names.stale) },
        ],
      });
    const before = { get: sqs.commandCalls(GetQueueAttributesCommand).length };

    expect(await bridge.sweep()).toEqual([queueUrlOf(names.stale)]);

    expect(sqs.commandCalls(ListQueuesCommand).map((call) => call.args[0].input)).toEqual([
      { QueueNamePrefix: 'task-bridge-', MaxResults: 1000, NextToken: undefined },
      { QueueNamePrefix: 'task-bridge-', MaxResults: 1000, NextToken: 'page-2' },
    ]);
    expect(sqs.commandCalls(ListQueueTagsCommand).map((call) => call.args[0].input.QueueUrl)).toEqual(
      [names.stale, names.fresh, names.untagged, names.otherTopic].map(queueUrlOf),
    );
    expect(
      sqs
        .commandCalls(GetQueueAttributesCommand)
        .slice(before.get)
        .map((call) => call.args[0].input),
    ).toEqual([{ QueueUrl: queueUrlOf(names.stale), AttributeNames: ['QueueArn'] }]);
    expect(sns.commandCalls(ListSubscriptionsByTopicCommand).map((call) => call.args[0].input)).toEqual([
      { TopicArn: TOPIC, NextToken: undefined },
      { TopicArn: TOPIC, NextToken: 'subs-2' },
    ]);
    expect(sns.commandCalls(UnsubscribeCommand).map((call) => call.args[0].input)).toEqual([{ SubscriptionArn: staleSubscription }]);
    expect(sqs.commandCalls(DeleteQueueCommand).map((call) => call.args[0].input)).toEqual([{ QueueUrl: queueUrlOf(names.stale) }]);
  });

  test('a sweep with nothing stale sends no subscription listing, no Unsubscribe and no DeleteQueue', async () => {
    const { sns, sqs, start } = setup();
    const bridge = await start();
    sqs.on(ListQueuesCommand).resolves({ QueueUrls: [bridge.queueUrl] });
    expect(await bridge.sweep()).toEqual([]);
    expect(sqs.commandCalls(ListQueueTagsCommand)).toHaveLength(0);
    expect(sns.commandCalls(ListSubscriptionsByTopicCommand)).toHaveLength(0);
    expect(sqs.commandCalls(DeleteQueueCommand)).toHaveLength(0);
  });

  test('sweeps also run on their own, every sweepEveryMs or so', async () => {
    const { sqs, start } = setup();
    sqs.on(ListQueuesCommand).resolves({ QueueUrls: [] });
    await start({ sweepEveryMs: 40 });
    await until(
      'two sweeps',
      () => sqs.commandCalls(ListQueuesCommand).length,
      (n) => n >= 2,
    );
  });

  test('its own queue deleted under it (swept while its heartbeats failed): a new queue and subscription, and polling goes on', async () => {
    const { sns, sqs, start } = setup();
    const bridge = await start();
    const first = { queueUrl: bridge.queueUrl, subscriptionArn: bridge.subscriptionArn };
    sqs.on(ReceiveMessageCommand, { QueueUrl: first.queueUrl }).rejects(new QueueDoesNotExist({ message: 'gone', $metadata: {} }));
    sns.on(SubscribeCommand).resolves({ SubscriptionArn: `${TOPIC}:second` });
    await until(
      'a second queue',
      () => sqs.commandCalls(CreateQueueCommand).length,
      (n) => n === 2,
    );
    await until(
      'a receive on the new queue',
      () =>
        bridge.queueUrl !== first.queueUrl &&
        sqs.commandCalls(ReceiveMessageCommand).some((call) => call.args[0].input.QueueUrl === bridge.queueUrl),
      Boolean,
    );
    expect(bridge.subscriptionArn).toBe(`${TOPIC}:second`);
    expect(sns.commandCalls(UnsubscribeCommand).map((call) => call.args[0].input)).toEqual([{ SubscriptionArn: first.subscriptionArn }]);
    expect(sqs.commandCalls(CreateQueueCommand)[1]!.args[0].input.QueueName).toMatch(BRIDGE_NAME);
  });
});

// ===========================================================================
describe('two servers hear each other through SNS and per-replica SQS queues (in-memory broker at the SDK boundary)', () => {
  const broker: AwsBroker = createAwsBroker({ region: REGION, account: ACCOUNT });
  const topic = broker.createTopic('tasks');
  const clients = () => {
    const sns = new SNSClient({ region: REGION });
    const sqs = new SQSClient({ region: REGION });
    broker.attach(sns);
    broker.attach(sqs);
    return { sns, sqs };
  };
  const env = { SNS_TOPIC_ARN: topic, SNS_BRIDGE: 'sqs', AWS_REGION: REGION };
  let a: TestApp;
  let b: TestApp;
  let token: string;

  beforeAll(async () => {
    a = await startTestApp(env, clients());
    // B shares A's table, as replicas do (DynamoDB mode on A's dynalite).
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'local');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'local');
    b = await startTestApp({ ...env, DYNAMODB_ENDPOINT: a.dynamoEndpoint!, TASKS_TABLE: a.store.tableName }, clients());
    token = await a.token('bridged');
  });
  afterAll(() => {
    vi.unstubAllEnvs();
  });

  const queueOfApp = (n: number) => broker.queues().filter((queue) => BRIDGE_NAME.test(queue.name))[n]!;

  test('each replica has its own queue, subscribed with raw delivery; an updateStatus on A reaches a WebSocket subscriber of B', async () => {
    expect(broker.queues().map((queue) => queue.name)).toEqual([expect.stringMatching(BRIDGE_NAME), expect.stringMatching(BRIDGE_NAME)]);
    expect(broker.subscriptions(topic).map((s) => [s.protocol, s.endpoint, s.attributes.RawMessageDelivery])).toEqual([
      ['sqs', queueOfApp(0).arn, 'true'],
      ['sqs', queueOfApp(1).arn, 'true'],
    ]);

    const created = await a.gql(CREATE_TASK, { input: { taskType: 'BRIDGED', input: { n: 1 } } }, token);
    expect(created.errors).toBeUndefined();
    const task = created.data!.createTask;

    const onB = subscribeWs(wsClient(b.url, token));
    await until(
      'the subscription on B',
      () => b.metrics.subscriptions.get(),
      (n) => n >= 1,
    );

    const updated = await a.gql(UPDATE_STATUS, { input: { id: task.id, status: 'PROCESSING', attributes: { progress: 30 } } }, token);
    expect(updated.errors).toBeUndefined();
    const events = await onB.waitFor(1);
    expect(events.map((event) => [event.action, event.task.id, event.task.version, event.task.status, event.replayed])).toEqual([
      ['task-status', task.id, 2, 'PROCESSING', false],
    ]);
    expect(events[0].task.attributes).toEqual({ progress: 30 });

    // It came through B's queue: received there and deleted; nothing was refused by a queue policy.
    const bQueue = queueOfApp(1);
    await until(
      'the delete on B',
      () => broker.log.some((entry) => entry.command === 'DeleteMessageBatchCommand' && entry.input.QueueUrl === bQueue.url),
      Boolean,
    );
    expect(broker.refused).toEqual([]);
    expect(broker.log.filter((entry) => entry.command === 'PublishCommand').length).toBeGreaterThanOrEqual(2);
  });

  test("after B stops, B's queue is deleted and its subscription removed; A's remain and A still publishes", async () => {
    const [aQueue, bQueue] = [queueOfApp(0), queueOfApp(1)];
    const bSubscription = broker.subscriptions(topic).find((s) => s.endpoint === bQueue.arn)!;
    await b.stop();
    expect(broker.queues().map((queue) => queue.url)).toEqual([aQueue.url]);
    expect(broker.subscriptions(topic).map((s) => s.endpoint)).toEqual([aQueue.arn]);
    const unsubscribeAt = broker.log.findIndex(
      (e) => e.command === 'UnsubscribeCommand' && e.input.SubscriptionArn === bSubscription.subscriptionArn,
    );
    const deleteAt = broker.log.findIndex((e) => e.command === 'DeleteQueueCommand' && e.input.QueueUrl === bQueue.url);
    expect(unsubscribeAt).toBeGreaterThanOrEqual(0);
    expect(deleteAt).toBeGreaterThan(unsubscribeAt);

    const created = await a.gql(CREATE_TASK, { input: { taskType: 'AFTER', input: {} } }, token);
    expect(created.errors).toBeUndefined();
    await until(
      'the publish of the new task',
      () => broker.log.some((e) => e.command === 'PublishCommand' && JSON.parse(e.input.Message).id === created.data!.createTask.id),
      Boolean,
    );
  });
});
