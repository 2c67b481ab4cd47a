import { SignJWT, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  CREATE_TASK,
  GET_TASK,
  LIST_TASKS,
  TEST_SECRET,
  UPDATE_STATUS,
  errorCode,
  startTestApp,
  type GraphQLResponse,
  type TestApp,
} from './helpers/app.js';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});

const itemCount = () => app.itemCount();

const encoder = new TextEncoder();
const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Fixed instants far from now, so no assertion depends on the wall clock. */
const LONG_AGO = 1_000_000_000; // 2001-09-09
const FAR_AHEAD = 4_000_000_000; // 2096-10-02

/** An HS256 token with exactly the given claims (no defaults added). */
function sign(payload: JWTPayload, { secret = TEST_SECRET, alg = 'HS256' } = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT' }).sign(encoder.encode(secret));
}

const claimsFor = (tenant: string, extra: JWTPayload = {}): JWTPayload => ({
  sub: `user-of-${tenant}`,
  'custom:tenant': tenant,
  iat: LONG_AGO,
  exp: FAR_AHEAD,
  ...extra,
});

const createInput = (taskType = 'REPORT', extra: Record<string, unknown> = {}) => ({
  input: { taskType, input: { from: 'auth-test' }, ...extra },
});

/** Ids of the tasks a valid token of `tenant` lists, both kinds. */
async function listedIds(tenant: string): Promise<string[]> {
  const token = await app.token(tenant);
  const ids: string[] = [];
  for (const kind of ['TASK', 'SFN_TASK']) {
    const res = await app.gql(LIST_TASKS, { filter: { kind }, first: 100 }, token);
    expect(res.errors).toBeUndefined();
    ids.push(...res.data!.tasks.edges.map((edge: any) => edge.node.id));
  }
  return ids;
}

/**
 * Sends a createTask with the given credentials and checks it was refused as
 * unauthenticated (HTTP 401, UNAUTHENTICATED, no data) and that nothing was written.
 */
