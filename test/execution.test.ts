import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Logger } from '../src/logger.js';
import { NonRetryableError, type HandlerContext, type HandlerMap } from '../src/worker/handlers.js';
import { parseTaskId } from '../src/tasks/keys.js';
import type { Task } from '../src/tasks/task.js';
import { CREATE_TASK, GET_TASK, errorCode, startTestApp, type TestApp } from './helpers/app.js';
import { until } from './helpers/wait.js';
import { subscribeWs, wsClient, type Collected } from './helpers/live.js';

/**
 * Task execution end to end: tasks created over GraphQL are queued and run by
 * the in-process worker; every transition is observed through a real
 * graphql-ws subscription.
 */

const CANCEL_TASK = `mutation($id: ID!) { cancelTask(id: $id) { id status version attributes } }`;

/** A promise with its resolver (await it through `within`, which bounds the wait). */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
async function within<T>(what: string, promise: Promise<T>, timeoutMs = 10_000): Promise<T> {
  let timer!: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every call of a test handler: which task, which attempt. */
const calls: Record<string, { id: string; attempt: number }[]> = {};
const record = (task: Task, ctx: HandlerContext) => (calls[task.type] ??= []).push({ id: task.id, attempt: ctx.attempt });
const callsOf = (type: string, id: string) => (calls[type] ?? []).filter((call) => call.id === id);

const cancelProbe = { started: deferred(), ended: deferred<{ aborted: boolean }>() };
const progressCancelProbe = { waiting: deferred(), ended: deferred<{ aborted: boolean }>() };

const handlers: HandlerMap = {
  EXEC_OK: (task, ctx) => {
    record(task, ctx);
    return { doubled: (task.input as { n: number }).n * 2 };
  },
  EXEC_PROGRESS: async (task, ctx) => {
    record(task, ctx);
    // A burst: one write carrying the latest value (throttled).
    const first = ctx.progress({ step: 1 });
    for (let step = 2; step <= 10; step++) void ctx.progress({ step });
    await first;
    // Awaited one by one: each is written.
    for (let step = 11; step <= 13; step++) await ctx.progress({ step });
    return 'done';
  },
  EXEC_FAIL: {
    handler: (task, ctx) => {
      record(task, ctx);
      throw new Error(`boom ${ctx.attempt}`);
    },
    maxAttempts: 3,
    retryDelayMs: 20,
  },
  EXEC_FATAL: {
    handler: (task, ctx) => {
      record(task, ctx);
      throw new NonRetryableError('bad input');
    },
    maxAttempts: 3,
    retryDelayMs: 20,
  },
  EXEC_CANCEL: async (task, ctx) => {
    record(task, ctx);
    cancelProbe.started.resolve();
    try {
      await sleep(20_000, undefined, { signal: ctx.signal });
    } catch {
      // aborted
    }
    cancelProbe.ended.resolve({ aborted: ctx.signal.aborted });
    return 'finished after cancel';
  },
};

/** Records warn lines (the failure alarm is logged as `task failed`). */
const warnings: unknown[][] = [];
const logger: Logger = {
  debug: () => {},
  info: () => {},
  warn: (...args: unknown[]) => void warnings.push(args),
  error: () => {},
};
const alarmsFor = (id: string) =>
  warnings.filter(([message, data]) => message === 'task failed' && (data as { id?: string } | undefined)?.id === id);

let app: TestApp;
let token: string;
beforeAll(async () => {
  app = await startTestApp({ TASK_EXECUTION: 'true', EXAMPLE_HANDLERS: 'true', PROGRESS_INTERVAL_MS: '20' }, { handlers, logger });
  token = await app.token('exec', { userId: 'alice' });
});

/** Live subscriptions this file holds open; closed after each test. */
const open = new Set<Collected>();
const gauge = () => app.metrics.subscriptions.get();

/** A live subscription, active on the server before this returns. */
async function watch(filter: Record<string, unknown>): Promise<Collected> {
  // Wait for earlier subscriptions to be gone, so this one's start cannot be confused with their end.
  await until('earlier subscriptions to end', gauge, (n) => n === open.size);
  const stream = subscribeWs(wsClient(app.url, token), { filter });
  open.add(stream);
  await until('the subscription to be active', gauge, (n) => n === open.size);
  return stream;
}

afterEach(async () => {
  for (const stream of open) stream.stop();
  open.clear();
  await until('subscriptions to end', gauge, (n) => n === 0);
});

async function create(taskType: string, input: unknown = {}) {
  const res = await app.gql(CREATE_TASK, { input: { taskType, input } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.createTask as { id: string; status: string; version: number; pk: string; sk: string };
}

const getTask = async (id: string) => (await app.gql(GET_TASK, { id }, token)).data!.task;

/** The live events of one task, once one of them is in `status` (bounded). */
async function eventsUntil(stream: Collected, id: string, status: string, timeoutMs = 10_000) {
  const of = () => stream.events.filter((event) => event.task.id === id);
  await until(
    `${id} to reach ${status}`,
    () => of().map((e) => e.task.status),
    (statuses) => statuses.includes(status),
    timeoutMs,
  );
  return of();
}
const statusesOf = (events: any[]) => events.map((event) => event.task.status);

describe('running tasks', () => {
  test('a task with a handler goes CREATED → QUEUED → PROCESSING → COMPLETED with its result', async () => {
    const stream = await watch({ taskType: 'EXEC_OK' });
    const task = await create('EXEC_OK', { n: 21 });
    expect(task.status).toBe('CREATED');

    const events = await eventsUntil(stream, task.id, 'COMPLETED');
    stream.stop();
    expect(statusesOf(events)).toEqual(['CREATED', 'QUEUED', 'PROCESSING', 'COMPLETED']);
    expect(events.map((e) => [e.task.version, e.previousStatus, e.replayed])).toEqual([
      [1, null, false],
      [2, 'CREATED', false],
      [3, 'QUEUED', false],
      [4, 'PROCESSING', false],
    ]);
    expect(events[3].task).toMatchObject({ attributes: { result: { doubled: 42 } }, attempt: 1 });
    // The worker's bookkeeping is kept beside the attributes, never shown in them.
    expect(Object.keys(events[2].task.attributes)).toEqual([]);
    expect(events.map((e) => e.task.attempt)).toEqual([null, null, 1, 1]);
    expect(callsOf('EXEC_OK', task.id)).toEqual([{ id: task.id, attempt: 1 }]);
    expect(await getTask(task.id)).toMatchObject({ status: 'COMPLETED', attributes: { result: { doubled: 42 } } });
  });

  test('progress: throttled PROCESSING → PROCESSING events carrying the latest reported value', async () => {
    const stream = await watch({ taskType: 'EXEC_PROGRESS' });
    const task = await create('EXEC_PROGRESS');
    const events = await eventsUntil(stream, task.id, 'COMPLETED');
    stream.stop();

    const progress = events.filter((e) => e.previousStatus === 'PROCESSING' && e.task.status === 'PROCESSING');
    // The burst of ten calls was written once, with its last value; the awaited calls each once.
    expect(progress.map((e) => e.task.attributes.progress)).toEqual([{ step: 10 }, { step: 11 }, { step: 12 }, { step: 13 }]);
    expect(statusesOf(events)).toEqual(['CREATED', 'QUEUED', 'PROCESSING', ...progress.map(() => 'PROCESSING'), 'COMPLETED']);
    expect(events.at(-1).task.attributes).toMatchObject({ result: 'done', progress: { step: 13 } });
  });

  test('a failing handler is retried up to maxAttempts, then FAILED with its error and an alarm', async () => {
    const stream = await watch({ taskType: 'EXEC_FAIL' });
    const task = await create('EXEC_FAIL');
    const events = await eventsUntil(stream, task.id, 'FAILED');
    stream.stop();

    expect(statusesOf(events)).toEqual([
      'CREATED',
      'QUEUED',
      'PROCESSING',
      'ERRORED',
      'QUEUED',
      'PROCESSING',
      'ERRORED',
      'QUEUED',
      'PROCESSING',
      'FAILED',
    ]);
    expect(events.filter((e) => e.task.status === 'ERRORED').map((e) => e.task.attributes.error)).toEqual([
      { name: 'Error', message: 'boom 1', attempt: 1 },
      { name: 'Error', message: 'boom 2', attempt: 2 },
    ]);
    expect(events.at(-1).task.attributes.error).toEqual({ name: 'Error', message: 'boom 3', attempt: 3 });
    expect(callsOf('EXEC_FAIL', task.id).map((call) => call.attempt)).toEqual([1, 2, 3]);
    expect(alarmsFor(task.id)).toEqual([['task failed', { id: task.id, errorMessage: 'boom 3' }]]);
  });

  test('a NonRetryableError fails the task at once', async () => {
    const stream = await watch({ taskType: 'EXEC_FATAL' });
    const task = await create('EXEC_FATAL');
    const events = await eventsUntil(stream, task.id, 'FAILED');
    stream.stop();

    expect(statusesOf(events)).toEqual(['CREATED', 'QUEUED', 'PROCESSING', 'FAILED']);
    expect(events.at(-1).task.attributes.error).toEqual({ name: 'NonRetryableError', message: 'bad input', attempt: 1 });
    expect(callsOf('EXEC_FATAL', task.id)).toHaveLength(1);
    expect(alarmsFor(task.id)).toHaveLength(1);
  });

  test('a task type without a handler is queued and stays QUEUED', async () => {
    const orphans = await watch({ taskType: 'EXEC_NOBODY' });
    const orphan = await create('EXEC_NOBODY');
    await eventsUntil(orphans, orphan.id, 'QUEUED');
    // The worker went on to later work while the orphan stayed behind.
    const later = await create('EXEC_OK', { n: 1 });
    await until(
      'a later task to complete',
      () => getTask(later.id),
      (task) => task.status === 'COMPLETED',
    );
    orphans.stop();
    expect(statusesOf(orphans.events.filter((e) => e.task.id === orphan.id))).toEqual(['CREATED', 'QUEUED']);
    expect(await getTask(orphan.id)).toMatchObject({ status: 'QUEUED', version: 2, updatedBy: 'system:worker' });
    expect(app.worker.runner.runningCount).toBe(0);
  });
});

describe('the example handlers (EXAMPLE_HANDLERS=true)', () => {
  test('ECHO completes with its input as the result', async () => {
    const input = { text: 'hello', list: [1, 2, 3], nested: { ok: true } };
    const stream = await watch({ taskType: 'ECHO' });
    const task = await create('ECHO', input);
    const events = await eventsUntil(stream, task.id, 'COMPLETED');
    stream.stop();
    expect(statusesOf(events)).toEqual(['CREATED', 'QUEUED', 'PROCESSING', 'COMPLETED']);
    expect(events.at(-1).task.attributes.result).toEqual(input);
  });

  test('ECHO with an error string retries, then FAILs; with retryable: false it fails at once', async () => {
    const stream = await watch({ taskType: 'ECHO' });
    const [retried, fatal] = [await create('ECHO', { error: 'x' }), await create('ECHO', { error: 'y', retryable: false })];
    const fatalEvents = await eventsUntil(stream, fatal.id, 'FAILED');
    const retriedEvents = await eventsUntil(stream, retried.id, 'FAILED', 15_000);
    stream.stop();

    expect(statusesOf(retriedEvents).filter((s) => s === 'PROCESSING')).toHaveLength(3);
    expect(statusesOf(retriedEvents).filter((s) => s === 'ERRORED')).toHaveLength(2);
    expect(retriedEvents.at(-1).task.attributes.error).toEqual({ name: 'Error', message: 'x', attempt: 3 });
    expect(statusesOf(fatalEvents)).toEqual(['CREATED', 'QUEUED', 'PROCESSING', 'FAILED']);
    expect(fatalEvents.at(-1).task.attributes.error).toEqual({ name: 'NonRetryableError', message: 'y', attempt: 1 });
  });

  test('SLEEP reports { current, total } progress as it goes (throttled) and completes with the last value', async () => {
    const stream = await watch({ taskType: 'SLEEP' });
    const task = await create('SLEEP', { ms: 100, steps: 5 });
    const events = await eventsUntil(stream, task.id, 'COMPLETED');
    stream.stop();
    const progress = events
      .filter((e) => e.previousStatus === 'PROCESSING' && e.task.status === 'PROCESSING')
      .map((e) => e.task.attributes.progress);
    // SLEEP does not await its progress calls, so values inside one throttle window coalesce.
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((p) => p.total === 5)).toBe(true);
    const currents = progress.map((p) => p.current);
    expect(currents).toEqual([...currents].sort((a, b) => a - b));
    expect(new Set(currents).size).toBe(currents.length);
    expect(events.at(-1).task.attributes).toMatchObject({ result: { sleptMs: 100 }, progress: { current: 5, total: 5 } });
  });
});

describe('cancelTask', () => {
  test("fires a running handler's AbortSignal; the task ends FAILED CANCELLED by the caller", async () => {
    const stream = await watch({ taskType: 'EXEC_CANCEL' });
    const task = await create('EXEC_CANCEL');
    await within('the handler to start', cancelProbe.started.promise);
    await eventsUntil(stream, task.id, 'PROCESSING');

    const res = await app.gql(CANCEL_TASK, { id: task.id }, token);
    expect(res.errors).toBeUndefined();
    expect(res.data!.cancelTask).toMatchObject({
      id: task.id,
      status: 'FAILED',
      attributes: { error: { code: 'CANCELLED', by: 'alice' } },
    });
    expect(await within('the handler to end', cancelProbe.ended.promise)).toEqual({ aborted: true });

    const events = await eventsUntil(stream, task.id, 'FAILED');
    await until(
      'the run to be let go',
      () => app.worker.runner.runningCount,
      (n) => n === 0,
    );
    // The handler's late return wrote nothing over the cancellation.
    const stored = await getTask(task.id);
    stream.stop();
    expect(stored).toMatchObject({ status: 'FAILED', version: res.data!.cancelTask.version, updatedBy: 'alice' });
    expect(stored.attributes.result).toBeUndefined();
    expect(statusesOf(events)).toEqual(['CREATED', 'QUEUED', 'PROCESSING', 'FAILED']);
    expect(callsOf('EXEC_CANCEL', task.id)).toHaveLength(1);
    expect(alarmsFor(task.id)).toHaveLength(1);
  });

  test('a terminal task cannot be cancelled: INVALID_TRANSITION', async () => {
    const task = await create('EXEC_OK', { n: 2 });
    await until(
      'the task to complete',
      () => getTask(task.id),
      (t) => t.status === 'COMPLETED',
    );
    const res = await app.gql(CANCEL_TASK, { id: task.id }, token);
    expect(errorCode(res)).toBe('INVALID_TRANSITION');
    expect(await getTask(task.id)).toMatchObject({ status: 'COMPLETED', version: 4 });
  });
});

describe('cancelTask while the handler awaits a progress write', () => {
  let slow: TestApp;
  beforeAll(async () => {
    // A long progress interval: the handler's progress call stays pending until the run ends.
    slow = await startTestApp(
      { TASK_EXECUTION: 'true', PROGRESS_INTERVAL_MS: '60000' },
      {
        handlers: {
          EXEC_PROGRESS_WAIT: async (_task, ctx) => {
            const pending = ctx.progress({ step: 1 });
            progressCancelProbe.waiting.resolve();
            await pending;
            progressCancelProbe.ended.resolve({ aborted: ctx.signal.aborted });
          },
        },
        logger,
      },
    );
  });

  test('the pending progress call returns, so the handler can see its AbortSignal and end', async () => {
    const res = await slow.gql(CREATE_TASK, { input: { taskType: 'EXEC_PROGRESS_WAIT', input: {} } }, token);
    const id = res.data!.createTask.id as string;
    await within('the handler to call progress', progressCancelProbe.waiting.promise);
    const cancelled = await slow.gql(CANCEL_TASK, { id }, token);
    expect(cancelled.data!.cancelTask).toMatchObject({ status: 'FAILED', attributes: { error: { code: 'CANCELLED' } } });
    // Before the fix in ClaimedRun.stop() this promise never settled: the handler hung in `await ctx.progress()`.
    expect(await within('the handler to return after the cancellation', progressCancelProbe.ended.promise, 5_000)).toEqual({
      aborted: true,
    });
    await until(
      'the run to be let go',
      () => slow.worker.runner.runningCount,
      (n) => n === 0,
    );
    // The progress value was never written over the cancellation.
    expect((await slow.store.get(parseTaskId(id)!))!.attributes.progress).toBeUndefined();
  });
});

describe('shutdown', () => {
  test('a handler still running at shutdown is aborted after SHUTDOWN_GRACE_MS; stop() returns', async () => {
    const started = deferred();
    const ended = deferred<{ aborted: boolean }>();
    const stuck = await startTestApp(
      { TASK_EXECUTION: 'true', SHUTDOWN_GRACE_MS: '100' },
      {
        handlers: {
          STUCK: (_task, ctx) =>
            new Promise((resolve) => {
              started.resolve();
              ctx.signal.addEventListener('abort', () => {
                ended.resolve({ aborted: true });
                resolve('late');
              });
            }),
        },
      },
    );
    const res = await stuck.gql(CREATE_TASK, { input: { taskType: 'STUCK', input: {} } });
    const id = res.data!.createTask.id as string;
    await within('the handler to start', started.promise);
    await within('stop() to return', stuck.stop());
    expect(await within('the handler to end', ended.promise)).toEqual({ aborted: true });
    expect(parseTaskId(id)?.type).toBe('STUCK');
  });
});
