import { badInput } from '../errors.js';
import { isTerminal } from './status.js';
import type { Task } from './task.js';
import type { TaskStore } from './task-store.js';
import { FAILURE_POLICIES, type CreateTaskRequest, type FailurePolicy } from './task-service.js';

/** Sub-tasks read per query while collecting the failed ones (10,000 at most: ten queries). */
const SUB_TASK_PAGE = 1_000;

export interface RerunOptions {
  /** Step Functions tasks only: re-run just the input elements of the FAILED sub-tasks. */
  onlyFailed?: boolean | null;
}

/**
 * What rerunTask creates from a task: the same type, name, input and failure
 * policy, in the task's tenant (or, with `onlyFailed`, the elements of its
 * FAILED sub-tasks, in index order). Only a top-level task that has ended can
 * be re-run; the task itself is never changed.
 */
export async function rerunRequest(store: TaskStore, task: Task, options: RerunOptions = {}): Promise<CreateTaskRequest> {
  if (task.parentId) {
    throw badInput(`Task ${task.id} is a sub-task; re-run its parent ${task.parentId}`, { field: 'id' });
  }
  if (!isTerminal(task.status)) {
    throw badInput(`Task ${task.id} is ${task.status}; only a COMPLETED or FAILED task can be re-run (cancel it first)`, {
      field: 'id',
      status: task.status,
    });
  }
  const request: CreateTaskRequest = { taskType: task.type, name: task.name, input: task.input, tenantCode: task.tenantCode };
  if (task.kind === 'SFN_TASK') request.failurePolicy = failurePolicyOf(task);
  if (!options.onlyFailed) return request;

  if (task.kind !== 'SFN_TASK') {
    throw badInput('onlyFailed applies to Step Functions tasks only', { field: 'onlyFailed' });
  }
  const failed = await failedInputs(store, task);
  if (failed.length === 0) throw badInput(`Task ${task.id} has no FAILED sub-tasks to re-run`, { field: 'onlyFailed' });
  return { ...request, input: failed };
}

/** The stored policy; one a client wrote into attributes that is none of ours reads as the default, as the worker reads it. */
const failurePolicyOf = (task: Task): FailurePolicy =>
  (FAILURE_POLICIES as readonly unknown[]).includes(task.attributes.failurePolicy)
    ? (task.attributes.failurePolicy as FailurePolicy)
    : 'CONTINUE';

async function failedInputs(store: TaskStore, parent: Task): Promise<unknown[]> {
  const failed: { index: number; input: unknown }[] = [];
  let after: string | undefined;
  do {
    const page = await store.listSubTasks(parent, SUB_TASK_PAGE, after);
    for (const { node } of page.edges) {
      if (node.status === 'FAILED') failed.push({ index: node.subTaskIndex ?? 0, input: node.input });
    }
    after = page.pageInfo.hasNextPage ? (page.pageInfo.endCursor ?? undefined) : undefined;
  } while (after);
  // The original package's sub-tasks are listed in key order, where `#10` sorts before `#2`.
  return failed.sort((a, b) => a.index - b.index).map(({ input }) => input);
}
