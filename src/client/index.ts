export { watchTasks, WatchTasksError, type TaskEventFilter, type TaskWatch, type WatchTasksOptions } from './watch-tasks.js';
export {
  TASK_STATUS_EVENT_SELECTION,
  watchTasksDocument,
  type TaskStatusEvent,
  type WatchedTask,
} from './task-status-event.js';
