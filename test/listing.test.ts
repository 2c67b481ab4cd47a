import { beforeAll, describe, expect, test } from 'vitest';
import { subTasksOf } from '../src/tasks/sub-tasks.js';
import type { Task } from '../src/tasks/task.js';
import {
  CREATE_SFN_TASK,
  CREATE_TASK,
  LIST_SUB_TASKS,
  LIST_TASKS,
  UPDATE_STATUS,
  errorCode,
  startTestApp,
  type GraphQLResponse,
  type TestApp,
} from './helpers/app.js';
import { writeStatusChange } from './helpers/status-change.js';

/** A task as the API returns it (the selected TASK_FIELDS). */
interface ApiTask {
  id: string;
  pk: string;
  sk: string;
  code: string;
  kind: 'TASK' | 'SFN_TASK';
  type: string;
  name: string;
  tenantCode: string;
  status: string;
  input: unknown;
  attributes: Record<string, unknown>;
  version: number;
  parentId: string | null;
  subTaskIndex: number | null;
  createdAt: string;
  updatedAt: string;
  createdBy: string | null;
  updatedBy: string | null;
}

interface Connection {
  edges: { cursor: string; node: ApiTask }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

interface Filter {
  kind?: 'TASK' | 'SFN_TASK';
  taskType?: string;
  status?: string;
  updatedSince?: string;
  order?: 'ASC' | 'DESC';
}

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function ok<T>(res: GraphQLResponse, field: string): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data![field] as T;
}

async function createTask(token: string, taskType: string, input: unknown = {}): Promise<ApiTask> {
  return ok<ApiTask>(await app.gql(CREATE_TASK, { input: { taskType, input } }, token), 'createTask');
}

async function createSfnTask(token: string, taskType: string, input: unknown[]): Promise<ApiTask> {
  return ok<ApiTask>(await app.gql(CREATE_SFN_TASK, { input: { taskType, input } }, token), 'createStepFunctionTask');
}

async function setStatus(token: string, id: string, status: string): Promise<ApiTask> {
  return ok<ApiTask>(await app.gql(UPDATE_STATUS, { input: { id, status } }, token), 'updateStatus');
}

/** Writes the sub-tasks of a stored Step Functions task, as the fan-out does. */
async function writeSubTasks(parent: ApiTask): Promise<void> {
  const stored = await app.store.get(parent);
  expect(stored).toBeDefined();
  await app.store.putSubTasks(subTasksOf(stored!));
  // Marked as the worker marks them: the sub-task index then lists them in input order.
  await writeStatusChange(app.store, stored!, { bookkeeping: { subTasksWritten: true } }, { version: stored!.version });
}

async function listTasks(token: string, filter: Filter | undefined, first?: number, after?: string | null) {
  return app.gql<{ tasks: Connection }>(LIST_TASKS, { filter, first, after }, token);
}

async function listSubTasks(token: string, parentId: string, first?: number, after?: string | null) {
  return app.gql<{ subTasks: Connection }>(LIST_SUB_TASKS, { parentId, first, after }, token);
}

/** Reads every page of a connection, following endCursor. */
async function walk(fetchPage: (after: string | null) => Promise<GraphQLResponse>, field: string): Promise<Connection[]> {
  const pages: Connection[] = [];
  let after: string | null = null;
  for (let i = 0; i < 100; i++) {
    const page: Connection = ok<Connection>(await fetchPage(after), field);
    pages.push(page);
    if (!page.pageInfo.hasNextPage) return pages;
    expect(page.pageInfo.endCursor).not.toBeNull();
    after = page.pageInfo.endCursor;
  }
  throw new Error('more than 100 pages: pagination does not end');
}

const walkTasks = (token: string, filter: Filter | undefined, first: number) =>
  walk((after) => listTasks(token, filter, first, after), 'tasks');

const walkSubTasks = (token: string, parentId: string, first: number) =>
  walk((after) => listSubTasks(token, parentId, first, after), 'subTasks');

const nodesOf = (pages: Connection[]) => pages.flatMap((page) => page.edges.map((edge) => edge.node));
const idsOf = (pages: Connection[]) => nodesOf(pages).map((node) => node.id);

/**
 * The pages hold exactly `expected`, in order, each once; every page but the
 * last is full; only the last says there is no next page; each endCursor is
 * the cursor of the page's last edge.
 */
function expectPages(pages: Connection[], expected: string[], first: number): void {
  expect(idsOf(pages)).toEqual(expected);
  expect(new Set(idsOf(pages)).size).toBe(expected.length);
  expect(pages).toHaveLength(Math.max(1, Math.ceil(expected.length / first)));
  pages.forEach((page, i) => {
    const last = i === pages.length - 1;
    expect(page.pageInfo.hasNextPage).toBe(!last);
    if (!last) expect(page.edges).toHaveLength(first);
    else expect(page.edges).toHaveLength(expected.length - first * (pages.length - 1));
    expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
  });
}

