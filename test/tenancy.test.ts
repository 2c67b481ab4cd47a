import { beforeAll, describe, expect, test } from 'vitest';
import { parseTaskId } from '../src/tasks/keys.js';
import { subTasksOf } from '../src/tasks/sub-tasks.js';
import {
  CREATE_SFN_TASK,
  CREATE_TASK,
  GET_TASK,
  LIST_SUB_TASKS,
  LIST_TASKS,
  UPDATE_STATUS,
  errorCode,
  startTestApp,
  type TestApp,
} from './helpers/app.js';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp();
});

const itemCount = () => app.itemCount();

/** The response exactly as sent: status, content type and body text. */
async function raw(query: string, variables: Record<string, unknown>, token: string) {
  const response = await fetch(app.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, contentType: response.headers.get('content-type'), body: await response.text() };
}

/** A ULID no test creates: the same shape as a real code. */
const ABSENT_CODE = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
const withCode = (id: string, code: string, absent = ABSENT_CODE) => id.replace(code, absent);

interface World {
  a: { tenant: string; token: string; report: any; other: any; sfn: any; subTaskIds: string[]; allIds: string[] };
  b: { tenant: string; token: string; report: any; sfn: any };
}

/**
 * Two tenants with the same task types: A has two REPORTs, one EXPORT and a
 * Step Functions task with three sub-tasks; B has a REPORT and a Step Functions task.
 */
async function world(suffix: string): Promise<World> {
  const aTenant = `iso-a-${suffix}`;
  const bTenant = `iso-b-${suffix}`;
  const aToken = await app.token(aTenant);
  const bToken = await app.token(bTenant);
  const create = async (mutation: string, taskType: string, input: unknown, token: string) => {
    const res = await app.gql(mutation, { input: { taskType, input } }, token);
    expect(res.errors).toBeUndefined();
    return Object.values(res.data!)[0] as any;
  };
  const aReport = await create(CREATE_TASK, 'REPORT', { n: 1 }, aToken);
  const aReport2 = await create(CREATE_TASK, 'REPORT', { n: 2 }, aToken);
  const aOther = await create(CREATE_TASK, 'EXPORT', { n: 3 }, aToken);
  const aSfn = await create(CREATE_SFN_TASK, 'IMPORT', [{ row: 1 }, { row: 2 }, { row: 3 }], aToken);
  const parent = await app.store.get(aSfn);
  const subTasks = subTasksOf(parent!);
  await app.store.putSubTasks(subTasks);
  const bReport = await create(CREATE_TASK, 'REPORT', { n: 1 }, bToken);
  const bSfn = await create(CREATE_SFN_TASK, 'IMPORT', [{ row: 1 }], bToken);
  await app.store.putSubTasks(subTasksOf((await app.store.get(bSfn))!));
  return {
    a: {
      tenant: aTenant,
      token: aToken,
      report: aReport,
      other: aOther,
      sfn: aSfn,
      subTaskIds: subTasks.map((t) => t.id),
      allIds: [aReport.id, aReport2.id, aOther.id, aSfn.id, ...subTasks.map((t) => t.id)],
    },
    b: { tenant: bTenant, token: bToken, report: bReport, sfn: bSfn },
  };
}

const nodesOf = (res: { data?: any }) => (res.data!.tasks ?? res.data!.subTasks).edges.map((edge: any) => edge.node);

describe('task(id)', () => {
  test("another tenant's task reads exactly like an absent one", async () => {
    const { a, b } = await world('get');

    // A sees its own tasks, so the nulls below are isolation, not absence.
    for (const id of [a.report.id, a.sfn.id, a.subTaskIds[1]!]) {
      const own = await app.gql(GET_TASK, { id }, a.token);
      expect(own.data!.task).toMatchObject({ id, tenantCode: a.tenant });
    }

    const cases = [
      { label: 'TASK', id: a.report.id, code: a.report.code },
      { label: 'SFN_TASK', id: a.sfn.id, code: a.sfn.code },
      { label: 'sub-task', id: a.subTaskIds[1]!, code: a.sfn.code },
    ];
    for (const { label, id, code } of cases) {
      const absentId = withCode(id, code);
      expect(absentId, label).not.toBe(id);
      const forA = await raw(GET_TASK, { id }, b.token);
      const forAbsent = await raw(GET_TASK, { id: absentId }, b.token);
      expect(forA, label).toEqual(forAbsent);
      expect(JSON.parse(forA.body), label).toEqual({ data: { task: null } });
      expect(forA.status, label).toBe(200);
    }

    // Also identical to an absent id in B's own tenant.
    const ownAbsent = await raw(GET_TASK, { id: `TASK#${b.tenant}#REPORT#${ABSENT_CODE}` }, b.token);
    expect(await raw(GET_TASK, { id: a.report.id }, b.token)).toEqual(ownAbsent);
  });
});

