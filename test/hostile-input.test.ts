import { beforeAll, describe, expect, test } from 'vitest';
import { mintToken } from '../src/auth/mint-token.js';
import { createLogger } from '../src/logger.js';
import { MAX_JSON_DEPTH, unstorableJson } from '../src/tasks/limits.js';
import { createMaskError } from '../src/server/mask-error.js';
import { badInput } from '../src/errors.js';
import { bracketNesting } from '../src/server/use-document-limits.js';
import {
  CREATE_SFN_TASK,
  CREATE_TASK,
  GET_TASK,
  LIST_SUB_TASKS,
  TEST_SECRET,
  UPDATE_STATUS,
  errorCode,
  startTestApp,
  type TestApp,
} from './helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});

/** `{ a: { a: ... 1 } }` with `levels` objects, built without recursion. */
function nested(levels: number, wrap: (inner: unknown) => unknown = (inner) => ({ a: inner })): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = wrap(value);
  return value;
}

/** POSTs a raw body: JSON.stringify itself overflows on the deepest values, so those are written as text. */
async function postRaw(body: string, token: string) {
  const response = await fetch(app.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body,
  });
  return { status: response.status, ...((await response.json()) as { data?: any; errors?: any[] }) };
}

const CANCEL = `mutation($id: ID!) { cancelTask(id: $id) { id status } }`;

