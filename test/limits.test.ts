import { beforeAll, describe, expect, test } from 'vitest';
import { subTasksOf } from '../src/tasks/sub-tasks.js';
import { MAX_INPUT_BYTES } from '../src/tasks/limits.js';
import { CREATE_SFN_TASK, CREATE_TASK, LIST_SUB_TASKS, LIST_TASKS, errorCode, startTestApp, type TestApp } from './helpers/app.js';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});

const itemCount = () => app.itemCount();

/** Ids a tenant lists, both kinds, through the given app. */
async function listedIds(tenant: string, on: TestApp = app): Promise<string[]> {
  const token = await on.token(tenant);
  const ids: string[] = [];
  for (const kind of ['TASK', 'SFN_TASK']) {
    const res = await on.gql(LIST_TASKS, { filter: { kind }, first: 100 }, token);
    expect(res.errors).toBeUndefined();
    ids.push(...res.data!.tasks.edges.map((edge: any) => edge.node.id));
  }
  return ids;
}

/** A create that returns little, so large inputs are not echoed back. */
const CREATE_TASK_ID = `mutation($input: CreateTaskInput!) { createTask(input: $input) { id tenantCode } }`;
const CREATE_SFN_TASK_ID = `mutation($input: CreateTaskInput!) { createStepFunctionTask(input: $input) { id tenantCode } }`;

/** Sends a create that must be refused with `code`, and checks nothing was stored anywhere. */
async function expectRefusedCreate(tenant: string, mutation: string, input: Record<string, unknown>, code: string) {
  const token = await app.token(tenant);
  const before = await itemCount();
  const res = await app.gql(mutation, { input }, token);
  expect(errorCode(res)).toBe(code);
  expect(res.data).toBeNull();
  expect(await itemCount()).toBe(before);
  expect(await listedIds(tenant)).toEqual([]);
  return res;
}

/** A string whose JSON serialization is exactly `bytes` bytes (two of them are the quotes). */
const jsonStringOfBytes = (bytes: number) => 'x'.repeat(bytes - 2);

describe('input size', () => {
  test('the limit is 350,000 bytes serialized', () => {
    expect(MAX_INPUT_BYTES).toBe(350_000);
  });

  test('input one byte over the limit: PAYLOAD_TOO_LARGE, nothing stored', async () => {
    const res = await expectRefusedCreate(
      'lim-size-over',
      CREATE_TASK_ID,
      { taskType: 'REPORT', input: jsonStringOfBytes(350_001) },
      'PAYLOAD_TOO_LARGE',
    );
    expect(res.errors![0]!.extensions).toMatchObject({ field: 'input', bytes: 350_001, limit: 350_000 });
  });

  test('input well over the limit as an object: PAYLOAD_TOO_LARGE', async () => {
    const input = { rows: Array.from({ length: 40_000 }, (_, i) => `row-${i}`) };
    expect(JSON.stringify(input).length).toBeGreaterThan(350_000);
    await expectRefusedCreate('lim-size-object', CREATE_TASK_ID, { taskType: 'REPORT', input }, 'PAYLOAD_TOO_LARGE');
  });

  test('the limit counts UTF-8 bytes, not characters', async () => {
    const input = 'é'.repeat(175_000); // 175,002 characters serialized, 350,002 bytes
    expect(JSON.stringify(input).length).toBeLessThan(350_000);
    const res = await expectRefusedCreate('lim-size-utf8', CREATE_TASK_ID, { taskType: 'REPORT', input }, 'PAYLOAD_TOO_LARGE');
    expect(res.errors![0]!.extensions).toMatchObject({ bytes: 350_002 });
  });

  test('a Step Functions input over the limit: PAYLOAD_TOO_LARGE, no task and no sub-tasks', async () => {
    const input = Array.from({ length: 100 }, () => 'y'.repeat(3_600));
    expect(JSON.stringify(input).length).toBeGreaterThan(350_000);
    await expectRefusedCreate('lim-size-sfn', CREATE_SFN_TASK_ID, { taskType: 'IMPORT', input }, 'PAYLOAD_TOO_LARGE');
  });

  test.each([
    ['exactly at the limit', 350_000],
    ['just under the limit', 349_999],
  ])('input %s is stored', async (_, bytes) => {
    const tenant = `lim-size-ok-${bytes}`;
    const input = jsonStringOfBytes(bytes);
    const res = await app.gql(CREATE_TASK_ID, { input: { taskType: 'REPORT', input } }, await app.token(tenant));
    expect(res.errors).toBeUndefined();
    const id = res.data!.createTask.id;
    expect(await listedIds(tenant)).toEqual([id]);
    const stored = await app.store.get({ pk: `TASK#${tenant}`, sk: id.slice(`TASK#${tenant}#`.length) });
    expect(stored?.input).toBe(input);
  });
});