describe('tasks', () => {
  test("never lists another tenant's tasks, with or without filters", async () => {
    const { a, b } = await world('list');

    const filters: { label: string; filter: Record<string, unknown>; bExpects: string[] }[] = [
      { label: 'no filter', filter: {}, bExpects: [b.report.id] },
      { label: 'taskType', filter: { taskType: 'REPORT' }, bExpects: [b.report.id] },
      { label: 'taskType of A only', filter: { taskType: 'EXPORT' }, bExpects: [] },
      { label: 'status', filter: { status: 'CREATED' }, bExpects: [b.report.id] },
      { label: 'taskType and status', filter: { taskType: 'REPORT', status: 'CREATED' }, bExpects: [b.report.id] },
      { label: 'updatedSince', filter: { updatedSince: '2000-01-01T00:00:00.000Z' }, bExpects: [b.report.id] },
      { label: 'order ASC', filter: { order: 'ASC' }, bExpects: [b.report.id] },
      { label: 'kind SFN_TASK', filter: { kind: 'SFN_TASK' }, bExpects: [b.sfn.id] },
      {
        label: 'kind SFN_TASK, taskType and updatedSince',
        filter: { kind: 'SFN_TASK', taskType: 'IMPORT', updatedSince: '2000-01-01T00:00:00.000Z' },
        bExpects: [b.sfn.id],
      },
      { label: 'own tenantCode', filter: { tenantCode: b.tenant }, bExpects: [b.report.id] },
    ];

    for (const { label, filter, bExpects } of filters) {
      const forB = await app.gql(LIST_TASKS, { filter, first: 100 }, b.token);
      expect(forB.errors, label).toBeUndefined();
      const nodes = nodesOf(forB);
      const bListed = nodes.map((node: any) => node.id);
      expect(
        bListed.filter((id: string) => a.allIds.includes(id)),
        label,
      ).toEqual([]);
      expect(bListed.sort(), label).toEqual([...bExpects].sort());
      for (const node of nodes) expect(node.tenantCode, label).toBe(b.tenant);

      // Control: the same filter run by A does match A's tasks.
      if (!('tenantCode' in filter)) {
        const forA = await app.gql(LIST_TASKS, { filter, first: 100 }, a.token);
        const aListed = nodesOf(forA).map((node: any) => node.id);
        expect(aListed.length, label).toBeGreaterThan(0);
        expect(
          aListed.every((id: string) => a.allIds.includes(id)),
          label,
        ).toBe(true);
      }
    }
  });
});

describe('updateStatus', () => {
  test("answers NOT_FOUND for another tenant's task, exactly as for an absent one, and changes nothing", async () => {
    const { a, b } = await world('update');

    for (const [label, id, code] of [
      ['TASK', a.report.id, a.report.code],
      ['SFN_TASK', a.sfn.id, a.sfn.code],
      ['sub-task', a.subTaskIds[0]!, a.sfn.code],
    ] as const) {
      const key = await app.store.get(parseTaskId(id)!);
      expect(key, label).toBeDefined();
      for (const extra of [{}, { expectedVersion: 1 }, { expectedVersion: 99 }, { attributes: { hijacked: true } }]) {
        const before = await itemCount();
        const forA = await raw(UPDATE_STATUS, { input: { id, status: 'QUEUED', ...extra } }, b.token);
        const absentId = withCode(id, code);
        const forAbsent = await raw(UPDATE_STATUS, { input: { id: absentId, status: 'QUEUED', ...extra } }, b.token);

        expect(JSON.parse(forA.body).errors[0].extensions.code, label).toBe('NOT_FOUND');
        expect({ ...forA, body: forA.body.replaceAll(absentId, id) }, label).toEqual({
          ...forAbsent,
          body: forAbsent.body.replaceAll(absentId, id),
        });
        expect(await itemCount(), label).toBe(before);
      }
      expect(await app.store.get(key!), label).toEqual(key);
      expect(key, label).toMatchObject({ status: 'CREATED', version: 1, attributes: {} });
    }

    // Control: A itself can make the same change.
    const own = await app.gql(UPDATE_STATUS, { input: { id: a.report.id, status: 'QUEUED' } }, a.token);
    expect(own.data!.updateStatus).toMatchObject({ status: 'QUEUED', version: 2 });
  });
});

