import { encodeTime, TIME_MAX } from 'ulid';
import { badInput, TaskError } from '../errors.js';
import {
  BULK_CANCEL_CONCURRENCY,
  DEFAULT_BULK_CANCEL,
  MAX_BULK_CANCEL,
  type CancelTasksFilter,
  type CancelTasksResult,
} from '../tasks/cancellation.js';
import { checkTaskType } from '../tasks/limits.js';
import { isTerminal, TASK_STATUSES, type TaskStatus } from '../tasks/status.js';
import type { Actor, Task } from '../tasks/task.js';
import type { TaskStore } from '../tasks/task-store.js';
import { resolveTenant } from '../tasks/tenancy.js';
import { assertFullAccess } from '../tasks/viewer-scope.js';

const UNFINISHED: readonly TaskStatus[] = TASK_STATUSES.filter((status) => !isTerminal(status));

export interface BulkCancelDependencies {
  store: TaskStore;
  /** cancelTask's own path (TaskDispatcher.cancel). */
  cancel(actor: Actor, id: string): Promise<Task>;
}

/**
 * cancelTasks: cancels, newest first, at most `first` top-level unfinished
 * tasks of one tenant that match the filter, each through cancelTask's path.
 * The work is bounded: one keys-only listing of `first + 1` entries per
 * unfinished status (six, or one with `status`), then `first` cancels,
 * BULK_CANCEL_CONCURRENCY at a time. Cancelled tasks leave those listings, so
 * calling again while `remaining` moves on.
 */
export async function cancelTasks(
  deps: BulkCancelDependencies,
  actor: Actor,
  filter: CancelTasksFilter,
  first?: number | null,
): Promise<CancelTasksResult> {
  assertFullAccess(actor, 'cancel tasks');
  const tenantCode = resolveTenant(actor, filter.tenantCode);
  const limit = first ?? DEFAULT_BULK_CANCEL;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_BULK_CANCEL) {
    throw badInput(`first must be 1-${MAX_BULK_CANCEL}; it defaults to ${DEFAULT_BULK_CANCEL}`, { field: 'first' });
  }
  if (filter.taskType) checkTaskType(filter.taskType);
  if (filter.status && isTerminal(filter.status)) {
    throw badInput(`status ${filter.status} is terminal: nothing in it can be cancelled`, { field: 'status' });
  }
  const codeBefore = codeBound(filter.createdBefore);
  if (codeBefore === '') return { cancelled: 0, skipped: 0, remaining: false, cancelledIds: [] };

  const statuses = filter.status ? [filter.status] : UNFINISHED;
  const pages = await Promise.all(
    statuses.map((status) =>
      deps.store.list({
        kind: filter.kind ?? 'TASK',
        tenantCode,
        taskType: filter.taskType ?? undefined,
        status,
        codeBefore,
        order: 'DESC',
        limit,
        keysOnly: true,
      }),
    ),
  );
  // A task that changed status between two of the listings may be in both.
  const matches = [...new Map(pages.flatMap((page) => page.edges.map(({ node }) => [node.id, node] as const))).values()];
  matches.sort((a, b) => (a.code < b.code ? 1 : a.code > b.code ? -1 : 0));
  const chosen = matches.slice(0, limit);
  let remaining = matches.length > limit || pages.some((page) => page.pageInfo.hasNextPage);

  const cancelledIds: string[] = [];
  let skipped = 0;
  await forEachLimited(chosen, BULK_CANCEL_CONCURRENCY, async (task) => {
    try {
      await deps.cancel(actor, task.id);
      cancelledIds.push(task.id);
    } catch (error) {
      if (!(error instanceof TaskError && ENDED_MEANWHILE.has(error.code))) throw error;
      skipped++;
      // Lost every race to a busy writer without ending: it still matches.
      const now = await deps.store.get(task);
      if (now && !isTerminal(now.status)) remaining = true;
    }
  });
  // In the listings' order (newest first), whatever order the cancels finished in.
  const order = new Map(chosen.map((task, index) => [task.id, index]));
  cancelledIds.sort((a, b) => order.get(a)! - order.get(b)!);
  return { cancelled: cancelledIds.length, skipped, remaining, cancelledIds };
}

/** What cancelTask answers for a task that ended, or went away, after it was listed. */
const ENDED_MEANWHILE = new Set(['INVALID_TRANSITION', 'CONFLICT', 'NOT_FOUND']);

/**
 * The ULID time prefix below which codes were created before `date`;
 * undefined for no bound, '' when nothing can have been created before it.
 */
function codeBound(date: Date | null | undefined): string | undefined {
  if (!date) return undefined;
  const time = date.getTime();
  if (Number.isNaN(time)) throw badInput('createdBefore is not a date', { field: 'createdBefore' });
  if (time <= 0) return '';
  return time > TIME_MAX ? undefined : encodeTime(time, 10);
}

/**
 * Runs `work` over `items`, at most `limit` at once. On an unexpected error no
 * new work starts; what is in flight finishes, then the first error is thrown.
 */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure) throw failure.error;
}
