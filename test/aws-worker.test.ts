import { randomUUID } from 'node:crypto';
import { SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { PublishCommand, SNSClient, type PublishCommandInput } from '@aws-sdk/client-sns';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
  type ReceiveMessageCommandInput,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { parseTaskExecuteBody, startSqsWorker, visibilitySecondsOf, type TaskDispatch } from '../src/aws/sqs-worker.js';
import { createLambdaHandlers, loadLambdaConfig } from '../src/lambda/bootstrap.js';
import { createSqsHandler, queueUrlOfArn } from '../src/lambda/sqs-handler.js';
import { createSubTaskRunnerHandler } from '../src/lambda/sub-task-runner.js';
import { createLogger } from '../src/logger.js';
import type { TaskKey } from '../src/tasks/keys.js';
import type { Task } from '../src/tasks/task.js';
import type { HandlerMap } from '../src/worker/handlers.js';
import { parseTaskId } from '../src/tasks/keys.js';
import { executionName, type SubTaskEvent } from '../src/worker/sub-task-executions.js';
import type { RunOutcome } from '../src/worker/task-runner.js';
import { CREATE_SFN_TASK, CREATE_TASK, startTestApp, type TestApp } from './helpers/app.js';
import { until } from './helpers/wait.js';

/**
 * The AWS execution side at the SDK boundary: SNS, SQS and Step Functions
 * clients wrapped by aws-sdk-client-mock and handed to the app; storage is
 * dynalite. A fake queue answers ReceiveMessage with the messages a test
 * delivers (SNS envelopes built from what the service really published).
 */

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const TOPIC = `arn:aws:sns:${REGION}:${ACCOUNT}:tasks`;
const STATE_MACHINE = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:sub-tasks`;
const QUEUE_URL = `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/task-execute`;
const QUEUE_ARN = `arn:aws:sqs:${REGION}:${ACCOUNT}:task-execute`;
const LEASE_MS = 600;
/** ceil(TASK_LEASE_MS / 1000): the visibility set on receipt and on each renewal. */
const VISIBILITY_SECONDS = 1;
const CONCURRENCY = 4;
const SFN_CONCURRENCY = 3;

const silent = createLogger('silent');

// ---------------------------------------------------------------------------
// The mocked clients and a fake queue behind ReceiveMessage.
// ---------------------------------------------------------------------------
const snsClient = new SNSClient({ region: REGION });
const sfnClient = new SFNClient({ region: REGION });
const sqsClient = new SQSClient({ region: REGION });
const sns = mockClient(snsClient);
const sfn = mockClient(sfnClient);
const sqs = mockClient(sqsClient);

/** Messages the test delivers; a receive with none waits a little, like a (short) long poll. */
class FakeQueue {
  private readonly messages: Message[] = [];
  private wake?: () => void;
  private count = 0;

  deliver(body: string): string {
    const n = ++this.count;
    const receiptHandle = `receipt-${n}-${randomUUID()}`;
    this.messages.push({ MessageId: `message-${n}`, ReceiptHandle: receiptHandle, Body: body });
    this.wake?.();
    return receiptHandle;
  }

  async receive(input: ReceiveMessageCommandInput) {
    if (this.messages.length === 0) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 25);
      });
      this.wake = undefined;
    }
    return { Messages: this.messages.splice(0, input.MaxNumberOfMessages ?? 1) };
  }
}
const queue = new FakeQueue();

sns.on(PublishCommand).callsFake(async () => ({ MessageId: randomUUID() }));
sfn.on(StartExecutionCommand).callsFake(async (input) => ({
  executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:${input.name}`,
  startDate: new Date(),
}));
sfn.on(StopExecutionCommand).resolves({ stopDate: new Date() });
sqs.on(ReceiveMessageCommand).callsFake((input: ReceiveMessageCommandInput) => queue.receive(input));
sqs.on(DeleteMessageCommand).resolves({});
sqs.on(ChangeMessageVisibilityCommand).resolves({});

const deletes = (receiptHandle: string) =>
  sqs.commandCalls(DeleteMessageCommand).filter((call) => call.args[0].input.ReceiptHandle === receiptHandle);
const visibilityChanges = (receiptHandle: string) =>
  sqs
    .commandCalls(ChangeMessageVisibilityCommand)
    .filter((call) => call.args[0].input.ReceiptHandle === receiptHandle)
    .map((call) => call.args[0].input);
