/**
 * Property-based fuzzing of every argument of the schema over real HTTP.
 *
 * One real server (in-memory dynalite, as the other tests) receives random and
 * hostile values for every mutation, query and subscription argument, hostile
 * documents and garbage bodies. For every request:
 *   - the server answers (no socket error, no hang);
 *   - the response is JSON with `data` or `errors` (SSE: every event is);
 *   - every error has `extensions.code`, none is INTERNAL_SERVER_ERROR or
 *     "Unexpected error." (an unexpected error is a crash the service masked);
 *   - the HTTP status is not 5xx.
 * Afterwards `/healthz` answers 200 and a plain createTask still works.
 *
 * Each property first runs every hostile value of every argument (as fast-check
 * `examples`, with the other arguments valid so the value reaches the deepest
 * code), then FUZZ_RUNS random cases. FUZZ_SEED fixes the random part; it is
 * printed with any failure. FUZZ_COLLECT=1 reports every violation of a
 * property instead of stopping at the first (still failing the test).
 *
 * Deep values are built iteratively: the helpers themselves never recurse.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  CREATE_SFN_TASK,
  CREATE_TASK,
  GET_TASK,
  LIST_SUB_TASKS,
  LIST_TASKS,
  TASK_FIELDS,
  UPDATE_STATUS,
  startTestApp,
  type TestApp,
} from './helpers/app.js';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 20_260_501;
if (!Number.isSafeInteger(SEED)) throw new Error(`FUZZ_SEED must be an integer, not ${process.env.FUZZ_SEED}`);
/** Random cases per property, on top of the fixed hostile examples. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 25);
const COLLECT = process.env.FUZZ_COLLECT === '1';
/** A request that gets no answer within this is a failure ("the server answers"). */
const REQUEST_TIMEOUT_MS = 10_000;
/** How long an SSE subscription is read for its first event before it is closed. */
const SSE_IDLE_MS = 60;

// ---------------------------------------------------------------------------
// Values

/** A value to send, with a short label: fast-check prints the label, not 5,000 levels of nesting. */
class Sample {
  constructor(
    readonly label: string,
    readonly value: unknown,
  ) {}
  [fc.toStringMethod](): string {
    return `«${this.label}»`;
  }
}

/** Literal JSON text spliced into a request body (NaN, 1e999, …), which JSON.stringify cannot produce. */
class Raw {
  constructor(readonly text: string) {}
}

/** Leaves the field out of its input object. */
const OMIT = Symbol('omit');
type Override = Sample | typeof OMIT;

