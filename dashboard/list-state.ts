import type { Task, TaskFilter } from './documents.js';

/**
 * The rows of the task list and how a live change moves them. Pure, so the
 * rules are tested apart from the page (test/dashboard-list-state.test.ts).
 *
 * Rows change in place, by version; a task the page does not show is put
 * where the listing would have it when that is on this page (a new task on
 * the first page goes on top), and only counted ("N new") when it belongs
 * above a later page. Rows are never dropped, so the next page's cursor still
 * follows the last row the server sent.
 */
export interface ListState {
  rows: Task[];
  /** A page is being read: changes wait in `held` until it arrives. */
  loading: boolean;
  held: Task[];
  /** Matching tasks that belong above this page, by id. */
  unseen: ReadonlySet<string>;
}

export interface PageContext {
  filter: TaskFilter;
  /** This is the first page: nothing is above it. */
  first: boolean;
  /** The listing goes on after this page. */
  hasNextPage: boolean;
  /** The most rows a page grows to by live insertions; more are counted instead. */
  maxRows: number;
}

export const emptyList: ListState = { rows: [], loading: true, held: [], unseen: new Set() };

/** A page is on its way: hold changes until it is here. */
export const loadingPage = (state: ListState): ListState => ({ ...state, loading: true, held: [] });

/** The page arrived: changes that came meanwhile are applied on top of it. */
export function pageLoaded(rows: Task[], held: Task[], context: PageContext): ListState {
  let state: ListState = { rows, loading: false, held: [], unseen: new Set() };
  for (const task of held) state = taskChanged(state, task, context);
  return state;
}

/** One task as it is now (a live change or a replayed state). */
export function taskChanged(state: ListState, task: Task, context: PageContext): ListState {
  if (state.loading) return { ...state, held: [...state.held, task] };
  const at = state.rows.findIndex((row) => row.id === task.id);
  if (at >= 0) {
    if (state.rows[at]!.version >= task.version) return state;
    const rows = state.rows.slice();
    rows[at] = task;
    return { ...state, rows };
  }
  if (task.parentId || !matches(task, context.filter)) return state;
  const place = placeOf(state.rows, task, context);
  if (place === 'below') return state;
  if (place === 'above' || state.rows.length >= context.maxRows) {
    if (state.unseen.has(task.id)) return state;
    return { ...state, unseen: new Set(state.unseen).add(task.id) };
  }
  const rows = state.rows.slice();
  rows.splice(place, 0, task);
  return { ...state, rows };
}

/** Whether a task belongs in the listing the filter asks for. */
export function matches(task: Task, filter: TaskFilter): boolean {
  if (task.kind !== filter.kind) return false;
  if (filter.taskType && task.type !== filter.taskType) return false;
  if (filter.status && task.status !== filter.status) return false;
  if (filter.updatedSince && Date.parse(task.updatedAt) < Date.parse(filter.updatedSince)) return false;
  if (filter.tenantCode && task.tenantCode !== filter.tenantCode) return false;
  return true;
}

/**
 * Where the listing (newest first: by creation, or by last change with
 * `updatedSince`) puts a task it does not show: an index on this page, above
 * it, or below it.
 */
function placeOf(rows: Task[], task: Task, context: PageContext): number | 'above' | 'below' {
  const key = (t: Task) => (context.filter.updatedSince ? t.updatedAt : t.code);
  // By last change, a task not on the page just changed: the newest of all.
  if (context.filter.updatedSince) return context.first ? 0 : 'above';
  const own = key(task);
  const index = rows.findIndex((row) => key(row) < own);
  if (index === 0 && !context.first) return 'above';
  if (index === -1) return context.hasNextPage ? 'below' : rows.length;
  return index;
}