describe('item size', () => {
  const UPDATE_ID = `mutation($input: UpdateStatusInput!) { updateStatus(input: $input) { id version } }`;
  const GET_KEYS = `query($id: ID!) { task(id: $id) { version status attributes } }`;

  test("updates that together would pass DynamoDB's 400 KB item limit: PAYLOAD_TOO_LARGE, the task unchanged", async () => {
    const token = await app.token('lim-item-size');
    const created = await app.gql(CREATE_TASK_ID, { input: { taskType: 'REPORT', input: {} } }, token);
    const { id } = created.data!.createTask;
    const first = await app.gql(UPDATE_ID, { input: { id, status: 'PROCESSING', attributes: { a: jsonStringOfBytes(250_000) } } }, token);
    expect(first.errors).toBeUndefined();
    const second = await app.gql(UPDATE_ID, { input: { id, status: 'COMPLETED', attributes: { b: jsonStringOfBytes(250_000) } } }, token);
    expect(errorCode(second)).toBe('PAYLOAD_TOO_LARGE');
    const task = (await app.gql(GET_KEYS, { id }, token)).data!.task;
    expect({ version: task.version, status: task.status, keys: Object.keys(task.attributes) }).toEqual({
      version: 2,
      status: 'PROCESSING',
      keys: ['a'],
    });
  });
});

describe('taskType and name', () => {
  test.each([
    ['empty', ''],
    ['65 characters', 'A'.repeat(65)],
    ['containing #', 'RE#PORT'],
    ['containing a space', 'RE PORT'],
    ['containing a slash', 'RE/PORT'],
  ])('taskType %s: BAD_USER_INPUT, nothing stored', async (label, taskType) => {
    const tenant = `lim-type-${label.replace(/[^a-z0-9]+/g, '-')}`;
    for (const mutation of [CREATE_TASK_ID, CREATE_SFN_TASK_ID]) {
      const res = await expectRefusedCreate(tenant, mutation, { taskType, input: [1] }, 'BAD_USER_INPUT');
      expect(res.errors![0]!.extensions).toMatchObject({ field: 'taskType' });
    }
  });

  test('taskType of 64 characters and every allowed character is accepted', async () => {
    const token = await app.token('lim-type-ok');
    for (const taskType of ['A'.repeat(64), 'Az09_.-']) {
      const res = await app.gql(CREATE_TASK_ID, { input: { taskType, input: {} } }, token);
      expect(res.errors, taskType).toBeUndefined();
    }
    expect(await listedIds('lim-type-ok')).toHaveLength(2);
  });

  test.each([
    ['containing #', 'REPORT#01ARZ3NDEKTSV4RRFFQ69G5FAV'],
    ['65 characters', 'A'.repeat(65)],
  ])('a tasks filter with taskType %s: BAD_USER_INPUT', async (_, taskType) => {
    const res = await app.gql(LIST_TASKS, { filter: { taskType } }, await app.token('lim-type-filter'));
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(res.data).toBeNull();
  });

  test.each([
    ['257 characters', 'n'.repeat(257)],
    ['empty', ''],
  ])('name %s: BAD_USER_INPUT, nothing stored', async (label, name) => {
    const res = await expectRefusedCreate(
      `lim-name-${label.replace(/[^a-z0-9]+/g, '-')}`,
      CREATE_TASK_ID,
      { taskType: 'REPORT', name, input: {} },
      'BAD_USER_INPUT',
    );
    expect(res.errors![0]!.extensions).toMatchObject({ field: 'name' });
  });

  test('name of 256 characters is accepted', async () => {
    const name = 'n'.repeat(256);
    const res = await app.gql(CREATE_TASK, { input: { taskType: 'REPORT', name, input: {} } }, await app.token('lim-name-ok'));
    expect(res.errors).toBeUndefined();
    expect(res.data!.createTask.name).toBe(name);
  });
});