const starts = (name: string) =>
  sfn
    .commandCalls(StartExecutionCommand)
    .filter((call) => call.args[0].input.name === name)
    .map((call) => call.args[0].input);

/** The task-execute PublishCommand the service sent for a task. */
function taskExecutePublish(id: string): PublishCommandInput | undefined {
  return sns
    .commandCalls(PublishCommand)
    .map((call) => call.args[0].input)
    .find(
      (input) =>
        input.MessageAttributes?.action?.StringValue === 'task-execute' && (JSON.parse(input.Message ?? '{}') as { id?: string }).id === id,
    );
}

/** What SQS holds when SNS delivers a publish to a subscribed queue (no raw message delivery). */
const snsEnvelope = (publish: PublishCommandInput) =>
  JSON.stringify({
    Type: 'Notification',
    MessageId: randomUUID(),
    TopicArn: publish.TopicArn,
    Message: publish.Message,
    Timestamp: new Date().toISOString(),
    SignatureVersion: '1',
    MessageAttributes: Object.fromEntries(
      Object.entries(publish.MessageAttributes ?? {}).map(([name, value]) => [name, { Type: 'String', Value: value.StringValue }]),
    ),
  });

/** The SNS envelope of a task's task-execute message, once it was published. */
const envelopeOf = async (id: string) => snsEnvelope(await until(`task-execute of ${id}`, () => taskExecutePublish(id)));

// ---------------------------------------------------------------------------
// Handlers, counting their runs.
// ---------------------------------------------------------------------------
const calls = new Map<string, number>();
const counted = (task: Task) => calls.set(task.id, (calls.get(task.id) ?? 0) + 1);
let slowReceipt: string | undefined;
let slowReceivesFrom = 0;

const handlers: HandlerMap = {
  OK: (task) => {
    counted(task);
    return { echoed: task.input };
  },
  FLAKY: {
    maxAttempts: 3,
    retryDelayMs: 4000,
    handler: (task) => {
      counted(task);
      throw new Error('flaky failure');
    },
  },
  SLOW: async (task) => {
    counted(task);
    // Returns once the worker renewed the message's visibility and asked for the remaining capacity.
    await until(
      'a visibility renewal while the handler runs',
      () =>
        slowReceipt !== undefined &&
        visibilityChanges(slowReceipt).length > 0 &&
        sqs
          .commandCalls(ReceiveMessageCommand)
          .slice(slowReceivesFrom)
          .some((call) => call.args[0].input.MaxNumberOfMessages === CONCURRENCY - 1),
    );
    return 'slow done';
  },
};
const subTaskHandlers: HandlerMap = {
  ITEM: (task) => {
    counted(task);
    return { doubled: (task.input as { n: number }).n * 2 };
  },
};

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp(
    {
      TASK_EXECUTION: 'true',
      SNS_TOPIC_ARN: TOPIC,
      SFN_TASK_ARN: STATE_MACHINE,
      TASK_QUEUE_URL: QUEUE_URL,
      AWS_REGION: REGION,
      TASK_LEASE_MS: String(LEASE_MS),
      WORKER_CONCURRENCY: String(CONCURRENCY),
      SFN_MAX_CONCURRENCY: String(SFN_CONCURRENCY),
    },
    { sns: snsClient, sfn: sfnClient, sqs: sqsClient, handlers, subTaskHandlers },
  );
});

afterEach(() => {
  vi.restoreAllMocks();
});

async function createTask(taskType: string, input: unknown = { n: 1 }): Promise<Task> {
  const res = await app.gql(CREATE_TASK, { input: { taskType, input } });
  expect(res.errors).toBeUndefined();
  return res.data!.createTask;
}

async function createSfnTask(taskType: string, input: unknown[]): Promise<Task> {
  const res = await app.gql(CREATE_SFN_TASK, { input: { taskType, input } });
  expect(res.errors).toBeUndefined();
  return res.data!.createStepFunctionTask;
}

const CANCEL = `mutation($id: ID!) { cancelTask(id: $id) { id status attributes } }`;

/** Delivers a task's task-execute message and waits until the worker deleted it. */
async function deliverUntilDeleted(body: string): Promise<string> {
  const receipt = queue.deliver(body);
  await until(`DeleteMessage of ${receipt}`, () => deletes(receipt).length > 0);
  return receipt;
}