const reversed = <T>(items: readonly T[]) => [...items].reverse();

describe('tasks: default listing', () => {
  const tenant = 'list-default';
  let token: string;
  /** In creation order. */
  const created: ApiTask[] = [];

  beforeAll(async () => {
    token = await app.token(tenant);
    for (let i = 0; i < 30; i++) created.push(await createTask(token, i % 2 === 0 ? 'REPORT' : 'EXPORT', { n: i }));
    // Neither another tenant's task nor a Step Functions task belongs in this listing.
    await createTask(await app.token('list-default-other'), 'REPORT');
    await createSfnTask(token, 'REPORT', [1, 2]);
  });

  test('codes are ULIDs that increase with creation', () => {
    const codes = created.map((task) => task.code);
    for (const code of codes) expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect([...codes].sort()).toEqual(codes);
    expect(new Set(codes).size).toBe(codes.length);
  });

  test("lists 20 of the caller's top-level tasks by default, newest first", async () => {
    const page = ok<Connection>(await listTasks(token, undefined), 'tasks');
    expect(page.edges).toHaveLength(20);
    expect(page.pageInfo.hasNextPage).toBe(true);
    expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)!.cursor);
    expect(page.edges.map((edge) => edge.node)).toEqual(reversed(created).slice(0, 20));
    for (const { node } of page.edges) {
      expect(node).toMatchObject({ kind: 'TASK', tenantCode: tenant, pk: `TASK#${tenant}`, parentId: null });
    }
  });

  test('an empty filter object lists the same as none', async () => {
    const page = ok<Connection>(await listTasks(token, {}, 5), 'tasks');
    expect(page.edges.map((edge) => edge.node.id)).toEqual(
      reversed(created)
        .slice(0, 5)
        .map((task) => task.id),
    );
  });

  test('walks pages of 7 newest first: every task once, in order', async () => {
    const pages = await walkTasks(token, undefined, 7);
    expect(pages.map((page) => page.edges.length)).toEqual([7, 7, 7, 7, 2]);
    expectPages(
      pages,
      reversed(created).map((task) => task.id),
      7,
    );
    expect(pages.at(-1)!.pageInfo.endCursor).not.toBeNull();
  });

  test('walks pages of 7 oldest first with order ASC', async () => {
    const pages = await walkTasks(token, { order: 'ASC' }, 7);
    expectPages(
      pages,
      created.map((task) => task.id),
      7,
    );
  });

  test('explicit kind TASK and order DESC match the defaults', async () => {
    const pages = await walkTasks(token, { kind: 'TASK', order: 'DESC' }, 7);
    expectPages(
      pages,
      reversed(created).map((task) => task.id),
      7,
    );
  });

  test('when the count is a multiple of the page size, the last full page has no next page', async () => {
    const pages = await walkTasks(token, undefined, 10);
    expect(pages.map((page) => [page.edges.length, page.pageInfo.hasNextPage])).toEqual([
      [10, true],
      [10, true],
      [10, false],
    ]);
    expectPages(
      pages,
      reversed(created).map((task) => task.id),
      10,
    );
  });

  test('a single page holds everything when first exceeds the count', async () => {
    const page = ok<Connection>(await listTasks(token, undefined, 100), 'tasks');
    expect(page.edges.map((edge) => edge.node.id)).toEqual(reversed(created).map((task) => task.id));
    expect(page.pageInfo).toEqual({ hasNextPage: false, endCursor: page.edges.at(-1)!.cursor });
  });

  test.each([0, -1, 101])('refuses first: %i with BAD_USER_INPUT', async (first) => {
    expect(errorCode(await listTasks(token, undefined, first))).toBe('BAD_USER_INPUT');
  });

  test('an empty tenant lists nothing, with a null endCursor', async () => {
    const page = ok<Connection>(await listTasks(await app.token('list-empty'), undefined, 7), 'tasks');
    expect(page).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  });
});