describe('page size', () => {
  let token: string;
  let parentId: string;
  let createdIds: string[];

  beforeAll(async () => {
    token = await app.token('lim-page');
    createdIds = [];
    for (let i = 0; i < 25; i++) {
      const res = await app.gql(CREATE_TASK_ID, { input: { taskType: 'REPORT', input: { i } } }, token);
      createdIds.push(res.data!.createTask.id);
    }
    const sfn = await app.gql(CREATE_SFN_TASK, { input: { taskType: 'IMPORT', input: Array.from({ length: 25 }, (_, i) => i) } }, token);
    parentId = sfn.data!.createStepFunctionTask.id;
    const parent = await app.store.get(sfn.data!.createStepFunctionTask);
    await app.store.putSubTasks(subTasksOf(parent!));
  });

  test.each([0, 101, -1])('first: %i is BAD_USER_INPUT for tasks and subTasks', async (first) => {
    const tasks = await app.gql(LIST_TASKS, { first }, token);
    expect(errorCode(tasks)).toBe('BAD_USER_INPUT');
    expect(tasks.errors![0]!.extensions).toMatchObject({ field: 'first' });
    expect(tasks.data).toBeNull();
    const subTasks = await app.gql(LIST_SUB_TASKS, { parentId, first }, token);
    expect(errorCode(subTasks)).toBe('BAD_USER_INPUT');
    expect(subTasks.data).toBeNull();
  });

  test('first omitted returns at most 20 items, and the next page the rest', async () => {
    const page = await app.gql(LIST_TASKS, {}, token);
    expect(page.errors).toBeUndefined();
    expect(page.data!.tasks.edges).toHaveLength(20);
    expect(page.data!.tasks.pageInfo.hasNextPage).toBe(true);
    const next = await app.gql(LIST_TASKS, { after: page.data!.tasks.pageInfo.endCursor }, token);
    expect(next.data!.tasks.edges).toHaveLength(5);
    expect(next.data!.tasks.pageInfo.hasNextPage).toBe(false);
    const all = [...page.data!.tasks.edges, ...next.data!.tasks.edges].map((edge: any) => edge.node.id);
    expect([...all].sort()).toEqual([...createdIds].sort());
  });

  test('subTasks with first omitted returns at most 20 items', async () => {
    const page = await app.gql(LIST_SUB_TASKS, { parentId }, token);
    expect(page.errors).toBeUndefined();
    expect(page.data!.subTasks.edges).toHaveLength(20);
    expect(page.data!.subTasks.pageInfo.hasNextPage).toBe(true);
  });

  test('first: 1 and first: 100 are accepted', async () => {
    const one = await app.gql(LIST_TASKS, { first: 1 }, token);
    expect(one.data!.tasks.edges).toHaveLength(1);
    const hundred = await app.gql(LIST_TASKS, { first: 100 }, token);
    expect(hundred.data!.tasks.edges).toHaveLength(25);
    expect(hundred.data!.tasks.pageInfo.hasNextPage).toBe(false);
  });
});

describe('cursors', () => {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  test.each([
    ['not base64 JSON', 'not-a-cursor'],
    ['JSON that is not an object', encode(42)],
    ['null', encode(null)],
    ['an object without keys', encode({})],
    ['another index', encode({ i: 'byStatusCreated', k: { pk: 'x', sk: 'y', listStatusKey: 'z', code: 'c' } })],
    ['missing key attributes', encode({ i: 'byTenantCreated', k: { pk: 'TASK#lim-cursor' } })],
    ['a number where a string belongs', encode({ i: 'byTenantCreated', k: { pk: 1, sk: 'a', listKey: 'TASK#lim-cursor', code: 'c' } })],
  ])('a malformed after (%s) is BAD_USER_INPUT', async (_, after) => {
    const token = await app.token('lim-cursor');
    const res = await app.gql(LIST_TASKS, { after }, token);
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(res.errors![0]!.extensions).toMatchObject({ field: 'after' });
    expect(res.data).toBeNull();
  });

  test('a cursor of one filter is refused by another', async () => {
    const token = await app.token('lim-cursor-filter');
    for (let i = 0; i < 2; i++) await app.gql(CREATE_TASK_ID, { input: { taskType: 'REPORT', input: {} } }, token);
    const typed = await app.gql(LIST_TASKS, { filter: { taskType: 'REPORT' }, first: 1 }, token);
    const cursor = typed.data!.tasks.pageInfo.endCursor;
    expect(cursor).toEqual(expect.any(String));

    expect(errorCode(await app.gql(LIST_TASKS, { first: 1, after: cursor }, token))).toBe('BAD_USER_INPUT');
    expect(errorCode(await app.gql(LIST_TASKS, { filter: { taskType: 'OTHER' }, first: 1, after: cursor }, token))).toBe('BAD_USER_INPUT');
    // Control: the same cursor with its own filter is fine.
    const next = await app.gql(LIST_TASKS, { filter: { taskType: 'REPORT' }, first: 1, after: cursor }, token);
    expect(next.errors).toBeUndefined();
    expect(next.data!.tasks.edges).toHaveLength(1);
  });

  test('a malformed subTasks after is BAD_USER_INPUT', async () => {
    const token = await app.token('lim-cursor-sub');
    const sfn = await app.gql(CREATE_SFN_TASK, { input: { taskType: 'IMPORT', input: [1, 2] } }, token);
    const res = await app.gql(LIST_SUB_TASKS, { parentId: sfn.data!.createStepFunctionTask.id, after: 'garbage' }, token);
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
  });
});