const subTasksOf = async (parentId: string) => {
  const parent = (await app.store.get(parseTaskId(parentId)!))!;
  return (await app.store.listSubTasks(parent, 100)).edges.map((edge) => edge.node);
};

// ---------------------------------------------------------------------------
describe('task-execute over SNS', () => {
  test('createTask publishes a task-execute message with action and taskType attributes', async () => {
    const task = await createTask('OK');
    const publish = await until('the task-execute publish', () => taskExecutePublish(task.id));
    expect(publish).toEqual({
      TopicArn: TOPIC,
      Message: expect.any(String),
      MessageAttributes: {
        action: { DataType: 'String', StringValue: 'task-execute' },
        tenantCode: { DataType: 'String', StringValue: 'tenant-a' },
        taskType: { DataType: 'String', StringValue: 'OK' },
      },
    });
    expect(JSON.parse(publish.Message!)).toEqual({
      action: 'task-execute',
      id: task.id,
      pk: task.pk,
      sk: task.sk,
      tenantCode: 'tenant-a',
      type: 'OK',
      kind: 'TASK',
    });
    expect(await app.store.get(task)).toMatchObject({ status: 'QUEUED' });
    // Nothing runs it until the queue delivers it.
    expect(calls.get(task.id)).toBeUndefined();
  });
});