describe('tasks: filters by taskType and status', () => {
  const tenant = 'list-filter';
  const TYPES = ['ALPHA', 'BETA', 'GAMMA'] as const;
  const STATUSES = ['CREATED', 'QUEUED', 'PROCESSING'] as const;
  let token: string;
  /** Creation order, with the final status of each. */
  const tasks: ApiTask[] = [];

  // 45 tasks: ALPHA 18, BETA 18, GAMMA 9; each type has at least 3 tasks in each status.
  const typeOf = (i: number) => TYPES[i % 5 < 2 ? 0 : i % 5 < 4 ? 1 : 2]!;
  const statusOf = (i: number) => STATUSES[i % 3]!;

  beforeAll(async () => {
    token = await app.token(tenant);
    for (let i = 0; i < 45; i++) tasks.push(await createTask(token, typeOf(i), { n: i }));
    for (let i = 0; i < tasks.length; i++) {
      const target = statusOf(i);
      if (target === 'CREATED') continue;
      tasks[i] = await setStatus(token, tasks[i]!.id, 'QUEUED');
      if (target === 'PROCESSING') tasks[i] = await setStatus(token, tasks[i]!.id, 'PROCESSING');
    }
  });

  const expectedIds = (match: (task: ApiTask) => boolean) => reversed(tasks.filter(match)).map((task) => task.id);

  test('the fixture has the intended mix', () => {
    expect(tasks.map((task) => task.status)).toEqual(tasks.map((_, i) => statusOf(i)));
    expect(TYPES.map((type) => tasks.filter((task) => task.type === type).length)).toEqual([18, 18, 9]);
  });

  test.each(TYPES)('taskType %s, pages of 5, newest first', async (type) => {
    const pages = await walkTasks(token, { taskType: type }, 5);
    expectPages(
      pages,
      expectedIds((task) => task.type === type),
      5,
    );
    expect(pages.length).toBeGreaterThan(1);
    for (const node of nodesOf(pages)) expect(node.type).toBe(type);
    // Nodes carry their current state, not the state at creation.
    for (const node of nodesOf(pages)) expect(node).toEqual(tasks.find((task) => task.id === node.id));
  });

  test('taskType with order ASC, pages of 5', async () => {
    const pages = await walkTasks(token, { taskType: 'BETA', order: 'ASC' }, 5);
    expectPages(pages, reversed(expectedIds((task) => task.type === 'BETA')), 5);
  });

  test('a taskType nobody used lists nothing', async () => {
    const page = ok<Connection>(await listTasks(token, { taskType: 'DELTA' }, 5), 'tasks');
    expect(page).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  });

  test('refuses a malformed taskType with BAD_USER_INPUT', async () => {
    expect(errorCode(await listTasks(token, { taskType: 'ALPHA#QUEUED' }, 5))).toBe('BAD_USER_INPUT');
  });

  test.each(STATUSES)('status %s, pages of 4, newest (by creation) first', async (status) => {
    const pages = await walkTasks(token, { status }, 4);
    expectPages(
      pages,
      expectedIds((task) => task.status === status),
      4,
    );
    expect(pages.length).toBeGreaterThan(1);
    for (const node of nodesOf(pages)) expect(node.status).toBe(status);
  });

  test('status with order ASC, pages of 4', async () => {
    const pages = await walkTasks(token, { status: 'QUEUED', order: 'ASC' }, 4);
    expectPages(pages, reversed(expectedIds((task) => task.status === 'QUEUED')), 4);
  });

  test('a status no task is in lists nothing', async () => {
    const page = ok<Connection>(await listTasks(token, { status: 'COMPLETED' }), 'tasks');
    expect(page.edges).toEqual([]);
    expect(page.pageInfo.hasNextPage).toBe(false);
  });

  test.each(TYPES.flatMap((type) => STATUSES.map((status) => [type, status] as const)))(
    'taskType %s with status %s, pages of 2',
    async (type, status) => {
      const expected = expectedIds((task) => task.type === type && task.status === status);
      expect(expected.length).toBeGreaterThan(2);
      const pages = await walkTasks(token, { taskType: type, status }, 2);
      expectPages(pages, expected, 2);
      for (const node of nodesOf(pages)) expect(node).toMatchObject({ type, status });
    },
  );

  test('taskType with status, order ASC, pages of 2', async () => {
    const pages = await walkTasks(token, { taskType: 'ALPHA', status: 'PROCESSING', order: 'ASC' }, 2);
    expectPages(pages, reversed(expectedIds((task) => task.type === 'ALPHA' && task.status === 'PROCESSING')), 2);
  });
});