describe('JSON nesting (at most 31 levels in one attribute: DynamoDB counts the item as the 32nd)', () => {
  test('unstorableJson finds nesting past 31 levels without recursion, and what else DynamoDB cannot store', () => {
    expect(unstorableJson(nested(MAX_JSON_DEPTH))).toBeUndefined();
    expect(unstorableJson([[{ a: [], b: 'x', c: 0, d: -1.5e125, e: 2e-130 }]])).toBeUndefined();
    expect(unstorableJson(nested(MAX_JSON_DEPTH + 1))).toMatchObject({ limit: 31 });
    // 100,000 levels: answered at once, without a stack overflow.
    expect(unstorableJson(nested(100_000))?.problem).toMatch(/more than 31 levels/);
    for (const number of [1e126, -1e126, 5e-324, -1e-131, Infinity]) {
      expect(unstorableJson({ a: [number] })?.problem).toMatch(/outside DynamoDB's range/);
    }
    expect(unstorableJson(JSON.parse('{"a":{"__proto__":1}}'))?.problem).toMatch(/__proto__/);
    expect(unstorableJson({ a: [{ '': 1 }] })?.problem).toMatch(/empty key/);
    expect(unstorableJson({ a: [''], b: { c: '' } })).toBeUndefined();
  });

  test('a "constructor" key is stored as data; "__proto__" and out-of-range numbers are BAD_USER_INPUT', async () => {
    const token = await app.token('hostile-keys');
    const ok = await app.gql(
      CREATE_TASK,
      { input: { taskType: 'REPORT', input: { constructor: 1, a: { constructor: { x: 2 } } } } },
      token,
    );
    expect(ok.errors).toBeUndefined();
    expect(ok.data!.createTask.input).toEqual({ constructor: 1, a: { constructor: { x: 2 } } });
    const again = await app.gql(GET_TASK, { id: ok.data!.createTask.id }, token);
    expect(again.data!.task.input).toEqual({ constructor: 1, a: { constructor: { x: 2 } } });

    const before = await app.itemCount();
    const proto = await postRaw(
      `{"query":${JSON.stringify(CREATE_TASK)},"variables":{"input":{"taskType":"REPORT","input":{"__proto__":{"x":1}}}}}`,
      token,
    );
    expect(proto.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input' });
    const huge = await app.gql(
      UPDATE_STATUS,
      { input: { id: ok.data!.createTask.id, status: 'PROCESSING', attributes: { n: 1e126 } } },
      token,
    );
    expect(huge.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'attributes' });
    expect(await app.itemCount()).toBe(before);
  });

  test.each([
    ['createTask', CREATE_TASK],
    ['createStepFunctionTask', CREATE_SFN_TASK],
  ])('%s: input of 31 levels is stored, 32 is BAD_USER_INPUT naming the field, and nothing is written', async (_, mutation) => {
    const token = await app.token('hostile-depth');
    // A Step Functions task's input is an array: its elements become sub-task inputs one level shallower.
    const atLimit = nested(MAX_JSON_DEPTH, (inner) => [inner]);
    const ok = await app.gql(mutation, { input: { taskType: 'REPORT', input: atLimit } }, token);
    expect(ok.errors).toBeUndefined();

    const before = await app.itemCount();
    const over = await app.gql(mutation, { input: { taskType: 'REPORT', input: nested(MAX_JSON_DEPTH + 1, (inner) => [inner]) } }, token);
    expect(errorCode(over)).toBe('BAD_USER_INPUT');
    expect(over.errors![0]!.extensions).toMatchObject({ field: 'input', limit: 31 });
    expect(over.errors![0]!.message).toMatch(/input nests more than 31 levels/);
    expect(await app.itemCount()).toBe(before);
  });

  test('updateStatus: attributes of 32 levels are refused and the task is unchanged', async () => {
    const token = await app.token('hostile-depth');
    const created = await app.gql(CREATE_TASK, { input: { taskType: 'REPORT', input: {} } }, token);
    const id = created.data!.createTask.id;
    const res = await app.gql(UPDATE_STATUS, { input: { id, status: 'PROCESSING', attributes: nested(MAX_JSON_DEPTH + 1) } }, token);
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(res.errors![0]!.extensions).toMatchObject({ field: 'attributes' });
    const after = await app.gql(GET_TASK, { id }, token);
    expect(after.data!.task).toMatchObject({ status: 'CREATED', version: 1, attributes: {} });
  });

  test.each([900, 2_000, 100_000])('a value %i levels deep in variables is BAD_USER_INPUT and the server stays up', async (levels) => {
    const token = await app.token('hostile-depth');
    const deep = `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
    const create = await postRaw(
      `{"query":${JSON.stringify(CREATE_TASK)},"variables":{"input":{"taskType":"REPORT","input":${deep}}}}`,
      token,
    );
    expect(create.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const update = await postRaw(
      `{"query":${JSON.stringify(UPDATE_STATUS)},"variables":{"input":{"id":"TASK#hostile-depth#REPORT#01ARZ3NDEKTSV4RRFFQ69G5FAV","status":"PROCESSING","attributes":${deep}}}}`,
      token,
    );
    expect(update.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await fetch(app.url.replace('/graphql', '/healthz'))).status).toBe(200);
  });

  test.each([40, 20_000, 100_000])('a query literal nested %i levels is BAD_USER_INPUT', async (levels) => {
    const token = await app.token('hostile-depth');
    const literal = `${'{a:'.repeat(levels)}1${'}'.repeat(levels)}`;
    const res = await app.gql(`mutation { createTask(input: { taskType: "REPORT", input: ${literal} }) { id } }`, {}, token);
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(res.errors![0]!.message).toMatch(/nests more than/);
  });

  test('bracketNesting ignores brackets in strings, block strings and comments', () => {
    expect(bracketNesting('{ a(x: "{{{{[[[") { b } }', 10)).toBe(2);
    expect(bracketNesting('{ a(x: """ {{{ \n ((( """) # {{{{\n }', 10)).toBe(2);
    expect(bracketNesting('{'.repeat(1000), 64)).toBe(65);
  });
});

describe('key parts (1-64 of A-Z a-z 0-9 _ . -)', () => {
  const long = 'x'.repeat(3_000);
  const badIds = [
    ['a 3,000-character type', `TASK#key-parts#${long}#01ARZ3NDEKTSV4RRFFQ69G5FAV`],
    ['a 3,000-character code', `TASK#key-parts#REPORT#${long}`],
    ['a 3,000-character tenant', `TASK#${long}#REPORT#01ARZ3NDEKTSV4RRFFQ69G5FAV`],
    ['a space in the type', 'TASK#key-parts#RE PORT#01ARZ3NDEKTSV4RRFFQ69G5FAV'],
    ['a NUL in the code', 'TASK#key-parts#REPORT#01ARZ\u0000'],
    ['an empty part', 'TASK#key-parts##01ARZ3NDEKTSV4RRFFQ69G5FAV'],
  ];

  test.each(badIds)('%s: BAD_USER_INPUT from task, updateStatus, cancelTask and subTasks', async (_, id) => {
    const token = await app.token('key-parts');
    const before = await app.itemCount();
    for (const [query, variables] of [
      [GET_TASK, { id }],
      [UPDATE_STATUS, { input: { id, status: 'PROCESSING' } }],
      [CANCEL, { id }],
      [LIST_SUB_TASKS, { parentId: `SFN_${id}` }],
    ] as const) {
      const res = await app.gql(query, variables, token);
      expect(errorCode(res), query).toBe('BAD_USER_INPUT');
      // The message quotes a bounded prefix of the id, not all of it.
      expect(res.errors![0]!.message.length).toBeLessThan(300);
    }
    expect(await app.itemCount()).toBe(before);
  });

  test.each([
    ['3,000 characters', 'x'.repeat(3_000)],
    ['the key separator', 'a#b'],
    ['a slash', 'a/b'],
    ['a NUL', 'a\u0000b'],
    ['surrounding spaces', ' acme '],
  ])('a token whose tenant claim has %s is UNAUTHENTICATED with a clear message', async (_, tenantCode) => {
    const token = await mintToken({ secret: TEST_SECRET, tenantCode, userId: 'u' });
    const before = await app.itemCount();
    const res = await app.gql(CREATE_TASK, { input: { taskType: 'REPORT', input: {} } }, token);
    expect(errorCode(res)).toBe('UNAUTHENTICATED');
    expect(res.errors![0]!.message).toMatch(/custom:tenant claim must be 1-64 characters/);
    expect(await app.itemCount()).toBe(before);
  });

  test('a forged page cursor naming an oversized key is BAD_USER_INPUT', async () => {
    const token = await app.token('key-parts');
    const forge = (k: Record<string, string>) => Buffer.from(JSON.stringify({ i: 'byTenantCreated', k })).toString('base64url');
    const listed = await app.gql(`query { tasks(first: 1) { pageInfo { endCursor } } }`, {}, token);
    expect(listed.errors).toBeUndefined();
    const cursor = forge({ pk: 'TASK#key-parts', sk: `REPORT#${'x'.repeat(3_000)}`, tenantPk: 'TASK#key-parts', code: 'x' });
    const res = await app.gql(`query($after: String) { tasks(after: $after) { edges { cursor } } }`, { after: cursor }, token);
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
  });
});

describe('query documents', () => {
  test('aliases of __typename count toward the alias limit', async () => {
    const res = await app.gql(`query { ${Array.from({ length: 1_000 }, (_, i) => `a${i}: __typename`).join(' ')} }`);
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(res.errors![0]!.message).toMatch(/Aliases limit of 15/);
  });

  test('a document over MAX_QUERY_TOKENS is refused as a syntax error, before validation', async () => {
    const res = await app.gql(`query { ${'__typename '.repeat(20_000)} }`);
    expect(errorCode(res)).toBe('GRAPHQL_PARSE_FAILED');
    expect(res.errors![0]!.message).toMatch(/more that 10000 tokens/);
  });

  test('a variable of the wrong type has a code', async () => {
    const res = await app.gql(`query($s: TaskStatus) { tasks(filter: { status: $s }) { edges { cursor } } }`, { s: 'NOPE' });
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
  });
});

describe('logs', () => {
  test('client errors are info without a stack; unexpected errors are error with one', () => {
    const lines: any[] = [];
    const mask = createMaskError(createLogger('debug', (line) => lines.push(JSON.parse(line))));
    mask(badInput('first must be between 1 and 100', { field: 'first' }), 'Unexpected error.', false);
    mask(new Error('socket hang up'), 'Unexpected error.', false);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'client error', data: [{ code: 'BAD_USER_INPUT' }] });
    expect(JSON.stringify(lines[0])).not.toMatch(/stack/);
    expect(lines[1]).toMatchObject({ level: 'error', msg: 'unexpected error', data: [{ message: 'socket hang up' }] });
    expect(lines[1].data[0].stack).toMatch(/socket hang up/);
  });

  test('LOG_LEVEL=warn: a run of bad requests logs nothing', async () => {
    const lines: string[] = [];
    const warnApp = await startTestApp({}, { logger: createLogger('warn', (line) => lines.push(line)) });
    const token = await warnApp.token('quiet');
    await warnApp.gql(GET_TASK, { id: 'nope' }, token);
    await warnApp.gql(UPDATE_STATUS, { input: { id: 'TASK#quiet#REPORT#01ARZ3NDEKTSV4RRFFQ69G5FAV', status: 'PROCESSING' } }, token);
    await warnApp.gql(`query { nope }`, {}, token);
    await warnApp.gql(GET_TASK, { id: 'x' }, null);
    expect(lines).toEqual([]);
  });
});