describe('the SQS worker', () => {
  test('long-polls TASK_QUEUE_URL for at most its free capacity', async () => {
    await until('a ReceiveMessage', () => sqs.commandCalls(ReceiveMessageCommand).length > 0);
    expect(sqs.commandCalls(ReceiveMessageCommand)[0]!.args[0].input).toEqual({
      QueueUrl: QUEUE_URL,
      MaxNumberOfMessages: CONCURRENCY,
      WaitTimeSeconds: 20,
      VisibilityTimeout: VISIBILITY_SECONDS,
      MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    });
    for (const call of sqs.commandCalls(ReceiveMessageCommand)) {
      expect(call.args[0].input.MaxNumberOfMessages).toBeGreaterThanOrEqual(1);
      expect(call.args[0].input.MaxNumberOfMessages).toBeLessThanOrEqual(CONCURRENCY);
    }
  });

  test('a received message runs its task to COMPLETED and is deleted by its receipt handle', async () => {
    const task = await createTask('OK', { hello: 'sqs' });
    const receipt = await deliverUntilDeleted(await envelopeOf(task.id));
    expect(deletes(receipt).map((call) => call.args[0].input)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: receipt }]);
    const stored = await app.store.get(task);
    expect(stored).toMatchObject({ status: 'COMPLETED', attempt: 1, attributes: { result: { echoed: { hello: 'sqs' } } } });
    expect(calls.get(task.id)).toBe(1);
  });

  test('a raw-delivery body (the message JSON itself) works the same', async () => {
    const task = await createTask('OK');
    const publish = await until('the task-execute publish', () => taskExecutePublish(task.id));
    await deliverUntilDeleted(publish.Message!);
    expect(await app.store.get(task)).toMatchObject({ status: 'COMPLETED' });
  });

  test('a failure with retries left keeps the message and delays it by the backoff (no delete)', async () => {
    const dispatch = vi.spyOn(app.worker.dispatcher, 'dispatch');
    const task = await createTask('FLAKY');
    const receipt = queue.deliver(await envelopeOf(task.id));
    const call = await until('the dispatch of the message', () => dispatch.mock.calls.findIndex(([key]) => key.sk === task.sk) + 1);
    const outcome = (await dispatch.mock.results[call - 1]!.value) as RunOutcome;
    expect(outcome.done).toBe(false);
    const retryInMs = (outcome as { retryInMs: number }).retryInMs;
    // retryDelayMs 4000, attempt 1: between 2 and 4 s.
    expect(retryInMs).toBeGreaterThanOrEqual(2000);
    expect(retryInMs).toBeLessThanOrEqual(4000);
    const delayed = { QueueUrl: QUEUE_URL, ReceiptHandle: receipt, VisibilityTimeout: Math.ceil(retryInMs / 1000) };
    await until('the retry delay', () => visibilityChanges(receipt).some((input) => input.VisibilityTimeout === delayed.VisibilityTimeout));
    expect(visibilityChanges(receipt).at(-1)).toEqual(delayed);
    expect(deletes(receipt)).toHaveLength(0);
    const stored = await app.store.get(task);
    expect(stored).toMatchObject({
      status: 'QUEUED',
      attempt: 1,
      attributes: { error: { name: 'Error', message: 'flaky failure', attempt: 1 } },
    });
    expect(stored!.nextAttemptAt).toEqual(expect.any(String));
    expect(stored!.attributes).not.toHaveProperty('nextAttemptAt');
    expect(calls.get(task.id)).toBe(1);
  });

  test('visibility is renewed while a slow handler runs, then the message is deleted', async () => {
    const task = await createTask('SLOW');
    const body = await envelopeOf(task.id);
    slowReceivesFrom = sqs.commandCalls(ReceiveMessageCommand).length;
    slowReceipt = queue.deliver(body);
    await until('the DeleteMessage of the slow task', () => deletes(slowReceipt!).length > 0);
    const renewals = visibilityChanges(slowReceipt);
    expect(renewals.length).toBeGreaterThan(0);
    for (const renewal of renewals) {
      expect(renewal).toEqual({ QueueUrl: QUEUE_URL, ReceiptHandle: slowReceipt, VisibilityTimeout: VISIBILITY_SECONDS });
    }
    // Every renewal was sent before the delete.
    const sent = sqs.calls().map((call) => call.args[0] as { input: { ReceiptHandle?: string } });
    const deleteAt = sent.findIndex((command) => command instanceof DeleteMessageCommand && command.input.ReceiptHandle === slowReceipt);
    const renewalsAt = sent.flatMap((command, index) =>
      command instanceof ChangeMessageVisibilityCommand && command.input.ReceiptHandle === slowReceipt ? [index] : [],
    );
    expect(Math.max(...renewalsAt)).toBeLessThan(deleteAt);
    expect(await app.store.get(task)).toMatchObject({ status: 'COMPLETED', attributes: { result: 'slow done' } });
  });

  test('a redelivered message of a terminal task is deleted without running the handler again', async () => {
    const task = await createTask('OK');
    const body = await envelopeOf(task.id);
    await deliverUntilDeleted(body);
    const completed = await app.store.get(task);
    expect(completed).toMatchObject({ status: 'COMPLETED' });
    const again = await deliverUntilDeleted(body);
    expect(deletes(again)).toHaveLength(1);
    expect(calls.get(task.id)).toBe(1);
    expect(await app.store.get(task)).toEqual(completed);
  });

  test('a malformed message is deleted (it can never run)', async () => {
    const receipt = await deliverUntilDeleted('{ not json');
    expect(deletes(receipt)).toHaveLength(1);
    const other = await deliverUntilDeleted(
      JSON.stringify({ Type: 'Notification', Message: JSON.stringify({ action: 'task-status-changed' }) }),
    );
    expect(deletes(other)).toHaveLength(1);
  });
});