describe('tasks: updatedSince', () => {
  const tenant = 'list-updated';
  let token: string;
  const old: ApiTask[] = [];
  /** Last known state of each task changed at or after `since`. */
  const changed = new Map<string, ApiTask>();
  let since: string;

  const track = (task: ApiTask) => {
    changed.set(task.id, task);
    return task;
  };

  beforeAll(async () => {
    token = await app.token(tenant);
    for (let i = 0; i < 14; i++) old.push(await createTask(token, i % 2 === 0 ? 'SYNC' : 'PURGE', { n: i }));
    await sleep(5);
    since = new Date().toISOString();
    await sleep(5);
    // Changes in an order unrelated to creation, a few ms apart so no two share an updatedAt.
    for (const i of [9, 2, 12, 0, 5, 7, 11, 4]) {
      track(await setStatus(token, old[i]!.id, 'QUEUED'));
      await sleep(3);
    }
    track(await createTask(token, 'SYNC', { late: 1 }));
    await sleep(3);
    // Changed twice: its latest change counts.
    track(await setStatus(token, old[2]!.id, 'PROCESSING'));
    await sleep(3);
    track(await createTask(token, 'PURGE', { late: 2 }));
    await sleep(3);
    track(await setStatus(token, old[12]!.id, 'PROCESSING'));
  });

  /** Changed tasks matching `match`, most recently changed first. */
  const expectedIds = (match: (task: ApiTask) => boolean = () => true) =>
    [...changed.values()]
      .filter(match)
      .sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0))
      .map((task) => task.id);

  test('the fixture changes have distinct instants, all at or after since', () => {
    const instants = [...changed.values()].map((task) => task.updatedAt);
    expect(new Set(instants).size).toBe(instants.length);
    for (const instant of instants) expect(instant >= since).toBe(true);
    for (const task of old) expect(task.updatedAt < since).toBe(true);
  });

  test('lists only tasks changed since, most recently changed first, pages of 3', async () => {
    const pages = await walkTasks(token, { updatedSince: since }, 3);
    expectPages(pages, expectedIds(), 3);
    expect(pages.length).toBeGreaterThan(2);
    const unchanged = old.filter((task) => !changed.has(task.id)).map((task) => task.id);
    expect(unchanged.length).toBeGreaterThan(0);
    for (const id of idsOf(pages)) expect(unchanged).not.toContain(id);
    const updatedAts = nodesOf(pages).map((node) => node.updatedAt);
    expect(updatedAts).toEqual([...updatedAts].sort().reverse());
  });

  test('order ASC lists least recently changed first', async () => {
    const pages = await walkTasks(token, { updatedSince: since, order: 'ASC' }, 3);
    expectPages(pages, reversed(expectedIds()), 3);
  });

  test('a task changed twice is listed once, where its latest change puts it', async () => {
    const pages = await walkTasks(token, { updatedSince: since }, 3);
    const ids = idsOf(pages);
    expect(ids.filter((id) => id === old[2]!.id)).toHaveLength(1);
    expect(nodesOf(pages).find((node) => node.id === old[2]!.id)).toMatchObject({ status: 'PROCESSING', version: 3 });
  });

  test('combines with status, pages of 2', async () => {
    const pages = await walkTasks(token, { updatedSince: since, status: 'QUEUED' }, 2);
    expectPages(
      pages,
      expectedIds((task) => task.status === 'QUEUED'),
      2,
    );
    expect(pages.length).toBeGreaterThan(1);
  });

  test('combines with taskType, pages of 2', async () => {
    const pages = await walkTasks(token, { updatedSince: since, taskType: 'SYNC' }, 2);
    expectPages(
      pages,
      expectedIds((task) => task.type === 'SYNC'),
      2,
    );
    expect(pages.length).toBeGreaterThan(1);
  });

  test('combines with taskType and status, pages of 1', async () => {
    const pages = await walkTasks(token, { updatedSince: since, taskType: 'SYNC', status: 'PROCESSING' }, 1);
    const expected = expectedIds((task) => task.type === 'SYNC' && task.status === 'PROCESSING');
    expect(expected).toHaveLength(2);
    expectPages(pages, expected, 1);
  });

  test('an instant after every change lists nothing', async () => {
    await sleep(3);
    const page = ok<Connection>(await listTasks(token, { updatedSince: new Date().toISOString() }), 'tasks');
    expect(page).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  });

  test('an instant before every change lists every task', async () => {
    const pages = await walkTasks(token, { updatedSince: '2000-01-01T00:00:00.000Z' }, 6);
    expect(new Set(idsOf(pages))).toEqual(new Set([...old.map((task) => task.id), ...changed.keys()]));
    expectPages(pages, idsOf(pages), 6);
  });
});

