/**
 * Viewer tokens (createViewerToken): a short-lived token a browser can hold
 * that reads and watches only the tasks it names (and, with parentId, that
 * Step Functions task's sub-tasks). Everything else with it is FORBIDDEN, on
 * every transport: HTTP, Server-Sent Events and graphql-ws. Real servers on
 * loopback over in-memory dynalite; every wait is bounded.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mintToken } from '../src/auth/mint-token.js';
import { loadConfig } from '../src/config.js';
import { TOKEN_EXPIRED_CLOSE_CODE } from '../src/live/close-codes.js';
import { subTasksOf } from '../src/tasks/sub-tasks.js';
import {
  CREATE_SFN_TASK,
  CREATE_TASK,
  GET_TASK,
  LIST_SUB_TASKS,
  LIST_TASKS,
  TEST_SECRET,
  UPDATE_STATUS,
  errorCode,
  startTestApp,
  type TestApp,
} from './helpers/app.js';
import { SUBSCRIBE, subscribeSse, subscribeWs, wsClient, type Collected } from './helpers/live.js';
import { FakeClock } from './helpers/live-fakes.js';

const CREATE_VIEWER_TOKEN = `mutation($ids: [ID!], $parentId: ID, $ttlSeconds: Int) {
  createViewerToken(ids: $ids, parentId: $parentId, ttlSeconds: $ttlSeconds) { token expiresAt ids parentId }
}`;
const CANCEL_TASK = `mutation($id: ID!) { cancelTask(id: $id) { id status } }`;

const VIEWER_SECRET = 'a-separate-viewer-secret-of-at-least-32-chars';
const OTHER_SECRET = 'some-other-secret-that-is-at-least-32-characters';

let app: TestApp; // viewer secret = JWT_SECRET (the default)
let split: TestApp; // VIEWER_TOKEN_SECRET of its own
let jwksOnly: TestApp; // JWKS_URL and no VIEWER_TOKEN_SECRET
let dev: TestApp; // the embedded default's generated secret
let jwksServer: Server;
let jwksKey: CryptoKey;

const clock = new FakeClock();

beforeAll(async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  jwksKey = privateKey;
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  jwksServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
  [app, split, jwksOnly, dev] = await Promise.all([
    // On a fake clock: token expiry without waiting for it.
    startTestApp({}, { clock }),
    startTestApp({ VIEWER_TOKEN_SECRET: VIEWER_SECRET }),
    startTestApp({ JWT_SECRET: '', JWKS_URL: jwksUrl }),
    startTestApp({ JWT_SECRET: '' }),
  ]);
});

afterAll(() => new Promise<void>((resolve) => jwksServer.close(() => resolve())));

// ---------------------------------------------------------------------------
// Helpers

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
  ]);
}

interface Result {
  data?: any;
  errors?: any[];
}

const codeOf = (result: Result) => result.errors?.[0]?.extensions?.code;

/** One graphql-ws client per token and server, reused by every one-shot operation. */
const wsClients = new Map<string, Client>();
function wsFor(target: TestApp, token: string): Client {
  const key = `${target.url} ${token}`;
  let client = wsClients.get(key);
  if (!client) wsClients.set(key, (client = wsClient(target.url, token)));
  return client;
}

/** Runs one operation to its end over graphql-ws: the last result, or the errors it was refused with. */
function wsOnce(client: Client, query: string, variables: Record<string, unknown>): Promise<Result> {
  return new Promise((resolve, reject) => {
    let last: Result = {};
    client.subscribe(
      { query, variables },
      {
        next: (result) => (last = result as Result),
        error: (error) => (Array.isArray(error) ? resolve({ errors: error }) : reject(error)),
        complete: () => resolve(last),
      },
    );
  });
}

type Transport = 'http' | 'sse' | 'ws';
const TRANSPORTS: Transport[] = ['http', 'sse', 'ws'];

/** One operation to its end over a transport (SSE and WebSocket: the last `next` payload and every error). */
async function run(
  target: TestApp,
  transport: Transport,
  token: string,
  query: string,
  variables: Record<string, unknown>,
): Promise<Result> {
  if (transport === 'http') {
    const res = await target.gql(query, variables, token);
    return { data: res.data, errors: res.errors };
  }
  if (transport === 'ws') return within(wsOnce(wsFor(target, token), query, variables), 10_000, `${query} over ws`);
  const sse = subscribeSse(target.url, token, variables, query);
  await within(sse.done, 10_000, `${query} over SSE`);
  return { data: sse.events.at(-1), errors: sse.errors.length > 0 ? sse.errors : undefined };
}