describe('Step Functions tasks through the queue', () => {
  let parent: Task;
  let name: string;

  test('a task-execute message starts the execution with indexes, not inputs, and writes the sub-tasks', async () => {
    parent = await createSfnTask('ITEM', [{ n: 1 }, { n: 2 }, { n: 3 }]);
    name = executionName(parent.id);
    const publish = await until('the task-execute publish', () => taskExecutePublish(parent.id));
    expect(JSON.parse(publish.Message!)).toMatchObject({ action: 'task-execute', id: parent.id, kind: 'SFN_TASK', type: 'ITEM' });
    expect(publish.MessageAttributes?.taskType).toEqual({ DataType: 'String', StringValue: 'ITEM' });

    await deliverUntilDeleted(snsEnvelope(publish));
    expect(starts(name)).toHaveLength(1);
    const start = starts(name)[0]!;
    expect({ ...start, input: JSON.parse(start.input!) }).toEqual({
      stateMachineArn: STATE_MACHINE,
      name,
      input: { parentId: parent.id, indexes: [0, 1, 2], maxConcurrency: SFN_CONCURRENCY },
    });
    const subTasks = await subTasksOf(parent.id);
    expect(subTasks.map((sub) => [sub.subTaskIndex, sub.input, sub.parentId])).toEqual([
      [0, { n: 1 }, parent.id],
      [1, { n: 2 }, parent.id],
      [2, { n: 3 }, parent.id],
    ]);
    expect(await app.store.get(parent)).toMatchObject({
      status: 'PROCESSING',
      subTasksWritten: true,
      attributes: {
        subTaskCount: 3,
        subTaskSucceedCount: 0,
        subTaskFailedCount: 0,
        subTasks: subTasks.map((sub) => ({ pk: sub.pk, sk: sub.sk, status: 'CREATED' })),
      },
    });
  });

  test('a second delivery of the same message starts the same execution name again (idempotent)', async () => {
    const before = await app.store.get(parent);
    await deliverUntilDeleted(await envelopeOf(parent.id));
    expect(starts(name)).toHaveLength(2);
    expect(starts(name)[1]).toEqual(starts(name)[0]);
    expect(await subTasksOf(parent.id)).toHaveLength(3);
    expect(await app.store.get(parent)).toEqual(before);
  });

  test('cancelTask stops the execution by its derived ARN', async () => {
    const res = await app.gql(CANCEL, { id: parent.id });
    expect(res.errors).toBeUndefined();
    expect(res.data!.cancelTask).toMatchObject({ status: 'FAILED', attributes: { error: { code: 'CANCELLED' } } });
    const stops = sfn.commandCalls(StopExecutionCommand).map((call) => call.args[0].input);
    expect(stops).toEqual([
      { executionArn: `arn:aws:states:${REGION}:${ACCOUNT}:execution:sub-tasks:${name}`, cause: 'CANCELLED', error: 'TaskCancelled' },
    ]);
    expect((await subTasksOf(parent.id)).map((sub) => sub.status)).toEqual(['FAILED', 'FAILED', 'FAILED']);
  });
});