describe('aliases (MAX_QUERY_ALIASES, 15 by default)', () => {
  const aliasedCreates = (n: number) =>
    `mutation { ${Array.from({ length: n }, (_, i) => `c${i}: createTask(input: { taskType: "REPORT", input: { i: ${i} } }) { id }`).join(
      ' ',
    )} }`;

  test('16 aliases are refused with BAD_USER_INPUT and nothing is written', async () => {
    const tenant = 'lim-alias-over';
    const before = await itemCount();
    const res = await app.gql(aliasedCreates(16), {}, await app.token(tenant));
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.message).toMatch(/alias/i);
    expect(res.data ?? null).toBeNull();
    expect(await itemCount()).toBe(before);
    expect(await listedIds(tenant)).toEqual([]);
    // use-error-codes.ts promises a code on every error, the alias limit included.
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
  });

  test('15 aliases are accepted', async () => {
    const tenant = 'lim-alias-ok';
    const res = await app.gql(aliasedCreates(15), {}, await app.token(tenant));
    expect(res.errors).toBeUndefined();
    expect(Object.keys(res.data!)).toHaveLength(15);
    expect(await listedIds(tenant)).toHaveLength(15);
  });
});

describe('large numbers', () => {
  test('a JSON number beyond 2^53 is stored as parsed (its precision was lost in JSON parsing already)', async () => {
    const tenant = 'lim-bignum';
    const res = await app.gql(CREATE_TASK_ID, { input: { taskType: 'REPORT', input: { big: 1e16 } } }, await app.token(tenant));
    expect(res.errors).toBeUndefined();
    expect(await listedIds(tenant)).toHaveLength(1);
  });
});

describe('request body size (MAX_BODY_BYTES=2048)', () => {
  let small: TestApp;
  beforeAll(async () => {
    small = await startTestApp({ MAX_BODY_BYTES: '2048' });
  });

  const bodyOf = (input: unknown) => JSON.stringify({ query: CREATE_TASK_ID, variables: { input: { taskType: 'REPORT', input } } });

  test('a body over the limit: HTTP 413, PAYLOAD_TOO_LARGE, nothing stored', async () => {
    const tenant = 'lim-body-over';
    const input = 'x'.repeat(2_100);
    expect(Buffer.byteLength(bodyOf(input))).toBeGreaterThan(2048);
    const res = await small.gql(CREATE_TASK_ID, { input: { taskType: 'REPORT', input } }, await small.token(tenant));
    expect(res.status).toBe(413);
    expect(errorCode(res)).toBe('PAYLOAD_TOO_LARGE');
    expect(res.errors![0]!.extensions).toMatchObject({ limit: 2048 });
    expect(await listedIds(tenant, small)).toEqual([]);
  });

  test('a body under the limit is served', async () => {
    const tenant = 'lim-body-ok';
    const res = await small.gql(CREATE_TASK_ID, { input: { taskType: 'REPORT', input: 'x'.repeat(1_000) } }, await small.token(tenant));
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    expect(await listedIds(tenant, small)).toEqual([res.data!.createTask.id]);
  });

  /** Sends the body in two chunks without Content-Length (Transfer-Encoding: chunked). */
  async function chunked(body: string, token: string) {
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 100));
        controller.enqueue(bytes.slice(100));
        controller.close();
      },
    });
    const response = await fetch(small.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    return { status: response.status, body: (await response.json()) as any };
  }

  test('a chunked body over the limit: HTTP 413, PAYLOAD_TOO_LARGE, nothing stored', async () => {
    const tenant = 'lim-body-chunked-over';
    const res = await chunked(bodyOf('x'.repeat(4_000)), await small.token(tenant));
    expect(res.status).toBe(413);
    expect(res.body.errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await listedIds(tenant, small)).toEqual([]);
  });

  test('a chunked body under the limit is served', async () => {
    const tenant = 'lim-body-chunked-ok';
    const res = await chunked(bodyOf('x'.repeat(500)), await small.token(tenant));
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(await listedIds(tenant, small)).toEqual([res.body.data.createTask.id]);
  });
});

describe('query depth (MAX_QUERY_DEPTH=3)', () => {
  let shallow: TestApp;
  beforeAll(async () => {
    shallow = await startTestApp({ MAX_QUERY_DEPTH: '3' });
  });

  test('a query deeper than 3 is refused with BAD_USER_INPUT', async () => {
    // tasks(1) > edges(2) > node(3) > id(4)
    const res = await shallow.gql(`{ tasks { edges { node { id } } } }`, {}, await shallow.token('lim-depth'));
    expect(res.data ?? null).toBeNull();
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.message).toMatch(/depth/i);
    // use-error-codes.ts promises a code on every error, the depth limit included.
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
  });

  test('a query of depth 3 is served', async () => {
    const res = await shallow.gql(`{ tasks { pageInfo { hasNextPage } } }`, {}, await shallow.token('lim-depth'));
    expect(res.errors).toBeUndefined();
    expect(res.data!.tasks.pageInfo.hasNextPage).toBe(false);
  });
});