const preview = (value: unknown): string => {
  let text: string;
  try {
    text = value instanceof Raw ? `raw ${value.text}` : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 60)}… (${text.length} chars)` : text;
};
const s = (label: string, value: unknown) => new Sample(label, value);
const auto = (value: unknown) => new Sample(preview(value), value);

/**
 * JSON text of a value, built with an explicit stack: JSON.stringify recurses
 * and overflows on the 5,000-level values this file sends. Raw values are
 * spliced in verbatim; otherwise it matches JSON.stringify.
 */
function encode(root: unknown): string {
  const out: string[] = [];
  const stack: { value: any; keys: string[] | null; index: number }[] = [];
  const write = (value: unknown) => {
    if (value instanceof Raw) out.push(value.text);
    else if (value === null || value === undefined || typeof value === 'function' || typeof value === 'symbol') out.push('null');
    else if (typeof value === 'number') out.push(Number.isFinite(value) ? JSON.stringify(value) : 'null');
    else if (typeof value !== 'object') out.push(JSON.stringify(value));
    else if (Array.isArray(value)) {
      out.push('[');
      stack.push({ value, keys: null, index: 0 });
    } else {
      const object = value as Record<string, unknown>;
      out.push('{');
      const keys = Object.keys(object).filter((key) => {
        const field = object[key];
        return field !== undefined && typeof field !== 'function' && typeof field !== 'symbol';
      });
      stack.push({ value, keys, index: 0 });
    }
  };
  write(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const length = top.keys ? top.keys.length : (top.value as unknown[]).length;
    if (top.index >= length) {
      out.push(top.keys ? '}' : ']');
      stack.pop();
      continue;
    }
    if (top.index > 0) out.push(',');
    const index = top.index++;
    if (top.keys) {
      const key = top.keys[index]!;
      out.push(JSON.stringify(key), ':');
      write(top.value[key]);
    } else {
      write(top.value[index]);
    }
  }
  return out.join('');
}

/** `depth` levels of `{ a: … }` or `[ … ]` around 1, built in a loop. */
function nested(depth: number, shape: 'object' | 'array' | 'mixed'): unknown {
  let value: unknown = 1;
  for (let level = 0; level < depth; level++) {
    const asArray = shape === 'array' || (shape === 'mixed' && level % 2 === 1);
    value = asArray ? [value] : { a: value };
  }
  return value;
}

/** The same nesting as a GraphQL literal: `{a: {a: … 1 …}}` or `[[ … ]]`. */
function nestedLiteral(depth: number, shape: 'object' | 'array'): string {
  return shape === 'object' ? `${'{a: '.repeat(depth)}1${'}'.repeat(depth)}` : `${'['.repeat(depth)}1${']'.repeat(depth)}`;
}

const base64url = (text: string) => Buffer.from(text).toString('base64url');
const LONG = 'x'.repeat(3_000);
const FAKE_CODE = '01HZZZZZZZZZZZZZZZZZZZZZZZ';

const DEPTHS = [33, 100, 1_000, 5_000];

function hostileJson(): Sample[] {
  const wide: Record<string, number> = {};
  for (let i = 0; i < 10_000; i++) wide[`k${i}`] = i;
  const values: Sample[] = [];
  for (const depth of DEPTHS) {
    values.push(s(`object nested ${depth}`, nested(depth, 'object')));
    values.push(s(`array nested ${depth}`, nested(depth, 'array')));
  }
  values.push(
    s('mixed nested 900', nested(900, 'mixed')),
    s('{ "": 1 }', { '': 1 }),
    s('{ __proto__: { polluted } }', JSON.parse('{"__proto__":{"polluted":true},"x":1}')),
    s('{ constructor: { prototype } }', { constructor: { prototype: { polluted: true } } }),
    s('{ toString, hasOwnProperty, valueOf }', { toString: 1, hasOwnProperty: 2, valueOf: null }),
    s('keys with # . $ : and spaces', { '#': 1, 'a.b': 2, $x: 3, ':y': 4, ' ': 5, 'TASK#x': 6 }),
    s('key of 3,000 chars', { [LONG]: 1 }),
    s('key with NUL', { 'a\u0000b': 'c\u0000d' }),
    s('string 349,990 chars', 'x'.repeat(349_990)),
    s('string 350,001 chars', 'x'.repeat(350_001)),
    s('string 1,100,000 chars (over the body limit)', 'x'.repeat(1_100_000)),
    s('"€" x 120,000 (360 KB in UTF-8)', '€'.repeat(120_000)),
    s('object with a 349,900-char value', { big: 'y'.repeat(349_900) }),
    s('wide object (10,000 keys)', wide),
    s(
      'array of 10,000',
      Array.from({ length: 10_000 }, (_, i) => i),
    ),
    s(
      'array of 10,001',
      Array.from({ length: 10_001 }, (_, i) => i),
    ),
    s('{}', {}),
    s('[]', []),
    s('null', null),
    s('""', ''),
    s('1e308', 1e308),
    s('raw 1e999', new Raw('1e999')),
    // DynamoDB numbers: magnitude 1e-130 to 9.99e125, 38 digits.
    s('{ n: 9.99e125 } (largest DynamoDB number)', { n: 9.99e125 }),
    s('{ n: 1e126 }', { n: 1e126 }),
    s('{ n: -1e-131 }', { n: -1e-131 }),
    s('{ n: 5e-324 }', { n: 5e-324 }),
    s('{ n: raw 1e999 }', { n: new Raw('1e999') }),
    s('{ n: 2^53 + 1 (raw) }', { n: new Raw('9007199254740993') }),
    s('raw -0', new Raw('-0')),
    s('lone surrogate', '\ud800'),
    s('{ result: null, error: null }', { result: null, error: null }),
    s('{ progress: "garbage" }', { progress: 'garbage', subTaskCount: -1, subTaskSucceedCount: 'x' }),
  );
  return values;
}

const GENERIC_STRINGS: Sample[] = [
  s('""', ''),
  s('" "', ' '),
  s('"  ECHO  "', '  ECHO  '),
  s('"#"', '#'),
  s('"##"', '##'),
  s('"/"', '/'),
  s('"../.."', '../..'),
  s('NUL', '\u0000'),
  s('"a NUL b"', 'a\u0000b'),
  s('control chars', '\u0001\u0002\u001b[31m\u001f\u007f'),
  s('newline, tab, CR', 'a\nb\tc\rd'),
  s('emoji', '💥🧨'),
  s('lone surrogate', '\ud800x'),
  s('RTL override, BOM, zero-width', '\u202eABC\ufeff\u200b'),
  s('fullwidth ＥＣＨＯ', 'ＥＣＨＯ'),
  s('combining marks', 'e\u0301\u0301\u0301'),
  s('3,000 chars', LONG),
  s('3,000 "#"', '#'.repeat(3_000)),
  s('70,000 chars', 'z'.repeat(70_000)),
  s('"%00%2F"', '%00%2F'),
  s('"null"', 'null'),
  s('"__proto__"', '__proto__'),
  s('SQL-ish', "' OR 1=1 --"),
  s('expression-ish', 'attribute_exists(pk) OR #x = :y'),
];

// ---------------------------------------------------------------------------
// The server and its fixtures

let app: TestApp;
let userToken: string;
let adminToken: string;

interface Fixtures {
  taskA: string;
  sfnA: string;
  taskB: string;
  sfnB: string;
  cursorA: string;
}
let fx: Fixtures;

beforeAll(async () => {
  app = await startTestApp();
  userToken = await app.token('tenant-a', { userId: 'user-a' });
  adminToken = await app.token('tenant-a', { userId: 'admin-a', admin: true });
  const tokenB = await app.token('tenant-b');
  const create = async (query: string, input: unknown, token: string) => {
    const res = await app.gql(query, { input }, token);
    expect(res.errors).toBeUndefined();
    return (Object.values(res.data!)[0] as { id: string }).id;
  };
  const taskA = await create(CREATE_TASK, { taskType: 'ECHO', input: { a: 1 } }, userToken);
  await create(CREATE_TASK, { taskType: 'ECHO', input: { a: 2 } }, userToken);
  const sfnA = await create(CREATE_SFN_TASK, { taskType: 'ECHO', input: [{ a: 1 }, { a: 2 }] }, userToken);
  const taskB = await create(CREATE_TASK, { taskType: 'ECHO', input: { b: 1 } }, tokenB);
  const sfnB = await create(CREATE_SFN_TASK, { taskType: 'ECHO', input: [{ b: 1 }] }, tokenB);
  const page = await app.gql(LIST_TASKS, { first: 1 }, userToken);
  expect(page.errors).toBeUndefined();
  fx = { taskA, sfnA, taskB, sfnB, cursorA: page.data!.tasks.pageInfo.endCursor };
  expect(fx.cursorA).toEqual(expect.any(String));
});

// ---------------------------------------------------------------------------
// HTTP and the properties every answer must have

interface Answer {
  status: number;
  contentType: string;
  /** Each JSON payload: the body, or each SSE `data`. */
  payloads: string[];
  /**
   * An empty 406/415 is HTTP content negotiation, not a GraphQL answer: allowed
   * only where the request asked for it (a body that is not JSON, a
   * subscription without `accept: text/event-stream`).
   */
  emptyAllowed?: number;
}

async function post(
  body: string | Uint8Array,
  {
    token = userToken,
    contentType = 'application/json',
    sse = false,
    emptyAllowed,
  }: { token?: string | null; contentType?: string | null; sse?: boolean; emptyAllowed?: number } = {},
): Promise<Answer> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
  try {
    const headers: Record<string, string> = {};
    if (contentType) headers['content-type'] = contentType;
    if (token) headers.authorization = `Bearer ${token}`;
    headers.accept = sse ? 'text/event-stream' : 'application/graphql-response+json, application/json';
    const payload = typeof body === 'string' ? body : new Uint8Array(body);
    const response = await fetch(app.url, { method: 'POST', headers, body: payload, signal: abort.signal });
    const type = response.headers.get('content-type') ?? '';
    if (!type.includes('text/event-stream')) {
      return { status: response.status, contentType: type, payloads: [await response.text()], emptyAllowed };
    }
    return { status: response.status, contentType: type, payloads: await readSse(response, abort), emptyAllowed };
  } finally {
    clearTimeout(timer);
  }
}

/** The `data` of SSE events until `complete`, or until nothing arrives for SSE_IDLE_MS (then the stream is closed). */
async function readSse(response: Response, abort: AbortController): Promise<string[]> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const payloads: string[] = [];
  let buffer = '';
  try {
    for (;;) {
      let idle: NodeJS.Timeout | undefined;
      const chunk = await Promise.race([
        reader.read(),
        new Promise<'idle'>((resolve) => (idle = setTimeout(() => resolve('idle'), SSE_IDLE_MS))),
      ]);
      clearTimeout(idle);
      if (chunk === 'idle' || chunk.done) return payloads;
      buffer += decoder.decode(chunk.value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = block.split('\n');
        const event = lines
          .find((line) => line.startsWith('event:'))
          ?.slice(6)
          .trim();
        const data = lines
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (event === 'complete') return payloads;
        if (data) payloads.push(data);
      }
    }
  } finally {
    abort.abort();
    reader.cancel().catch(() => {});
  }
}

/** Every violation of the per-request properties, as readable lines; none means the answer is fine. */
function violations(answer: Answer): string[] {
  const found: string[] = [];
  if (answer.status === answer.emptyAllowed && answer.payloads.every((payload) => payload === '')) return found;
  if (answer.status >= 500) found.push(`HTTP ${answer.status}`);
  if (answer.payloads.length === 0 && !answer.contentType.includes('text/event-stream')) found.push('no body');
  for (const payload of answer.payloads) {
    let body: unknown;
    try {
      body = JSON.parse(payload);
    } catch {
      found.push(`not JSON (HTTP ${answer.status}, ${answer.contentType}): ${preview(payload)}`);
      continue;
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body) || !('data' in body || 'errors' in body)) {
      found.push(`JSON without data or errors: ${preview(body)}`);
      continue;
    }
    const errors = (body as { errors?: unknown }).errors;
    if (errors === undefined) continue;
    if (!Array.isArray(errors) || errors.length === 0) {
      found.push(`errors is not a non-empty array: ${preview(errors)}`);
      continue;
    }
    for (const error of errors as { message?: unknown; extensions?: { code?: unknown } }[]) {
      const code = error?.extensions?.code;
      if (typeof code !== 'string' || code === '') found.push(`error without extensions.code: ${preview(error)}`);
      else if (code === 'INTERNAL_SERVER_ERROR') found.push(`INTERNAL_SERVER_ERROR: ${preview(error)}`);
      if (error?.message === 'Unexpected error.') found.push(`"Unexpected error." (code ${String(code)})`);
    }
  }
  return found;
}

/** Runs a property; on failure names the seed to replay it with. */
async function check<T>(name: string, arbitrary: fc.Arbitrary<T>, examples: T[], send: (value: T) => Promise<Answer>) {
  const collected: string[] = [];
  const predicate = async (value: T) => {
    let answer: Answer;
    try {
      answer = await send(value);
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      throw new Error(`no answer: ${String(error)}${cause ? ` (${String(cause)})` : ''}`);
    }
    const found = violations(answer);
    if (found.length === 0) return;
    const message = `${name} ${fc.stringify(value)} -> HTTP ${answer.status}: ${found.join('; ')}`;
    if (!COLLECT) throw new Error(message);
    collected.push(message);
  };
  try {
    await fc.assert(fc.asyncProperty(arbitrary, predicate), {
      seed: SEED,
      numRuns: examples.length + RUNS,
      examples: examples.map((example) => [example] as [T]),
      // Shrinking resends requests: bound it so a failure reports quickly. An interrupted run fails, never passes silently.
      interruptAfterTimeLimit: 60_000,
      markInterruptAsFailure: true,
    });
  } catch (error) {
    throw new Error(`FUZZ_SEED=${SEED} (${name}): ${(error as Error).message}`, { cause: error });
  }
  if (collected.length > 0) {
    throw new Error(`FUZZ_SEED=${SEED}: ${collected.length} violation(s) in ${name}:\n${collected.join('\n')}`);
  }
}

// ---------------------------------------------------------------------------
// Arguments: kinds, valid values, hostile and random values

type Kind =
  | 'string'
  | 'taskType'
  | 'id'
  | 'int'
  | 'json'
  | 'sfnJson'
  | 'TaskStatus'
  | 'TaskKind'
  | 'FailurePolicy'
  | 'SortOrder'
  | 'DateTime'
  | 'cursor'
  | 'subTaskCursor'
  | 'since'
  | 'boolean'
  | 'idList'
  | 'statusList';

const ENUMS = {
  TaskStatus: ['COMPLETED', 'CREATED', 'ERRORED', 'FAILED', 'FINISHED', 'PROCESSING', 'QUEUED', 'STARTED'],
  TaskKind: ['SFN_TASK', 'TASK'],
  FailurePolicy: ['CONTINUE', 'FAIL_FAST', 'FAIL_PARENT'],
  SortOrder: ['ASC', 'DESC'],
} as const;

const WRONG_TYPES: Sample[] = [
  s('0', 0),
  s('1.5', 1.5),
  s('true', true),
  s('"str"', 'str'),
  s('[]', []),
  s('["a", 1]', ['a', 1]),
  s('{}', {}),
  s('{ a: 1 }', { a: 1 }),
  s('null', null),
  s('raw NaN', new Raw('NaN')),
];

/** Ids that look like ours with one part mangled, and other tenants' ids. */
function hostileIds(): Sample[] {
  const [kind, tenant, type, code] = fx.taskA.split('#') as [string, string, string, string];
  return [
    s('TASK#tenant-a#ECHO#<3000 chars>', `${kind}#${tenant}#${type}#${LONG}`),
    s('TASK#tenant-a#<3000 chars>#<code>', `${kind}#${tenant}#${LONG}#${code}`),
    s('TASK#<3000 chars>#ECHO#<code>', `${kind}#${LONG}#${type}#${code}`),
    s('TASK#tenant-a#ECHO#<1,100 chars>', `${kind}#${tenant}#${type}#${'c'.repeat(1_100)}`),
    s('TASK#<2,100 chars>#ECHO#<code>', `${kind}#${'t'.repeat(2_100)}#${type}#${code}`),
    s('SFN_TASK#tenant-a#T#01H…#99999999999', `SFN_TASK#${tenant}#T#${FAKE_CODE}#99999999999`),
    s('SFN_TASK#tenant-a#ECHO#<sfn code>#999999999', `${fx.sfnA}#999999999`),
    s('sub-task 0 of sfnA', `${fx.sfnA}#0`),
    s('sub-task of a TASK', `${fx.taskA}#0`),
    s('sub-task index -1', `${fx.sfnA}#-1`),
    s('sub-task index 01', `${fx.sfnA}#01`),
    s("tenant-b's task", fx.taskB),
    s("tenant-b's SFN task", fx.sfnB),
    s('taskA with trailing space', `${fx.taskA} `),
    s('taskA with leading space', ` ${fx.taskA}`),
    s('taskA lowercased', fx.taskA.toLowerCase()),
    s('taskA + "#"', `${fx.taskA}#`),
    s('"#" + taskA', `#${fx.taskA}`),
    s('taskA with "/"', fx.taskA.replace('#', '/')),
    s('taskA with NUL code', `${kind}#${tenant}#${type}#\u0000`),
    s('taskA code + NUL', `${fx.taskA}\u0000`),
    s('TASK#tenant-a##', `${kind}#${tenant}##`),
    s('TASK###', 'TASK###'),
    s('TASK#tenant-a#ECHO# (empty code)', `${kind}#${tenant}#${type}#`),
    s('FOO#tenant-a#ECHO#<code>', `FOO#${tenant}#${type}#${code}`),
    s('TASK#tenant-a#💥#<code>', `${kind}#${tenant}#💥#${code}`),
    s('TASK#tenant a#ECHO#<code>', `${kind}#tenant a#${type}#${code}`),
    s('6 parts', `${fx.sfnA}#1#2`),
    s('taskA', fx.taskA),
    s('sfnA', fx.sfnA),
  ];
}