describe('tasks: kind SFN_TASK', () => {
  const tenant = 'list-sfn';
  let token: string;
  const plain: ApiTask[] = [];
  /** Step Functions tasks, creation order, current state. */
  const sfn: ApiTask[] = [];
  let since: string;

  beforeAll(async () => {
    token = await app.token(tenant);
    for (let i = 0; i < 6; i++) plain.push(await createTask(token, i % 2 === 0 ? 'IMPORT' : 'EXPORT', { n: i }));
    await sleep(5);
    since = new Date().toISOString();
    await sleep(5);
    for (let i = 0; i < 8; i++) {
      const size = i === 0 ? 25 : 3 + i;
      sfn.push(
        await createSfnTask(
          token,
          i % 2 === 0 ? 'IMPORT' : 'EXPORT',
          Array.from({ length: size }, (_, n) => ({ n })),
        ),
      );
    }
    for (const i of [1, 2, 4, 5]) sfn[i] = await setStatus(token, sfn[i]!.id, 'QUEUED');
    // Sub-tasks: CREATED, same type as their parent, written after `since`, so any
    // filter would match them if they were indexed.
    for (const parent of sfn) await writeSubTasks(parent);
  });

  const expectedIds = (match: (task: ApiTask) => boolean = () => true) => reversed(sfn.filter(match)).map((task) => task.id);

  test('sub-tasks are stored and readable', async () => {
    const page = ok<Connection>(await listSubTasks(token, sfn[0]!.id, 100), 'subTasks');
    expect(page.edges).toHaveLength(25);
  });

  test('lists only Step Functions parents, newest first, pages of 3', async () => {
    const pages = await walkTasks(token, { kind: 'SFN_TASK' }, 3);
    expectPages(pages, expectedIds(), 3);
    for (const node of nodesOf(pages)) {
      expect(node).toMatchObject({ kind: 'SFN_TASK', pk: `SFN_TASK#${tenant}`, parentId: null, subTaskIndex: null });
    }
  });

  test('order ASC lists only parents, oldest first', async () => {
    const pages = await walkTasks(token, { kind: 'SFN_TASK', order: 'ASC' }, 3);
    expectPages(pages, reversed(expectedIds()), 3);
  });

  test.each([
    ['taskType', { taskType: 'IMPORT' }, (task: ApiTask) => task.type === 'IMPORT'],
    ['status CREATED', { status: 'CREATED' }, (task: ApiTask) => task.status === 'CREATED'],
    ['status QUEUED', { status: 'QUEUED' }, (task: ApiTask) => task.status === 'QUEUED'],
    [
      'taskType and status',
      { taskType: 'EXPORT', status: 'CREATED' },
      (task: ApiTask) => task.type === 'EXPORT' && task.status === 'CREATED',
    ],
  ] as const)('with %s lists only matching parents, pages of 1', async (_, filter, match) => {
    const expected = expectedIds(match);
    expect(expected.length).toBeGreaterThan(1);
    const pages = await walkTasks(token, { kind: 'SFN_TASK', ...filter }, 1);
    expectPages(pages, expected, 1);
    for (const node of nodesOf(pages)) expect(node.parentId).toBeNull();
  });

  test('with updatedSince lists only parents, most recently changed first', async () => {
    const pages = await walkTasks(token, { kind: 'SFN_TASK', updatedSince: since }, 3);
    const expected = [...sfn].sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0)).map((task) => task.id);
    // Ties in updatedAt could order either way; compare the set, then the order of instants.
    expect(new Set(idsOf(pages))).toEqual(new Set(expected));
    expectPages(pages, idsOf(pages), 3);
    const updatedAts = nodesOf(pages).map((node) => node.updatedAt);
    expect(updatedAts).toEqual([...updatedAts].sort().reverse());
    for (const node of nodesOf(pages)) expect(node.parentId).toBeNull();
  });

  test('with updatedSince and status CREATED lists only parents', async () => {
    const pages = await walkTasks(token, { kind: 'SFN_TASK', updatedSince: since, status: 'CREATED' }, 2);
    expect(new Set(idsOf(pages))).toEqual(new Set(expectedIds((task) => task.status === 'CREATED')));
    expectPages(pages, idsOf(pages), 2);
  });

  test('the TASK listing never includes Step Functions tasks or their sub-tasks', async () => {
    const all = await walkTasks(token, undefined, 4);
    expectPages(
      all,
      reversed(plain).map((task) => task.id),
      4,
    );
    const imports = await walkTasks(token, { taskType: 'IMPORT' }, 2);
    expectPages(
      imports,
      reversed(plain.filter((task) => task.type === 'IMPORT')).map((task) => task.id),
      2,
    );
    const created = await walkTasks(token, { status: 'CREATED', updatedSince: '2000-01-01T00:00:00.000Z' }, 4);
    expect(new Set(idsOf(created))).toEqual(new Set(plain.map((task) => task.id)));
    for (const node of [...nodesOf(all), ...nodesOf(imports), ...nodesOf(created)]) expect(node.kind).toBe('TASK');
  });
});

