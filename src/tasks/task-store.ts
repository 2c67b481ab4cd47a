import type { ParsedTaskId, TaskKey } from './keys.js';
import type { StatusChange, StatusChangeCondition } from './status-change.js';
import type { SubTaskRef } from './sub-tasks.js';
import type { TaskStatus } from './status.js';
import type { Task, TaskAttributes, TaskKind } from './task.js';

/** The storage port the domain needs; `src/aws/dynamo-task-store.ts` implements it on DynamoDB. */
export interface TaskStore {
  /** Strongly consistent read. */
  get(key: TaskKey): Promise<Task | undefined>;
  /**
   * Strongly consistent read of a task without its input and with only the
   * attributes that steer its run: what each sub-task reads of its parent,
   * whose input holds every element (up to 10,000) of the fan-out.
   */
  getHead(key: TaskKey): Promise<TaskHead | undefined>;
  /** Writes a new task; CONFLICT when the key exists. */
  create(task: Task): Promise<void>;
  /**
   * Writes a status change in one conditional write, without reading first:
   * refused (StatusChangeRefused, carrying the task as it is) unless the task
   * exists, its status is one of `condition.from` and, when given, its version
   * is `condition.version`. Counter updates in between never refuse an
   * unpinned change. Returns the task as it was before the change
   * (`applyStatusChange` gives it after).
   */
  update(key: ParsedTaskId, change: StatusChange, condition: StatusChangeCondition): Promise<Task>;
  /** Writes sub-tasks in batches; an existing sub-task is overwritten only by an identical write. */
  putSubTasks(subTasks: readonly Task[]): Promise<void>;
  list(query: TaskListQuery): Promise<Page<Task>>;
  /**
   * A parent's sub-tasks: in input order when this service created the parent
   * or wrote its sub-tasks (`subTasksWritten`), otherwise (the original package wrote them, and
   * perhaps none of this service's index attributes) in key order, as the
   * original reads them.
   */
  listSubTasks(parent: Task, limit: number, after?: string): Promise<Page<Task>>;
  /**
   * Atomically adds to a Step Functions task's sub-task counters (and bumps its
   * version); returns the task after the change. Safe under any concurrency.
   * CONFLICT once the task is terminal: its counters are then final.
   */
  addSubTaskCounts(parent: TaskKey, delta: SubTaskCountDelta, updatedAt: string): Promise<Task>;
  /**
   * Sets a terminal Step Functions task's final counters (from a recount) and
   * its `attributes.subTasks`, and removes its pending-sweep mark.
   */
  finishSweep(parent: TaskKey, counts: SubTaskCounts, subTasks: readonly SubTaskRef[], updatedAt: string): Promise<Task>;
  /**
   * Every task in one of these statuses, or with a pending sweep, across
   * tenants: crash recovery of the embedded default.
   */
  scanUnfinished(statuses: readonly TaskStatus[]): AsyncIterable<Task>;
  /**
   * Claims an idempotency key for a tenant. Returns undefined when this call
   * claimed it, or the live record a previous call left.
   */
  claimIdempotencyKey(record: IdempotencyRecord): Promise<IdempotencyRecord | undefined>;
}

/** The attributes a TaskHead carries: the failure policy and the sub-task counters. */
export const HEAD_ATTRIBUTES = [
  'failurePolicy',
  'subTaskCount',
  'subTaskRunningCount',
  'subTaskSucceedCount',
  'subTaskFailedCount',
] as const satisfies readonly (keyof TaskAttributes)[];

export type TaskHead = Omit<Task, 'input' | 'attributes'> & { attributes: Partial<Pick<TaskAttributes, (typeof HEAD_ATTRIBUTES)[number]>> };

export type SortOrder = 'ASC' | 'DESC';

export interface SubTaskCountDelta {
  running?: number;
  succeeded?: number;
  failed?: number;
}

export interface SubTaskCounts {
  running: number;
  succeeded: number;
  failed: number;
}

export interface TaskListQuery {
  kind: TaskKind;
  tenantCode: string;
  taskType?: string;
  status?: TaskStatus;
  /** ISO timestamp; lists by last change when given. */
  updatedSince?: string;
  /**
   * Only tasks whose `code` sorts below this. A ULID's time part (its first 10
   * characters) selects the tasks created before that instant. Not with `updatedSince`.
   */
  codeBefore?: string;
  /** Nodes carry only their keys, `code`, `type`, `status` and `version`: a listing of what to act on, not to show. */
  keysOnly?: boolean;
  order: SortOrder;
  limit: number;
  after?: string;
}

export interface Page<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export interface IdempotencyRecord {
  tenantCode: string;
  key: string;
  /** The task this key created (or is creating). */
  taskKey: TaskKey;
  /** Hash of the request, so a reused key with another request is refused. */
  fingerprint: string;
  /** Epoch seconds. */
  expiresAt: number;
}