async function expectRefused(
  tenant: string,
  credentials: { token?: string | null; headers?: Record<string, string> },
  message?: RegExp,
): Promise<GraphQLResponse> {
  const before = await itemCount();
  const res = await app.gql(CREATE_TASK, createInput(), credentials.token ?? null, credentials.headers);

  // Nothing written: neither under the tenant the token names nor anywhere else.
  expect(await listedIds(tenant)).toEqual([]);
  expect(await itemCount()).toBe(before);

  expect(res.data ?? null).toBeNull();
  expect(res.errors).toHaveLength(1);
  if (message) expect(res.errors![0]!.message).toMatch(message);
  expect({ status: res.status, code: errorCode(res) }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
  return res;
}

describe('refused credentials: HTTP 401, UNAUTHENTICATED, nothing written', () => {
  test('control: the same request with a valid token is accepted and writes the task', async () => {
    const tenant = 'auth-control';
    const before = await itemCount();
    const res = await app.gql(CREATE_TASK, createInput(), await sign(claimsFor(tenant)));
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    expect(res.data!.createTask.tenantCode).toBe(tenant);
    expect(await listedIds(tenant)).toEqual([res.data!.createTask.id]);
    expect(await itemCount()).toBe(before + 1);
  });

  test('missing Authorization header', async () => {
    await expectRefused('auth-missing', { token: null }, /Bearer/);
  });

  test.each([
    ['Basic credentials', 'Basic dXNlcjpwYXNz'],
    ['a bare token without scheme', 'TOKEN'],
    ['Bearer without a token', 'Bearer '],
    ['Token scheme', 'Token abc.def.ghi'],
  ])('not a Bearer header: %s', async (_, authorization) => {
    await expectRefused('auth-not-bearer', { token: null, headers: { authorization } });
  });

  test('a non-Bearer scheme carrying an otherwise valid token', async () => {
    const tenant = 'auth-basic-valid';
    const token = await sign(claimsFor(tenant));
    await expectRefused(tenant, { token: null, headers: { authorization: `Basic ${token}` } });
  });

  test('expired token', async () => {
    const tenant = 'auth-expired';
    const token = await sign(claimsFor(tenant, { iat: LONG_AGO - 3600, exp: LONG_AGO }));
    await expectRefused(tenant, { token }, /expired/);
  });

  test('bad signature: signed with another secret', async () => {
    const tenant = 'auth-bad-signature';
    const token = await sign(claimsFor(tenant), { secret: 'another-secret-that-is-also-32-characters-long' });
    await expectRefused(tenant, { token }, /signature/);
  });

  test('bad signature: a valid token whose payload was swapped for another tenant', async () => {
    const victim = 'auth-tampered-victim';
    const [header, , signature] = (await sign(claimsFor('auth-tampered-attacker'))).split('.');
    const token = [header, base64url(claimsFor(victim)), signature].join('.');
    await expectRefused(victim, { token }, /signature/);
  });

  test('alg: none (an unsecured JWT)', async () => {
    const tenant = 'auth-alg-none';
    const token = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claimsFor(tenant))}.`;
    await expectRefused(tenant, { token }, /algorithm/);
  });

  test('another HMAC algorithm (HS512) even with the right secret', async () => {
    const tenant = 'auth-hs512';
    await expectRefused(tenant, { token: await sign(claimsFor(tenant), { alg: 'HS512' }) }, /algorithm/);
  });

  test('token without the custom:tenant claim', async () => {
    const token = await sign({ sub: 'user-without-tenant', iat: LONG_AGO, exp: FAR_AHEAD });
    await expectRefused('auth-no-tenant', { token }, /custom:tenant/);
  });

  test('token with an empty custom:tenant claim', async () => {
    await expectRefused('auth-empty-tenant', { token: await sign(claimsFor('')) }, /custom:tenant/);
  });

  test('token without sub', async () => {
    const tenant = 'auth-no-sub';
    const token = await sign({ 'custom:tenant': tenant, iat: LONG_AGO, exp: FAR_AHEAD });
    await expectRefused(tenant, { token }, /sub/);
  });

  test('token without exp', async () => {
    const tenant = 'auth-no-exp';
    const token = await sign({ sub: 'user-no-exp', 'custom:tenant': tenant, iat: LONG_AGO });
    await expectRefused(tenant, { token }, /exp/);
  });

  test.each([
    ['a word', 'garbage'],
    ['three dots-separated words', 'not.a.jwt'],
    ['base64 that is not JSON', 'aGVsbG8.d29ybGQ.c2ln'],
  ])('garbage token: %s', async (_, token) => {
    await expectRefused('auth-garbage', { token });
  });

  test('a refused token is refused for queries too, not only for mutations', async () => {
    const res = await app.gql(LIST_TASKS, {}, 'garbage');
    expect(res.data ?? null).toBeNull();
    expect(res.errors![0]!.message).toBe('The token is invalid');
    expect({ status: res.status, code: errorCode(res) }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
  });
});

describe('identity from a valid token', () => {
  test('sub becomes createdBy/updatedBy, and the updater becomes updatedBy', async () => {
    const tenant = 'auth-sub';
    const created = await app.gql(CREATE_TASK, createInput(), await sign(claimsFor(tenant, { sub: 'alice-42' })));
    expect(created.errors).toBeUndefined();
    const task = created.data!.createTask;
    expect(task).toMatchObject({ tenantCode: tenant, createdBy: 'alice-42', updatedBy: 'alice-42' });
    expect(await app.store.get(task)).toMatchObject({ createdBy: 'alice-42', updatedBy: 'alice-42' });

    const updated = await app.gql(
      UPDATE_STATUS,
      { input: { id: task.id, status: 'QUEUED' } },
      await sign(claimsFor(tenant, { sub: 'bob-7' })),
    );
    expect(updated.errors).toBeUndefined();
    expect(updated.data!.updateStatus).toMatchObject({ createdBy: 'alice-42', updatedBy: 'bob-7', version: 2 });
    expect(await app.store.get(task)).toMatchObject({ createdBy: 'alice-42', updatedBy: 'bob-7', version: 2 });
  });
});

describe('admin tokens', () => {
  /** Creates a task for `other` with `token` and checks it lands there and is listed there. */
  async function expectActsAsAdmin(token: string, home: string, other: string, adminUser: string) {
    const created = await app.gql(CREATE_TASK, createInput('REPORT', { tenantCode: other }), token);
    expect(created.errors).toBeUndefined();
    const task = created.data!.createTask;
    expect(task).toMatchObject({
      tenantCode: other,
      pk: `TASK#${other}`,
      id: `TASK#${other}#REPORT#${task.code}`,
      createdBy: adminUser,
    });
    expect(await app.store.get(task)).toMatchObject({ tenantCode: other, createdBy: adminUser });

    const listed = await app.gql(LIST_TASKS, { filter: { tenantCode: other } }, token);
    expect(listed.errors).toBeUndefined();
    expect(listed.data!.tasks.edges.map((edge: any) => edge.node.id)).toEqual([task.id]);

    // Without filter.tenantCode the admin lists its own tenant, which does not hold it.
    const own = await app.gql(LIST_TASKS, {}, token);
    expect(own.errors).toBeUndefined();
    expect(own.data!.tasks.edges.map((edge: any) => edge.node.id)).not.toContain(task.id);

    // The other tenant's own users see it as theirs.
    expect(await listedIds(other)).toEqual([task.id]);
    expect(await listedIds(home)).not.toContain(task.id);
    return task;
  }

  test('roles as an array (minted by the helper) grant system_admin', async () => {
    const token = await app.token('auth-admin-array-home', { userId: 'root-array', admin: true });
    const task = await expectActsAsAdmin(token, 'auth-admin-array-home', 'auth-admin-array-other', 'root-array');
    const read = await app.gql(GET_TASK, { id: task.id }, token);
    expect(read.data!.task).toMatchObject({ id: task.id, tenantCode: 'auth-admin-array-other' });
  });

  test('roles as a JSON string grant system_admin', async () => {
    const home = 'auth-admin-json-home';
    const token = await sign(claimsFor(home, { sub: 'root-json', 'custom:roles': '["system_admin"]' }));
    await expectActsAsAdmin(token, home, 'auth-admin-json-other', 'root-json');
  });

  test('roles as comma-separated text grant system_admin', async () => {
    const home = 'auth-admin-csv-home';
    const token = await sign(claimsFor(home, { sub: 'root-csv', 'custom:roles': 'reader, system_admin' }));
    await expectActsAsAdmin(token, home, 'auth-admin-csv-other', 'root-csv');
  });

  test.each([
    ['no roles claim', undefined],
    ['an empty array', []],
    ['another role', ['reader']],
    ['a role that only contains the admin name', 'system_admin_readonly'],
    ['a JSON string without the admin role', '["reader"]'],
    ['malformed JSON text', '["system_admin"'],
    ['a non-string array element', [1]],
  ])('%s does not grant system_admin', async (label, roles) => {
    const home = `auth-nonadmin-${label.replace(/[^a-z]+/g, '-')}`;
    const other = `${home}-other`;
    const token = await sign(claimsFor(home, roles === undefined ? {} : { 'custom:roles': roles }));
    const before = await itemCount();

    const created = await app.gql(CREATE_TASK, createInput('REPORT', { tenantCode: other }), token);
    expect(errorCode(created)).toBe('FORBIDDEN');
    const listed = await app.gql(LIST_TASKS, { filter: { tenantCode: other } }, token);
    expect(errorCode(listed)).toBe('FORBIDDEN');

    expect(await itemCount()).toBe(before);
    expect(await listedIds(other)).toEqual([]);
  });
});

describe('verified tokens are remembered only while valid', () => {
  test('a token accepted once is refused after it expires', async () => {
    const token = await app.token('auth-expiring', { expiresIn: '2s' });
    const first = await app.gql(LIST_TASKS, {}, token);
    expect(first.errors).toBeUndefined();
    const deadline = Date.now() + 10_000;
    let res = first;
    while (Date.now() < deadline && !res.errors) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      res = await app.gql(LIST_TASKS, {}, token);
    }
    expect(res.status).toBe(401);
    expect(errorCode(res)).toBe('UNAUTHENTICATED');
  });
});