/** A cursor with its parts replaced. */
function cursorFrom(index: string, k: Record<string, unknown>): string {
  return base64url(JSON.stringify({ i: index, k }));
}

function hostileCursors(): Sample[] {
  const real = JSON.parse(Buffer.from(fx.cursorA, 'base64url').toString('utf8')) as { i: string; k: Record<string, unknown> };
  const mangle = (label: string, changes: Record<string, unknown>) =>
    s(`cursor with ${label}`, cursorFrom(real.i, { ...real.k, ...changes }));
  return [
    s('real cursor', fx.cursorA),
    mangle('sk of 3,000 chars', { sk: `ECHO#${LONG}` }),
    mangle('code of 3,000 chars', { code: LONG }),
    mangle('pk of 3,000 chars', { pk: `TASK#${LONG}` }),
    mangle('empty sk', { sk: '' }),
    mangle('empty code', { code: '' }),
    mangle('NUL code', { code: '\u0000' }),
    mangle("tenant-b's pk", { pk: 'TASK#tenant-b' }),
    mangle("tenant-b's listKey", { listKey: 'TASK#tenant-b' }),
    mangle('numeric sk', { sk: 1 }),
    mangle('an extra key', { extra: 'x' }),
    s('cursor of another index', cursorFrom('subTasksByParent', real.k)),
    s('cursor with k = null', cursorFrom(real.i, null as never)),
    s('cursor of a JSON array', base64url('[1,2]')),
    s('cursor of "null"', base64url('null')),
    s('cursor of deep JSON (5,000)', base64url(encode(nested(5_000, 'object')))),
    s('cursor with a __proto__ key', base64url(`{"i":"${real.i}","k":{"__proto__":{"pk":"x"}}}`)),
    s('not base64', '!!!***'),
    s('base64 of garbage bytes', Buffer.from([0xff, 0xfe, 0, 1]).toString('base64url')),
  ];
}

