/**
 * rerunTask and cancelTasks, the dashboard's two actions, end to end: a real
 * server running the example handlers (ECHO, SLEEP) over in-memory dynalite.
 * A task type without a handler (IDLE) stays QUEUED, which gives cancelTasks
 * unfinished tasks that nothing else moves. Each test works in tenants of its
 * own, so bulk cancels never reach another test's tasks.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, test } from 'vitest';
import { createDynamoClients } from '../src/aws/dynamo-client.js';
import { TaskError } from '../src/errors.js';
import { notificationOf, taskOf } from '../src/live/notification.js';
import type { Actor } from '../src/tasks/task.js';
import { cancelTasks } from '../src/worker/bulk-cancel.js';
import {
  CREATE_SFN_TASK,
  CREATE_TASK,
  LIST_SUB_TASKS,
  TASK_FIELDS,
  UPDATE_STATUS,
  errorCode,
  startTestApp,
  type GraphQLResponse,
  type TestApp,
} from './helpers/app.js';
import { subscribeWs, wsClient } from './helpers/live.js';
import { OriginalWriter } from './helpers/original-items.js';
import { until } from './helpers/wait.js';

const FIELDS = `${TASK_FIELDS} rerunOf`;
const GET = `query($id: ID!) { task(id: $id) { ${FIELDS} } }`;
const RERUN = `mutation($id: ID!, $onlyFailed: Boolean) { rerunTask(id: $id, onlyFailed: $onlyFailed) { ${FIELDS} } }`;
const CANCEL_MANY = `mutation($filter: CancelTasksFilter!, $first: Int) {
  cancelTasks(filter: $filter, first: $first) { cancelled skipped remaining cancelledIds }
}`;
const CREATE_VIEWER_TOKEN = `mutation($ids: [ID!], $parentId: ID) { createViewerToken(ids: $ids, parentId: $parentId) { token } }`;
const CANCEL_ONE = `mutation($id: ID!) { cancelTask(id: $id) { id status } }`;

const TERMINAL = ['COMPLETED', 'FAILED'];

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ TASK_EXECUTION: 'true', EXAMPLE_HANDLERS: 'true', SFN_MAX_CONCURRENCY: '2', PARENT_EVENT_WINDOW_MS: '50' });
});

// ---------------------------------------------------------------------------
// Helpers

/** The data of a response that must have succeeded. */
function ok<T = any>(res: GraphQLResponse, field: string): T {
  expect(res.errors, `${field} errors`).toBeUndefined();
  return res.data![field] as T;
}

const createTask = async (token: string, input: Record<string, unknown>) => ok(await app.gql(CREATE_TASK, { input }, token), 'createTask');
const createSfn = async (token: string, input: Record<string, unknown>) =>
  ok(await app.gql(CREATE_SFN_TASK, { input }, token), 'createStepFunctionTask');
const getTask = async (token: string, id: string) => ok(await app.gql(GET, { id }, token), 'task');

/** Waits until the task's status passes `ready` (and, for a Step Functions parent that ended, every sub-task is counted). */
async function waitFor(token: string, id: string, ready: (status: string) => boolean = (s) => TERMINAL.includes(s), timeoutMs = 15_000) {
  return until(
    `${id} to be ready`,
    () => getTask(token, id),
    (task) => {
      if (!ready(task.status)) return false;
      const { subTaskCount, subTaskSucceedCount = 0, subTaskFailedCount = 0 } = task.attributes;
      return (
        !TERMINAL.includes(task.status) || typeof subTaskCount !== 'number' || subTaskSucceedCount + subTaskFailedCount === subTaskCount
      );
    },
    timeoutMs,
  );
}

async function listSubTasks(token: string, parentId: string): Promise<any[]> {
  const all: any[] = [];
  let after: string | undefined;
  do {
    const page = ok(await app.gql(LIST_SUB_TASKS, { parentId, first: 100, after }, token), 'subTasks');
    all.push(...page.edges.map((edge: any) => edge.node));
    after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : undefined;
  } while (after);
  return all;
}

