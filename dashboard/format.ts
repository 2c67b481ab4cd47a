import type { Task } from './documents.js';

const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** Today's times as a clock time, older ones with their date. */
export function shortTime(iso: string, now = new Date()): string {
  const date = new Date(iso);
  return date.toDateString() === now.toDateString() ? time.format(date) : dateTime.format(date);
}

export const longTime = (iso: string) => dateTime.format(new Date(iso));

/** The code part of a task id (`<pk>#<type>#<ULID>`): enough to tell tasks apart in a row. */
export const shortId = (task: Pick<Task, 'code'>) => task.code.slice(-8);

export interface Progress {
  current: number;
  total: number;
}

/** `attributes.progress` when it is `{ current, total }` numbers a bar can show. */
export function progressOf(task: Pick<Task, 'attributes'>): Progress | undefined {
  const progress = task.attributes.progress as { current?: unknown; total?: unknown } | undefined;
  if (!progress || typeof progress !== 'object') return undefined;
  const { current, total } = progress;
  if (typeof current !== 'number' || typeof total !== 'number' || !(total > 0)) return undefined;
  return { current: Math.max(0, Math.min(current, total)), total };
}

/** The error a failed task carries, in one line. */
export function errorText(task: Pick<Task, 'attributes'>): string | undefined {
  const error = task.attributes.error as { message?: unknown; code?: unknown } | string | undefined;
  if (error === undefined || error === null) return undefined;
  if (typeof error === 'string') return error;
  if (typeof error.message === 'string') return error.message;
  if (typeof error.code === 'string') return error.code;
  return JSON.stringify(error);
}

export interface SubTaskCounts {
  total: number;
  succeeded: number;
  failed: number;
  running: number;
  pending: number;
}

/** A Step Functions task's counts from its attributes. */
export function subTaskCounts(task: Pick<Task, 'attributes'>): SubTaskCounts | undefined {
  const a = task.attributes;
  const number = (value: unknown) => (typeof value === 'number' && value > 0 ? value : 0);
  const total = number(a.subTaskCount);
  if (!total) return undefined;
  const succeeded = number(a.subTaskSucceedCount);
  const failed = number(a.subTaskFailedCount);
  const running = number(a.subTaskRunningCount);
  return { total, succeeded, failed, running, pending: Math.max(0, total - succeeded - failed - running) };
}

/** JSON for a <pre>, cut short: an input may be 350 KB. */
export function json(value: unknown, limit = 20_000): string {
  const text = JSON.stringify(value, null, 2) ?? 'null';
  return text.length > limit ? `${text.slice(0, limit)}\n… (${text.length - limit} more characters)` : text;
}