function hostileSubTaskCursors(): Sample[] {
  const [kind, tenant] = fx.sfnA.split('#') as [string, string];
  const pk = `${kind}#${tenant}`;
  const sk = fx.sfnA.slice(pk.length + 1);
  const cursor = (label: string, k: Record<string, unknown>) => s(`sub-task cursor with ${label}`, cursorFrom('subTasksByParent', k));
  const good = { pk, sk: `${sk}#0`, parentId: fx.sfnA, subTaskIndex: 0 };
  return [
    cursor('well-formed parts', good),
    cursor('index 1e308', { ...good, subTaskIndex: 1e308 }),
    cursor('index -1', { ...good, subTaskIndex: -1 }),
    cursor('index 1.5', { ...good, subTaskIndex: 1.5 }),
    cursor('sk of 3,000 chars', { ...good, sk: `${sk}#${LONG}` }),
    cursor('empty sk', { ...good, sk: '' }),
    cursor('pk of 3,000 chars', { ...good, pk: `SFN_TASK#${LONG}` }),
    cursor("tenant-b's keys", { ...good, pk: 'SFN_TASK#tenant-b', parentId: fx.sfnB }),
    ...hostileCursors().slice(1),
  ];
}

function hostileSince(): Sample[] {
  const since = (label: string, body: unknown) => s(`since cursor with ${label}`, base64url(JSON.stringify(body)));
  return [
    s('ISO epoch', '1970-01-01T00:00:00Z'),
    s('ISO now', new Date().toISOString()),
    s('ISO year 275760', '+275760-09-13T00:00:00.000Z'),
    s('ISO 2026-13-45', '2026-13-45T99:99:99Z'),
    s('ISO with garbage tail', '2026-01-01T00:00:00Z<garbage>'),
    s('ISO 0000-01-01', '0000-01-01T00:00:00Z'),
    since('3,000-char id', { f: '2020-01-01T00:00:00Z', s: [[`TASK#tenant-a#ECHO#${LONG}`, 1]] }),
    since("tenant-b's id", { f: '2020-01-01T00:00:00Z', s: [[fx.taskB, 1]] }),
    since('10,000 entries', { f: '2020-01-01T00:00:00Z', s: Array.from({ length: 10_000 }, (_, i) => [`id${i}`, i]) }),
    since('f = year 275760', { f: '+275760-09-13T00:00:00.000Z', s: [] }),
    since('f = "1"', { f: '1', s: [] }),
    since('f = 3,000 chars', { f: `2020-01-01T00:00:00Z${LONG}`, s: [] }),
    since('version NaN-ish', { f: '2020-01-01T00:00:00Z', s: [[fx.taskA, 1e308]] }),
    since('__proto__ s', JSON.parse('{"f":"2020-01-01T00:00:00Z","s":[],"__proto__":{"x":1}}')),
    s('since of deep JSON (5,000)', base64url(encode(nested(5_000, 'array')))),
    s('not base64', '!!!'),
  ];
}

const INTS: Sample[] = [
  s('-1', -1),
  s('0', 0),
  s('1', 1),
  s('100', 100),
  s('101', 101),
  s('-2^31', -(2 ** 31)),
  s('2^31 - 1', 2 ** 31 - 1),
  s('2^31', 2 ** 31),
  s('2^53', 2 ** 53),
  s('MAX_VALUE', Number.MAX_VALUE),
  s('1.5', 1.5),
  s('0.1', 0.1),
  s('raw -0', new Raw('-0')),
  s('raw 1e999', new Raw('1e999')),
  s('raw -1e999', new Raw('-1e999')),
  s('raw 1e-400', new Raw('1e-400')),
  s('raw 1.0', new Raw('1.0')),
  s('raw 1E2', new Raw('1E2')),
  s('raw NaN', new Raw('NaN')),
  s('raw Infinity', new Raw('Infinity')),
  s('raw 00', new Raw('00')),
  s('"10"', '10'),
];

const DATE_TIMES: Sample[] = [
  s('ISO now', new Date().toISOString()),
  s('ISO epoch', '1970-01-01T00:00:00Z'),
  s('ISO 9999-12-31', '9999-12-31T23:59:59.999Z'),
  s('ISO year 275760', '+275760-09-13T00:00:00.000Z'),
  s('ISO 0000-01-01', '0000-01-01T00:00:00Z'),
  s('ISO 2026-13-45', '2026-13-45T99:99:99Z'),
  s('date only', '2026-01-01'),
  s('offset +14:00', '2026-01-01T00:00:00+14:00'),
  s('"now"', 'now'),
  s('""', ''),
  s('unix ms 0', 0),
  s('unix ms 8.64e15 + 1', 8.64e15 + 1),
  s('-1', -1),
  s('3,000 chars', LONG),
];

const enumSamples = (values: readonly string[]): Sample[] => [
  ...values.map((value) => s(value, value)),
  s('lowercase', values[0]!.toLowerCase()),
  s('with a space', `${values[0]} `),
  s('UNKNOWN', 'UNKNOWN'),
  s('""', ''),
  s('__proto__', '__proto__'),
];

