import { applyBookkeeping, type BookkeepingChange } from './bookkeeping.js';
import { canTransition, TASK_STATUSES, type TaskStatus } from './status.js';
import type { Task, TaskAttributes } from './task.js';

/**
 * One status change, complete without the stored task: what updateStatus
 * writes. The store applies it in one conditional write and returns the task
 * as it was; `applyStatusChange` then gives the task as written.
 */
export interface StatusChange {
  status: TaskStatus;
  updatedAt: string;
  updatedBy?: string;
  updatedIp?: string;
  requestId?: string;
  /** Set when the change ends the task and a retention applies; otherwise the stored value stays. */
  expiresAt?: number;
  /** Merged into the stored attributes key by key; a null removes the key. */
  attributes: TaskAttributes;
  bookkeeping: BookkeepingChange;
}

/** What the write requires of the stored task: a status it may change from, and a version when pinned. */
export interface StatusChangeCondition {
  from: readonly TaskStatus[];
  version?: number;
}

/** The statuses from which a task may move to `to` (TRANSITIONS read backwards). */
export const statusesBefore = (to: TaskStatus): TaskStatus[] => TASK_STATUSES.filter((from) => canTransition(from, to));

/** The task after `change`, from the task as it was: exactly what the store's write leaves. */
export function applyStatusChange(previous: Task, change: StatusChange): Task {
  return applyBookkeeping(
    {
      ...previous,
      status: change.status,
      attributes: mergeAttributes(previous.attributes, change.attributes),
      version: previous.version + 1,
      updatedAt: change.updatedAt,
      // An absent value is not written: the stored one stays.
      updatedBy: change.updatedBy ?? previous.updatedBy,
      updatedIp: change.updatedIp ?? previous.updatedIp,
      requestId: change.requestId ?? previous.requestId,
      expiresAt: change.expiresAt ?? previous.expiresAt,
    },
    change.bookkeeping,
  );
}

/** Shallow merge; a key set to null is removed (e.g. clearing `error` on retry). */
export function mergeAttributes(current: TaskAttributes, changes: TaskAttributes): TaskAttributes {
  const merged: TaskAttributes = { ...current };
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

/** A conditional write refused: the task as it is now (undefined when there is none), to tell the caller why. */
export class StatusChangeRefused extends Error {
  constructor(readonly current: Task | undefined) {
    super('the task no longer meets the condition of the write');
    this.name = 'StatusChangeRefused';
  }
}
