import { describe, expect, test } from 'vitest';
import { MAX_ITEM_BYTES } from '../src/tasks/limits.js';
import { listedSubTasks, MAX_LISTED_SUB_TASKS, subTasksOf } from '../src/tasks/sub-tasks.js';
import type { Task } from '../src/tasks/task.js';

const parentWith = (input: unknown[]): Task => ({
  id: 'SFN_TASK#t#IMPORT#01J0000000000000000000000',
  pk: 'SFN_TASK#t',
  sk: 'IMPORT#01J0000000000000000000000',
  code: '01J0000000000000000000000',
  kind: 'SFN_TASK',
  type: 'IMPORT',
  name: 'IMPORT',
  tenantCode: 't',
  status: 'PROCESSING',
  input,
  attributes: { subTaskCount: input.length },
  version: 2,
  createdAt: '2026-11-30T00:00:00.000Z',
  updatedAt: '2026-11-30T00:00:00.000Z',
});

describe("a parent's attributes.subTasks", () => {
  test('lists every sub-task as { pk, sk, status } in input order when few', () => {
    const parent = parentWith([1, 2, 3]);
    expect(listedSubTasks(parent, subTasksOf(parent))).toEqual(
      [0, 1, 2].map((i) => ({ pk: parent.pk, sk: `${parent.sk}#${i}`, status: 'CREATED' })),
    );
  });

  test(`stops at ${MAX_LISTED_SUB_TASKS} sub-tasks`, () => {
    const parent = parentWith(Array.from({ length: 5_000 }, (_, i) => i));
    const listed = listedSubTasks(parent, subTasksOf(parent));
    expect(listed).toHaveLength(MAX_LISTED_SUB_TASKS);
    expect(listed.at(-1)!.sk).toBe(`${parent.sk}#${MAX_LISTED_SUB_TASKS - 1}`);
  });

  test('keeps a parent with large attributes under the item size limit', () => {
    // A 342 KB input and 40 KB of metadata a backend reported: little room is left.
    const parent = parentWith(Array.from({ length: 2_000 }, () => 'x'.repeat(168)));
    parent.attributes.report = 'y'.repeat(40_000);
    const listed = listedSubTasks(parent, subTasksOf(parent));
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.length).toBeLessThan(MAX_LISTED_SUB_TASKS);
    const item = { ...parent, attributes: { ...parent.attributes, subTasks: listed } };
    expect(Buffer.byteLength(JSON.stringify(item))).toBeLessThanOrEqual(MAX_ITEM_BYTES);
  });
});