// ---------------------------------------------------------------------------
describe('Lambda handlers', () => {
  test('createSqsHandler reports only the records to retry as batchItemFailures', async () => {
    const handler = createSqsHandler(app.worker.dispatcher, { sqs: sqsClient, logger: silent });
    const ok = await createTask('OK', { lambda: 1 });
    const raw = await createTask('OK', { lambda: 2 });
    const flaky = await createTask('FLAKY');
    const record = (messageId: string, body: string) => ({
      messageId,
      body,
      receiptHandle: `lambda-${messageId}-${randomUUID()}`,
      eventSourceARN: QUEUE_ARN,
    });
    const records = [
      record('ok', await envelopeOf(ok.id)),
      record('raw', (await until('raw publish', () => taskExecutePublish(raw.id))).Message!),
      record('flaky', await envelopeOf(flaky.id)),
      record('malformed', 'not json at all'),
      // A key that cannot be a task's (a type of 1,100 characters): dropped like a malformed message, never sent to storage.
      record('broken', JSON.stringify({ action: 'task-execute', pk: 'TASK#tenant-a', sk: `OK#${'x'.repeat(1100)}` })),
    ];

    const response = await handler({ Records: records });
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'flaky' }] });
    expect(await app.store.get(ok)).toMatchObject({ status: 'COMPLETED', attributes: { result: { echoed: { lambda: 1 } } } });
    expect(await app.store.get(raw)).toMatchObject({ status: 'COMPLETED' });
    expect(await app.store.get(flaky)).toMatchObject({ status: 'QUEUED', attempt: 1 });
    // The retry delay is set on the record to retry (queue URL derived from its eventSourceARN); nothing else is touched.
    const [delayed] = visibilityChanges(records[2]!.receiptHandle);
    expect(delayed).toEqual({ QueueUrl: QUEUE_URL, ReceiptHandle: records[2]!.receiptHandle, VisibilityTimeout: expect.any(Number) });
    expect(delayed!.VisibilityTimeout).toBeGreaterThanOrEqual(2);
    expect(delayed!.VisibilityTimeout).toBeLessThanOrEqual(4);
    for (const other of [records[0]!, records[1]!, records[3]!, records[4]!]) {
      expect(visibilityChanges(other.receiptHandle)).toEqual([]);
    }
    // Lambda deletes what succeeded: the handler itself deletes nothing.
    for (const each of records) expect(deletes(each.receiptHandle)).toEqual([]);

    // The same batch again: the completed tasks are not run twice.
    const again = await handler({ Records: [records[0]!, records[1]!] });
    expect(again).toEqual({ batchItemFailures: [] });
    expect(calls.get(ok.id)).toBe(1);
    expect(calls.get(raw.id)).toBe(1);
  });

  test('createSubTaskRunnerHandler runs sub-tasks idempotently and settle-parent settles the parent once', async () => {
    const parent = await createSfnTask('ITEM', [{ n: 10 }, { n: 20 }, { n: 30 }]);
    await deliverUntilDeleted(await envelopeOf(parent.id));
    await until('the StartExecution', () => starts(executionName(parent.id)).length === 1);
    const handler = createSubTaskRunnerHandler(app.worker.stepFunctions);
    const [sub0, , sub2] = await subTasksOf(parent.id);

    // Events the state machine never sends are refused.
    for (const bad of [
      { action: 'run-sub-task', parentId: parent.id },
      { action: 'run-sub-task', parentId: parent.id, index: -1 },
      { action: 'explode', parentId: parent.id },
      { action: 'settle-parent' },
      null,
    ]) {
      await expect(handler(bad as unknown as SubTaskEvent)).rejects.toMatchObject({ name: 'InvalidSubTaskEvent' });
    }

    const run = (index: number) => handler({ action: 'run-sub-task', parentId: parent.id, index });
    expect(await run(0)).toEqual({ index: 0, status: 'COMPLETED' });
    expect(await app.store.get(sub0!)).toMatchObject({ status: 'COMPLETED', attributes: { result: { doubled: 20 } } });
    const afterFirst = await app.store.get(parent);
    expect(afterFirst).toMatchObject({
      status: 'PROCESSING',
      attributes: { subTaskCount: 3, subTaskRunningCount: 0, subTaskSucceedCount: 1, subTaskFailedCount: 0 },
    });

    // A duplicate invocation (a Map retry, a redelivery) changes nothing.
    expect(await run(0)).toEqual({ index: 0, status: 'COMPLETED' });
    expect(calls.get(sub0!.id)).toBe(1);
    expect(await app.store.get(parent)).toEqual(afterFirst);

    expect(await run(1)).toEqual({ index: 1, status: 'COMPLETED' });
    // Sub-task 2 ends another way (cancelled): counted, and with every sub-task terminal the parent settles (policy CONTINUE).
    const cancelled = await app.gql(CANCEL, { id: sub2!.id });
    expect(cancelled.errors).toBeUndefined();
    const settled = await app.store.get(parent);
    expect(settled).toMatchObject({
      status: 'COMPLETED',
      attributes: { subTaskCount: 3, subTaskRunningCount: 0, subTaskSucceedCount: 2, subTaskFailedCount: 1 },
    });
    // The cancelled sub-task's iteration still runs: it changes nothing.
    expect(await run(2)).toEqual({ index: 2, status: 'FAILED' });
    expect(calls.get(sub2!.id)).toBeUndefined();

    // The state machine's last state finds the parent settled and leaves it as it is.
    expect(await handler({ action: 'settle-parent', parentId: parent.id })).toEqual({ status: 'COMPLETED' });
    expect(await app.store.get(parent)).toEqual(settled);
  });

  test('the bootstrap builds both handlers from the environment', async () => {
    expect(() => loadLambdaConfig({ SNS_TOPIC_ARN: TOPIC, SFN_TASK_ARN: STATE_MACHINE })).toThrow(/TASKS_TABLE/);
    expect(() => loadLambdaConfig({ TASKS_TABLE: 'tasks', SFN_TASK_ARN: STATE_MACHINE })).toThrow(/SNS_TOPIC_ARN/);
    expect(() => loadLambdaConfig({ TASKS_TABLE: 'tasks', SNS_TOPIC_ARN: TOPIC })).toThrow(/SFN_TASK_ARN/);

    // The Lambda's DynamoDB client takes credentials from the default chain: dynalite accepts any.
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'local');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'local');
    const lambda = await createLambdaHandlers(
      {
        TASKS_TABLE: 'tasks',
        DYNAMODB_ENDPOINT: app.dynamoEndpoint,
        AWS_REGION: REGION,
        SNS_TOPIC_ARN: TOPIC,
        SFN_TASK_ARN: STATE_MACHINE,
        TASK_QUEUE_URL: QUEUE_URL,
        LOG_LEVEL: 'silent',
      },
      { sns: snsClient, sfn: sfnClient, sqs: sqsClient, handlers, subTaskHandlers },
    );
    try {
      const task = await createTask('OK', { via: 'bootstrap' });
      const body = await envelopeOf(task.id);
      expect(await lambda.sqsHandler({ Records: [{ messageId: 'm1', body, receiptHandle: 'bootstrap-1' }] })).toEqual({
        batchItemFailures: [],
      });
      expect(await app.store.get(task)).toMatchObject({ status: 'COMPLETED', attributes: { result: { echoed: { via: 'bootstrap' } } } });

      const parent = await createSfnTask('ITEM', [{ n: 1 }]);
      expect(
        await lambda.sqsHandler({ Records: [{ messageId: 'm2', body: await envelopeOf(parent.id), receiptHandle: 'bootstrap-2' }] }),
      ).toEqual({ batchItemFailures: [] });
      expect(starts(executionName(parent.id))).toHaveLength(1);
      // A single sub-task: its run settles the parent itself; settle-parent then finds it done.
      expect(await lambda.subTaskRunner({ action: 'run-sub-task', parentId: parent.id, index: 0 })).toEqual({
        index: 0,
        status: 'COMPLETED',
      });
      expect(await lambda.subTaskRunner({ action: 'settle-parent', parentId: parent.id })).toEqual({ status: 'COMPLETED' });
      expect(await app.store.get(parent)).toMatchObject({ status: 'COMPLETED', attributes: { subTaskSucceedCount: 1 } });
    } finally {
      await lambda.services.stop();
      vi.unstubAllEnvs();
    }
  });
});

