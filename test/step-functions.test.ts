import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startApp, type RunningApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import type { Logger } from '../src/logger.js';
import { parseTaskId } from '../src/tasks/keys.js';
import { silentPublisher } from '../src/tasks/publisher.js';
import { MAX_LISTED_SUB_TASKS, subTasksOf } from '../src/tasks/sub-tasks.js';
import { TaskService } from '../src/tasks/task-service.js';
import type { Actor, Task } from '../src/tasks/task.js';
import type { LocalExecutions } from '../src/worker/local-executions.js';
import { HandlerRegistry, type TaskHandler } from '../src/worker/handlers.js';
import { StepFunctionTasks } from '../src/worker/step-function-tasks.js';
import { executionName, type ExecutionInput } from '../src/worker/sub-task-executions.js';
import { CREATE_SFN_TASK, CREATE_TASK, GET_TASK, LIST_SUB_TASKS, TEST_SECRET, startTestApp, type TestApp } from './helpers/app.js';
import { until } from './helpers/wait.js';
import { subscribeWs, wsClient, type Collected } from './helpers/live.js';

/**
 * Step Functions tasks end to end: the shipped state machine under the local
 * interpreter fans a parent out into sub-tasks run by the test's handlers.
 */

const CANCEL_TASK = `mutation($id: ID!) { cancelTask(id: $id) { id status version attributes } }`;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ASL_PATH = join(ROOT, 'statemachine/sub-tasks.asl.json');

const silent: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** Settling many sub-tasks on a busy 2-core machine takes a while. */
const SETTLE_MS = 12_000;

/**
 * A sub-task handler that counts its calls and how many run at once (entry to
 * exit, with a small async delay so runs overlap), failing the indexes `fails` picks.
 */
function tracked(fails: (index: number) => boolean = () => false, delayMs = 10) {
  const state = {
    calls: 0,
    inFlight: 0,
    maxInFlight: 0,
    indexes: [] as number[],
    handler: (async (task) => {
      state.calls++;
      state.indexes.push(task.subTaskIndex!);
      state.inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      try {
        await sleep(delayMs);
        const { i } = task.input as { i: number };
        if (fails(i)) throw new Error(`item ${i} failed`);
        return { doubled: i * 2 };
      } finally {
        state.inFlight--;
      }
    }) as TaskHandler,
  };
  return state;
}

const everySeventh = (i: number) => i % 7 === 6; // 6, 13, ..., 195: 28 of 200
const N = 200;
const FAILING = Array.from({ length: N }, (_, i) => i).filter(everySeventh).length;
const items = (n: number) => Array.from({ length: n }, (_, i) => ({ i }));

const sfn = {
  CONTINUE: tracked(everySeventh),
  FAIL_PARENT: tracked(everySeventh),
  FAIL_FAST: tracked(everySeventh),
  CANCEL: tracked(),
  DUP: tracked(),
};
let dupTaskCalls = 0;

let app: TestApp;
let token: string;
beforeAll(async () => {
  app = await startTestApp(
    { TASK_EXECUTION: 'true', SFN_MAX_CONCURRENCY: '4', PARENT_EVENT_WINDOW_MS: '100' },
    {
      subTaskHandlers: {
        SFN_CONTINUE: sfn.CONTINUE.handler,
        SFN_FAIL_PARENT: sfn.FAIL_PARENT.handler,
        SFN_FAIL_FAST: sfn.FAIL_FAST.handler,
        SFN_CANCEL: sfn.CANCEL.handler,
        SFN_DUP: sfn.DUP.handler,
      },
      handlers: {
        DUP_TASK: async () => {
          dupTaskCalls++;
          await sleep(30);
          return 'once';
        },
      },
    },
  );
  token = await app.token('sfn', { userId: 'carol' });
});

const open = new Set<Collected>();
afterEach(() => {
  for (const stream of open) stream.stop();
  open.clear();
});

const getTask = async (id: string) => (await app.gql(GET_TASK, { id }, token)).data!.task;