/** The fixed hostile values of a kind. */
function hostile(kind: Kind): Sample[] {
  switch (kind) {
    case 'string':
    case 'taskType':
      return [...GENERIC_STRINGS, ...hostileIds().slice(0, 3)];
    case 'id':
      return [...GENERIC_STRINGS, ...hostileIds()];
    case 'int':
      return INTS;
    case 'json':
      return hostileJson();
    case 'sfnJson':
      // Also each inside a one-element array, so it passes the array check and reaches storage.
      return hostileJson().flatMap((sample) => [sample, s(`[${sample.label}]`, [sample.value])]);
    case 'TaskStatus':
    case 'TaskKind':
    case 'FailurePolicy':
    case 'SortOrder':
      return enumSamples(ENUMS[kind]);
    case 'DateTime':
      return DATE_TIMES;
    case 'cursor':
      return [...hostileCursors(), ...GENERIC_STRINGS.slice(0, 12)];
    case 'subTaskCursor':
      return [...hostileSubTaskCursors(), ...GENERIC_STRINGS.slice(0, 12)];
    case 'since':
      return [...hostileSince(), ...GENERIC_STRINGS.slice(0, 12)];
    case 'boolean':
      return [s('true', true), s('false', false), s('"true"', 'true'), s('1', 1)];
    case 'idList':
      return [
        s('[taskA]', [fx.taskA]),
        s('[]', []),
        s('[null]', [null]),
        s('[[taskA]]', [[fx.taskA]]),
        s(
          '101 ids',
          Array.from({ length: 101 }, (_, i) => `${fx.taskA}${i}`),
        ),
        s(
          '10,000 ids',
          Array.from({ length: 10_000 }, () => fx.taskA),
        ),
        s('[tenant-b task]', [fx.taskB]),
        s('[3,000-char code id]', [`TASK#tenant-a#ECHO#${LONG}`]),
        s(
          'hostile ids',
          hostileIds().map((sample) => sample.value),
        ),
        s('a plain id, not a list', fx.taskA),
      ];
    case 'statusList':
      return [
        s('[]', []),
        s('all', [...ENUMS.TaskStatus]),
        s('[null]', [null]),
        s('["NOPE"]', ['NOPE']),
        s('1,000 x QUEUED', Array(1_000).fill('QUEUED')),
      ];
  }
}

const randomString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: fc.constantFrom('#', '/', '\u0000', '\u001f', ' ', 'a', 'Z', '9', '_', '.', '-'), maxLength: 70 }),
  fc.string({ unit: 'binary-ascii', minLength: 3_000, maxLength: 3_100 }),
);

/** Random values of a kind (hostile constants included, so random cases mix them). */
function random(kind: Kind): fc.Arbitrary<Sample> {
  const constants = fc.constantFrom(...hostile(kind));
  const wrong = fc.oneof(fc.constantFrom(...WRONG_TYPES), fc.jsonValue({ maxDepth: 2 }).map(auto));
  const mangledId = () => {
    const ids = [fx.taskA, fx.sfnA, fx.taskB, `${fx.sfnA}#0`];
    return fc
      .tuple(fc.constantFrom(...ids), fc.nat(), randomString)
      .map(([id, at, part]) => {
        const parts = id.split('#');
        parts[at % parts.length] = part;
        return parts.join('#');
      })
      .map(auto);
  };
  const specific = (): fc.Arbitrary<Sample> => {
    switch (kind) {
      case 'string':
        return randomString.map(auto);
      case 'taskType':
        return fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.-]{1,70}$/), randomString).map(auto);
      case 'id':
        return fc.oneof(mangledId(), randomString.map(auto));
      case 'int':
        return fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.double(), fc.integer({ min: -5, max: 105 })).map(auto);
      case 'json':
        return fc.jsonValue({ maxDepth: 6 }).map(auto);
      case 'sfnJson':
        return fc.oneof(fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 5 }), fc.jsonValue({ maxDepth: 4 })).map(auto);
      case 'TaskStatus':
      case 'TaskKind':
      case 'FailurePolicy':
      case 'SortOrder':
        return fc.oneof(fc.constantFrom(...ENUMS[kind]), randomString).map(auto);
      case 'DateTime':
        return fc
          .oneof(
            fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }).map((date) => date.toISOString()),
            randomString,
          )
          .map(auto);
      case 'cursor':
      case 'subTaskCursor':
        return fc
          .oneof(
            fc.jsonValue({ maxDepth: 3 }).map((value) => base64url(JSON.stringify(value))),
            fc
              .record({ pk: randomString, sk: randomString, listKey: randomString, code: randomString })
              .map((k) => cursorFrom(kind === 'cursor' ? 'byTenantCreated' : 'subTasksByParent', k)),
            randomString,
          )
          .map(auto);
      case 'since':
        return fc
          .oneof(
            fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
            fc
              .record({ f: randomString, s: fc.array(fc.tuple(randomString, fc.double()), { maxLength: 3 }) })
              .map((body) => base64url(JSON.stringify(body))),
            randomString,
          )
          .map(auto);
      case 'boolean':
        return fc.boolean().map(auto);
      case 'idList':
        return fc.array(fc.oneof(mangledId(), randomString.map(auto)), { maxLength: 5 }).map((ids) =>
          s(
            `[${ids.map((id) => id.label).join(', ')}]`,
            ids.map((id) => id.value),
          ),
        );
      case 'statusList':
        return fc.array(fc.oneof(fc.constantFrom(...ENUMS.TaskStatus), randomString), { maxLength: 4 }).map(auto);
    }
  };
  return fc.oneof({ weight: 3, arbitrary: specific() }, { weight: 2, arbitrary: constants }, { weight: 1, arbitrary: wrong });
}

// ---------------------------------------------------------------------------
// Operations

interface Arg {
  /** `name` of a top-level variable, or `variable.field` inside an input object variable. */
  path: string;
  kind: Kind;
  /** Also tried with an admin token (which may reach other tenants, so hostile ids reach storage). */
  asAdmin?: boolean;
}

interface Operation {
  name: string;
  query: string;
  subscription?: boolean;
  args: Arg[];
  /** The top-level variables (each also receives wrong types as a whole). */
  variables: string[];
  /** Valid variables, the base each case changes; may create what it names. */
  valid(): Promise<Record<string, unknown>>;
  /** Sees each answer (to replace a task a successful write changed). */
  settle?(answer: Answer): void;
}

interface Case {
  admin: boolean;
  overrides: [string, Override][];
}

const createInput = (input: unknown) => ({ taskType: 'ECHO', input });
/** Whether the answer carries a non-null result for `field`: the write happened. */
function succeeded(answer: Answer, field: string): boolean {
  try {
    return Boolean((JSON.parse(answer.payloads[0] ?? 'null') as { data?: Record<string, unknown> } | null)?.data?.[field]);
  } catch {
    return false;
  }
}

async function freshTask(): Promise<string> {
  const res = await app.gql(`mutation { createTask(input: { taskType: "ECHO", input: {} }) { id } }`, {}, userToken);
  if (res.errors) throw new Error(`creating a fresh task failed: ${JSON.stringify(res.errors)}`);
  return res.data!.createTask.id as string;
}

const createArgs: Arg[] = [
  { path: 'input.taskType', kind: 'taskType' },
  { path: 'input.name', kind: 'string' },
  { path: 'input.tenantCode', kind: 'string', asAdmin: true },
  { path: 'input.idempotencyKey', kind: 'string' },
  { path: 'input.failurePolicy', kind: 'FailurePolicy' },
];

