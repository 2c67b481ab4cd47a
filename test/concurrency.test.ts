import { beforeAll, describe, expect, test } from 'vitest';
import { TaskService } from '../src/tasks/task-service.js';
import { createLogger } from '../src/logger.js';
import { silentPublisher } from '../src/tasks/publisher.js';
import { CREATE_TASK, GET_TASK, LIST_TASKS, UPDATE_STATUS, errorCode, startTestApp, type TestApp } from './helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});

async function createTask(token?: string, taskType = 'RACE') {
  const res = await app.gql(CREATE_TASK, { input: { taskType, input: {} } }, token);
  return res.data!.createTask;
}

describe('optimistic concurrency', () => {
  test('two updates pinned to the same version: exactly one wins, the other gets CONFLICT', async () => {
    const task = await createTask();
    const [a, b] = await Promise.all([
      app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'QUEUED', attributes: { by: 'a' }, expectedVersion: 1 } }),
      app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'PROCESSING', attributes: { by: 'b' }, expectedVersion: 1 } }),
    ]);
    const outcomes = [a, b].map((res) => (res.errors ? errorCode(res) : 'ok')).sort();
    expect(outcomes).toEqual(['CONFLICT', 'ok']);
    const winner = (a.errors ? b : a).data!.updateStatus;
    const stored = await app.store.get(task);
    expect(stored).toMatchObject({ version: 2, status: winner.status, attributes: { by: winner.attributes.by } });
  });

  test('a stale expectedVersion is refused with CONFLICT and writes nothing', async () => {
    const task = await createTask();
    await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'QUEUED' } });
    const res = await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'PROCESSING', expectedVersion: 1 } });
    expect(errorCode(res)).toBe('CONFLICT');
    expect(res.errors![0]!.extensions).toMatchObject({ expectedVersion: 1, currentVersion: 2 });
    expect(await app.store.get(task)).toMatchObject({ status: 'QUEUED', version: 2 });
  });

  test('unpinned racing terminal updates: one wins, the loser is told, nothing is lost', async () => {
    const task = await createTask();
    await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'PROCESSING' } });
    const results = await Promise.all(
      (['COMPLETED', 'FAILED', 'COMPLETED', 'FAILED'] as const).map((status, i) =>
        app.gql(UPDATE_STATUS, { input: { id: task.id, status, attributes: { writer: i } } }),
      ),
    );
    const winners = results.filter((res) => !res.errors);
    expect(winners).toHaveLength(1);
    for (const loser of results.filter((res) => res.errors)) {
      expect(['CONFLICT', 'INVALID_TRANSITION']).toContain(errorCode(loser));
    }
    const stored = await app.store.get(task);
    expect(stored).toMatchObject({ version: 3, status: winners[0]!.data!.updateStatus.status });
    expect(stored!.attributes.writer).toBe(winners[0]!.data!.updateStatus.attributes.writer);
  });

  test('unpinned racing progress reports are retried on the new version: every success is kept', async () => {
    const task = await createTask();
    await app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'PROCESSING' } });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        app.gql(UPDATE_STATUS, { input: { id: task.id, status: 'PROCESSING', attributes: { [`step${i}`]: i } } }),
      ),
    );
    const succeeded = results.flatMap((res, i) => (res.errors ? [] : [i]));
    for (const res of results.filter((r) => r.errors)) expect(errorCode(res)).toBe('CONFLICT');
    expect(succeeded.length).toBeGreaterThan(0);
    const stored = await app.store.get(task);
    expect(stored!.version).toBe(2 + succeeded.length);
    for (const i of succeeded) expect(stored!.attributes[`step${i}`]).toBe(i);
    const versions = results.filter((r) => !r.errors).map((r) => r.data!.updateStatus.version);
    expect(new Set(versions).size).toBe(versions.length);
  });
});

describe('idempotencyKey', () => {
  const input = (key: string, extra: Record<string, unknown> = {}) => ({
    input: { taskType: 'IDEM', input: { n: 1 }, idempotencyKey: key, ...extra },
  });

  test('a repeated create returns the original task and creates nothing new', async () => {
    const token = await app.token('idem-seq');
    const first = (await app.gql(CREATE_TASK, input('key-1'), token)).data!.createTask;
    const second = (await app.gql(CREATE_TASK, input('key-1'), token)).data!.createTask;
    expect(second).toEqual(first);
    const listed = (await app.gql(LIST_TASKS, {}, token)).data!.tasks.edges;
    expect(listed.map((edge: any) => edge.node.id)).toEqual([first.id]);
  });

  test('racing creates with one key make exactly one task', async () => {
    const token = await app.token('idem-race');
    const results = await Promise.all(Array.from({ length: 10 }, () => app.gql(CREATE_TASK, input('race-key'), token)));
    for (const res of results) expect(res.errors).toBeUndefined();
    const ids = new Set(results.map((res) => res.data!.createTask.id));
    expect(ids.size).toBe(1);
    const listed = (await app.gql(LIST_TASKS, {}, token)).data!.tasks.edges;
    expect(listed).toHaveLength(1);
    expect(listed[0].node.id).toBe([...ids][0]);
  });

  test('the same key with a different request is a CONFLICT and writes nothing', async () => {
    const token = await app.token('idem-diff');
    await app.gql(CREATE_TASK, input('key-2'), token);
    const res = await app.gql(CREATE_TASK, { input: { taskType: 'IDEM', input: { n: 2 }, idempotencyKey: 'key-2' } }, token);
    expect(errorCode(res)).toBe('CONFLICT');
    expect((await app.gql(LIST_TASKS, {}, token)).data!.tasks.edges).toHaveLength(1);
  });

  test('keys are per tenant', async () => {
    const [x, y] = await Promise.all([app.token('idem-x'), app.token('idem-y')]);
    const a = (await app.gql(CREATE_TASK, input('shared'), x)).data!.createTask;
    const b = (await app.gql(CREATE_TASK, input('shared'), y)).data!.createTask;
    expect(a.id).not.toBe(b.id);
    expect(b.tenantCode).toBe('idem-y');
  });

  test('a key older than 24 hours creates a new task', async () => {
    const actor = { userId: 'u', tenantCode: 'idem-old', isAdmin: false };
    const service = (offsetHours: number) =>
      new TaskService({
        store: app.store,
        publisher: silentPublisher,
        logger: createLogger('silent'),
        now: () => new Date(Date.now() + offsetHours * 3_600_000),
      });
    const request = { taskType: 'IDEM', input: {}, idempotencyKey: 'aging' };
    const first = await service(-25).createTask(actor, request);
    const second = await service(0).createTask(actor, request);
    expect(second.id).not.toBe(first.id);
    const third = await service(0).createTask(actor, request);
    expect(third.id).toBe(second.id);
  });

  test('a malformed key is BAD_USER_INPUT', async () => {
    const res = await app.gql(CREATE_TASK, input('has space'));
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
  });

  test('task reads back what createTask returned', async () => {
    const created = await createTask();
    expect((await app.gql(GET_TASK, { id: created.id })).data!.task).toEqual(created);
  });
});