describe('graphql-sse single-connection mode', () => {
  test('a stream reservation (PUT) and token-addressed requests get a clear 405 naming what works instead', async () => {
    const token = await app.token('sse-single');
    const requests: [string, RequestInit][] = [
      [app.url, { method: 'PUT' }],
      [
        app.url,
        {
          method: 'POST',
          headers: { 'x-graphql-event-stream-token': 'abc', 'content-type': 'application/json' },
          body: '{"query":"{ __typename }"}',
        },
      ],
      [`${app.url}?token=abc`, { method: 'GET', headers: { accept: 'text/event-stream' } }],
    ];
    for (const [url, init] of requests) {
      const response = await fetch(url, { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('GET, POST');
      const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
      expect(body.errors[0]!.extensions.code).toBe('BAD_USER_INPUT');
      expect(body.errors[0]!.message).toMatch(/distinct-connections mode/);
    }
    // The distinct-connections mode is unaffected.
    const sse = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(sse.status).toBe(200);
    expect(await sse.text()).toMatch(/event: next/);
  });
});

describe('the worker bookkeeping keys', () => {
  test.each(['lease', 'attempt', 'nextAttemptAt', 'subTasksWritten', 'pendingSweep'])(
    'updateStatus with attributes.%s is BAD_USER_INPUT and changes nothing',
    async (key) => {
      const token = await app.token('reserved-keys');
      const created = await app.gql(CREATE_TASK, { input: { taskType: 'REPORT', input: {} } }, token);
      const id = created.data!.createTask.id;
      const res = await app.gql(
        UPDATE_STATUS,
        { input: { id, status: 'PROCESSING', attributes: { [key]: { owner: 'me', until: '2999-01-01T00:00:00Z' }, progress: 1 } } },
        token,
      );
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'attributes', reserved: [key] });
      const after = await app.gql(GET_TASK, { id }, token);
      expect(after.data!.task).toMatchObject({ status: 'CREATED', version: 1, attributes: {} });
    },
  );
});
