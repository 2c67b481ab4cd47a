import { beforeAll, describe, expect, test } from 'vitest';
import { CREATE_SFN_TASK, CREATE_TASK, GET_TASK, UPDATE_STATUS, errorCode, startTestApp, type TestApp } from './helpers/app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});

describe('createTask', () => {
  test('stores a CREATED task with the original key design and returns it', async () => {
    const res = await app.gql(CREATE_TASK, { input: { taskType: 'REPORT', input: { month: '2026-10' } } });
    expect(res.errors).toBeUndefined();
    const task = res.data!.createTask;
    expect(task.code).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(task).toMatchObject({
      pk: 'TASK#tenant-a',
      sk: `REPORT#${task.code}`,
      id: `TASK#tenant-a#REPORT#${task.code}`,
      kind: 'TASK',
      type: 'REPORT',
      name: 'REPORT',
      tenantCode: 'tenant-a',
      status: 'CREATED',
      input: { month: '2026-10' },
      attributes: {},
      version: 1,
      parentId: null,
      createdBy: 'user-a',
      updatedBy: 'user-a',
    });
    expect(task.createdAt).toBe(task.updatedAt);

    const stored = await app.store.get({ pk: task.pk, sk: task.sk });
    expect(stored).toMatchObject({ status: 'CREATED', version: 1, createdIp: '127.0.0.1', input: { month: '2026-10' } });
  });

  test('keeps a given name and records the request id', async () => {
    const res = await app.gql(CREATE_TASK, { input: { taskType: 'REPORT', name: 'October report', input: [1, 2] } }, undefined, {
      'x-request-id': 'req-42',
    });
    const task = res.data!.createTask;
    expect(task.name).toBe('October report');
    expect((await app.store.get(task))?.requestId).toBe('req-42');
  });
});

describe('createStepFunctionTask', () => {
  test('stores a CREATED SFN_TASK', async () => {
    const res = await app.gql(CREATE_SFN_TASK, { input: { taskType: 'IMPORT', input: [{ row: 1 }, { row: 2 }] } });
    expect(res.errors).toBeUndefined();
    expect(res.data!.createStepFunctionTask).toMatchObject({
      pk: 'SFN_TASK#tenant-a',
      kind: 'SFN_TASK',
      status: 'CREATED',
      input: [{ row: 1 }, { row: 2 }],
    });
  });

  test.each([
    ['an object', { row: 1 }],
    ['an empty array', []],
    ['a string', 'rows'],
  ])('refuses %s as input with BAD_USER_INPUT', async (_, input) => {
    const res = await app.gql(CREATE_SFN_TASK, { input: { taskType: 'IMPORT', input } });
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
  });

  test('refuses more than 10,000 elements', async () => {
    const res = await app.gql(CREATE_SFN_TASK, {
      input: { taskType: 'IMPORT', input: Array.from({ length: 10_001 }, (_, i) => i) },
    });
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(res.errors![0]!.message).toContain('10000');
  });
});

describe('task', () => {
  test('reads a task by id, and null for an absent one', async () => {
    const created = (await app.gql(CREATE_TASK, { input: { taskType: 'REPORT', input: {} } })).data!.createTask;
    const found = await app.gql(GET_TASK, { id: created.id });
    expect(found.data!.task).toEqual(created);
    const absent = await app.gql(GET_TASK, { id: 'TASK#tenant-a#REPORT#01J0000000000000000000000' });
    expect(absent.errors).toBeUndefined();
    expect(absent.data!.task).toBeNull();
  });

  test('refuses a malformed id with BAD_USER_INPUT', async () => {
    const res = await app.gql(GET_TASK, { id: 'not-an-id' });
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
  });
});

describe('updateStatus', () => {
  test('moves a task, merges attributes, bumps the version', async () => {
    const created = (await app.gql(CREATE_TASK, { input: { taskType: 'REPORT', input: {} } })).data!.createTask;
    const queued = await app.gql(UPDATE_STATUS, { input: { id: created.id, status: 'QUEUED', attributes: { queue: 'q1' } } });
    expect(queued.data!.updateStatus).toMatchObject({ status: 'QUEUED', version: 2, attributes: { queue: 'q1' } });
    const processing = await app.gql(UPDATE_STATUS, {
      input: { id: created.id, status: 'PROCESSING', attributes: { progress: { current: 1, total: 10 } } },
    });
    expect(processing.data!.updateStatus).toMatchObject({
      status: 'PROCESSING',
      version: 3,
      attributes: { queue: 'q1', progress: { current: 1, total: 10 } },
    });
    const done = await app.gql(UPDATE_STATUS, {
      input: { id: created.id, status: 'COMPLETED', attributes: { result: { rows: 10 }, queue: null } },
    });
    const task = done.data!.updateStatus;
    expect(task).toMatchObject({
      status: 'COMPLETED',
      version: 4,
      attributes: { progress: { current: 1, total: 10 }, result: { rows: 10 } },
    });
    expect(task.attributes).not.toHaveProperty('queue');
    expect(Date.parse(task.updatedAt)).toBeGreaterThanOrEqual(Date.parse(task.createdAt));
    expect(await app.store.get(task)).toMatchObject({ status: 'COMPLETED', version: 4 });
  });

  test('answers NOT_FOUND for an absent task', async () => {
    const res = await app.gql(UPDATE_STATUS, { input: { id: 'TASK#tenant-a#REPORT#01J0000000000000000000000', status: 'QUEUED' } });
    expect(errorCode(res)).toBe('NOT_FOUND');
  });

  test('refuses attributes that are not an object', async () => {
    const created = (await app.gql(CREATE_TASK, { input: { taskType: 'REPORT', input: {} } })).data!.createTask;
    const res = await app.gql(UPDATE_STATUS, { input: { id: created.id, status: 'QUEUED', attributes: [1] } });
    expect(errorCode(res)).toBe('BAD_USER_INPUT');
    expect(await app.store.get(created)).toMatchObject({ status: 'CREATED', version: 1 });
  });
});
