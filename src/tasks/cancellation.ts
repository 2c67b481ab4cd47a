import type { TaskStatus } from './status.js';
import type { Actor, Task, TaskKind } from './task.js';

/**
 * The domain's port for cancelling: cancelTask and cancelTasks reach the
 * worker through it (src/worker/task-dispatcher.ts implements it), because
 * cancelling also stops a running handler and a running Step Functions execution.
 */
export interface TaskCancellation {
  /** Moves a task that is not terminal, and its unfinished sub-tasks, to FAILED as CANCELLED. */
  cancel(actor: Actor, id: string): Promise<Task>;
  /** Cancels a bounded batch of the unfinished top-level tasks a filter matches. */
  cancelMatching(actor: Actor, filter: CancelTasksFilter, first?: number | null): Promise<CancelTasksResult>;
}

/** Tasks one cancelTasks call cancels unless told otherwise. */
export const DEFAULT_BULK_CANCEL = 100;
/** The most one call cancels: the caller calls again while `remaining`. */
export const MAX_BULK_CANCEL = 500;
/** Cancels in flight at once: each is a few writes, a Step Functions task's a sweep of its sub-tasks. */
export const BULK_CANCEL_CONCURRENCY = 8;

export interface CancelTasksFilter {
  kind?: TaskKind | null;
  taskType?: string | null;
  /** One non-terminal status; every non-terminal status when absent. */
  status?: TaskStatus | null;
  createdBefore?: Date | null;
  tenantCode?: string | null;
}

export interface CancelTasksResult {
  cancelled: number;
  /** Matched, but ended (or were cancelled by someone else) before this call could cancel them. */
  skipped: number;
  /** Matching unfinished tasks are left: call again. */
  remaining: boolean;
  cancelledIds: string[];
}