/** `count` tasks of a type no handler takes: they are QUEUED and stay so. Oldest first. */
async function idleTasks(token: string, count: number, taskType = 'IDLE'): Promise<any[]> {
  const created: any[] = [];
  for (let i = 0; i < count; i++) created.push(await createTask(token, { taskType, input: { i } }));
  return Promise.all(created.map((task) => waitFor(token, task.id, (status) => status === 'QUEUED')));
}

const statusesOf = async (token: string, tasks: { id: string }[]) =>
  Promise.all(tasks.map(async (task) => (await getTask(token, task.id)).status as string));

const cancelMany = (token: string | null, filter: Record<string, unknown>, first?: number) =>
  app.gql(CANCEL_MANY, first === undefined ? { filter } : { filter, first }, token);

async function viewerTokenFor(token: string, ids: string[]): Promise<string> {
  return ok(await app.gql(CREATE_VIEWER_TOKEN, { ids }, token), 'createViewerToken').token;
}

/** What stays the same on a task that nobody changed. */
const frozen = (task: any) => ({ status: task.status, version: task.version, updatedAt: task.updatedAt, attributes: task.attributes });

// ---------------------------------------------------------------------------
// rerunTask

describe('rerunTask', () => {
  test('re-runs a COMPLETED task: same kind, type, name and input, a new id naming the old one; the old task is unchanged', async () => {
    const alice = await app.token('rerun-a', { userId: 'alice' });
    const bob = await app.token('rerun-a', { userId: 'bob' });
    const old = await waitFor(alice, (await createTask(alice, { taskType: 'ECHO', name: 'Echo one', input: { x: 1 } })).id);
    expect(old).toMatchObject({ status: 'COMPLETED', attributes: { result: { x: 1 } }, rerunOf: null });

    const rerun = ok(await app.gql(RERUN, { id: old.id }, bob), 'rerunTask');
    expect(rerun.id).not.toBe(old.id);
    expect(rerun.code > old.code).toBe(true);
    expect(rerun).toMatchObject({
      kind: 'TASK',
      type: 'ECHO',
      name: 'Echo one',
      input: { x: 1 },
      tenantCode: 'rerun-a',
      status: 'CREATED',
      version: 1,
      attributes: {},
      rerunOf: old.id,
      createdBy: 'bob',
    });

    const done = await waitFor(bob, rerun.id);
    expect(done).toMatchObject({ status: 'COMPLETED', attributes: { result: { x: 1 } }, rerunOf: old.id, attempt: 1 });
    expect(frozen(await getTask(alice, old.id))).toEqual(frozen(old));
  });

  test('re-runs a FAILED task; it fails again with the same input, and the old one keeps its error and version', async () => {
    const token = await app.token('rerun-b');
    const input = { error: 'boom', retryable: false };
    const old = await waitFor(token, (await createTask(token, { taskType: 'ECHO', input })).id);
    expect(old).toMatchObject({ status: 'FAILED', attributes: { error: { message: 'boom' } } });

    const rerun = ok(await app.gql(RERUN, { id: old.id, onlyFailed: false }, token), 'rerunTask');
    expect(rerun).toMatchObject({ kind: 'TASK', type: 'ECHO', input, rerunOf: old.id, status: 'CREATED' });
    const done = await waitFor(token, rerun.id);
    expect(done).toMatchObject({ status: 'FAILED', attributes: { error: { message: 'boom' } }, rerunOf: old.id });
    expect(frozen(await getTask(token, old.id))).toEqual(frozen(old));
  });

  test('rerunOf is a top-level item attribute, not inside attributes, and reads back from the store', async () => {
    const token = await app.token('rerun-c');
    const old = await waitFor(token, (await createTask(token, { taskType: 'ECHO', input: {} })).id);
    const rerun = ok(await app.gql(RERUN, { id: old.id }, token), 'rerunTask');
    const dynamo = createDynamoClients({ endpoint: app.dynamoEndpoint, local: true });
    try {
      const { Item } = await dynamo.doc.send(new GetCommand({ TableName: app.store.tableName, Key: { pk: rerun.pk, sk: rerun.sk } }));
      expect(Item).toMatchObject({ rerunOf: old.id });
      expect(Item!.attributes).not.toHaveProperty('rerunOf');
    } finally {
      dynamo.client.destroy();
    }
    expect((await app.store.get(rerun))?.rerunOf).toBe(old.id);
    expect((await app.store.get(old))?.rerunOf).toBeUndefined();
  });

  describe('Step Functions tasks', () => {
    // 12 items, 1, 3 and 10 fail: index order is not the text order of the sub-task keys (#10 < #3).
    const FAILING = [1, 3, 10];
    const items = Array.from({ length: 12 }, (_, i) => (FAILING.includes(i) ? { error: `row ${i}`, retryable: false, i } : { i }));
    let token: string;
    let old: any;
    beforeAll(async () => {
      token = await app.token('rerun-sfn');
      old = await waitFor(
        token,
        (await createSfn(token, { taskType: 'ECHO', name: 'Rows', input: items, failurePolicy: 'FAIL_PARENT' })).id,
        undefined,
        30_000,
      );
    });

    test('the original ended FAILED with three failed sub-tasks (the premise of the tests below)', () => {
      expect(old).toMatchObject({
        status: 'FAILED',
        attributes: { failurePolicy: 'FAIL_PARENT', subTaskCount: 12, subTaskFailedCount: 3 },
      });
    });

    test('without onlyFailed: every element again, failurePolicy kept', async () => {
      const rerun = ok(await app.gql(RERUN, { id: old.id }, token), 'rerunTask');
      expect(rerun).toMatchObject({
        kind: 'SFN_TASK',
        type: 'ECHO',
        name: 'Rows',
        input: items,
        rerunOf: old.id,
        attributes: { failurePolicy: 'FAIL_PARENT' },
      });
      const done = await waitFor(token, rerun.id, undefined, 30_000);
      expect(done).toMatchObject({ status: 'FAILED', attributes: { subTaskCount: 12, subTaskFailedCount: 3, subTaskSucceedCount: 9 } });
      expect(frozen(await getTask(token, old.id))).toEqual(frozen(old));
    });

    test('onlyFailed: the elements of the FAILED sub-tasks, in index order, failurePolicy kept', async () => {
      const rerun = ok(await app.gql(RERUN, { id: old.id, onlyFailed: true }, token), 'rerunTask');
      expect(rerun.input).toEqual(FAILING.map((i) => items[i]));
      expect(rerun).toMatchObject({ kind: 'SFN_TASK', rerunOf: old.id, attributes: { failurePolicy: 'FAIL_PARENT' } });
      const done = await waitFor(token, rerun.id, undefined, 30_000);
      expect(done).toMatchObject({ status: 'FAILED', attributes: { subTaskCount: 3, subTaskFailedCount: 3 } });
      const subs = await listSubTasks(token, rerun.id);
      expect(subs.map((sub) => sub.input)).toEqual(FAILING.map((i) => items[i]));
      expect(frozen(await getTask(token, old.id))).toEqual(frozen(old));
    });

    test('onlyFailed with no failed sub-task is BAD_USER_INPUT; a CONTINUE policy is kept', async () => {
      const clean = await waitFor(token, (await createSfn(token, { taskType: 'ECHO', input: [{ a: 1 }, { a: 2 }] })).id, undefined, 30_000);
      expect(clean).toMatchObject({ status: 'COMPLETED', attributes: { subTaskSucceedCount: 2 } });
      const refused = await app.gql(RERUN, { id: clean.id, onlyFailed: true }, token);
      expect(errorCode(refused)).toBe('BAD_USER_INPUT');
      expect(refused.errors![0]!.message).toContain('no FAILED sub-tasks');
      const whole = ok(await app.gql(RERUN, { id: clean.id }, token), 'rerunTask');
      expect(whole).toMatchObject({ input: [{ a: 1 }, { a: 2 }], attributes: { failurePolicy: 'CONTINUE' } });
    });

    test("onlyFailed over the original package's sub-tasks (listed in key order, #10 before #2) still takes index order", async () => {
      const dynamo = createDynamoClients({ endpoint: app.dynamoEndpoint, local: true });
      try {
        const writer = new OriginalWriter(dynamo.doc, app.store.tableName);
        const caller = { userId: 'legacy', requestId: 'req-1', sourceIp: '10.0.0.1' };
        const input = Array.from({ length: 12 }, (_, i) => ({ i }));
        const created = await writer.createStepFunctionTask({ tenantCode: 'rerun-sfn', taskType: 'ECHO', input }, caller, Date.now());
        const { subTasks } = await writer.startStepFunctionTask(created, Date.now());
        for (const index of [11, 2, 10]) await writer.updateStatus(subTasks[index]!, 'FAILED', { error: 'legacy' }, Date.now());
        await writer.updateStatus(created, 'COMPLETED', { subTaskCount: 12, subTaskFailedCount: 3, subTaskSucceedCount: 0 }, Date.now());

        const rerun = ok(await app.gql(RERUN, { id: created.id, onlyFailed: true }, token), 'rerunTask');
        expect(rerun.input).toEqual([{ i: 2 }, { i: 10 }, { i: 11 }]);
        // Written by the original, which keeps no policy: the default.
        expect(rerun).toMatchObject({ rerunOf: created.id, attributes: { failurePolicy: 'CONTINUE' } });
      } finally {
        dynamo.client.destroy();
      }
    });

    test('a sub-task is BAD_USER_INPUT naming its parent', async () => {
      const res = await app.gql(RERUN, { id: `${old.id}#1` }, token);
      expect(errorCode(res)).toBe('BAD_USER_INPUT');
      expect(res.errors![0]!.message).toContain(`re-run its parent ${old.id}`);
    });
  });

  describe('refusals', () => {
    let token: string;
    let completed: any;
    beforeAll(async () => {
      token = await app.token('rerun-no');
      completed = await waitFor(token, (await createTask(token, { taskType: 'ECHO', input: { n: 1 } })).id);
    });
    const taskCount = async () =>
      ok(await app.gql(`{ tasks(first: 100) { edges { node { id } } } }`, {}, token), 'tasks').edges.length as number;

    test('a running task is BAD_USER_INPUT naming its status, and a queued one too; nothing is created', async () => {
      const running = await waitFor(
        token,
        (await createTask(token, { taskType: 'SLEEP', input: { ms: 60_000, steps: 600 } })).id,
        (s) => s === 'PROCESSING',
      );
      const queued = (await idleTasks(token, 1))[0]!;
      const before = await taskCount();
      for (const [task, status] of [
        [running, 'PROCESSING'],
        [queued, 'QUEUED'],
      ] as const) {
        const res = await app.gql(RERUN, { id: task.id }, token);
        expect(errorCode(res)).toBe('BAD_USER_INPUT');
        expect(res.errors![0]!.message).toContain(`is ${status}`);
        expect(res.errors![0]!.extensions).toMatchObject({ field: 'id', status });
      }
      expect(await taskCount()).toBe(before);
      expect(ok(await app.gql(CANCEL_ONE, { id: running.id }, token), 'cancelTask').status).toBe('FAILED');
    });

    test('onlyFailed on a standard task is BAD_USER_INPUT', async () => {
      const res = await app.gql(RERUN, { id: completed.id, onlyFailed: true }, token);
      expect(errorCode(res)).toBe('BAD_USER_INPUT');
      expect(res.errors![0]!.extensions).toMatchObject({ field: 'onlyFailed' });
    });

    test('a malformed id is BAD_USER_INPUT', async () => {
      const res = await app.gql(RERUN, { id: 'not-an-id' }, token);
      expect(errorCode(res)).toBe('BAD_USER_INPUT');
      expect(res.errors![0]!.extensions).toMatchObject({ field: 'id' });
    });

    test("another tenant's task is NOT_FOUND, like an absent one; a system_admin may re-run it, in its tenant", async () => {
      const other = await app.token('rerun-other');
      const before = await taskCount();
      const foreign = await app.gql(RERUN, { id: completed.id }, other);
      expect(errorCode(foreign)).toBe('NOT_FOUND');
      const absent = await app.gql(RERUN, { id: completed.id.replace(/#[^#]+$/, '#01J0000000000000000000000') }, token);
      expect(errorCode(absent)).toBe('NOT_FOUND');
      expect(await taskCount()).toBe(before);

      const admin = await app.token('ops', { userId: 'root', admin: true });
      const rerun = ok(await app.gql(RERUN, { id: completed.id }, admin), 'rerunTask');
      expect(rerun).toMatchObject({ tenantCode: 'rerun-no', pk: 'TASK#rerun-no', createdBy: 'root', rerunOf: completed.id });
    });

    test('without a token: UNAUTHENTICATED (401)', async () => {
      const res = await app.gql(RERUN, { id: completed.id }, null);
      expect({ status: res.status, code: errorCode(res) }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    });

    test('a viewer token, even for that very task: FORBIDDEN, nothing created', async () => {
      const viewer = await viewerTokenFor(token, [completed.id]);
      const before = await taskCount();
      const res = await app.gql(RERUN, { id: completed.id }, viewer);
      expect(errorCode(res)).toBe('FORBIDDEN');
      expect(await taskCount()).toBe(before);
    });
  });

  test('rerunOf reaches subscribers with the new task, and travels in the SNS notification shape', async () => {
    const token = await app.token('rerun-live');
    const old = await waitFor(token, (await createTask(token, { taskType: 'ECHO', input: { live: true } })).id);
    const events = subscribeWs(
      wsClient(app.url, token),
      { filter: { taskType: 'ECHO' } },
      `subscription($filter: TaskEventFilter) {
      taskStatusChanged(filter: $filter) { action task { id status version rerunOf } }
    }`,
    );
    // A subscription without a snapshot is live once it hears a change: make one until it does.
    await until(
      'the subscription to be live',
      async () => {
        const probe = await createTask(token, { taskType: 'ECHO', input: { probe: true } });
        await new Promise((resolve) => setTimeout(resolve, 100));
        return events.events.some((event) => event.task.id === probe.id);
      },
      Boolean,
    );
    const rerun = ok(await app.gql(RERUN, { id: old.id }, token), 'rerunTask');
    await until(
      'the re-run to complete over the subscription',
      () => events.events,
      (all) => all.some((event) => event.task.id === rerun.id && event.task.status === 'COMPLETED'),
    );
    events.stop();
    const ofRerun = events.events.filter((event) => event.task.id === rerun.id);
    expect(ofRerun.map((event) => event.task.status)).toEqual(expect.arrayContaining(['CREATED', 'QUEUED', 'PROCESSING', 'COMPLETED']));
    for (const event of ofRerun) expect(event.task.rerunOf).toBe(old.id);
    expect(events.events.filter((event) => event.task.id === old.id)).toEqual([]);
    expect(events.errors).toEqual([]);

    const stored = (await app.store.get(rerun))!;
    const notification = notificationOf({ task: stored }, 'tasks');
    expect(JSON.parse(JSON.stringify(notification))).toMatchObject({ rerunOf: old.id });
    expect(taskOf(notification).rerunOf).toBe(old.id);
    expect(taskOf(notificationOf({ task: (await app.store.get(old))! }, 'tasks')).rerunOf).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------
// cancelTasks

describe('cancelTasks', () => {
  test("cancels only the caller's tenant's unfinished tasks that match, newest first, as cancelTask does", async () => {
    const token = await app.token('bulk-a', { userId: 'dora' });
    const otherTenant = await app.token('bulk-a2');
    const mine = await idleTasks(token, 3);
    const otherType = await idleTasks(token, 1, 'IDLE_TOO');
    const done = await waitFor(token, (await createTask(token, { taskType: 'ECHO', input: {} })).id);
    const theirs = await idleTasks(otherTenant, 2);
    const theirsBefore = await Promise.all(theirs.map((task) => getTask(otherTenant, task.id)));

    const result = ok(await cancelMany(token, { taskType: 'IDLE' }), 'cancelTasks');
    expect(result).toEqual({ cancelled: 3, skipped: 0, remaining: false, cancelledIds: mine.map((task) => task.id).reverse() });
    for (const task of mine) {
      expect(await getTask(token, task.id)).toMatchObject({ status: 'FAILED', attributes: { error: { code: 'CANCELLED', by: 'dora' } } });
    }
    expect(await statusesOf(token, otherType)).toEqual(['QUEUED']);
    expect(frozen(await getTask(token, done.id))).toEqual(frozen(done));
    expect((await Promise.all(theirs.map((task) => getTask(otherTenant, task.id)))).map(frozen)).toEqual(theirsBefore.map(frozen));

    // Nothing of that type is left: a second call cancels nothing.
    expect(ok(await cancelMany(token, { taskType: 'IDLE' }), 'cancelTasks')).toEqual({
      cancelled: 0,
      skipped: 0,
      remaining: false,
      cancelledIds: [],
    });
  });

  test('a non-admin naming another tenant is FORBIDDEN; a system_admin with tenantCode cancels there', async () => {
    const victim = await app.token('bulk-b');
    const tasks = await idleTasks(victim, 2);
    const intruder = await app.token('bulk-b-other');
    const refused = await cancelMany(intruder, { tenantCode: 'bulk-b' });
    expect(errorCode(refused)).toBe('FORBIDDEN');
    expect(await statusesOf(victim, tasks)).toEqual(['QUEUED', 'QUEUED']);
    const own = await cancelMany(victim, { tenantCode: 'bulk-b', taskType: 'NOTHING_OF_IT' });
    expect(ok(own, 'cancelTasks')).toMatchObject({ cancelled: 0 });

    const admin = await app.token('ops', { userId: 'root', admin: true });
    const result = ok(await cancelMany(admin, { tenantCode: 'bulk-b' }), 'cancelTasks');
    expect(result).toMatchObject({ cancelled: 2, remaining: false });
    expect(await statusesOf(victim, tasks)).toEqual(['FAILED', 'FAILED']);
    expect((await getTask(victim, tasks[0]!.id)).attributes.error).toMatchObject({ code: 'CANCELLED', by: 'root' });
  });

  test('bounded by first: remaining until a call takes the last of them', async () => {
    const token = await app.token('bulk-c');
    const tasks = await idleTasks(token, 5);
    const newestFirst = tasks.map((task) => task.id).reverse();

    const first = ok(await cancelMany(token, {}, 3), 'cancelTasks');
    expect(first).toEqual({ cancelled: 3, skipped: 0, remaining: true, cancelledIds: newestFirst.slice(0, 3) });
    expect(await statusesOf(token, tasks)).toEqual(['QUEUED', 'QUEUED', 'FAILED', 'FAILED', 'FAILED']);

    const second = ok(await cancelMany(token, {}, 3), 'cancelTasks');
    expect(second).toEqual({ cancelled: 2, skipped: 0, remaining: false, cancelledIds: newestFirst.slice(3) });
    expect(await statusesOf(token, tasks)).toEqual(['FAILED', 'FAILED', 'FAILED', 'FAILED', 'FAILED']);
  });

  test('more matches than first across statuses, though none of them alone has more: remaining', async () => {
    const token = await app.token('bulk-c4');
    const tasks = await idleTasks(token, 4);
    for (const task of tasks.slice(0, 2)) {
      ok(await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'PROCESSING' } }, token), 'updateStatus');
    }
    expect(ok(await cancelMany(token, {}, 3), 'cancelTasks')).toMatchObject({ cancelled: 3, remaining: true });
    expect(ok(await cancelMany(token, {}, 3), 'cancelTasks')).toEqual({
      cancelled: 1,
      skipped: 0,
      remaining: false,
      cancelledIds: [tasks[0]!.id],
    });
  });

  test('exactly first left: remaining is false', async () => {
    const token = await app.token('bulk-c2');
    await idleTasks(token, 2);
    expect(ok(await cancelMany(token, {}, 2), 'cancelTasks')).toMatchObject({ cancelled: 2, remaining: false });
  });

  test('first defaults to 100 and counts across the unfinished statuses', async () => {
    const token = await app.token('bulk-c3');
    const queued = await idleTasks(token, 2);
    const started = await idleTasks(token, 1);
    // PROCESSING, and a task a backend moved to STARTED: both unfinished.
    ok(await app.gql(UPDATE_STATUS, { input: { id: started[0]!.id, status: 'STARTED' } }, token), 'updateStatus');
    ok(await app.gql(UPDATE_STATUS, { input: { id: queued[0]!.id, status: 'PROCESSING' } }, token), 'updateStatus');
    const result = ok(await cancelMany(token, {}), 'cancelTasks');
    expect(result).toMatchObject({ cancelled: 3, remaining: false });
    expect(result.cancelledIds).toEqual([started[0]!.id, queued[1]!.id, queued[0]!.id]);
  });

  test('skips a task that ends between the listing and its cancel, and says so', async () => {
    const token = await app.token('bulk-d');
    const tasks = await idleTasks(token, 3);
    const actor: Actor = { userId: 'user-of-bulk-d', tenantCode: 'bulk-d', isAdmin: false };
    const finisher = tasks[1]!;
    const result = await cancelTasks(
      {
        store: app.store,
        cancel: async (by, id) => {
          if (id === finisher.id) {
            // A backend completes it just before the cancel reaches it.
            await app.tasks.updateStatus(by, { id, status: 'PROCESSING' });
            await app.tasks.updateStatus(by, { id, status: 'COMPLETED', attributes: { result: 'mine' } });
          }
          return app.worker.dispatcher.cancel(by, id);
        },
      },
      actor,
      {},
    );
    expect(result).toEqual({ cancelled: 2, skipped: 1, remaining: false, cancelledIds: [tasks[2]!.id, tasks[0]!.id] });
    expect(await statusesOf(token, tasks)).toEqual(['FAILED', 'COMPLETED', 'FAILED']);
    expect((await getTask(token, finisher.id)).attributes).toEqual({ result: 'mine' });
  });

  test('a skip that leaves the task unfinished (a cancel that lost every race) keeps remaining true', async () => {
    const token = await app.token('bulk-d2');
    const tasks = await idleTasks(token, 2);
    const actor: Actor = { userId: 'u', tenantCode: 'bulk-d2', isAdmin: false };
    const result = await cancelTasks(
      {
        store: app.store,
        cancel: async (by, id) => {
          if (id === tasks[0]!.id) throw new TaskError('CONFLICT', 'busy');
          return app.worker.dispatcher.cancel(by, id);
        },
      },
      actor,
      {},
    );
    expect(result).toEqual({ cancelled: 1, skipped: 1, remaining: true, cancelledIds: [tasks[1]!.id] });
  });

  test('filters by status and createdBefore', async () => {
    const token = await app.token('bulk-e');
    const early = await idleTasks(token, 2);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const cut = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const late = await idleTasks(token, 2);
    ok(await app.gql(UPDATE_STATUS, { input: { id: late[0]!.id, status: 'PROCESSING' } }, token), 'updateStatus');
    ok(await app.gql(UPDATE_STATUS, { input: { id: early[0]!.id, status: 'PROCESSING' } }, token), 'updateStatus');

    const processingLate = ok(
      await cancelMany(token, { status: 'PROCESSING', createdBefore: new Date(Date.now() + 60_000).toISOString() }),
      'cancelTasks',
    );
    expect(processingLate.cancelledIds).toEqual([late[0]!.id, early[0]!.id]);
    expect(await statusesOf(token, [...early, ...late])).toEqual(['FAILED', 'QUEUED', 'FAILED', 'QUEUED']);

    expect(ok(await cancelMany(token, { createdBefore: '1969-07-20T20:17:00Z' }), 'cancelTasks')).toMatchObject({
      cancelled: 0,
      remaining: false,
    });
    const before = ok(await cancelMany(token, { createdBefore: cut }), 'cancelTasks');
    expect(before).toEqual({ cancelled: 1, skipped: 0, remaining: false, cancelledIds: [early[1]!.id] });
    expect(await statusesOf(token, late)).toEqual(['FAILED', 'QUEUED']);
  });

  test('kind: TASK by default; SFN_TASK cancels a running Step Functions task, whose sub-tasks all end FAILED', async () => {
    const token = await app.token('bulk-f');
    const standard = await idleTasks(token, 1);
    const parent = await createSfn(token, { taskType: 'SLEEP', input: Array.from({ length: 6 }, () => ({ ms: 30_000, steps: 300 })) });
    await until(
      'sub-tasks to run',
      () => listSubTasks(token, parent.id),
      (subs) => subs.some((sub) => sub.status === 'PROCESSING'),
      15_000,
    );

    const tasksOnly = ok(await cancelMany(token, {}), 'cancelTasks');
    expect(tasksOnly).toMatchObject({ cancelled: 1, cancelledIds: [standard[0]!.id] });
    expect((await getTask(token, parent.id)).status).toBe('PROCESSING');

    const sfn = ok(await cancelMany(token, { kind: 'SFN_TASK', taskType: 'SLEEP' }), 'cancelTasks');
    expect(sfn).toEqual({ cancelled: 1, skipped: 0, remaining: false, cancelledIds: [parent.id] });
    const ended = await waitFor(token, parent.id);
    expect(ended).toMatchObject({
      status: 'FAILED',
      attributes: { error: { code: 'CANCELLED' }, subTaskCount: 6, subTaskFailedCount: 6, subTaskRunningCount: 0 },
    });
    const subs = await listSubTasks(token, parent.id);
    expect(subs.map((sub) => sub.status)).toEqual(Array(6).fill('FAILED'));
  });

  describe('refusals', () => {
    let token: string;
    let tasks: any[];
    beforeAll(async () => {
      token = await app.token('bulk-no');
      tasks = await idleTasks(token, 1);
    });

    test.each([
      ['first 0', { first: 0 }, 'first'],
      ['first 501', { first: 501 }, 'first'],
      ['first -1', { first: -1 }, 'first'],
      ['status COMPLETED', { filter: { status: 'COMPLETED' } }, 'status'],
      ['status FAILED', { filter: { status: 'FAILED' } }, 'status'],
      ['a malformed taskType', { filter: { taskType: 'a#b' } }, undefined],
    ])('%s is BAD_USER_INPUT and cancels nothing', async (_, variables: { first?: number; filter?: Record<string, unknown> }, field) => {
      const res = await cancelMany(token, variables.filter ?? {}, variables.first);
      expect(errorCode(res)).toBe('BAD_USER_INPUT');
      if (field) expect(res.errors![0]!.extensions).toMatchObject({ field });
      expect(await statusesOf(token, tasks)).toEqual(['QUEUED']);
    });

    test('without a token: UNAUTHENTICATED (401)', async () => {
      const res = await cancelMany(null, {});
      expect({ status: res.status, code: errorCode(res) }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
      expect(await statusesOf(token, tasks)).toEqual(['QUEUED']);
    });

    test('a viewer token, even one naming the tasks: FORBIDDEN, nothing cancelled', async () => {
      const viewer = await viewerTokenFor(
        token,
        tasks.map((task) => task.id),
      );
      const res = await cancelMany(viewer, {});
      expect(errorCode(res)).toBe('FORBIDDEN');
      expect(await statusesOf(token, tasks)).toEqual(['QUEUED']);
    });
  });
});