/** A viewer token from createViewerToken over HTTP, which must succeed. */
async function viewerToken(target: TestApp, token: string, variables: Record<string, unknown>): Promise<string> {
  const res = await target.gql(CREATE_VIEWER_TOKEN, variables, token);
  expect(res.errors).toBeUndefined();
  return res.data!.createViewerToken.token as string;
}

const segments = (token: string) => token.split('.') as [string, string, string];
const encodeSegment = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const decodeSegment = (segment: string) => JSON.parse(Buffer.from(segment, 'base64url').toString());

/** A token signed with `secret`, with exactly this header type and these claims. */
const signed = (payload: JWTPayload, secret: string, typ = 'task-viewer+jwt') =>
  new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ }).sign(new TextEncoder().encode(secret));

const now = () => Math.floor(Date.now() / 1000);

// ---------------------------------------------------------------------------
// Fixtures: tenant `view-a` with tasks A and B, Step Functions tasks P (three
// sub-tasks) and Q (one); tenant `view-b` with task X.

interface World {
  tenant: string;
  owner: string;
  a: string;
  b: string;
  p: string;
  pSubs: string[];
  q: string;
  qSub: string;
  x: string;
  ownerB: string;
}
let w: World;

beforeAll(async () => {
  const tenant = 'view-a';
  const owner = await app.token(tenant, { userId: 'alice' });
  const ownerB = await app.token('view-b');
  const create = async (mutation: string, taskType: string, input: unknown, token = owner) => {
    const res = await app.gql(mutation, { input: { taskType, input } }, token);
    expect(res.errors).toBeUndefined();
    return (Object.values(res.data!)[0] as { id: string }).id;
  };
  const withSubTasks = async (id: string) => {
    const subTasks = subTasksOf((await app.tasks.getTask({ userId: 'fixtures', tenantCode: tenant, isAdmin: false }, id))!);
    await app.store.putSubTasks(subTasks);
    return subTasks.map((task) => task.id);
  };
  const a = await create(CREATE_TASK, 'REPORT', { n: 'a' });
  const b = await create(CREATE_TASK, 'REPORT', { n: 'b' });
  const p = await create(CREATE_SFN_TASK, 'IMPORT', [{ row: 1 }, { row: 2 }, { row: 3 }]);
  const q = await create(CREATE_SFN_TASK, 'IMPORT', [{ row: 1 }]);
  const pSubs = await withSubTasks(p);
  const [qSub] = await withSubTasks(q);
  const x = await create(CREATE_TASK, 'REPORT', { n: 'x' }, ownerB);
  w = { tenant, owner, a, b, p, pSubs, q, qSub: qSub!, x, ownerB };
});

// ---------------------------------------------------------------------------