const CANCEL_TASK = `mutation($id: ID!) { cancelTask(id: $id) { ${TASK_FIELDS} } }`;
const TASK_STATUS_CHANGED = `subscription($filter: TaskEventFilter, $since: String) {
  taskStatusChanged(filter: $filter, since: $since) { action cursor previousStatus replayed task { ${TASK_FIELDS} } }
}`;

const CREATE_VIEWER_TOKEN = `mutation($ids: [ID!], $parentId: ID, $ttlSeconds: Int) {
  createViewerToken(ids: $ids, parentId: $parentId, ttlSeconds: $ttlSeconds) { token expiresAt ids parentId }
}`;

const RERUN_TASK = `mutation($id: ID!, $onlyFailed: Boolean) { rerunTask(id: $id, onlyFailed: $onlyFailed) { ${TASK_FIELDS} rerunOf } }`;
const CANCEL_TASKS = `mutation($filter: CancelTasksFilter!, $first: Int) {
  cancelTasks(filter: $filter, first: $first) { cancelled skipped remaining cancelledIds }
}`;

/** A FAILED (cancelled) task: what rerunTask takes. */
async function endedTask(): Promise<string> {
  const id = await freshTask();
  const res = await app.gql(CANCEL_TASK, { id }, userToken);
  if (res.errors) throw new Error(`cancelling a fresh task failed: ${JSON.stringify(res.errors)}`);
  return id;
}

function operations(): Operation[] {
  // A task that refused writes leave as it is; replaced after a write that succeeded (it may now be terminal).
  let processing: string | undefined;
  let cancellable: string | undefined;
  let ended: string | undefined;
  // biome-ignore lint/correctness/noUnusedVariables: read by its ??= (one task to cancel, until a call cancels it)
  let bulk: string | undefined;
  return [
    {
      name: 'createTask',
      query: CREATE_TASK,
      args: [...createArgs, { path: 'input.input', kind: 'json' }],
      variables: ['input'],
      valid: async () => ({ input: createInput({ a: 1 }) }),
    },
    {
      name: 'createStepFunctionTask',
      query: CREATE_SFN_TASK,
      args: [...createArgs, { path: 'input.input', kind: 'sfnJson' }],
      variables: ['input'],
      valid: async () => ({ input: createInput([{ a: 1 }]) }),
    },
    {
      name: 'updateStatus',
      query: UPDATE_STATUS,
      args: [
        { path: 'input.id', kind: 'id', asAdmin: true },
        { path: 'input.status', kind: 'TaskStatus' },
        { path: 'input.attributes', kind: 'json' },
        { path: 'input.expectedVersion', kind: 'int' },
      ],
      variables: ['input'],
      // CREATED (or PROCESSING) to PROCESSING is a valid write, so hostile attributes reach storage.
      valid: async () => ({ input: { id: (processing ??= await freshTask()), status: 'PROCESSING', attributes: { ok: 1 } } }),
      settle: (answer) => {
        if (succeeded(answer, 'updateStatus')) processing = undefined;
      },
    },
    {
      name: 'cancelTask',
      query: CANCEL_TASK,
      args: [{ path: 'id', kind: 'id', asAdmin: true }],
      variables: ['id'],
      valid: async () => ({ id: (cancellable ??= await freshTask()) }),
      settle: (answer) => {
        if (succeeded(answer, 'cancelTask')) cancellable = undefined;
      },
    },
    {
      name: 'task',
      query: GET_TASK,
      args: [{ path: 'id', kind: 'id', asAdmin: true }],
      variables: ['id'],
      valid: async () => ({ id: fx.taskA }),
    },
    {
      name: 'tasks',
      query: LIST_TASKS,
      args: [
        { path: 'filter.kind', kind: 'TaskKind' },
        { path: 'filter.taskType', kind: 'taskType' },
        { path: 'filter.status', kind: 'TaskStatus' },
        { path: 'filter.updatedSince', kind: 'DateTime' },
        { path: 'filter.order', kind: 'SortOrder' },
        { path: 'filter.tenantCode', kind: 'string', asAdmin: true },
        { path: 'first', kind: 'int' },
        { path: 'after', kind: 'cursor', asAdmin: true },
      ],
      variables: ['filter', 'first', 'after'],
      valid: async () => ({ filter: { kind: 'TASK', order: 'DESC' }, first: 5 }),
    },
    {
      name: 'subTasks',
      query: LIST_SUB_TASKS,
      args: [
        { path: 'parentId', kind: 'id', asAdmin: true },
        { path: 'first', kind: 'int' },
        { path: 'after', kind: 'subTaskCursor', asAdmin: true },
      ],
      variables: ['parentId', 'first', 'after'],
      valid: async () => ({ parentId: fx.sfnA, first: 5 }),
    },
    {
      name: 'taskStatusChanged (SSE)',
      query: TASK_STATUS_CHANGED,
      subscription: true,
      args: [
        { path: 'filter.ids', kind: 'idList', asAdmin: true },
        { path: 'filter.parentId', kind: 'id', asAdmin: true },
        { path: 'filter.kind', kind: 'TaskKind' },
        { path: 'filter.taskType', kind: 'taskType' },
        { path: 'filter.statuses', kind: 'statusList' },
        { path: 'filter.includeSubTasks', kind: 'boolean' },
        { path: 'filter.tenantCode', kind: 'string', asAdmin: true },
        { path: 'since', kind: 'since' },
      ],
      variables: ['filter', 'since'],
      valid: async () => ({ filter: { taskType: 'ECHO' } }),
    },
    {
      name: 'createViewerToken',
      query: CREATE_VIEWER_TOKEN,
      args: [
        { path: 'ids', kind: 'idList', asAdmin: true },
        { path: 'parentId', kind: 'id', asAdmin: true },
        { path: 'ttlSeconds', kind: 'int' },
      ],
      variables: ['ids', 'parentId', 'ttlSeconds'],
      valid: async () => ({ ids: [fx.taskA], parentId: fx.sfnA, ttlSeconds: 60 }),
    },
    {
      name: 'rerunTask',
      query: RERUN_TASK,
      args: [
        { path: 'id', kind: 'id', asAdmin: true },
        { path: 'onlyFailed', kind: 'boolean' },
      ],
      variables: ['id', 'onlyFailed'],
      // Re-running leaves the task as it was: one ended task serves every case.
      valid: async () => {
        ended ??= await endedTask();
        return { id: ended, onlyFailed: false };
      },
    },
    {
      name: 'cancelTasks',
      query: CANCEL_TASKS,
      args: [
        { path: 'filter.kind', kind: 'TaskKind' },
        { path: 'filter.taskType', kind: 'taskType' },
        { path: 'filter.status', kind: 'TaskStatus' },
        { path: 'filter.createdBefore', kind: 'DateTime' },
        { path: 'filter.tenantCode', kind: 'string', asAdmin: true },
        { path: 'first', kind: 'int' },
      ],
      variables: ['filter', 'first'],
      // One unfinished task of a type of its own, so a valid case cancels something.
      valid: async () => {
        bulk ??= (await app.gql(`mutation { createTask(input: { taskType: "FUZZ_BULK", input: {} }) { id } }`, {}, userToken)).data!
          .createTask.id;
        return { filter: { kind: 'TASK', taskType: 'FUZZ_BULK' }, first: 5 };
      },
      settle: (answer) => {
        if (succeeded(answer, 'cancelTasks')) bulk = undefined;
      },
    },
  ];
}

