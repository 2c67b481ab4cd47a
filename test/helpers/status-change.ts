import { requireTaskId } from '../../src/tasks/keys.js';
import { applyStatusChange, type StatusChange, type StatusChangeCondition } from '../../src/tasks/status-change.js';
import type { TaskStore } from '../../src/tasks/task-store.js';
import type { Task } from '../../src/tasks/task.js';

/**
 * A status change written straight to the store, as updateStatus writes it:
 * by default to the task's own status, conditional on that status. Returns
 * the task after the change.
 */
export async function writeStatusChange(
  store: TaskStore,
  task: Task,
  change: Partial<StatusChange> = {},
  condition: Partial<StatusChangeCondition> = {},
): Promise<Task> {
  const full: StatusChange = { status: task.status, updatedAt: new Date().toISOString(), attributes: {}, bookkeeping: {}, ...change };
  const previous = await store.update(requireTaskId(task.id), full, { from: [task.status], ...condition });
  return applyStatusChange(previous, full);
}
