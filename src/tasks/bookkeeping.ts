import type { TaskAttributes } from './task.js';

/** A claim on a running task: which worker runs it, and until when unless renewed. */
export interface Lease {
  owner: string;
  until: number;
}

/**
 * The worker's bookkeeping of a task. It is stored beside `attributes`, as
 * top-level item attributes, so `attributes` holds only what writers put there
 * and the documented keys. Only `attempt` is shown to clients (`Task.attempt`).
 */
export interface Bookkeeping {
  /** How many times a worker has started the task. */
  attempt?: number;
  lease?: Lease;
  /** When a retried task is due again (ISO timestamp). */
  nextAttemptAt?: string;
  /** A Step Functions task's sub-tasks are stored: iterations may start. */
  subTasksWritten?: boolean;
  /**
   * Marks a Step Functions task ended (cancelled, or failed fast) whose
   * unfinished sub-tasks are still to be failed: written with the parent's
   * terminal status, removed by the write that sets its final counts. Its
   * value is the error each unfinished sub-task gets.
   */
  pendingSweep?: Record<string, unknown>;
}

/** A change to the bookkeeping: a null removes the key. */
export type BookkeepingChange = { [K in keyof Bookkeeping]?: Bookkeeping[K] | null };

export const BOOKKEEPING_KEYS = [
  'attempt',
  'lease',
  'nextAttemptAt',
  'subTasksWritten',
  'pendingSweep',
] as const satisfies readonly (keyof Bookkeeping)[];

const isBookkeepingKey = (key: string): key is keyof Bookkeeping => (BOOKKEEPING_KEYS as readonly string[]).includes(key);

/**
 * Splits stored attributes from stored bookkeeping. Items written before the
 * bookkeeping moved out of `attributes` keep it there: it is read from there
 * when the item has no top-level value, and never shown as an attribute.
 */
export function separateBookkeeping(
  attributes: TaskAttributes,
  topLevel: Record<string, unknown>,
): { attributes: TaskAttributes; bookkeeping: Bookkeeping } {
  const bookkeeping: Record<string, unknown> = {};
  for (const key of BOOKKEEPING_KEYS) {
    const value = topLevel[key] ?? attributes[key];
    if (value !== undefined && value !== null) bookkeeping[key] = value;
  }
  if (!Object.keys(attributes).some(isBookkeepingKey)) return { attributes, bookkeeping };
  const clean = Object.fromEntries(Object.entries(attributes).filter(([key]) => !isBookkeepingKey(key)));
  return { attributes: clean, bookkeeping };
}

/** The bookkeeping after a change. */
export function applyBookkeeping<T extends Bookkeeping>(task: T, change: BookkeepingChange): T {
  const next: Record<string, unknown> = { ...(task as Record<string, unknown>) };
  for (const [key, value] of Object.entries(change)) {
    if (value === null) delete next[key];
    else if (value !== undefined) next[key] = value;
  }
  return next as T;
}