describe('subTasks', () => {
  const tenant = 'list-sub';
  let token: string;
  let parent: ApiTask;
  let other: ApiTask;
  const input = Array.from({ length: 25 }, (_, i) => ({ row: i, label: `row-${i}` }));

  beforeAll(async () => {
    token = await app.token(tenant);
    parent = await createSfnTask(token, 'IMPORT', input);
    other = await createSfnTask(token, 'IMPORT', ['x', 'y', 'z']);
    await writeSubTasks(parent);
    await writeSubTasks(other);
  });

  test('the sk suffix alone would sort index 10 after 1', () => {
    const suffixes = Array.from({ length: 25 }, (_, i) => `${parent.sk}#${i}`).sort();
    expect(suffixes.indexOf(`${parent.sk}#10`)).toBe(suffixes.indexOf(`${parent.sk}#1`) + 1);
  });

  test('lists sub-tasks in numeric index order across pages of 10', async () => {
    const pages = await walkSubTasks(token, parent.id, 10);
    expect(pages.map((page) => page.edges.length)).toEqual([10, 10, 5]);
    const expected = input.map((_, i) => `${parent.id}#${i}`);
    expectPages(pages, expected, 10);
    const nodes = nodesOf(pages);
    expect(nodes.map((node) => node.subTaskIndex)).toEqual(input.map((_, i) => i));
    nodes.forEach((node, i) => {
      expect(node).toMatchObject({
        id: `${parent.id}#${i}`,
        pk: parent.pk,
        sk: `${parent.sk}#${i}`,
        kind: 'SFN_TASK',
        type: 'IMPORT',
        tenantCode: tenant,
        status: 'CREATED',
        parentId: parent.id,
        subTaskIndex: i,
        code: parent.code,
      });
      expect(node.input).toEqual(input[i]);
    });
  });

  test('lists 20 sub-tasks by default', async () => {
    const page = ok<Connection>(await listSubTasks(token, parent.id), 'subTasks');
    expect(page.edges.map((edge) => edge.node.subTaskIndex)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(page.pageInfo).toEqual({ hasNextPage: true, endCursor: page.edges.at(-1)!.cursor });
  });

  test("lists only the given parent's sub-tasks", async () => {
    const pages = await walkSubTasks(token, other.id, 2);
    expectPages(
      pages,
      [0, 1, 2].map((i) => `${other.id}#${i}`),
      2,
    );
    expect(nodesOf(pages).map((node) => node.input)).toEqual(['x', 'y', 'z']);
  });

  test("refuses a cursor from another parent's sub-tasks with BAD_USER_INPUT", async () => {
    const page = ok<Connection>(await listSubTasks(token, parent.id, 2), 'subTasks');
    expect(errorCode(await listSubTasks(token, other.id, 2, page.pageInfo.endCursor))).toBe('BAD_USER_INPUT');
  });

  test('a task without sub-tasks lists none', async () => {
    const lone = await createSfnTask(token, 'IMPORT', [1]);
    const page = ok<Connection>(await listSubTasks(token, lone.id), 'subTasks');
    expect(page).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: null } });
  });

  test("answers NOT_FOUND for another tenant's parent", async () => {
    const res = await listSubTasks(await app.token('list-sub-other'), parent.id);
    expect(errorCode(res)).toBe('NOT_FOUND');
  });

  test('sub-tasks of a parent this service did not write them for (the original package) are listed in key order', async () => {
    const unmarked = await createSfnTask(token, 'IMPORT', input.slice(0, 12));
    // As the original writes a parent: no failure policy (which marks a parent created here).
    const created = (await app.store.get(unmarked))!;
    const stored = await writeStatusChange(app.store, created, { attributes: { failurePolicy: null } }, { version: created.version });
    // Written without parentId or subTaskIndex, as the original writes them: the sub-task index never sees them.
    await app.store.putSubTasks(subTasksOf(stored).map(({ parentId: _p, subTaskIndex: _i, ...sub }) => sub as typeof sub & Task));
    const keyOrder = Array.from({ length: 12 }, (_, i) => `${unmarked.id}#${i}`).sort();
    const pages = await walkSubTasks(token, unmarked.id, 5);
    expectPages(pages, keyOrder, 5);
    expect(nodesOf(pages).map((node) => [node.parentId, node.subTaskIndex])).toEqual(
      keyOrder.map((id) => [unmarked.id, Number(id.split('#').at(-1))]),
    );
    // A cursor of one parent's key-order listing does not page another's.
    const first = ok<Connection>(await listSubTasks(token, unmarked.id, 2), 'subTasks');
    expect(errorCode(await listSubTasks(token, other.id, 2, first.pageInfo.endCursor))).toBe('BAD_USER_INPUT');
    const alsoCreated = await createSfnTask(token, 'IMPORT', [1]);
    const alsoUnmarked = await writeStatusChange(
      app.store,
      (await app.store.get(alsoCreated))!,
      { attributes: { failurePolicy: null } },
      { version: 1 },
    );
    expect(errorCode(await listSubTasks(token, alsoUnmarked.id, 2, first.pageInfo.endCursor))).toBe('BAD_USER_INPUT');
  });
});