function applyOverrides(base: Record<string, unknown>, overrides: [string, Override][]): Record<string, unknown> {
  const variables: Record<string, unknown> = structuredClone(base);
  for (const [path, override] of overrides) {
    const [variable, field] = path.split('.') as [string, string | undefined];
    if (field === undefined) {
      if (override === OMIT) delete variables[variable];
      else variables[variable] = override.value;
      continue;
    }
    const current = variables[variable];
    // A field of an input object the case already replaced with a non-object: leave that as it is.
    if (current !== undefined && (current === null || typeof current !== 'object' || Array.isArray(current))) continue;
    const object = { ...(current as Record<string, unknown> | undefined) };
    if (override === OMIT) delete object[field];
    else object[field] = override.value;
    variables[variable] = object;
  }
  return variables;
}

/** Every hostile value of every argument alone (the rest valid), and wrong types for each variable. */
function examplesOf(operation: Operation): Case[] {
  const cases: Case[] = [];
  for (const arg of operation.args) {
    for (const sample of [...hostile(arg.kind), ...WRONG_TYPES]) {
      cases.push({ admin: false, overrides: [[arg.path, sample]] });
    }
    if (arg.asAdmin) {
      for (const sample of hostile(arg.kind)) cases.push({ admin: true, overrides: [[arg.path, sample]] });
    }
    cases.push({ admin: false, overrides: [[arg.path, OMIT]] });
  }
  for (const variable of operation.variables) {
    for (const sample of WRONG_TYPES) cases.push({ admin: false, overrides: [[variable, sample]] });
  }
  return cases;
}

function caseArbitrary(operation: Operation): fc.Arbitrary<Case> {
  const override = (arg: Arg): fc.Arbitrary<[string, Override]> =>
    fc
      .oneof({ weight: 5, arbitrary: random(arg.kind) }, { weight: 1, arbitrary: fc.constant<Override>(OMIT) })
      .map((value): [string, Override] => [arg.path, value]);
  const one = fc.oneof(...operation.args.map((arg) => override(arg).map((entry) => [entry])));
  const several = fc
    .tuple(...operation.args.map((arg) => fc.option(override(arg), { nil: undefined })))
    .map((entries) => entries.filter((entry): entry is [string, Override] => entry !== undefined));
  const wholeVariable = fc.tuple(fc.constantFrom(...operation.variables), fc.constantFrom(...WRONG_TYPES));
  return fc.record({
    admin: fc.boolean(),
    overrides: fc.oneof(
      { weight: 4, arbitrary: one },
      { weight: 4, arbitrary: several },
      { weight: 1, arbitrary: wholeVariable.map(([name, sample]): [string, Override][] => [[name, sample]]) },
    ),
  });
}

async function sendCase(operation: Operation, testCase: Case): Promise<Answer> {
  const variables = applyOverrides(await operation.valid(), testCase.overrides);
  const answer = await post(encode({ query: operation.query, variables }), {
    token: testCase.admin ? adminToken : userToken,
    sse: operation.subscription,
  });
  operation.settle?.(answer);
  return answer;
}

// ---------------------------------------------------------------------------
// Hostile documents and bodies

function hostileDocuments(): Sample[] {
  const docs: Sample[] = [];
  for (const depth of DEPTHS) {
    for (const shape of ['object', 'array'] as const) {
      docs.push(
        s(
          `createTask input literal ${shape} nested ${depth}`,
          `mutation { createTask(input: { taskType: "ECHO", input: ${nestedLiteral(depth, shape)} }) { id } }`,
        ),
        s(
          `updateStatus attributes literal ${shape} nested ${depth}`,
          `mutation { updateStatus(input: { id: ${JSON.stringify(fx.taskA)}, status: PROCESSING, attributes: ${nestedLiteral(depth, shape)} }) { id } }`,
        ),
      );
    }
    docs.push(
      s(`inline fragments nested ${depth}`, `{ ${'... on Query { '.repeat(depth)}__typename${' }'.repeat(depth)} }`),
      s(`list type nested ${depth}`, `query($v: ${'['.repeat(depth)}Int${']'.repeat(depth)}) { __typename }`),
      s(`selection nested ${depth}`, `{ ${'task(id: "x") { '.repeat(depth)}id${' }'.repeat(depth)} }`),
    );
  }
  const aliases = (count: number, field: string) => `{ ${Array.from({ length: count }, (_, i) => `a${i}: ${field}`).join(' ')} }`;
  docs.push(
    s('1,000 aliases of __typename', aliases(1_000, '__typename')),
    s('1,000 aliases of task', aliases(1_000, `task(id: ${JSON.stringify(fx.taskA)}) { id }`)),
    s('1,000 aliases of tasks', aliases(1_000, 'tasks(first: 100) { edges { node { id input } } }')),
    s('1,000 aliased createTask', `mutation ${aliases(1_000, 'createTask(input: { taskType: "ECHO", input: {} }) { id }')}`),
    s('10,000 x __typename', `{ ${'__typename '.repeat(10_000)}}`),
    s('10,000 directives', `{ __typename ${'@include(if: true) '.repeat(10_000)}}`),
    s(
      '1,000 fragments spread',
      `{ ...F } ${Array.from({ length: 1_000 }, (_, i) => `fragment F${i === 0 ? '' : i} on Query { ${i < 999 ? `...F${i + 1}` : '__typename'} }`).join(' ')}`,
    ),
    s('fragment cycle', '{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }'),
    s('1,000 operations', Array.from({ length: 1_000 }, (_, i) => `query Q${i} { __typename }`).join(' ')),
    s('1,000 variables', `query(${Array.from({ length: 1_000 }, (_, i) => `$v${i}: Int`).join(' ')}) { __typename }`),
    s('field name of 100,000 chars', `{ ${'f'.repeat(100_000)} }`),
    s('string literal of 900,000 chars', `{ task(id: "${'x'.repeat(900_000)}") { id } }`),
    s('unterminated string', '{ task(id: "x) { id } }'),
    s('NUL in document', '{ __typename \u0000 }'),
    s('empty document', ''),
    s('only a comment', '# nothing'),
    s('introspection', '{ __schema { types { name fields { name } } } }'),
    s(
      'deep introspection',
      `{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }`,
    ),
    s('subscription over POST without SSE', 'subscription { taskStatusChanged { cursor } }'),
    s('two subscription fields', 'subscription { a: taskStatusChanged { cursor } b: taskStatusChanged { cursor } }'),
    s('unknown field', '{ nope }'),
    s('mutation with a variable never defined', 'mutation { cancelTask(id: $id) { id } }'),
  );
  return docs;
}

