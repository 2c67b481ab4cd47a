import type { TaskStatus } from '../tasks/status.js';
import type { Task } from '../tasks/task.js';

/** What subscribers receive: a task's state after one change. */
export interface TaskEvent {
  action: 'task-status' | 'sub-task-status';
  task: Task;
  previousStatus?: TaskStatus;
  /** True when read from the table (snapshot or resume) rather than received live. */
  replayed: boolean;
}

/** An event as one subscriber receives it: with the cursor to resume after it. */
export interface TaskStatusEvent extends TaskEvent {
  cursor: string;
}
