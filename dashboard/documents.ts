import type { WatchedTask } from '../src/client/task-status-event.js';

/** Operations the dashboard sends: only the public API, as any other client. */

export type Task = WatchedTask;
export type TaskStatus = Task['status'];
export type TaskKind = Task['kind'];
/** A task with its input, as the detail shows it. */
export type FullTask = Task & { input: unknown };

export const TASK_STATUSES: readonly TaskStatus[] = [
  'CREATED',
  'QUEUED',
  'STARTED',
  'PROCESSING',
  'FINISHED',
  'COMPLETED',
  'ERRORED',
  'FAILED',
];
export const TERMINAL_STATUSES: readonly TaskStatus[] = ['COMPLETED', 'FAILED'];
export const isTerminal = (status: TaskStatus) => TERMINAL_STATUSES.includes(status);

// The fields watchTasks receives by default, so a listed task and an event's task have one shape.
const TASK_FIELDS =
  'id pk sk code kind type name tenantCode status attributes version attempt parentId subTaskIndex rerunOf createdAt updatedAt createdBy updatedBy';

export interface Connection {
  edges: { node: Task }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export interface TaskFilter {
  kind: TaskKind;
  taskType?: string;
  status?: TaskStatus;
  /** ISO 8601 */
  updatedSince?: string;
  tenantCode?: string;
}

export const LIST_TASKS = `query DashboardTasks($filter: TaskFilter, $first: Int, $after: String) {
  tasks(filter: $filter, first: $first, after: $after) { edges { node { ${TASK_FIELDS} } } pageInfo { hasNextPage endCursor } }
}`;

export const GET_TASK = `query DashboardTask($id: ID!) { task(id: $id) { ${TASK_FIELDS} input } }`;

export const LIST_SUB_TASKS = `query DashboardSubTasks($parentId: ID!, $first: Int, $after: String) {
  subTasks(parentId: $parentId, first: $first, after: $after) { edges { node { ${TASK_FIELDS} } } pageInfo { hasNextPage endCursor } }
}`;

export const CANCEL_TASK = `mutation DashboardCancel($id: ID!) { cancelTask(id: $id) { ${TASK_FIELDS} } }`;

export const RERUN_TASK = `mutation DashboardRerun($id: ID!, $onlyFailed: Boolean) { rerunTask(id: $id, onlyFailed: $onlyFailed) { ${TASK_FIELDS} } }`;

export interface BulkCancelFilter {
  kind: TaskKind;
  taskType?: string;
  status?: TaskStatus;
  /** ISO 8601: tasks created after the confirmation are left alone. */
  createdBefore: string;
  tenantCode?: string;
}

export interface BulkCancelResult {
  cancelled: number;
  skipped: number;
  remaining: boolean;
  cancelledIds: string[];
}

export const CANCEL_TASKS = `mutation DashboardCancelTasks($filter: CancelTasksFilter!, $first: Int) {
  cancelTasks(filter: $filter, first: $first) { cancelled skipped remaining cancelledIds }
}`;