describe('tasks: a status change moves a task between listings', () => {
  const tenant = 'list-move';
  let token: string;
  const tasks: ApiTask[] = [];

  beforeAll(async () => {
    token = await app.token(tenant);
    for (let i = 0; i < 5; i++) tasks.push(await createTask(token, 'MOVE', { n: i }));
  });

  const ids = async (filter: Filter) => idsOf(await walkTasks(token, filter, 2));

  test('CREATED → QUEUED → PROCESSING', async () => {
    const all = reversed(tasks).map((task) => task.id);
    const moving = tasks[2]!;
    expect(await ids({ status: 'CREATED' })).toEqual(all);
    expect(await ids({ status: 'QUEUED' })).toEqual([]);

    await setStatus(token, moving.id, 'QUEUED');
    const rest = all.filter((id) => id !== moving.id);
    expect(await ids({ status: 'CREATED' })).toEqual(rest);
    expect(await ids({ taskType: 'MOVE', status: 'CREATED' })).toEqual(rest);
    const queued = ok<Connection>(await listTasks(token, { status: 'QUEUED' }), 'tasks');
    expect(queued.edges.map((edge) => edge.node)).toEqual([expect.objectContaining({ id: moving.id, status: 'QUEUED', version: 2 })]);
    expect(await ids({ taskType: 'MOVE', status: 'QUEUED' })).toEqual([moving.id]);

    await setStatus(token, moving.id, 'PROCESSING');
    expect(await ids({ status: 'QUEUED' })).toEqual([]);
    expect(await ids({ taskType: 'MOVE', status: 'QUEUED' })).toEqual([]);
    expect(await ids({ status: 'PROCESSING' })).toEqual([moving.id]);
    expect(await ids({ status: 'CREATED' })).toEqual(rest);

    // The unfiltered listings keep it once, in its creation place, with its new state.
    expect(await ids({})).toEqual(all);
    expect(await ids({ taskType: 'MOVE' })).toEqual(all);
    const listed = nodesOf(await walkTasks(token, {}, 2)).find((node) => node.id === moving.id);
    expect(listed).toMatchObject({ status: 'PROCESSING', version: 3 });
  });
});

