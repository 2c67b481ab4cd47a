import { beforeAll, describe, expect, test } from 'vitest';
import { TASK_STATUSES, TRANSITIONS, canTransition, isTerminal, type TaskStatus } from '../src/tasks/status.js';
import { CREATE_TASK, UPDATE_STATUS, errorCode, startTestApp, type TestApp } from './helpers/app.js';

describe('the transition table', () => {
  test('admits the flows the original handlers perform', () => {
    const flows: TaskStatus[][] = [
      ['CREATED', 'QUEUED', 'PROCESSING', 'COMPLETED'],
      ['CREATED', 'QUEUED', 'PROCESSING', 'FAILED'],
      ['CREATED', 'QUEUED', 'PROCESSING', 'ERRORED', 'QUEUED', 'PROCESSING', 'PROCESSING', 'COMPLETED'],
      ['CREATED', 'QUEUED', 'STARTED', 'PROCESSING', 'FINISHED', 'COMPLETED'],
    ];
    for (const flow of flows) {
      for (let i = 1; i < flow.length; i++) expect(canTransition(flow[i - 1]!, flow[i]!), flow.join('→')).toBe(true);
    }
  });

  test('COMPLETED and FAILED are the only terminal states', () => {
    expect(TASK_STATUSES.filter(isTerminal)).toEqual(['COMPLETED', 'FAILED']);
  });
});

/** Drives a new task into `status` along allowed transitions. */
const pathTo: Record<TaskStatus, TaskStatus[]> = {
  CREATED: [],
  QUEUED: ['QUEUED'],
  STARTED: ['STARTED'],
  PROCESSING: ['PROCESSING'],
  FINISHED: ['PROCESSING', 'FINISHED'],
  COMPLETED: ['PROCESSING', 'COMPLETED'],
  ERRORED: ['PROCESSING', 'ERRORED'],
  FAILED: ['FAILED'],
};

describe('updateStatus applies the table to every pair of states', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });

  const pairs = TASK_STATUSES.flatMap((from) => TASK_STATUSES.map((to) => [from, to] as const));

  test.each(pairs)('%s → %s', async (from, to) => {
    const created = (await app.gql(CREATE_TASK, { input: { taskType: 'RULES', input: {} } })).data!.createTask;
    for (const step of pathTo[from]) {
      const res = await app.gql(UPDATE_STATUS, { input: { id: created.id, status: step } });
      expect(res.errors, `setting up ${step}`).toBeUndefined();
    }
    const before = await app.store.get(created);
    expect(before!.status).toBe(from);

    const res = await app.gql(UPDATE_STATUS, { input: { id: created.id, status: to, attributes: { marker: 'x' } } });
    const after = await app.store.get(created);
    if (TRANSITIONS[from].includes(to)) {
      expect(res.errors).toBeUndefined();
      expect(res.data!.updateStatus).toMatchObject({ status: to, version: before!.version + 1 });
      expect(after).toMatchObject({ status: to, version: before!.version + 1, attributes: { marker: 'x' } });
    } else {
      expect(errorCode(res)).toBe('INVALID_TRANSITION');
      expect(res.errors![0]!.message).toContain(from);
      expect(res.errors![0]!.message).toContain(to);
      expect(res.errors![0]!.extensions).toMatchObject({ from, to });
      expect(after).toEqual(before);
    }
  });

  test('a terminal task gets expiresAt only when retention is configured', async () => {
    const created = (await app.gql(CREATE_TASK, { input: { taskType: 'RULES', input: {} } })).data!.createTask;
    await app.gql(UPDATE_STATUS, { input: { id: created.id, status: 'FAILED' } });
    expect((await app.store.get(created))!.expiresAt).toBeUndefined();
  });
});

describe('retention', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ TASK_RETENTION_DAYS: '7' });
  });

  test('terminal tasks get expiresAt = now + TASK_RETENTION_DAYS, others none', async () => {
    const created = (await app.gql(CREATE_TASK, { input: { taskType: 'KEEP', input: {} } })).data!.createTask;
    await app.gql(UPDATE_STATUS, { input: { id: created.id, status: 'PROCESSING' } });
    expect((await app.store.get(created))!.expiresAt).toBeUndefined();
    const done = (await app.gql(UPDATE_STATUS, { input: { id: created.id, status: 'COMPLETED' } })).data!.updateStatus;
    const stored = await app.store.get(created);
    const expected = Math.floor(Date.parse(done.updatedAt) / 1000) + 7 * 86_400;
    expect(stored!.expiresAt).toBe(expected);
  });
});
