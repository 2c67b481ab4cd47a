import type { TaskKind } from '../tasks/task.js';
import type { TaskStatus } from '../tasks/status.js';

/** A task as `watchTasks` receives it with the default selection: every `Task` field but `input`. */
export interface WatchedTask {
  /** `<pk>#<sk>` */
  id: string;
  pk: string;
  sk: string;
  /** ULID: sorts by creation time */
  code: string;
  kind: TaskKind;
  type: string;
  name: string;
  tenantCode: string;
  status: TaskStatus;
  /** `result`, `error`, `progress`, sub-task counts and free metadata */
  attributes: Record<string, unknown>;
  /** Incremented by every write */
  version: number;
  /** How many times a worker has started this task; null until the first start */
  attempt: number | null;
  /** Set on sub-tasks */
  parentId: string | null;
  /** Set on sub-tasks */
  subTaskIndex: number | null;
  /** Set on a task created by rerunTask: the id of the task it re-runs */
  rerunOf: string | null;
  /** ISO 8601 */
  createdAt: string;
  /** ISO 8601 */
  updatedAt: string;
  createdBy: string | null;
  updatedBy: string | null;
}

/** One `taskStatusChanged` event with the default selection. */
export interface TaskStatusEvent {
  /** `task-status` or `sub-task-status` */
  action: string;
  /** Pass as `since` to resume after this event; `watchTasks` does it for you. */
  cursor: string;
  /** The status the task left; null for a task just created and for replayed states */
  previousStatus: TaskStatus | null;
  /** True for current states read from the table (snapshot or resume), false for live changes */
  replayed: boolean;
  task: WatchedTask;
}

// `input` is left out: it may be 350 KB, and an event is sent for every change.
const TASK_SELECTION =
  'id pk sk code kind type name tenantCode status attributes version attempt parentId subTaskIndex rerunOf createdAt updatedAt createdBy updatedBy';

/** The fields of `taskStatusChanged` that `TaskStatusEvent` describes. */
export const TASK_STATUS_EVENT_SELECTION = `action cursor previousStatus replayed task { ${TASK_SELECTION} }`;

/**
 * The subscription `watchTasks` sends. `cursor` and `task { id version }` are
 * always asked for, whatever the selection: resuming and dropping repeats need them.
 */
export function watchTasksDocument(selection: string = TASK_STATUS_EVENT_SELECTION): string {
  return `subscription WatchTasks($filter: TaskEventFilter, $since: String) {
  taskStatusChanged(filter: $filter, since: $since) { cursor task { id version } ${selection} }
}`;
}