describe('tasks: cursors are bound to their query', () => {
  const tenant = 'list-cursor';
  let token: string;

  beforeAll(async () => {
    token = await app.token(tenant);
    for (let i = 0; i < 6; i++) {
      const task = await createTask(token, i % 2 === 0 ? 'ALPHA' : 'BETA', { n: i });
      if (i < 4) await setStatus(token, task.id, 'QUEUED');
    }
    for (let i = 0; i < 3; i++) await createSfnTask(token, 'ALPHA', [i]);
  });

  const cursorOf = async (filter: Filter) => {
    const page = ok<Connection>(await listTasks(token, filter, 1), 'tasks');
    expect(page.pageInfo.hasNextPage).toBe(true);
    return page.pageInfo.endCursor!;
  };

  const since = '2000-01-01T00:00:00.000Z';

  test.each<[string, Filter, Filter]>([
    ['no filter → taskType', {}, { taskType: 'ALPHA' }],
    ['no filter → status', {}, { status: 'QUEUED' }],
    ['no filter → updatedSince', {}, { updatedSince: since }],
    ['no filter → kind SFN_TASK', {}, { kind: 'SFN_TASK' }],
    ['taskType → another taskType', { taskType: 'ALPHA' }, { taskType: 'BETA' }],
    ['taskType → no filter', { taskType: 'ALPHA' }, {}],
    ['taskType → taskType and status', { taskType: 'ALPHA' }, { taskType: 'ALPHA', status: 'QUEUED' }],
    ['status → another status', { status: 'QUEUED' }, { status: 'CREATED' }],
    ['status → taskType', { status: 'QUEUED' }, { taskType: 'ALPHA' }],
    ['taskType and status → other status', { taskType: 'ALPHA', status: 'QUEUED' }, { taskType: 'ALPHA', status: 'CREATED' }],
    ['taskType and status → taskType', { taskType: 'ALPHA', status: 'QUEUED' }, { taskType: 'ALPHA' }],
    ['updatedSince → no filter', { updatedSince: since }, {}],
    ['updatedSince → updatedSince and status', { updatedSince: since }, { updatedSince: since, status: 'QUEUED' }],
    ['kind SFN_TASK → kind TASK', { kind: 'SFN_TASK' }, { kind: 'TASK' }],
    ['kind SFN_TASK with taskType → kind TASK with taskType', { kind: 'SFN_TASK', taskType: 'ALPHA' }, { taskType: 'ALPHA' }],
  ])('%s: BAD_USER_INPUT', async (_, from, to) => {
    const cursor = await cursorOf(from);
    // The cursor is good for its own query...
    expect((await listTasks(token, from, 1, cursor)).errors).toBeUndefined();
    // ...and refused by another.
    const res = await listTasks(token, to, 1, cursor);
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(res.data?.tasks ?? null).toBeNull();
  });

  test("another tenant's cursor for the same filter: BAD_USER_INPUT", async () => {
    const otherToken = await app.token('list-cursor-other');
    await createTask(otherToken, 'ALPHA');
    await createTask(otherToken, 'ALPHA');
    const page = ok<Connection>(await listTasks(otherToken, { taskType: 'ALPHA' }, 1), 'tasks');
    expect(errorCode(await listTasks(token, { taskType: 'ALPHA' }, 1, page.pageInfo.endCursor))).toBe('BAD_USER_INPUT');
  });

  test('a sub-task cursor is refused by tasks: BAD_USER_INPUT', async () => {
    const parent = await createSfnTask(token, 'ALPHA', [1, 2, 3]);
    await writeSubTasks(parent);
    const page = ok<Connection>(await listSubTasks(token, parent.id, 1), 'subTasks');
    expect(errorCode(await listTasks(token, {}, 1, page.pageInfo.endCursor))).toBe('BAD_USER_INPUT');
  });

  test('an updatedSince cursor from before a later updatedSince: BAD_USER_INPUT', async () => {
    const page = ok<Connection>(await listTasks(token, { updatedSince: since, order: 'ASC' }, 1), 'tasks');
    const later = new Date(Date.parse(page.edges[0]!.node.updatedAt) + 1).toISOString();
    expect(errorCode(await listTasks(token, { updatedSince: later }, 1, page.pageInfo.endCursor))).toBe('BAD_USER_INPUT');
  });

  test.each(['not-a-cursor', Buffer.from('{"i":"byTenantCreated","k":{}}').toString('base64url')])(
    'a malformed cursor %j: BAD_USER_INPUT',
    async (cursor) => {
      expect(errorCode(await listTasks(token, {}, 1, cursor))).toBe('BAD_USER_INPUT');
    },
  );
});

describe('a status changed by another writer, without the list keys', () => {
  test('the task is never listed under the status it no longer has; pages stay full', async () => {
    const { DynamoDBClient, UpdateItemCommand } = await import('@aws-sdk/client-dynamodb');
    const token = await app.token('stale-keys');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await app.gql(CREATE_TASK, { input: { taskType: 'STALE', input: { i } } }, token);
      ids.push(res.data!.createTask.id);
      await app.gql(UPDATE_STATUS, { input: { id: ids[i], status: 'PROCESSING' } }, token);
    }
    // As @mbc-cqrs-serverless/task's updateStatus does: status and attributes only, no list keys, no version.
    const raw = new DynamoDBClient({
      endpoint: app.dynamoEndpoint,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      for (const id of ids.slice(0, 2)) {
        const [kind, tenant, type, code] = id.split('#');
        await raw.send(
          new UpdateItemCommand({
            TableName: app.store.tableName,
            Key: { pk: { S: `${kind}#${tenant}` }, sk: { S: `${type}#${code}` } },
            UpdateExpression: 'SET #status = :s',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':s': { S: 'COMPLETED' } },
          }),
        );
      }
    } finally {
      raw.destroy();
    }
    const processing = await app.gql(LIST_TASKS, { filter: { status: 'PROCESSING' }, first: 2 }, token);
    const first = processing.data!.tasks;
    expect(first.edges.map((edge: any) => edge.node.status)).toEqual(['PROCESSING', 'PROCESSING']);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const second = await app.gql(LIST_TASKS, { filter: { status: 'PROCESSING' }, first: 2, after: first.pageInfo.endCursor }, token);
    const listed = [...first.edges, ...second.data!.tasks.edges].map((edge: any) => edge.node.id);
    expect(new Set(listed)).toEqual(new Set(ids.slice(2)));
    expect(second.data!.tasks.pageInfo.hasNextPage).toBe(false);
  });
});