describe('subTasks', () => {
  test("answers NOT_FOUND for another tenant's parent, exactly as for an absent one", async () => {
    const { a, b } = await world('sub');

    const own = await app.gql(LIST_SUB_TASKS, { parentId: a.sfn.id }, a.token);
    expect(own.errors).toBeUndefined();
    expect(nodesOf(own).map((node: any) => node.id)).toEqual(a.subTaskIds);

    const absentId = withCode(a.sfn.id, a.sfn.code);
    const forA = await raw(LIST_SUB_TASKS, { parentId: a.sfn.id }, b.token);
    const forAbsent = await raw(LIST_SUB_TASKS, { parentId: absentId }, b.token);
    expect(JSON.parse(forA.body).errors[0].extensions.code).toBe('NOT_FOUND');
    expect(JSON.parse(forA.body).data).toBeNull();
    expect({ ...forA, body: forA.body.replaceAll(absentId, a.sfn.id) }).toEqual({
      ...forAbsent,
      body: forAbsent.body.replaceAll(absentId, a.sfn.id),
    });
  });

  test("a sub-task cursor of A's parent is refused for B's own parent", async () => {
    const { a, b } = await world('subcursor');
    const page = await app.gql(LIST_SUB_TASKS, { parentId: a.sfn.id, first: 1 }, a.token);
    expect(page.data!.subTasks.pageInfo.hasNextPage).toBe(true);
    const cursor = page.data!.subTasks.pageInfo.endCursor;
    const res = await app.gql(LIST_SUB_TASKS, { parentId: b.sfn.id, after: cursor }, b.token);
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(res.data).toBeNull();
  });
});

describe('naming another tenant', () => {
  test('a non-admin naming tenant-a is FORBIDDEN and nothing is written', async () => {
    const { a, b } = await world('forbidden');
    const before = await itemCount();

    for (const target of ['tenant-a', a.tenant]) {
      for (const mutation of [CREATE_TASK, CREATE_SFN_TASK]) {
        const res = await app.gql(mutation, { input: { taskType: 'REPORT', input: [1], tenantCode: target } }, b.token);
        expect(errorCode(res), target).toBe('FORBIDDEN');
        expect(res.data, target).toBeNull();
      }
      for (const filter of [{ tenantCode: target }, { tenantCode: target, kind: 'SFN_TASK', taskType: 'IMPORT' }]) {
        const res = await app.gql(LIST_TASKS, { filter }, b.token);
        expect(errorCode(res), target).toBe('FORBIDDEN');
        expect(res.data, target).toBeNull();
      }
    }

    expect(await itemCount()).toBe(before);
    expect(await app.store.list({ kind: 'TASK', tenantCode: 'tenant-a', order: 'DESC', limit: 100 })).toMatchObject({
      edges: [],
    });
    const aList = await app.gql(LIST_TASKS, { first: 100 }, a.token);
    expect(nodesOf(aList)).toHaveLength(3);

    // Control: naming its own tenant is allowed.
    const own = await app.gql(CREATE_TASK, { input: { taskType: 'REPORT', input: {}, tenantCode: b.tenant } }, b.token);
    expect(own.data!.createTask.tenantCode).toBe(b.tenant);
  });
});

describe('cursors', () => {
  test("a cursor from A's listing is refused in B's listing", async () => {
    const { a, b } = await world('cursor');
    for (const filter of [{}, { taskType: 'REPORT' }, { status: 'CREATED' }, { kind: 'SFN_TASK' }]) {
      const label = JSON.stringify(filter);
      const page = await app.gql(LIST_TASKS, { filter, first: 1 }, a.token);
      const cursor = page.data!.tasks.pageInfo.endCursor;
      expect(cursor, label).toEqual(expect.any(String));

      const res = await app.gql(LIST_TASKS, { filter, first: 1, after: cursor }, b.token);
      expect(errorCode(res), label).toBe('BAD_USER_INPUT');
      expect(res.data, label).toBeNull();
    }

    // Control: A's own cursor reads A's next page.
    const first = await app.gql(LIST_TASKS, { filter: { taskType: 'REPORT' }, first: 1 }, a.token);
    const next = await app.gql(
      LIST_TASKS,
      { filter: { taskType: 'REPORT' }, first: 1, after: first.data!.tasks.pageInfo.endCursor },
      a.token,
    );
    expect(next.errors).toBeUndefined();
    expect(nodesOf(next)).toHaveLength(1);
    expect(nodesOf(next)[0].tenantCode).toBe(a.tenant);
    expect(nodesOf(next)[0].id).not.toBe(nodesOf(first)[0].id);
  });
});
