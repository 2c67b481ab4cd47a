import type { Bookkeeping } from './bookkeeping.js';
import type { TaskStatus } from './status.js';
import type { ViewerScope } from './viewer-scope.js';

export const TASK_KINDS = ['TASK', 'SFN_TASK'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

/**
 * Free-form attributes. The names below are the documented ones (the original
 * package's and the worker's results); anything else a backend sends is kept
 * as metadata. The worker's bookkeeping is kept apart (`Bookkeeping`).
 */
export interface TaskAttributes {
  result?: unknown;
  error?: unknown;
  progress?: unknown;
  subTaskCount?: number;
  subTaskSucceedCount?: number;
  subTaskFailedCount?: number;
  subTaskRunningCount?: number;
  [key: string]: unknown;
}

/** A task as the domain sees it: the stored item minus index attributes. */
export interface Task extends Bookkeeping {
  id: string;
  pk: string;
  sk: string;
  code: string;
  kind: TaskKind;
  type: string;
  name: string;
  tenantCode: string;
  status: TaskStatus;
  input: unknown;
  attributes: TaskAttributes;
  version: number;
  /** Set on sub-tasks only: the id of the Step Functions task they belong to. */
  parentId?: string;
  /** Set on sub-tasks only: the position of their element in the parent's input. */
  subTaskIndex?: number;
  /** Set on a task rerunTask created: the id of the task it re-runs. */
  rerunOf?: string;
  requestId?: string;
  createdAt: string;
  updatedAt: string;
  createdBy?: string;
  updatedBy?: string;
  createdIp?: string;
  updatedIp?: string;
  /** Epoch seconds after which DynamoDB TTL may delete the item. */
  expiresAt?: number;
}

/** Who is acting, taken from a verified token and the request. */
export interface Actor {
  userId: string;
  tenantCode: string;
  isAdmin: boolean;
  ip?: string;
  requestId?: string;
  /** Set for a viewer token: the only tasks this actor may read and watch, and no writes (tasks/viewer-scope.ts). */
  scope?: ViewerScope;
}