describe('createViewerToken', () => {
  test('lasts 15 minutes by default; the token is a typed, audience-bound HS256 JWT naming its scope and creator', async () => {
    const res = await app.gql(CREATE_VIEWER_TOKEN, { ids: [w.a, w.a], parentId: w.p }, w.owner);
    expect(res.errors).toBeUndefined();
    const minted = res.data!.createViewerToken;
    expect(minted).toMatchObject({ ids: [w.a], parentId: w.p }); // duplicates dropped
    expect(decodeProtectedHeader(minted.token)).toEqual({ alg: 'HS256', typ: 'task-viewer+jwt' });
    const claims = decodeJwt(minted.token);
    expect(claims).toEqual({
      sub: 'alice',
      tenant: w.tenant,
      scope: { ids: [w.a], parentId: w.p },
      aud: 'task-viewer',
      iat: expect.any(Number),
      exp: expect.any(Number),
    });
    expect(claims.exp! - claims.iat!).toBe(900);
    expect(Math.abs(claims.iat! - now())).toBeLessThanOrEqual(2);
    expect(new Date(minted.expiresAt).getTime()).toBe(claims.exp! * 1000);
  });

  test('ttlSeconds: 1 and 86,400 (24 hours) are accepted; 0, -1 and 86,401 are BAD_USER_INPUT naming the field', async () => {
    for (const ttlSeconds of [1, 86_400]) {
      const res = await app.gql(CREATE_VIEWER_TOKEN, { ids: [w.a], ttlSeconds }, w.owner);
      expect(res.errors, String(ttlSeconds)).toBeUndefined();
      const claims = decodeJwt(res.data!.createViewerToken.token);
      expect(claims.exp! - claims.iat!).toBe(ttlSeconds);
      expect(new Date(res.data!.createViewerToken.expiresAt).getTime()).toBe(claims.exp! * 1000);
    }
    for (const ttlSeconds of [0, -1, 86_401, 2_000_000_000]) {
      const res = await app.gql(CREATE_VIEWER_TOKEN, { ids: [w.a], ttlSeconds }, w.owner);
      expect(res.data ?? null, String(ttlSeconds)).toBeNull();
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'ttlSeconds' });
    }
  });

  test('names at least one task: neither ids nor parentId, or empty ids alone, is BAD_USER_INPUT', async () => {
    for (const variables of [{}, { ids: [] }, { ids: null, parentId: null }]) {
      const res = await app.gql(CREATE_VIEWER_TOKEN, variables, w.owner);
      expect(res.data ?? null, JSON.stringify(variables)).toBeNull();
      expect(errorCode(res)).toBe('BAD_USER_INPUT');
    }
  });

  test('names at most 100 tasks: 100 work (the token fits an HTTP header and a WebSocket replays all 100), 101 are BAD_USER_INPUT', async () => {
    const actor = { userId: 'bulk', tenantCode: 'view-bulk', isAdmin: false };
    const ids = (
      await Promise.all(Array.from({ length: 100 }, (_, n) => app.tasks.createTask(actor, { taskType: 'REPORT', input: { n } })))
    ).map((task) => task.id);
    const owner = await app.token('view-bulk');

    const over = await app.gql(CREATE_VIEWER_TOKEN, { ids: [...ids, `${ids[0]!.slice(0, -1)}Z`] }, owner);
    expect(over.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'ids' });

    const token = await viewerToken(app, owner, { ids });
    const read = await app.gql(GET_TASK, { id: ids[99] }, token);
    expect(read.errors).toBeUndefined();
    expect(read.data!.task.id).toBe(ids[99]);
    const sub = subscribeWs(wsFor(app, token), { filter: { ids } });
    const events = await sub.waitFor(100);
    expect(new Set(events.map((event) => event.task.id))).toEqual(new Set(ids));
    sub.stop();
  });

  test("another tenant's task is NOT_FOUND, as an absent one is; a malformed id is BAD_USER_INPUT naming the argument", async () => {
    const absent = w.a.replace(/#[^#]+$/, '#01ARZ3NDEKTSV4RRFFQ69G5FAV');
    for (const variables of [{ ids: [w.x] }, { ids: [absent] }, { ids: [w.a, w.x] }, { parentId: w.x.replace('TASK#', 'SFN_TASK#') }]) {
      const res = await app.gql(CREATE_VIEWER_TOKEN, variables, w.owner);
      expect(res.data ?? null, JSON.stringify(variables)).toBeNull();
      expect(errorCode(res), JSON.stringify(variables)).toBe('NOT_FOUND');
      expect(res.errors![0]!.message).toMatch(/^Task .+ not found$/);
    }
    // The same answer shape for the foreign id and the absent one: nothing tells them apart but the id.
    const foreign = await app.gql(CREATE_VIEWER_TOKEN, { ids: [w.x] }, w.owner);
    const missing = await app.gql(CREATE_VIEWER_TOKEN, { ids: [absent] }, w.owner);
    expect(foreign.errors![0]!.message.replace(w.x, '<id>')).toBe(missing.errors![0]!.message.replace(absent, '<id>'));

    for (const [variables, field] of [
      [{ ids: ['not-an-id'] }, 'ids'],
      [{ parentId: 'SFN_TASK#view-a' }, 'parentId'],
    ] as const) {
      const res = await app.gql(CREATE_VIEWER_TOKEN, variables, w.owner);
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
  });

  test('parentId must be a Step Functions task: a standard task or a sub-task is BAD_USER_INPUT', async () => {
    for (const parentId of [w.a, w.pSubs[0]]) {
      const res = await app.gql(CREATE_VIEWER_TOKEN, { parentId }, w.owner);
      expect(res.data ?? null).toBeNull();
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'parentId' });
    }
  });

  test("a system_admin may create one for another tenant's tasks; the token is that tenant's and not admin; tenants do not mix", async () => {
    const admin = await app.token('ops', { userId: 'root', admin: true });
    const mixed = await app.gql(CREATE_VIEWER_TOKEN, { ids: [w.a, w.x] }, admin);
    expect(mixed.data ?? null).toBeNull();
    expect(errorCode(mixed)).toBe('BAD_USER_INPUT');

    const token = await viewerToken(app, admin, { ids: [w.x] });
    expect(decodeJwt(token)).toMatchObject({ sub: 'root', tenant: 'view-b', scope: { ids: [w.x] } });
    const read = await app.gql(GET_TASK, { id: w.x }, token);
    expect(read.data!.task).toMatchObject({ id: w.x, tenantCode: 'view-b' });
    // Not an admin: it may not name any tenant, nor read another.
    const listed = await app.gql(LIST_TASKS, { filter: { tenantCode: 'ops' } }, token);
    expect(errorCode(listed)).toBe('FORBIDDEN');
    expect(errorCode(await app.gql(GET_TASK, { id: w.a }, token))).toBe('FORBIDDEN');
  });

  test('without a token it is UNAUTHENTICATED (HTTP 401)', async () => {
    const res = await app.gql(CREATE_VIEWER_TOKEN, { ids: [w.a] }, null);
    expect({ status: res.status, code: errorCode(res), data: res.data ?? null }).toEqual({
      status: 401,
      code: 'UNAUTHENTICATED',
      data: null,
    });
  });

  test('with JWKS_URL only and no VIEWER_TOKEN_SECRET: FORBIDDEN saying what is missing, and viewer tokens are refused', async () => {
    const full = await new SignJWT({ 'custom:tenant': 'jwks-t' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
      .setSubject('carol')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(jwksKey);
    const created = await jwksOnly.gql(CREATE_TASK, { input: { taskType: 'REPORT', input: {} } }, full);
    expect(created.errors).toBeUndefined(); // the full token works
    const res = await jwksOnly.gql(CREATE_VIEWER_TOKEN, { ids: [created.data!.createTask.id] }, full);
    expect(res.data ?? null).toBeNull();
    expect(errorCode(res)).toBe('FORBIDDEN');
    expect(res.errors![0]!.message).toMatch(/VIEWER_TOKEN_SECRET/);

    const forged = await signed(
      { sub: 'carol', tenant: 'jwks-t', scope: { ids: [created.data!.createTask.id] }, aud: 'task-viewer', iat: now(), exp: now() + 60 },
      TEST_SECRET,
    );
    const read = await jwksOnly.gql(GET_TASK, { id: created.data!.createTask.id }, forged);
    expect({ status: read.status, code: errorCode(read) }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
  });

  test('the embedded default signs viewer tokens with its generated development secret', async () => {
    expect(dev.devToken).toEqual(expect.any(String));
    const created = await dev.gql(CREATE_TASK, { input: { taskType: 'REPORT', input: {} } }, dev.devToken!);
    const id = created.data!.createTask.id as string;
    const token = await viewerToken(dev, dev.devToken!, { ids: [id] });
    expect((await dev.gql(GET_TASK, { id }, token)).data!.task.id).toBe(id);
    // Not with the test secret, which this server does not know.
    const foreign = await signed(
      { sub: 'dev', tenant: 'demo', scope: { ids: [id] }, aud: 'task-viewer', iat: now(), exp: now() + 60 },
      TEST_SECRET,
    );
    expect(errorCode(await dev.gql(GET_TASK, { id }, foreign))).toBe('UNAUTHENTICATED');
  });
});

describe('VIEWER_TOKEN_SECRET', () => {
  test('defaults to JWT_SECRET, must be 32 characters or more, and is the only viewer secret with JWKS_URL', () => {
    expect(loadConfig({ JWT_SECRET: TEST_SECRET, DATA_DIR: ':memory:' }).auth.viewerSecret).toBe(TEST_SECRET);
    expect(loadConfig({ JWT_SECRET: TEST_SECRET, VIEWER_TOKEN_SECRET: VIEWER_SECRET, DATA_DIR: ':memory:' }).auth.viewerSecret).toBe(
      VIEWER_SECRET,
    );
    expect(loadConfig({ JWKS_URL: 'https://example.com/jwks.json', DATA_DIR: ':memory:' }).auth.viewerSecret).toBeUndefined();
    expect(loadConfig({ JWKS_URL: 'https://example.com/jwks.json', VIEWER_TOKEN_SECRET: VIEWER_SECRET }).auth.viewerSecret).toBe(
      VIEWER_SECRET,
    );
    expect(() => loadConfig({ JWT_SECRET: TEST_SECRET, VIEWER_TOKEN_SECRET: 'short' })).toThrow(/VIEWER_TOKEN_SECRET must be at least 32/);
  });

  test('a separate secret: viewer tokens signed with it work; one signed with JWT_SECRET, or a full token signed with it, is UNAUTHENTICATED', async () => {
    const owner = await split.token('split-t');
    const created = await split.gql(CREATE_TASK, { input: { taskType: 'REPORT', input: {} } }, owner);
    const id = created.data!.createTask.id as string;
    const token = await viewerToken(split, owner, { ids: [id] });
    expect((await split.gql(GET_TASK, { id }, token)).data!.task.id).toBe(id);

    const claims = decodeJwt(token);
    const withJwtSecret = await signed(claims, TEST_SECRET);
    const fullWithViewerSecret = await mintToken({ secret: VIEWER_SECRET, tenantCode: 'split-t', userId: 'mallory' });
    for (const [label, bad] of [
      ['viewer token signed with JWT_SECRET', withJwtSecret],
      ['full token signed with VIEWER_TOKEN_SECRET', fullWithViewerSecret],
    ]) {
      const res = await split.gql(GET_TASK, { id }, bad);
      expect({ label, status: res.status, code: errorCode(res) }).toEqual({ label, status: 401, code: 'UNAUTHENTICATED' });
    }
  });
});

describe('refused viewer tokens', () => {
  let genuine: string;
  beforeAll(async () => {
    genuine = await viewerToken(app, w.owner, { ids: [w.a] });
  });

  /** Each is refused over HTTP (401) and at WebSocket connection_init (close 4401). */
  const expectRefused = async (label: string, token: string, reason?: RegExp) => {
    const res = await app.gql(GET_TASK, { id: w.b }, token);
    expect({ label, status: res.status, code: errorCode(res), data: res.data ?? null }).toEqual({
      label,
      status: 401,
      code: 'UNAUTHENTICATED',
      data: null,
    });
    if (reason) expect(res.errors![0]!.message, label).toMatch(reason);
    const closes: number[] = [];
    const client = wsClient(app.url, token, { on: { closed: (event) => closes.push((event as { code: number }).code) } });
    const sub = subscribeWs(client, { filter: { ids: [w.b] } });
    await within(sub.done, 5_000, `${label}: the WebSocket to close`);
    expect({ label, closes, events: sub.events }).toEqual({ label, closes: [TOKEN_EXPIRED_CLOSE_CODE], events: [] });
  };

  test('the genuine token works (so the refusals below are about the changes)', async () => {
    expect((await app.gql(GET_TASK, { id: w.a }, genuine)).data!.task.id).toBe(w.a);
  });

  test('a scope edited to name another task, with the signature kept', async () => {
    const [header, payload, signature] = segments(genuine);
    const claims = decodeSegment(payload);
    claims.scope = { ids: [w.a, w.b] };
    await expectRefused('tampered scope', `${header}.${encodeSegment(claims)}.${signature}`, /signature/);
    claims.scope = { ids: [w.a] };
    claims.exp += 86_400;
    await expectRefused('tampered exp', `${header}.${encodeSegment(claims)}.${signature}`, /signature/);
  });

  test('signed with the wrong secret', async () => {
    await expectRefused('wrong secret', await signed(decodeJwt(genuine), OTHER_SECRET), /signature/);
  });

  test('its header typ rewritten or removed (the header is signed): never a full token', async () => {
    const [, payload, signature] = segments(genuine);
    for (const typ of ['JWT', undefined, 'TASK-VIEWER+JWT']) {
      const header = encodeSegment(typ === undefined ? { alg: 'HS256' } : { alg: 'HS256', typ });
      await expectRefused(`typ ${typ}`, `${header}.${payload}.${signature}`);
    }
    // Re-signed by someone holding the secret as a plain JWT, its claims still make no full identity.
    await expectRefused('viewer claims as typ JWT', await signed(decodeJwt(genuine), TEST_SECRET, 'JWT'), /custom:tenant/);
  });

  test('expired, without exp, for another audience, or with a scope outside its tenant', async () => {
    const base = decodeJwt(genuine);
    const { exp: _exp, ...withoutExp } = base;
    const cases: [string, JWTPayload][] = [
      ['expired', { ...base, iat: now() - 120, exp: now() - 60 }],
      ['no exp', withoutExp],
      ['another audience', { ...base, aud: 'something-else' }],
      ['a scope id of another tenant', { ...base, scope: { ids: [w.x] } }],
      ['an empty scope', { ...base, scope: { ids: [] } }],
      ['a scope that is not an object', { ...base, scope: w.a }],
      ['no sub', { ...base, sub: undefined }],
    ];
    for (const [label, claims] of cases) await expectRefused(label, await signed(claims, TEST_SECRET));
  });

  test('a malformed token is UNAUTHENTICATED, not an error', async () => {
    for (const token of ['e30', '%%%.e30.x', `${encodeSegment('not an object')}.e30.x`]) {
      const res = await app.gql(GET_TASK, { id: w.a }, token);
      expect({ token, status: res.status, code: errorCode(res) }).toEqual({ token, status: 401, code: 'UNAUTHENTICATED' });
    }
  });
});

describe('what a viewer token may do', () => {
  let viewer: string; // ids [A], parentId P
  let idsOnly: string; // ids [A]
  let parentOnly: string; // parentId P
  beforeAll(async () => {
    [viewer, idsOnly, parentOnly] = await Promise.all([
      viewerToken(app, w.owner, { ids: [w.a], parentId: w.p }),
      viewerToken(app, w.owner, { ids: [w.a] }),
      viewerToken(app, w.owner, { parentId: w.p }),
    ]);
  });

  test.each(TRANSPORTS)('%s: reads task(A), task(P), a sub-task of P and subTasks(P)', async (transport) => {
    for (const id of [w.a, w.p, w.pSubs[1]!]) {
      const res = await run(app, transport, viewer, GET_TASK, { id });
      expect(res.errors, id).toBeUndefined();
      expect(res.data.task).toMatchObject({ id, tenantCode: w.tenant });
    }
    const res = await run(app, transport, viewer, LIST_SUB_TASKS, { parentId: w.p });
    expect(res.errors).toBeUndefined();
    expect(res.data.subTasks.edges.map((edge: any) => edge.node.id)).toEqual(w.pSubs);
  });

  test.each(TRANSPORTS)('%s: a token for ids only, or for parentId only, reads nothing of the other', async (transport) => {
    expect((await run(app, transport, idsOnly, GET_TASK, { id: w.a })).data.task.id).toBe(w.a);
    expect((await run(app, transport, parentOnly, GET_TASK, { id: w.pSubs[0] })).data.task.id).toBe(w.pSubs[0]);
    for (const [token, query, variables] of [
      [idsOnly, GET_TASK, { id: w.p }],
      [idsOnly, GET_TASK, { id: w.pSubs[0] }],
      [idsOnly, LIST_SUB_TASKS, { parentId: w.p }],
      [idsOnly, SUBSCRIBE, { filter: { parentId: w.p } }],
      [idsOnly, SUBSCRIBE, { filter: { ids: [w.pSubs[0]] } }],
      [parentOnly, GET_TASK, { id: w.a }],
      [parentOnly, SUBSCRIBE, { filter: { ids: [w.a] } }],
    ] as const) {
      if (transport === 'http' && query === SUBSCRIBE) continue;
      const res = await run(app, transport, token, query, variables);
      expect({ variables, code: codeOf(res) }).toEqual({ variables, code: 'FORBIDDEN' });
    }
  });

  /** Every other operation, including writes to tasks in its scope. */
  const forbiddenOperations = (): [string, string, Record<string, unknown>][] => [
    ['tasks', LIST_TASKS, { first: 5 }],
    ['tasks naming its own tenant', LIST_TASKS, { filter: { tenantCode: w.tenant } }],
    ['task(B) of the same tenant', GET_TASK, { id: w.b }],
    ['task(Q), another Step Functions task', GET_TASK, { id: w.q }],
    ['task(sub-task of Q)', GET_TASK, { id: w.qSub }],
    ['task(X) of another tenant', GET_TASK, { id: w.x }],
    ['subTasks(Q)', LIST_SUB_TASKS, { parentId: w.q }],
    ['subTasks(A)', LIST_SUB_TASKS, { parentId: w.a }],
    ['createTask', CREATE_TASK, { input: { taskType: 'REPORT', input: {} } }],
    ['createStepFunctionTask', CREATE_SFN_TASK, { input: { taskType: 'IMPORT', input: [{}] } }],
    ['updateStatus(A), in scope', UPDATE_STATUS, { input: { id: w.a, status: 'FAILED' } }],
    ['updateStatus(sub-task of P), in scope', UPDATE_STATUS, { input: { id: w.pSubs[0], status: 'FAILED' } }],
    ['cancelTask(A), in scope', CANCEL_TASK, { id: w.a }],
    ['cancelTask(P), in scope', CANCEL_TASK, { id: w.p }],
    ['cancelTask(sub-task of P), in scope', CANCEL_TASK, { id: w.pSubs[0] }],
    ['cancelTask(B)', CANCEL_TASK, { id: w.b }],
    ['createViewerToken for its own scope', CREATE_VIEWER_TOKEN, { ids: [w.a] }],
    ['taskStatusChanged with no filter', SUBSCRIBE, {}],
    ['taskStatusChanged by taskType', SUBSCRIBE, { filter: { taskType: 'REPORT' } }],
    ['taskStatusChanged by kind and statuses', SUBSCRIBE, { filter: { kind: 'TASK', statuses: ['FAILED'] } }],
    ['taskStatusChanged naming its tenant', SUBSCRIBE, { filter: { tenantCode: w.tenant } }],
    ['taskStatusChanged with includeSubTasks', SUBSCRIBE, { filter: { includeSubTasks: true } }],
    ['taskStatusChanged since a time', SUBSCRIBE, { since: new Date(0).toISOString() }],
    ['taskStatusChanged ids [A, B]', SUBSCRIBE, { filter: { ids: [w.a, w.b] } }],
    ['taskStatusChanged ids [sub-task of Q]', SUBSCRIBE, { filter: { ids: [w.qSub] } }],
    ['taskStatusChanged parentId Q', SUBSCRIBE, { filter: { parentId: w.q } }],
    ['taskStatusChanged ids [A] and parentId Q', SUBSCRIBE, { filter: { ids: [w.a], parentId: w.q } }],
  ];

  test.each(TRANSPORTS)('%s: every other operation is FORBIDDEN and changes nothing', async (transport) => {
    const before = { items: await app.itemCount(), a: (await app.gql(GET_TASK, { id: w.a }, w.owner)).data!.task };
    const seen: string[] = [];
    for (const [label, query, variables] of forbiddenOperations()) {
      // Plain HTTP carries queries and mutations; subscriptions go over SSE or WebSocket.
      if (transport === 'http' && query === SUBSCRIBE) continue;
      seen.push(label);
      const res = await run(app, transport, viewer, query, variables);
      expect({ label, code: codeOf(res) }).toEqual({ label, code: 'FORBIDDEN' });
      expect(res.errors![0]!.message, label).toMatch(/^A viewer token may /);
      const field = Object.values(res.data ?? {})[0];
      expect(field ?? null, label).toBeNull();
    }
    expect(seen.length).toBe(transport === 'http' ? 17 : 27);
    expect(await app.itemCount()).toBe(before.items);
    expect((await app.gql(GET_TASK, { id: w.a }, w.owner)).data!.task).toEqual(before.a);
    for (const id of [w.p, ...w.pSubs]) {
      expect((await app.gql(GET_TASK, { id }, w.owner)).data!.task.status, id).toBe('CREATED');
    }
  });

  test('SSE and WebSocket: watches ids [A] and parentId P, with their current states first, then live changes of those tasks only', async () => {
    const live: Collected[] = [];
    const watch = (filter: Record<string, unknown>) => {
      const sse = subscribeSse(app.url, viewer, { filter });
      const ws = subscribeWs(wsFor(app, viewer), { filter });
      live.push(sse, ws);
      return [sse, ws];
    };
    const byIds = watch({ ids: [w.a] });
    const bySubTaskId = watch({ ids: [w.pSubs[2]] });
    const byParent = watch({ parentId: w.p });
    const narrowed = watch({ parentId: w.p, statuses: ['PROCESSING'] });
    for (const sub of [...byIds, ...bySubTaskId]) {
      const [first] = await sub.waitFor(1);
      expect(first).toMatchObject({ replayed: true });
    }
    for (const sub of byParent) {
      const events = await sub.waitFor(4);
      expect(events.map((event) => [event.task.id, event.replayed])).toEqual([w.p, ...w.pSubs].map((id) => [id, true]));
    }

    // Out of scope first, then in scope: an event for B, Q or Q's sub-task would arrive before A's.
    const update = async (id: string, status: string) => {
      const res = await app.gql(UPDATE_STATUS, { input: { id, status } }, w.owner);
      expect(res.errors, `${id} -> ${status}`).toBeUndefined();
    };
    await update(w.b, 'QUEUED');
    await update(w.qSub, 'PROCESSING');
    await update(w.q, 'QUEUED');
    await update(w.a, 'QUEUED');
    await update(w.pSubs[2]!, 'PROCESSING');
    await update(w.pSubs[0]!, 'PROCESSING');

    for (const sub of byIds) {
      const events = await sub.waitFor(2);
      expect(events.map((event) => [event.task.id, event.task.status, event.replayed])).toEqual([
        [w.a, 'CREATED', true],
        [w.a, 'QUEUED', false],
      ]);
    }
    for (const sub of bySubTaskId) {
      const events = await sub.waitFor(2);
      expect(events.map((event) => [event.task.id, event.task.status, event.replayed])).toEqual([
        [w.pSubs[2], 'CREATED', true],
        [w.pSubs[2], 'PROCESSING', false],
      ]);
    }
    for (const sub of byParent) {
      const events = await sub.waitFor(6);
      expect(events.slice(4).map((event) => [event.task.id, event.task.status, event.replayed])).toEqual([
        [w.pSubs[2], 'PROCESSING', false],
        [w.pSubs[0], 'PROCESSING', false],
      ]);
    }
    for (const sub of narrowed) {
      const events = await sub.waitFor(2);
      expect(events.map((event) => event.task.id)).toEqual([w.pSubs[2], w.pSubs[0]]);
    }
    for (const sub of live) {
      expect(sub.errors).toEqual([]);
      expect(sub.events.every((event) => event.task.id === w.a || event.task.id === w.p || event.task.parentId === w.p)).toBe(true);
      sub.stop();
    }
  });

  test('an expiring viewer token closes its WebSocket (4401) and ends its SSE stream (UNAUTHENTICATED)', async () => {
    const res = await app.gql(CREATE_VIEWER_TOKEN, { ids: [w.a] }, w.owner);
    const { token, expiresAt } = res.data!.createViewerToken;
    const expiresAtMs = new Date(expiresAt).getTime();
    const closes: number[] = [];
    const client = wsClient(app.url, token, { on: { closed: (event) => closes.push((event as { code: number }).code) } });
    const ws = subscribeWs(client, { filter: { ids: [w.a] } });
    const sse = subscribeSse(app.url, token, { filter: { ids: [w.a] } });
    await ws.waitFor(1);
    await sse.waitFor(1);
    clock.advanceTo(expiresAtMs - 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ws.completed || sse.completed).toBe(false);
    clock.advanceTo(expiresAtMs);
    await within(Promise.all([ws.done, sse.done]), 5_000, 'both subscriptions to end');
    expect(closes).toEqual([TOKEN_EXPIRED_CLOSE_CODE]);
    expect(ws.errors[0]).toMatchObject({ code: TOKEN_EXPIRED_CLOSE_CODE });
    expect(sse.errors.map((error: any) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
  });
});
