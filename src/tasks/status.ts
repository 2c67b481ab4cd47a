import { TaskError } from '../errors.js';

export const TASK_STATUSES = ['CREATED', 'QUEUED', 'STARTED', 'PROCESSING', 'FINISHED', 'COMPLETED', 'ERRORED', 'FAILED'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * The one table of allowed status changes. It admits the flows the original
 * handlers perform (CREATED→QUEUED→PROCESSING→COMPLETED|FAILED, ERRORED→QUEUED
 * as a retry) and same-status updates where work is under way, which is how
 * progress is reported. Any non-terminal task may fail (cancellation, give-up).
 */
export const TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  CREATED: ['QUEUED', 'STARTED', 'PROCESSING', 'FAILED'],
  QUEUED: ['STARTED', 'PROCESSING', 'FAILED'],
  STARTED: ['STARTED', 'PROCESSING', 'FINISHED', 'COMPLETED', 'ERRORED', 'FAILED'],
  PROCESSING: ['PROCESSING', 'FINISHED', 'COMPLETED', 'ERRORED', 'FAILED'],
  FINISHED: ['COMPLETED', 'FAILED'],
  ERRORED: ['QUEUED', 'FAILED'],
  COMPLETED: [],
  FAILED: [],
};

export const isTerminal = (status: TaskStatus): boolean => TRANSITIONS[status].length === 0;

export const TERMINAL_STATUSES: readonly TaskStatus[] = TASK_STATUSES.filter(isTerminal);

export const canTransition = (from: TaskStatus, to: TaskStatus): boolean => TRANSITIONS[from].includes(to);

export function assertTransition(from: TaskStatus, to: TaskStatus): void {
  if (!canTransition(from, to)) {
    throw new TaskError('INVALID_TRANSITION', `A task cannot move from ${from} to ${to}`, { from, to });
  }
}