function garbageBodies(): Sample[] {
  const valid = JSON.stringify({ query: '{ __typename }' });
  return [
    s('empty body', ''),
    s('"null"', 'null'),
    s('"[]"', '[]'),
    s('"{}"', '{}'),
    s('"1"', '1'),
    s('a JSON string', '"query"'),
    s('not JSON', 'not json'),
    s('truncated JSON', '{"query":"{ __typename }"'),
    s('JSON with trailing garbage', `${valid}xyz`),
    s('query null', '{"query":null}'),
    s('query 1', '{"query":1}'),
    s('query an object', '{"query":{"a":1}}'),
    s('variables an array', '{"query":"{ __typename }","variables":[]}'),
    s('variables a string', '{"query":"{ __typename }","variables":"x"}'),
    s('operationName an object', '{"query":"{ __typename }","operationName":{}}'),
    s('operationName unknown', '{"query":"{ __typename }","operationName":"Nope"}'),
    s('extensions a string', '{"query":"{ __typename }","extensions":"x"}'),
    s('persisted-query extension', '{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}'),
    s('batched array', `[${valid},${valid}]`),
    s('__proto__ body', '{"__proto__":{"query":"{ __typename }"},"query":"{ __typename }"}'),
    s('duplicate query keys', '{"query":"{ __typename }","query":"{ nope }"}'),
    s('body nested 5,000 arrays', `${'['.repeat(5_000)}${']'.repeat(5_000)}`),
    s('variables nested 100,000 arrays', `{"query":"{ __typename }","variables":{"v":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`),
    s('NUL bytes', '\u0000\u0000\u0000'),
    s('invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])),
    s('UTF-16 BOM + JSON', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(valid, 'utf16le')])),
    s('UTF-8 BOM + JSON', `\ufeff${valid}`),
    s('body of 1,100,000 bytes', JSON.stringify({ query: '{ __typename }', variables: { x: 'x'.repeat(1_100_000) } })),
  ];
}

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-16',
  'application/graphql',
  'application/graphql+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'multipart/form-data',
  'application/octet-stream',
  null,
];

// ---------------------------------------------------------------------------
// The properties

/** The order `operations()` lists them in; they need the fixtures, so each test builds them. */
const OPERATION_NAMES = [
  'createTask',
  'createStepFunctionTask',
  'updateStatus',
  'cancelTask',
  'task',
  'tasks',
  'subTasks',
  'taskStatusChanged (SSE)',
  'createViewerToken',
  'rerunTask',
  'cancelTasks',
] as const;

describe('fuzzing every argument over HTTP', { timeout: 120_000 }, () => {
  test("the test's own iterative encoder matches JSON.stringify", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => encode(value) === JSON.stringify(value)),
      { seed: SEED, numRuns: 200 },
    );
    // 50,000 `{"a":…}` and 50,000 `[…]` around `1`, without overflowing.
    expect(encode(nested(100_000, 'mixed')).length).toBe(50_000 * 6 + 50_000 * 2 + 1);
  });

  for (const [index, name] of OPERATION_NAMES.entries()) {
    test(`${name}: every answer is coded JSON, never an unexpected error`, async () => {
      const operation = operations()[index]!;
      expect(operation.name).toBe(name);
      await check(operation.name, caseArbitrary(operation), examplesOf(operation), (testCase) => sendCase(operation, testCase));
    });
  }

  test('hostile documents: every answer is coded JSON, never an unexpected error', async () => {
    const documents = hostileDocuments();
    const randomDocument = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }).map(auto),
      fc
        .string({
          unit: fc.constantFrom(
            '{',
            '}',
            '[',
            ']',
            '(',
            ')',
            ':',
            '$',
            '@',
            '...',
            ' ',
            'a',
            '"',
            '#',
            '\n',
            'query',
            'mutation',
            'subscription',
            'on',
            '1',
          ),
          maxLength: 200,
        })
        .map(auto),
      fc
        .integer({ min: 1, max: 1_500 })
        .map((count) =>
          s(`${count} aliases of __typename`, `{ ${Array.from({ length: count }, (_, i) => `a${i}: __typename`).join(' ')} }`),
        ),
      fc
        .integer({ min: 1, max: 6_000 })
        .map((depth) =>
          s(
            `input literal nested ${depth}`,
            `mutation { createTask(input: { taskType: "ECHO", input: ${nestedLiteral(depth, 'object')} }) { id } }`,
          ),
        ),
      fc.constantFrom(...documents),
    );
    const sendDocument = ([document, admin]: [Sample, boolean]) =>
      post(encode({ query: document.value }), {
        token: admin ? adminToken : userToken,
        // A subscription asked for as plain JSON may be refused as not acceptable.
        emptyAllowed: /^\s*subscription\b/.test(document.value as string) ? 406 : undefined,
      });
    await check(
      'document',
      fc.tuple(randomDocument, fc.boolean()),
      documents.map((document): [Sample, boolean] => [document, false]),
      sendDocument,
    );
  });

  test('garbage bodies: every answer is coded JSON, never an unexpected error', async () => {
    const bodies = garbageBodies();
    const randomBody = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }).map(auto),
      fc.uint8Array({ maxLength: 300 }).map((bytes) => s(`${bytes.length} random bytes`, bytes)),
      fc.jsonValue({ maxDepth: 4 }).map((value) => auto(JSON.stringify(value))),
      fc
        .record(
          { query: fc.jsonValue({ maxDepth: 2 }), variables: fc.jsonValue({ maxDepth: 2 }), operationName: fc.jsonValue({ maxDepth: 1 }) },
          { requiredKeys: [] },
        )
        .map((body) => auto(JSON.stringify(body))),
      fc.constantFrom(...bodies),
    );
    const contentType = fc.constantFrom(...CONTENT_TYPES);
    const sendBody = ([body, type]: [Sample, string | null]) =>
      post(body.value as string | Uint8Array, {
        contentType: type,
        // A body that is not declared as JSON may be refused as an unsupported media type.
        emptyAllowed: type?.startsWith('application/json') ? undefined : 415,
      });
    await check(
      'body',
      fc.tuple(randomBody, contentType),
      [
        ...bodies.map((body): [Sample, string | null] => [body, 'application/json']),
        ...CONTENT_TYPES.map((type): [Sample, string | null] => [s('a valid query', JSON.stringify({ query: '{ __typename }' })), type]),
      ],
      sendBody,
    );
  });

  test('afterwards the server is healthy and a plain createTask works', async () => {
    const health = await fetch(new URL('/healthz', app.url));
    expect(health.status).toBe(200);
    const created = await app.gql(CREATE_TASK, { input: { taskType: 'ECHO', input: { after: 'fuzz' } } }, userToken);
    expect(created.errors).toBeUndefined();
    expect(created.data!.createTask).toMatchObject({ status: 'CREATED', input: { after: 'fuzz' } });
    const read = await app.gql(GET_TASK, { id: created.data!.createTask.id }, userToken);
    expect(read.data!.task).toMatchObject({ id: created.data!.createTask.id, status: 'CREATED' });
  });
});
