import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, test } from 'vitest';
import { startApp, type RunningApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { parseTaskId } from '../src/tasks/keys.js';
import type { Task } from '../src/tasks/task.js';
import { CREATE_SFN_TASK, GET_TASK, LIST_SUB_TASKS } from './helpers/app.js';
import { startChildServer, tempDataDir, type ChildServer } from './helpers/child-server.js';
import { subscribeSse, type Collected } from './helpers/live.js';
import { until } from './helpers/wait.js';

/**
 * Sweeps survive SIGKILL. The real server (`src/main.ts`, embedded default) runs
 * as a child process; a Step Functions task of 200 SLEEP sub-tasks is cancelled
 * (cancelTask), or fails fast (FAIL_FAST, item 1 invalid), and the process is
 * SIGKILLed while the sweep that fails the unfinished sub-tasks is under way.
 * A server restarted on the same DATA_DIR must leave nothing stranded: the parent
 * FAILED, every sub-task COMPLETED or FAILED, and the parent's counters equal to
 * a count of its sub-tasks.
 *
 * Each kill has its own data directory and child server, started while the
 * test before runs (a process start takes 3-12 s on this busy 2-core machine).
 * The restart on that directory is, by default, the app main.ts runs, started
 * in this process as step-functions.test.ts restarts (see RESTART).
 *
 * Kill moments are counted from the sweep as a live subscription sees it: at
 * its first FAILED event (the cancelled parent; under FAIL_FAST the first
 * failure), or once 50 or 120 of the 200 sub-tasks were seen terminal. Not
 * timed from sending cancelTask: a kill before the server has read the request
 * tests nothing, and a fixed delay lands elsewhere on a slower machine.
 *
 * After each kill and before the restart, the data directory is read by an
 * in-process app with TASK_EXECUTION=false (it runs and recovers nothing) to
 * record where the kill landed; the last test of each scenario asserts that
 * at least one kill left the sweep visibly unfinished.
 */

const N = 200;
const SLEEP_MS = 2_000;
const ENV = {
  SFN_MAX_CONCURRENCY: '4',
  WORKER_CONCURRENCY: '4',
  PARENT_EVENT_WINDOW_MS: '250',
  PROGRESS_INTERVAL_MS: '500',
};
/** Bound on the wait for the restarted server to finish the task. */
const SETTLE_TIMEOUT_MS = 20_000;
/** A task unchanged for this long is taken as finished as it will get (so a stranded task fails soon, with its state). */
const STABLE_MS = 2_000;
/** Kill once the client has seen this many sub-tasks reach COMPLETED or FAILED since the sweep began (0: at its first FAILED event). */
const KILL_AFTER_SWEPT = [0, 50, 120] as const;
const TEST_TIMEOUT = 90_000;

const CANCEL_TASK = `mutation($id: ID!) { cancelTask(id: $id) { id status version attributes } }`;
const TERMINAL = ['COMPLETED', 'FAILED'];

interface Sub {
  id: string;
  status: string;
  version: number;
  subTaskIndex: number;
  attributes: Record<string, any>;
}
interface Parent {
  id: string;
  status: string;
  version: number;
  attributes: Record<string, any>;
}
interface State {
  parent: Parent;
  subs: Sub[];
}
type Scenario = 'cancel' | 'failFast';

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

/** What the tests talk to: a child process, or the restart in this process. */
interface Server {
  url: string;
  token: string;
  post: ChildServer['post'];
}

/** The server restarted after a kill. */
interface Restarted extends Server {
  /** Stops it, once its test has read what it needs. */
  close(): Promise<void>;
}

/**
 * How a killed server is restarted on its data directory. `in-process`: the
 * app main.ts starts (startApp, same environment), in this process, as
 * step-functions.test.ts restarts; about 0.5 s. `child`: `node --import tsx
 * src/main.ts` again, 3-12 s here (the whole file took 173 s that way against
 * 122 s in-process, on this machine under load).
 */
const RESTART: 'in-process' | 'child' = 'in-process';

const starts: number[] = [];
const report: string[] = [];
const note = (line: string) => {
  report.push(line);
  console.log(line);
};

/**
 * Every kill needs a fresh child server; each is started (on its own data
 * directory) while the test before runs, so its start costs little time.
 */
let wanted = 1 + 2 * KILL_AFTER_SWEPT.length + 1; // the baselines' server, and one per kill
let next: Promise<ChildServer> | undefined;
function prestart() {
  next = tempDataDir('tasks-crash-sweep-').then((dataDir) => startChildServer({ dataDir, env: ENV }));
  next.catch(() => {}); // reported when taken
}
async function takeChild(): Promise<ChildServer> {
  if (!next) prestart();
  const taking = next!;
  next = undefined;
  wanted--;
  if (wanted > 0) prestart();
  const child = await taking;
  starts.push(child.startMs);
  return child;
}

const inProcess: RunningApp[] = [];
afterAll(async () => {
  await Promise.all(inProcess.splice(0).map((app) => app.stop()));
  // The child-server helper kills the children and removes the directories.
  console.log([`child server starts (ms): ${starts.join(', ')}`, ...report].join('\n'));
});

/** A new server on the data directory of the killed `child`. */
async function restart(child: ChildServer): Promise<Restarted> {
  const began = Date.now();
  try {
    if (RESTART === 'child') {
      const restarted = await startChildServer({ dataDir: child.dataDir, env: ENV });
      starts.push(restarted.startMs);
      return { ...restarted, close: () => restarted.kill() };
    }
    const app = await startApp(
      loadConfig({ ...ENV, DATA_DIR: child.dataDir, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'error', SHUTDOWN_GRACE_MS: '0' }),
    );
    inProcess.push(app);
    return {
      url: app.url,
      token: app.devToken!,
      async post(query, variables) {
        const response = await fetch(app.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${app.devToken}` },
          body: JSON.stringify({ query, variables }),
        });
        const body = (await response.json()) as any;
        return { status: response.status, data: body.data, errors: body.errors };
      },
      async close() {
        inProcess.splice(inProcess.indexOf(app), 1);
        await app.stop();
      },
    };
  } finally {
    note(`  restart (${RESTART}): ${Date.now() - began} ms`);
  }
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

async function ok<T = Record<string, any>>(s: Server, query: string, variables: Record<string, unknown>): Promise<T> {
  const res = await s.post<T>(query, variables);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!;
}

async function readParent(s: Server, id: string): Promise<Parent> {
  return (await ok<{ task: Parent }>(s, GET_TASK, { id })).task;
}

async function readState(s: Server, parentId: string): Promise<State> {
  const parent = await readParent(s, parentId);
  const subs: Sub[] = [];
  let after: string | undefined;
  do {
    const { subTasks } = await ok<any>(s, LIST_SUB_TASKS, { parentId, first: 100, after });
    subs.push(...subTasks.edges.map((edge: any) => edge.node));
    after = subTasks.pageInfo.hasNextPage ? subTasks.pageInfo.endCursor : undefined;
  } while (after);
  return { parent, subs };
}

const histogram = (subs: { status: string }[]) =>
  subs.reduce<Record<string, number>>((counts, sub) => {
    counts[sub.status] = (counts[sub.status] ?? 0) + 1;
    return counts;
  }, {});

const countsOf = (parent: Pick<Parent, 'attributes'>) => ({
  subTaskCount: parent.attributes.subTaskCount,
  subTaskRunningCount: parent.attributes.subTaskRunningCount,
  subTaskSucceedCount: parent.attributes.subTaskSucceedCount,
  subTaskFailedCount: parent.attributes.subTaskFailedCount,
});

const describeState = ({ parent, subs }: State) =>
  `parent ${parent.status} ${JSON.stringify(countsOf(parent))}, sub-tasks ${JSON.stringify(histogram(subs))}`;

const finished = ({ parent, subs }: State) =>
  TERMINAL.includes(parent.status) &&
  subs.length === N &&
  subs.every((sub) => TERMINAL.includes(sub.status)) &&
  parent.attributes.subTaskRunningCount === 0 &&
  parent.attributes.subTaskSucceedCount + parent.attributes.subTaskFailedCount === N;

/**
 * Polls until the task is finished (terminal, every sub-task terminal, counters
 * complete), unchanged for STABLE_MS, or SETTLE_TIMEOUT_MS passed; a finished
 * task is read once more a little later, so a counter write still on its way shows.
 */
async function settle(s: Server, parentId: string): Promise<{ state: State; how: string }> {
  const began = Date.now();
  let fingerprint = '';
  let since = began;
  for (;;) {
    const state = await readState(s, parentId);
    const now = `${state.parent.version}:${state.subs.map((sub) => `${sub.status}@${sub.version}`).join(',')}`;
    if (now !== fingerprint) [fingerprint, since] = [now, Date.now()];
    const elapsed = Date.now() - began;
    if (finished(state)) {
      await sleep(Number(ENV.PARENT_EVENT_WINDOW_MS) + 200);
      return { state: await readState(s, parentId), how: `finished ${elapsed} ms after the restart` };
    }
    if (Date.now() - since >= STABLE_MS) return { state, how: `unchanged for ${STABLE_MS} ms, ${elapsed} ms after the restart` };
    if (elapsed >= SETTLE_TIMEOUT_MS) return { state, how: `still changing ${elapsed} ms after the restart` };
    await sleep(150);
  }
}

/** What the dead process left, read from the data directory by an in-process app that runs nothing. */
async function inspect(dataDir: string, parentId: string): Promise<{ parent: Task; subs: Task[] }> {
  const app = await startApp(loadConfig({ DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: '0', TASK_EXECUTION: 'false', GRAPHIQL: 'false' }), {
    logger: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
  try {
    const parent = (await app.store.get(parseTaskId(parentId)!))!;
    const subs: Task[] = [];
    let after: string | undefined;
    do {
      const page = await app.store.listSubTasks(parent, 100, after);
      subs.push(...page.edges.map((edge) => edge.node));
      after = page.pageInfo.hasNextPage ? (page.pageInfo.endCursor ?? undefined) : undefined;
    } while (after);
    return { parent, subs };
  } finally {
    await app.stop();
  }
}

/** Fails when anything is stranded or the counters do not add up (soft: every difference is reported). */
function expectNothingStranded({ state: { parent, subs }, how }: { state: State; how: string }, errorCode: string) {
  const completed = subs.filter((sub) => sub.status === 'COMPLETED').length;
  const failed = subs.filter((sub) => sub.status === 'FAILED').length;
  expect.soft(parent.status, `parent status (${how})`).toBe('FAILED');
  expect.soft(parent.attributes.error?.code, 'parent error code').toBe(errorCode);
  expect.soft(subs.length, 'sub-tasks listed').toBe(N);
  expect
    .soft(histogram(subs.filter((sub) => !TERMINAL.includes(sub.status))), `sub-tasks neither COMPLETED nor FAILED (${how})`)
    .toEqual({});
  expect.soft(countsOf(parent), `parent counters vs the sub-tasks ${JSON.stringify(histogram(subs))}`).toEqual({
    subTaskCount: N,
    subTaskRunningCount: 0,
    subTaskSucceedCount: completed,
    subTaskFailedCount: failed,
  });
  expect.soft(completed + failed, 'COMPLETED + FAILED sub-tasks').toBe(N);
}

// ---------------------------------------------------------------------------
// Driving a sweep
// ---------------------------------------------------------------------------

const itemsFor = (scenario: Scenario) =>
  Array.from({ length: N }, (_, i) => (scenario === 'failFast' && i === 1 ? { ms: -1 } : { ms: SLEEP_MS }));

interface Sweep {
  parentId: string;
  stream: Collected;
  /** Index (1-based) in stream.events of the sweep's first FAILED event. */
  first: number;
  startedAt: number;
  cancelSentAt: number;
  /** The cancelTask sent without awaiting (cancel scenario): how it ended. */
  cancelAnswer?: Promise<string>;
}

/** The next event of this task or its sub-tasks that `accept` takes, as its 1-based index in stream.events. */
async function nextEvent(stream: Collected, parentId: string, after: number, accept: (event: any) => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (let n = after + 1; ; n++) {
    await stream.waitFor(n, Math.max(1, deadline - Date.now()));
    if (stream.events.length < n) throw new Error(`the event stream ended: ${JSON.stringify(stream.errors)}`);
    const event = stream.events[n - 1];
    if ((event.task.id === parentId || event.task.parentId === parentId) && accept(event)) return n;
  }
}

/** Resolves once `count` distinct sub-tasks of the task were seen COMPLETED or FAILED (none are before its sweep: they sleep 2 s). */
async function swept(sweep: Sweep, count: number): Promise<void> {
  const seen = new Set<string>();
  const take = (event: any) => event?.task.parentId === sweep.parentId && seen.add(event.task.id);
  for (const event of sweep.stream.events) take(event);
  let n = sweep.stream.events.length;
  while (seen.size < count) {
    n = await nextEvent(sweep.stream, sweep.parentId, n, (event) => event.task.parentId === sweep.parentId);
    take(sweep.stream.events[n - 1]);
  }
}

/**
 * Creates the task on `s` and brings it to its sweep: `cancel` sends cancelTask
 * (not awaited) once sub-tasks run; under `failFast` item 1 fails at once.
 * Resolves at the sweep's first FAILED event (the parent, or a sub-task).
 */
async function startSweep(s: Server, scenario: Scenario): Promise<Sweep> {
  // Tenant-wide and before the task exists: a FAIL_FAST sweep begins right after the start.
  const stream = subscribeSse(s.url, s.token, { filter: { includeSubTasks: true, statuses: ['COMPLETED', 'FAILED'] } });
  expect(await stream.status).toBe(200);
  const { createStepFunctionTask: created } = await ok<any>(s, CREATE_SFN_TASK, {
    input: { taskType: 'SLEEP', input: itemsFor(scenario), ...(scenario === 'failFast' ? { failurePolicy: 'FAIL_FAST' } : {}) },
  });
  const parentId: string = created.id;
  let cancelAnswer: Promise<string> | undefined;
  let cancelSentAt = 0;
  if (scenario === 'cancel') {
    // Running: its counters were written with sub-tasks PROCESSING.
    await until(
      'the task to run sub-tasks',
      () => readParent(s, parentId),
      (p) => p.attributes.subTaskRunningCount > 0,
      20_000,
    );
    const { subs } = await readState(s, parentId);
    expect(subs).toHaveLength(N);
    expect(subs.some((sub) => sub.status === 'PROCESSING')).toBe(true);
    cancelSentAt = Date.now();
    cancelAnswer = s.post(CANCEL_TASK, { id: parentId }).then(
      (res) => (res.errors ? `answered ${res.errors[0]?.extensions?.code}` : `answered ${res.data?.cancelTask?.status}`),
      (error: Error) => `cut off (${error.message})`,
    );
  }
  const first = await nextEvent(stream, parentId, 0, (event) => event.task.status === 'FAILED');
  return { parentId, stream, first, startedAt: Date.now(), cancelSentAt, cancelAnswer };
}

interface Landing {
  killAfterSwept: number;
  /** From the sweep's first FAILED event to the kill. */
  killedAfterMs: number;
  cancelAnswer?: string;
  /** Read from the data directory after the kill, before the restart. */
  left: { parent: string; counts: ReturnType<typeof countsOf>; subs: Record<string, number> };
  /** The sweep had begun (the parent or a sub-task FAILED) and not ended (a sub-task neither COMPLETED nor FAILED). */
  midSweep: boolean;
}
const landings: Record<Scenario, Landing[]> = { cancel: [], failFast: [] };
const describeLanding = (l: Landing) =>
  `killed after ${l.killAfterSwept} sub-tasks seen swept, ${l.killedAfterMs} ms into the sweep` +
  `${l.cancelAnswer ? ` (cancelTask ${l.cancelAnswer})` : ''}; left: parent ${l.left.parent} ${JSON.stringify(l.left.counts)}, ` +
  `sub-tasks ${JSON.stringify(l.left.subs)}; mid-sweep: ${l.midSweep}`;

/** Runs a sweep on the current server, SIGKILLs it once `killAfterSwept` sub-tasks were seen swept, records what it left. */
async function killMidSweep(scenario: Scenario, killAfterSwept: number) {
  const s = await takeChild();
  const sweep = await startSweep(s, scenario);
  if (killAfterSwept > 0) await swept(sweep, killAfterSwept);
  await s.kill();
  const killedAfterMs = Date.now() - sweep.startedAt;
  sweep.stream.stop();
  const cancelAnswer = await sweep.cancelAnswer;

  const left = await inspect(s.dataDir, sweep.parentId);
  const landing: Landing = {
    killAfterSwept,
    killedAfterMs,
    cancelAnswer,
    left: { parent: left.parent.status, counts: countsOf(left.parent), subs: histogram(left.subs) },
    midSweep:
      (left.parent.status === 'FAILED' || left.subs.some((sub) => sub.status === 'FAILED')) &&
      left.subs.some((sub) => !TERMINAL.includes(sub.status)),
  };
  landings[scenario].push(landing);
  note(`${scenario}: ${describeLanding(landing)}`);
  return { parentId: sweep.parentId, landing, child: s };
}

// ---------------------------------------------------------------------------

describe('baselines: a sweep of 200 without a kill (measured; exact counts)', () => {
  let baseline: Promise<ChildServer> | undefined;
  afterAll(async () => (await baseline?.catch(() => undefined))?.kill());
  test.each([
    { scenario: 'cancel' as const, errorCode: 'CANCELLED' },
    { scenario: 'failFast' as const, errorCode: 'SUB_TASK_FAILED' },
  ])(
    '$scenario',
    async ({ scenario, errorCode }) => {
      const s = await (baseline ??= takeChild());
      const sweep = await startSweep(s, scenario);
      await swept(sweep, N);
      const ms = Date.now() - sweep.startedAt;
      sweep.stream.stop();
      const answer = await sweep.cancelAnswer;
      note(
        `${scenario} sweep of ${N}: ${ms} ms from its first FAILED event to the last sub-task seen terminal` +
          (answer ? `; cancelTask sent to answered: ${Date.now() - sweep.cancelSentAt} ms (${answer})` : ''),
      );
      if (answer !== undefined) expect(answer).toBe('answered FAILED');
      expectNothingStranded(await settle(s, sweep.parentId), errorCode);
    },
    TEST_TIMEOUT,
  );
});

describe.each([
  { scenario: 'cancel' as const, errorCode: 'CANCELLED' },
  { scenario: 'failFast' as const, errorCode: 'SUB_TASK_FAILED' },
])('SIGKILL during the $scenario sweep of 200, then a restart on the same data', ({ scenario, errorCode }) => {
  test.each(KILL_AFTER_SWEPT)(
    'killed after %i sub-tasks swept: the restarted server leaves nothing stranded; the counters are exact',
    async (killAfterSwept) => {
      const { parentId, child } = await killMidSweep(scenario, killAfterSwept);
      const s = await restart(child);
      try {
        const settled = await settle(s, parentId);
        note(`  restarted: ${settled.how}; ${describeState(settled.state)}`);
        expectNothingStranded(settled, errorCode);
        if (scenario === 'failFast') {
          // The first failure keeps its own error.
          expect.soft(settled.state.subs[1]).toMatchObject({
            status: 'FAILED',
            attributes: { error: { message: expect.stringContaining('SLEEP needs') } },
          });
        }
      } finally {
        await s.close();
      }
    },
    TEST_TIMEOUT,
  );

  test('sanity: at least one kill landed mid-sweep (the parent or a sub-task FAILED, a sub-task not yet terminal)', (ctx) => {
    if (landings[scenario].length === 0) ctx.skip();
    expect(
      landings[scenario].some((landing) => landing.midSweep),
      landings[scenario].map(describeLanding).join('\n'),
    ).toBe(true);
  });
});

describe('cancelTask again right after a restart that follows a kill mid-sweep', () => {
  test(
    'answers the parent (FAILED, CANCELLED) without an error; then nothing is stranded and the counters are exact',
    async () => {
      const { parentId, landing, child } = await killMidSweep('cancel', 0);
      const s = await restart(child);
      try {
        const res = await s.post(CANCEL_TASK, { id: parentId });
        note(
          `  cancelTask right after the restart: ${res.errors ? JSON.stringify(res.errors[0]?.extensions) : `${res.data?.cancelTask?.status} ${JSON.stringify(res.data?.cancelTask?.attributes?.error)}`}`,
        );
        // Soft: the state after is checked as well.
        expect.soft(res.errors, `cancelTask after the restart (the kill landed mid-sweep: ${landing.midSweep})`).toBeUndefined();
        expect.soft(res.data?.cancelTask).toMatchObject({ id: parentId, status: 'FAILED', attributes: { error: { code: 'CANCELLED' } } });
        const settled = await settle(s, parentId);
        note(`  restarted: ${settled.how}; ${describeState(settled.state)}`);
        expectNothingStranded(settled, 'CANCELLED');
      } finally {
        await s.close();
      }
    },
    TEST_TIMEOUT,
  );
});