async function createSfn(taskType: string, input: unknown[], failurePolicy?: string) {
  const res = await app.gql(CREATE_SFN_TASK, { input: { taskType, input, failurePolicy } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.createStepFunctionTask as { id: string; status: string; attributes: Record<string, any> };
}

async function listSubTasks(parentId: string) {
  const all: any[] = [];
  let after: string | undefined;
  do {
    const res = await app.gql(LIST_SUB_TASKS, { parentId, first: 100, after }, token);
    expect(res.errors).toBeUndefined();
    all.push(...res.data!.subTasks.edges.map((edge: any) => edge.node));
    after = res.data!.subTasks.pageInfo.hasNextPage ? res.data!.subTasks.pageInfo.endCursor : undefined;
  } while (after);
  return all;
}

const countsOf = (task: { attributes: Record<string, any> }) => ({
  subTaskCount: task.attributes.subTaskCount,
  subTaskRunningCount: task.attributes.subTaskRunningCount,
  subTaskSucceedCount: task.attributes.subTaskSucceedCount,
  subTaskFailedCount: task.attributes.subTaskFailedCount,
});

/**
 * Waits until the parent is done changing: terminal with every sub-task counted and none running
 * or, failing that, unchanged for 1.5 s (so a parent stuck short of that fails the assertions that
 * follow, with their diff, rather than a timeout).
 */
async function settled(id: string, total = N) {
  let since = { version: -1, at: Date.now() };
  await until(
    `${id} to settle`,
    async () => {
      const task = await getTask(id);
      if (task.version !== since.version) since = { version: task.version, at: Date.now() };
      return {
        status: task.status,
        error: task.attributes.error,
        ...countsOf(task),
        stableMs: Date.now() - since.at,
        // A sweep (cancel, FAIL_FAST) writes the parent only when it ends: no change meanwhile is not "stuck".
        sweeping: (await app.store.get(parseTaskId(id)!))?.pendingSweep !== undefined,
      };
    },
    (task) =>
      (['COMPLETED', 'FAILED'].includes(task.status) &&
        task.subTaskRunningCount === 0 &&
        task.subTaskSucceedCount + task.subTaskFailedCount >= total) ||
      (task.stableMs > 1_500 && !task.sweeping),
    20_000,
  );
  return getTask(id);
}

/** The sub-task listing agrees with the parent's counters (soft: every mismatch is reported). */
function expectListingMatches(parent: { attributes: Record<string, any> }, subs: any[]) {
  expect(subs).toHaveLength(parent.attributes.subTaskCount);
  expect(subs.map((sub) => sub.subTaskIndex)).toEqual(subs.map((_, index) => index));
  expect.soft(subs.filter((sub) => !['COMPLETED', 'FAILED'].includes(sub.status))).toEqual([]);
  expect
    .soft(parent.attributes.subTaskSucceedCount, 'subTaskSucceedCount vs COMPLETED sub-tasks')
    .toBe(subs.filter((sub) => sub.status === 'COMPLETED').length);
  expect
    .soft(parent.attributes.subTaskFailedCount, 'subTaskFailedCount vs FAILED sub-tasks')
    .toBe(subs.filter((sub) => sub.status === 'FAILED').length);
  // As the original package writes it, with each sub-task's final status, up to its cap.
  expect
    .soft(parent.attributes.subTasks, 'attributes.subTasks')
    .toEqual(subs.slice(0, MAX_LISTED_SUB_TASKS).map((sub) => ({ pk: sub.pk, sk: sub.sk, status: sub.status })));
}

describe('failure policies (200 sub-tasks, every 7th fails, SFN_MAX_CONCURRENCY=4)', () => {
  test('CONTINUE: every sub-task runs, the parent COMPLETES with exact counts; parent events are coalesced', async () => {
    const parent = await createSfn('SFN_CONTINUE', items(N));
    expect(parent).toMatchObject({ status: 'CREATED', attributes: { failurePolicy: 'CONTINUE' } });
    const stream = subscribeWs(wsClient(app.url, token), { filter: { parentId: parent.id } });
    open.add(stream);

    const done = await settled(parent.id);
    expect(done.status).toBe('COMPLETED');
    expect(countsOf(done)).toEqual({
      subTaskCount: N,
      subTaskRunningCount: 0,
      subTaskSucceedCount: N - FAILING,
      subTaskFailedCount: FAILING,
    });
    expect(done.attributes.progress).toEqual({ current: N, total: N });
    expect(sfn.CONTINUE.calls).toBe(N);
    expect([...sfn.CONTINUE.indexes].sort((a, b) => a - b)).toEqual(items(N).map((item) => item.i));
    expect(sfn.CONTINUE.maxInFlight).toBeLessThanOrEqual(4);
    expect(sfn.CONTINUE.maxInFlight).toBeGreaterThan(1);

    const subs = await listSubTasks(parent.id);
    expectListingMatches(done, subs);
    for (const sub of subs) {
      if (everySeventh(sub.subTaskIndex)) {
        expect(sub).toMatchObject({ status: 'FAILED', attributes: { error: { message: `item ${sub.subTaskIndex} failed` } } });
      } else {
        expect(sub).toMatchObject({ status: 'COMPLETED', attributes: { result: { doubled: sub.subTaskIndex * 2 } } });
      }
    }

    // The subscription saw the parent reach its end; its events are few and in version order.
    const parentEvents = () => stream.events.filter((event) => event.task.id === parent.id);
    await until(
      'the parent COMPLETED event',
      () => parentEvents().map((e) => e.task.status),
      (s) => s.includes('COMPLETED'),
      SETTLE_MS,
    );
    const parentVersions = parentEvents().map((event) => event.task.version);
    expect(parentVersions).toEqual([...parentVersions].sort((a, b) => a - b));
    expect(new Set(parentVersions).size).toBe(parentVersions.length);
    const last = parentEvents().at(-1);
    expect(last.task.status).toBe('COMPLETED');
    expect(last.task.attributes.progress).toEqual({ current: N, total: N });
    const liveSubTaskEvents = stream.events.filter((event) => event.task.parentId === parent.id && !event.replayed);
    const liveParentEvents = parentEvents().filter((event) => !event.replayed);
    // Every sub-task moved at least twice (PROCESSING, then COMPLETED or FAILED); the parent's
    // ~400 counter changes went out as a handful of batched writes and events.
    expect(liveSubTaskEvents.length).toBeGreaterThanOrEqual(N);
    expect(liveParentEvents.length * 5).toBeLessThan(liveSubTaskEvents.length);
    // Counter changes are batched too: far fewer parent writes than the ~2N sub-task changes.
    expect(done.version).toBeLessThan(N);
    // Parent progress seen live never goes backwards.
    const progress = parentEvents().map((event) => event.task.attributes.progress?.current ?? 0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  test('FAIL_PARENT: every sub-task runs, then the parent FAILS with exact counts', async () => {
    const parent = await createSfn('SFN_FAIL_PARENT', items(N), 'FAIL_PARENT');
    const done = await settled(parent.id);
    expect(done.status).toBe('FAILED');
    expect(done.attributes.error).toMatchObject({ code: 'SUB_TASKS_FAILED' });
    expect(countsOf(done)).toEqual({
      subTaskCount: N,
      subTaskRunningCount: 0,
      subTaskSucceedCount: N - FAILING,
      subTaskFailedCount: FAILING,
    });
    expect(done.attributes.progress).toEqual({ current: N, total: N });
    expect(sfn.FAIL_PARENT.calls).toBe(N);
    expect(sfn.FAIL_PARENT.maxInFlight).toBeLessThanOrEqual(4);
    expectListingMatches(done, await listSubTasks(parent.id));
  });

  test('FAIL_FAST: the first failure fails the parent, unstarted sub-tasks are CANCELLED, the execution stops', async () => {
    const parent = await createSfn('SFN_FAIL_FAST', items(N), 'FAIL_FAST');
    const done = await settled(parent.id);
    // Soft: a parent short of its end is reported together with everything below.
    expect.soft(done.status).toBe('FAILED');
    expect.soft(done.attributes.error).toMatchObject({ code: 'SUB_TASK_FAILED' });
    expect.soft(done.attributes.subTaskCount).toBe(N);
    expect.soft(done.attributes.subTaskRunningCount).toBe(0);
    expect.soft(done.attributes.subTaskSucceedCount + done.attributes.subTaskFailedCount, 'succeeded + failed').toBe(N);
    expect.soft(done.attributes.progress).toEqual({ current: N, total: N });

    await until(
      'in-flight handlers to return',
      () => sfn.FAIL_FAST.inFlight,
      (n) => n === 0,
      SETTLE_MS,
    );
    // The embedded default runs executions under the local interpreter.
    const executions = app.worker.executions as LocalExecutions;
    await until(
      'the execution to stop',
      () => executions.isRunning(executionName(parent.id)),
      (running) => !running,
      SETTLE_MS,
    );
    const calls = sfn.FAIL_FAST.calls;
    expect(calls).toBeLessThan(N);
    expect(sfn.FAIL_FAST.maxInFlight).toBeLessThanOrEqual(4);

    const subs = await listSubTasks(parent.id);
    expectListingMatches(done, subs);
    const ran = new Set(sfn.FAIL_FAST.indexes);
    const unstarted = subs.filter((sub) => !ran.has(sub.subTaskIndex));
    expect(unstarted.length).toBe(N - calls);
    for (const sub of unstarted) expect(sub).toMatchObject({ status: 'FAILED', attributes: { error: { code: 'CANCELLED' } } });
    // The first failure was item 6: it FAILED with its own error.
    expect(subs[6]).toMatchObject({ status: 'FAILED', attributes: { error: { message: 'item 6 failed' } } });

    // Nothing runs any more.
    await sleep(300);
    expect(sfn.FAIL_FAST.calls).toBe(calls);
    expect(countsOf(await getTask(parent.id))).toEqual(countsOf(done));
  });
});

describe('cancelTask on a running Step Functions task', () => {
  test('stops new sub-tasks; the parent is FAILED CANCELLED; unfinished sub-tasks FAILED; counts exact', async () => {
    const parent = await createSfn('SFN_CANCEL', items(N));
    await until(
      'some sub-tasks to run',
      () => sfn.CANCEL.calls,
      (n) => n >= 20,
      SETTLE_MS,
    );

    // A client told CONFLICT tries again; every refusal is recorded and must not have happened (asserted last,
    // so the rest of the cancellation is checked too).
    const refusals: unknown[] = [];
    let res = await app.gql(CANCEL_TASK, { id: parent.id }, token);
    for (let retry = 0; res.errors && retry < 20; retry++) {
      refusals.push(res.errors[0]!.extensions?.code);
      res = await app.gql(CANCEL_TASK, { id: parent.id }, token);
    }
    expect(res.errors).toBeUndefined();
    expect(res.data!.cancelTask).toMatchObject({
      status: 'FAILED',
      attributes: { error: { code: 'CANCELLED', by: 'carol' } },
    });

    const done = await settled(parent.id);
    expect(done.status).toBe('FAILED');
    expect(done.attributes.error).toMatchObject({ code: 'CANCELLED', by: 'carol' });
    expect.soft(done.attributes.subTaskRunningCount).toBe(0);
    expect.soft(done.attributes.subTaskSucceedCount + done.attributes.subTaskFailedCount, 'succeeded + failed').toBe(N);
    await until(
      'in-flight handlers to return',
      () => sfn.CANCEL.inFlight,
      (n) => n === 0,
      SETTLE_MS,
    );
    const calls = sfn.CANCEL.calls;
    expect(calls).toBeLessThan(N);
    expect(sfn.CANCEL.maxInFlight).toBeLessThanOrEqual(4);

    const subs = await listSubTasks(parent.id);
    expectListingMatches(done, subs);
    expect(done.attributes.subTaskSucceedCount).toBeLessThanOrEqual(calls);
    const ran = new Set(sfn.CANCEL.indexes);
    const unstarted = subs.filter((sub) => !ran.has(sub.subTaskIndex));
    expect(unstarted.length).toBe(N - calls);
    for (const sub of unstarted) expect(sub).toMatchObject({ status: 'FAILED', attributes: { error: { code: 'CANCELLED' } } });

    // It stopped growing.
    await sleep(300);
    expect(sfn.CANCEL.calls).toBe(calls);
    expect(countsOf(await getTask(parent.id))).toEqual(countsOf(done));
    // cancelTask must not lose to the parent's own counter updates.
    expect(refusals, 'cancelTask refused').toEqual([]);
  });
});

describe('duplicate delivery', () => {
  const actor: Actor = { userId: 'carol', tenantCode: 'sfn', isAdmin: false };
  /** Writes without publishing: nothing is queued, so only the test delivers. */
  const quiet = () => new TaskService({ store: app.store, publisher: silentPublisher, logger: silent });

  test('execute() twice at once for one queued task runs its handler once', async () => {
    const tasks = quiet();
    const created = await tasks.createTask(actor, { taskType: 'DUP_TASK', input: {} });
    const queued = await tasks.updateStatus(actor, { id: created.id, status: 'QUEUED' });
    const key = { pk: queued.pk, sk: queued.sk };

    const outcomes = await Promise.all([app.worker.dispatcher.dispatch(key), app.worker.dispatcher.dispatch(key)]);
    expect(outcomes.filter((outcome) => outcome.done)).not.toHaveLength(0);
    expect(dupTaskCalls).toBe(1);
    const stored = await app.store.get(key);
    expect(stored).toMatchObject({ status: 'COMPLETED', version: 4, attempt: 1, attributes: { result: 'once' } });

    // A late redelivery of a finished task changes nothing.
    expect(await app.worker.dispatcher.dispatch(key)).toEqual({ done: true });
    expect(dupTaskCalls).toBe(1);
    expect((await app.store.get(key))!.version).toBe(4);
  });

  test('run-sub-task twice at once for a fresh sub-task runs its handler once and counts it once', async () => {
    const tasks = quiet();
    // A started parent (as StepFunctionTasks.start leaves it) without an execution: only the test runs its sub-task.
    let parent: Task = await tasks.createStepFunctionTask(actor, { taskType: 'SFN_DUP', input: [{ i: 0 }] });
    parent = await tasks.updateStatus(actor, {
      id: parent.id,
      status: 'PROCESSING',
      attributes: { subTaskCount: 1, subTaskRunningCount: 0, subTaskSucceedCount: 0, subTaskFailedCount: 0 },
    });
    await app.store.putSubTasks(subTasksOf(parent));
    await tasks.updateStatus(actor, { id: parent.id, status: 'PROCESSING', attributes: { subTasksWritten: true } });

    const event = { action: 'run-sub-task' as const, parentId: parent.id, index: 0 };
    const results = await Promise.allSettled([app.worker.stepFunctions.handle(event), app.worker.stepFunctions.handle(event)]);
    expect(sfn.DUP.calls).toBe(1);
    for (const result of results) {
      // The loser either found it done, or was told it runs elsewhere (the state machine retries SubTaskBusy).
      if (result.status === 'fulfilled') expect(result.value).toEqual({ index: 0, status: 'COMPLETED' });
      else expect((result.reason as Error).name).toBe('SubTaskBusy');
    }
    expect(results.some((result) => result.status === 'fulfilled')).toBe(true);

    const sub = await app.store.get(parseTaskId(`${parent.id}#0`)!);
    expect(sub).toMatchObject({ status: 'COMPLETED', version: 3, attributes: { result: { doubled: 0 } } });
    const settledParent = await until(
      'the parent to settle',
      () => getTask(parent.id),
      (task) => task.status === 'COMPLETED',
      SETTLE_MS,
    );
    expect(countsOf(settledParent)).toEqual({ subTaskCount: 1, subTaskRunningCount: 0, subTaskSucceedCount: 1, subTaskFailedCount: 0 });
  });

  test('run-sub-task again, twice at once, after the execution finished changes nothing', async () => {
    const parent = await createSfn('SFN_DUP', items(10));
    const done = await settled(parent.id, 10);
    const callsBefore = sfn.DUP.calls;
    const subsBefore = await listSubTasks(parent.id);

    for (const index of [0, 9]) {
      const event = { action: 'run-sub-task' as const, parentId: parent.id, index };
      const results = await Promise.all([app.worker.stepFunctions.handle(event), app.worker.stepFunctions.handle(event)]);
      expect(results).toEqual([
        { index, status: 'COMPLETED' },
        { index, status: 'COMPLETED' },
      ]);
    }
    // settle-parent delivered again as well
    expect(await app.worker.stepFunctions.handle({ action: 'settle-parent', parentId: parent.id })).toEqual({ status: 'COMPLETED' });

    expect(sfn.DUP.calls).toBe(callsBefore);
    const after = await getTask(parent.id);
    expect(after.version).toBe(done.version);
    expect(countsOf(after)).toEqual({ subTaskCount: 10, subTaskRunningCount: 0, subTaskSucceedCount: 10, subTaskFailedCount: 0 });
    const subsAfter = await listSubTasks(parent.id);
    expect(subsAfter.map((sub) => [sub.status, sub.version])).toEqual(subsBefore.map((sub) => [sub.status, sub.version]));
  });
});

describe('a restart mid-run finishes the work', () => {
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));
  const configFor = (dataDir: string) =>
    loadConfig({
      DATA_DIR: dataDir,
      PORT: '0',
      HOST: '127.0.0.1',
      JWT_SECRET: TEST_SECRET,
      TASK_EXECUTION: 'true',
      SFN_MAX_CONCURRENCY: '2',
    });

  test('a Step Functions task: the new process takes over the stuck sub-task and settles the parent', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tasks-restart-sfn-'));
    dirs.push(dataDir);
    const STUCK = 3;
    const started: number[] = [];
    let reachedStuck!: () => void;
    const stuck = new Promise<void>((resolve) => (reachedStuck = resolve));
    const first: RunningApp = await startApp(configFor(dataDir), {
      logger: silent,
      subTaskHandlers: {
        RESTART_SFN: (task) => {
          started.push(task.subTaskIndex!);
          if (task.subTaskIndex === STUCK) {
            reachedStuck();
            return new Promise(() => {}); // never returns: the process "dies" with it
          }
          return 'first';
        },
      },
    });
    const actor: Actor = { userId: 'carol', tenantCode: 'restart', isAdmin: false };
    const parent = await first.tasks.createStepFunctionTask(actor, { taskType: 'RESTART_SFN', input: items(10) });
    await stuck;
    // Everything else finished; only the stuck sub-task holds the execution open.
    await until(
      'the other sub-tasks to finish',
      () => first.store.get(parent),
      (task) => task?.attributes.subTaskSucceedCount === 9 && task.attributes.subTaskRunningCount === 1,
      SETTLE_MS,
    );
    await first.stop();

    const secondCalls: number[] = [];
    const second = await startApp(configFor(dataDir), {
      logger: silent,
      subTaskHandlers: {
        RESTART_SFN: (task) => {
          secondCalls.push(task.subTaskIndex!);
          return 'second';
        },
      },
    });
    try {
      const done = await until(
        'the parent to complete after the restart',
        () => second.store.get(parent),
        (task) => task?.status === 'COMPLETED',
        SETTLE_MS,
      );
      expect(countsOf(done!)).toEqual({ subTaskCount: 10, subTaskRunningCount: 0, subTaskSucceedCount: 10, subTaskFailedCount: 0 });
      // Only the sub-task the dead process held ran again.
      expect(secondCalls).toEqual([STUCK]);
      expect(started.filter((index) => index === STUCK)).toHaveLength(1);
      const sub = await second.store.get(parseTaskId(`${parent.id}#${STUCK}`)!);
      expect(sub).toMatchObject({ status: 'COMPLETED', attempt: 2, attributes: { result: 'second' } });
    } finally {
      await second.stop();
    }
  });

  test('a standard task whose process is killed mid-run is taken over and COMPLETES', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tasks-restart-task-'));
    dirs.push(dataDir);
    // The first process: a handler that never returns; it prints when it runs, and is then killed (SIGKILL).
    const script = `
      const { startApp } = await import(${JSON.stringify(new URL('../src/app.ts', import.meta.url).href)});
      const { loadConfig } = await import(${JSON.stringify(new URL('../src/config.ts', import.meta.url).href)});
      const silent = { debug() {}, info() {}, warn() {}, error() {} };
      const app = await startApp(loadConfig(process.env), {
        logger: silent,
        handlers: { RESTART_TASK: (task) => { process.stdout.write('running ' + task.id + '\\n'); return new Promise(() => {}); } },
      });
      process.stdout.write('ready ' + app.url + '\\n');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      env: { ...process.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', JWT_SECRET: TEST_SECRET, TASK_EXECUTION: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code, sig) => resolve(code ?? (sig ? -1 : null))));
    let output = '';
    let errors = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (errors += chunk));
    try {
      const url = (await until('the first process to start', () => /^ready (\S+)$/m.exec(output)?.[1], Boolean, 20_000).catch((error) => {
        throw new Error(`${error.message}\n${errors}`);
      }))!;
      const created = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: CREATE_TASK, variables: { input: { taskType: 'RESTART_TASK', input: { n: 1 } } } }),
      }).then((response) => response.json() as Promise<{ data: { createTask: { id: string } } }>);
      const { id } = created.data.createTask;
      await until('the handler to run in the first process', () => output.includes(`running ${id}`), Boolean, SETTLE_MS);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const id = /^running (\S+)$/m.exec(output)![1]!;

    let secondCalls = 0;
    const second = await startApp(configFor(dataDir), {
      logger: silent,
      handlers: {
        RESTART_TASK: (task, ctx) => {
          secondCalls++;
          return { attempt: ctx.attempt, input: task.input };
        },
      },
    });
    try {
      const key = parseTaskId(id)!;
      const left = await second.store.get(key);
      // What the dead process left, or (if the new one was quicker than this read) what it made of it.
      expect(['PROCESSING', 'COMPLETED']).toContain(left!.status);
      const done = await until(
        'the task to complete after the restart',
        () => second.store.get(key),
        (task) => task?.status === 'COMPLETED',
        SETTLE_MS,
      );
      expect(done).toMatchObject({ attempt: 2, attributes: { result: { attempt: 2, input: { n: 1 } } } });
      expect(secondCalls).toBe(1);
    } finally {
      await second.stop();
    }
  });
});

describe('the shipped state machine', () => {
  test('asl-validator accepts statemachine/sub-tasks.asl.json', async () => {
    const require = createRequire(import.meta.url);
    const validate = require('asl-validator') as (definition: unknown) => {
      isValid: boolean;
      errors: unknown[];
      errorsText: (separator?: string) => string;
    };
    const definition = JSON.parse(await readFile(ASL_PATH, 'utf8'));
    const { isValid, errors, errorsText } = validate(definition);
    expect(errors, errorsText('\n')).toEqual([]);
    expect(isValid).toBe(true);
    // And an invalid definition is refused (the validator really validates).
    expect(validate({ ...JSON.parse(await readFile(ASL_PATH, 'utf8')), StartAt: 'Nowhere' }).isValid).toBe(false);
  });

  test('the execution input of the largest allowed task (10,000 items) serializes under 256 KB', async () => {
    // The longest ids there are: 64-character tenant code and task type.
    const actor: Actor = { userId: 'carol', tenantCode: 't'.repeat(64), isAdmin: false };
    const tasks = new TaskService({ store: app.store, publisher: silentPublisher, logger: silent });
    const parent = await tasks.createStepFunctionTask(actor, {
      taskType: 'T'.repeat(64),
      input: Array.from({ length: 10_000 }, (_, i) => ({ i })),
    });
    const started: { name: string; input: ExecutionInput }[] = [];
    // The real start path, with the execution (and the 10,000 sub-task writes) captured instead of run.
    const store = Object.create(app.store, { putSubTasks: { value: async () => {} } }) as typeof app.store;
    const stepFunctions = new StepFunctionTasks({
      tasks,
      store,
      registry: new HandlerRegistry({}, { ['T'.repeat(64)]: () => null }),
      executions: { start: async (name, input) => void started.push({ name, input }), stop: async () => {} },
      publisher: silentPublisher,
      logger: silent,
      settings: { workerId: 'test', leaseMs: 30_000, progressIntervalMs: 500, singleProcess: true },
      maxConcurrency: 4,
      coalesceMs: 0,
      redeliver: async () => {},
    });
    expect(await stepFunctions.start(parent)).toEqual({ done: true });

    expect(started).toHaveLength(1);
    const [{ name, input }] = started as [(typeof started)[number]];
    expect(name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    expect(input).toEqual({ parentId: parent.id, indexes: Array.from({ length: 10_000 }, (_, i) => i), maxConcurrency: 4 });
    expect(Buffer.byteLength(JSON.stringify(input), 'utf8')).toBeLessThan(256 * 1024);
  });
});

describe('sub-task items', () => {
  test('copy requestId, createdIp and updatedIp from the parent, as the original package does', () => {
    const parent = {
      id: 'SFN_TASK#t#T#01ARZ3NDEKTSV4RRFFQ69G5FAV',
      pk: 'SFN_TASK#t',
      sk: 'T#01ARZ3NDEKTSV4RRFFQ69G5FAV',
      code: '01ARZ3NDEKTSV4RRFFQ69G5FAV',
      kind: 'SFN_TASK',
      type: 'T',
      name: 'T',
      tenantCode: 't',
      status: 'PROCESSING',
      input: [{ a: 1 }, { a: 2 }],
      attributes: {},
      version: 2,
      requestId: 'req-1',
      createdIp: '10.0.0.1',
      updatedIp: '10.0.0.2',
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:01.000Z',
      createdBy: 'carol',
      updatedBy: 'system:worker',
    } satisfies Task;
    const subs = subTasksOf(parent);
    expect(subs).toHaveLength(2);
    for (const sub of subs) {
      expect(sub).toMatchObject({ requestId: 'req-1', createdIp: '10.0.0.1', updatedIp: '10.0.0.2', parentId: parent.id });
    }
  });
});