describe('message parsing', () => {
  test('SNS envelopes and raw bodies parse; anything else says why not', () => {
    const message = { action: 'task-execute', id: 'TASK#t#OK#01J', pk: 'TASK#t', sk: 'OK#01J', tenantCode: 't', type: 'OK', kind: 'TASK' };
    expect(parseTaskExecuteBody(JSON.stringify(message))).toEqual({ ok: true, message });
    expect(parseTaskExecuteBody(JSON.stringify({ Type: 'Notification', Message: JSON.stringify(message) }))).toEqual({ ok: true, message });
    expect(parseTaskExecuteBody('nope')).toMatchObject({ ok: false });
    expect(parseTaskExecuteBody(JSON.stringify({ ...message, action: 'other' }))).toMatchObject({ ok: false });
    expect(parseTaskExecuteBody(JSON.stringify({ ...message, sk: 'no-separator' }))).toMatchObject({ ok: false });
    expect(queueUrlOfArn(QUEUE_ARN)).toBe(QUEUE_URL);
  });
});

describe('startSqsWorker on its own', () => {
  /** A separate client and queue, and an executor the test releases by hand. */
  function rig(concurrency: number, receive?: (own: FakeQueue, input: ReceiveMessageCommandInput) => Promise<unknown>) {
    const client = new SQSClient({ region: REGION });
    const mock = mockClient(client);
    const own = new FakeQueue();
    mock.on(ReceiveMessageCommand).callsFake((input: ReceiveMessageCommandInput) => (receive ? receive(own, input) : own.receive(input)));
    const pending = new Map<string, (outcome: RunOutcome | Error) => void>();
    const executor: TaskDispatch = {
      dispatch: (key: TaskKey) =>
        new Promise<RunOutcome>((resolve, reject) =>
          pending.set(key.sk, (outcome) => (outcome instanceof Error ? reject(outcome) : resolve(outcome))),
        ),
    };
    const worker = startSqsWorker({
      client,
      queueUrl: QUEUE_URL,
      dispatcher: executor,
      logger: silent,
      concurrency,
      visibilityTimeoutSeconds: 30,
      extendEveryMs: 60_000,
      receiveErrorDelayMs: 5,
    });
    const body = (code: string) =>
      JSON.stringify({
        action: 'task-execute',
        pk: 'TASK#t',
        sk: `OK#${code}`,
        id: `TASK#t#OK#${code}`,
        tenantCode: 't',
        type: 'OK',
        kind: 'TASK',
      });
    const receives = () => mock.commandCalls(ReceiveMessageCommand).map((call) => call.args[0].input);
    const commandsFor = (receipt: string) =>
      mock
        .calls()
        .map((call) => call.args[0] as { constructor: { name: string }; input: { ReceiptHandle?: string } })
        .filter((command) => command.input.ReceiptHandle === receipt)
        .map((command) => ({ command: command.constructor.name, ...command.input }));
    return { mock, own, pending, worker, body, receives, commandsFor };
  }

  test('asks for no more than its free capacity and stops receiving while full', async () => {
    const { own, pending, worker, body, receives } = rig(2);
    await until('a receive', () => receives().length > 0);
    expect(receives()[0]).toMatchObject({ MaxNumberOfMessages: 2, VisibilityTimeout: 30, WaitTimeSeconds: 20 });
    own.deliver(body('A'));
    await until('A running', () => pending.has('OK#A'));
    await until('a receive for the one free slot', () => receives().some((input) => input.MaxNumberOfMessages === 1));
    own.deliver(body('B'));
    await until('B running', () => pending.has('OK#B'));
    // Full: the loop waits for a slot instead of receiving.
    const whileFull = receives().length;
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(receives().length).toBeLessThanOrEqual(whileFull + 1);
    pending.get('OK#A')!({ done: true });
    pending.get('OK#B')!({ done: true });
    await worker.stop();
    for (const input of receives()) expect([1, 2]).toContain(input.MaxNumberOfMessages);
  });

  test('an unexpected error leaves the message alone; a retry clamps the delay to SQS limits', async () => {
    const { own, pending, worker, body, commandsFor } = rig(4);
    const failing = own.deliver(body('FAIL'));
    const later = own.deliver(body('LATER'));
    const far = own.deliver(body('FAR'));
    await until('all three running', () => pending.has('OK#FAIL') && pending.has('OK#LATER') && pending.has('OK#FAR'));
    pending.get('OK#FAIL')!(new Error('storage is down'));
    pending.get('OK#LATER')!({ done: false, retryInMs: 1001 });
    pending.get('OK#FAR')!({ done: false, retryInMs: 10 * 24 * 3600 * 1000 });
    await worker.stop();
    expect(commandsFor(failing)).toEqual([]);
    expect(commandsFor(later)).toEqual([
      { command: 'ChangeMessageVisibilityCommand', QueueUrl: QUEUE_URL, ReceiptHandle: later, VisibilityTimeout: 2 },
    ]);
    expect(commandsFor(far)).toEqual([
      { command: 'ChangeMessageVisibilityCommand', QueueUrl: QUEUE_URL, ReceiptHandle: far, VisibilityTimeout: 43_200 },
    ]);
    expect([visibilitySecondsOf(0), visibilitySecondsOf(-5), visibilitySecondsOf(1), visibilitySecondsOf(1000)]).toEqual([0, 0, 1, 1]);
  });

  test('stop() aborts a receive that never answers and waits for the messages being handled', async () => {
    const { mock, own, pending, worker, body, receives, commandsFor } = rig(2);
    const receipt = own.deliver(body('RUNNING'));
    await until('the message running', () => pending.has('OK#RUNNING'));
    // From now on a receive hangs, like a long poll on an empty queue.
    mock.on(ReceiveMessageCommand).callsFake(() => new Promise(() => {}));
    const hangingFrom = receives().length;
    await until('a hanging receive', () => receives().length > hangingFrom);
    let stopped = false;
    void worker.stop().then(() => (stopped = true));
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    pending.get('OK#RUNNING')!({ done: true });
    await until('stop() to return', () => stopped, undefined, 5_000);
    expect(commandsFor(receipt)).toEqual([{ command: 'DeleteMessageCommand', QueueUrl: QUEUE_URL, ReceiptHandle: receipt }]);
    const after = receives().length;
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(receives().length).toBe(after);
  });

  test('a failed receive is retried after a pause', async () => {
    let failures = 0;
    const { own, pending, worker, body, receives } = rig(1, async (queue, input) => {
      if (failures++ === 0) throw new Error('throttled');
      return queue.receive(input);
    });
    own.deliver(body('AFTER'));
    await until('the message after the failed receive', () => pending.has('OK#AFTER'));
    expect(receives().length).toBeGreaterThanOrEqual(2);
    pending.get('OK#AFTER')!({ done: true });
    await worker.stop();
  });
});
