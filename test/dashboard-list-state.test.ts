/**
 * The dashboard's live-list rules (dashboard/list-state.ts): how a change
 * moves the rows of the page on screen. Pure, over plain task objects.
 */
import { describe, expect, test } from 'vitest';
import type { Task, TaskFilter } from '../dashboard/documents.js';
import { emptyList, loadingPage, pageLoaded, taskChanged, type ListState, type PageContext } from '../dashboard/list-state.js';

let clock = Date.parse('2026-11-30T10:00:00.000Z');
/** A task whose code (a ULID's sortable text) grows with every call, as creation order does. */
function task(overrides: Partial<Task> = {}): Task {
  clock += 1000;
  const code = `01M8${String(clock).padStart(22, '0')}`;
  return {
    id: `TASK#t#ECHO#${code}`,
    pk: 'TASK#t',
    sk: `ECHO#${code}`,
    code,
    kind: 'TASK',
    type: 'ECHO',
    name: 'ECHO',
    tenantCode: 't',
    status: 'QUEUED',
    attributes: {},
    version: 1,
    attempt: null,
    parentId: null,
    subTaskIndex: null,
    rerunOf: null,
    createdAt: new Date(clock).toISOString(),
    updatedAt: new Date(clock).toISOString(),
    createdBy: 'u',
    updatedBy: 'u',
    ...overrides,
  };
}

const filter: TaskFilter = { kind: 'TASK' };
const context = (overrides: Partial<PageContext> = {}): PageContext => ({
  filter,
  first: true,
  hasNextPage: true,
  maxRows: 100,
  ...overrides,
});
const ids = (state: ListState) => state.rows.map((row) => row.id);

describe('the live task list', () => {
  const older = task();
  const middle = task();
  const newest = task();
  const page = () => pageLoaded([newest, middle, older], [], context());

  test('a change replaces its row in place, and never with an older version', () => {
    const changed = taskChanged(page(), { ...middle, status: 'PROCESSING', version: 3 }, context());
    expect(ids(changed)).toEqual([newest.id, middle.id, older.id]);
    expect(changed.rows[1]).toMatchObject({ status: 'PROCESSING', version: 3 });
    const stale = taskChanged(changed, { ...middle, status: 'QUEUED', version: 2 }, context());
    expect(stale).toBe(changed);
  });

  test('a new task goes on top of the first page, and is only counted on a later one', () => {
    const created = task();
    expect(ids(taskChanged(page(), created, context()))[0]).toBe(created.id);
    const later = taskChanged(page(), created, context({ first: false }));
    expect(ids(later)).toEqual([newest.id, middle.id, older.id]);
    expect([...later.unseen]).toEqual([created.id]);
    // Its next change is the same task: still one.
    expect(taskChanged(later, { ...created, version: 2 }, context({ first: false })).unseen.size).toBe(1);
  });

  test('a task that newly matches the filter takes its place by creation; one below the page is left to the next', () => {
    const queued: TaskFilter = { kind: 'TASK', status: 'QUEUED' };
    const between = { ...task(), code: `${middle.code}5`, id: 'between' };
    const below = { ...task(), code: '0000', id: 'below' };
    const state = pageLoaded([newest, middle, older], [], context({ filter: queued }));
    expect(ids(taskChanged(state, between, context({ filter: queued })))).toEqual([newest.id, 'between', middle.id, older.id]);
    expect(taskChanged(state, below, context({ filter: queued }))).toBe(state);
    // The last page has nothing after it: the task belongs at its end.
    expect(ids(taskChanged(state, below, context({ filter: queued, hasNextPage: false })))).toEqual([
      newest.id,
      middle.id,
      older.id,
      'below',
    ]);
  });

  test('tasks the filter does not match, and sub-tasks, are ignored', () => {
    const state = page();
    expect(taskChanged(state, task({ type: 'OTHER' }), context({ filter: { kind: 'TASK', taskType: 'ECHO' } }))).toBe(state);
    expect(taskChanged(state, task({ status: 'FAILED' }), context({ filter: { kind: 'TASK', status: 'QUEUED' } }))).toBe(state);
    expect(taskChanged(state, task({ kind: 'SFN_TASK' }), context())).toBe(state);
    expect(taskChanged(state, task({ parentId: 'SFN_TASK#t#ECHO#X' }), context())).toBe(state);
    const since = new Date(clock + 60_000).toISOString();
    expect(taskChanged(state, task(), context({ filter: { kind: 'TASK', updatedSince: since } }))).toBe(state);
  });

  test('changes that arrive while a page is read are applied to it when it comes', () => {
    const created = task();
    let state = loadingPage(page());
    state = taskChanged(state, { ...older, status: 'COMPLETED', version: 5 }, context());
    state = taskChanged(state, created, context());
    expect(state.rows).toEqual(page().rows);
    const loaded = pageLoaded([newest, middle, older], state.held, context());
    expect(ids(loaded)).toEqual([created.id, newest.id, middle.id, older.id]);
    expect(loaded.rows[3]).toMatchObject({ status: 'COMPLETED', version: 5 });
    expect(loaded.held).toEqual([]);
  });

  test('a page grows by live insertions up to its bound, then counts', () => {
    let state = pageLoaded([newest], [], context({ maxRows: 2 }));
    const first = task();
    const second = task();
    state = taskChanged(state, first, context({ maxRows: 2 }));
    state = taskChanged(state, second, context({ maxRows: 2 }));
    expect(ids(state)).toEqual([first.id, newest.id]);
    expect([...state.unseen]).toEqual([second.id]);
  });

  test('by last change (updatedSince), a task not shown just changed: it goes on top', () => {
    const byChange = context({ filter: { kind: 'TASK', updatedSince: new Date(0).toISOString() } });
    const changed = { ...older, id: 'elsewhere', code: '0000' };
    expect(ids(taskChanged(pageLoaded([newest, middle], [], byChange), changed, byChange))[0]).toBe('elsewhere');
  });

  test('an empty first page takes the first task', () => {
    const created = task();
    expect(ids(taskChanged(pageLoaded([], [], context({ hasNextPage: false })), created, context({ hasNextPage: false })))).toEqual([
      created.id,
    ]);
    expect(emptyList.loading).toBe(true);
  });
});
