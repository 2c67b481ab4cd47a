import type { TaskStatus } from '../tasks/status.js';
import type { Task, TaskAttributes, TaskKind } from '../tasks/task.js';
import type { TaskChange } from '../tasks/publisher.js';

/**
 * The message published for every stored change, in the original package's
 * shape (`action`, `id`, `table`, `pk`, `sk`, `tenantCode`, `content`) extended
 * with what subscribers need to order and filter events without a read.
 */
export interface TaskNotification {
  action: 'task-status' | 'sub-task-status';
  id: string;
  table: string;
  pk: string;
  sk: string;
  tenantCode: string;
  content: { status: TaskStatus; attributes?: TaskAttributes };
  version: number;
  updatedAt: string;
  kind: TaskKind;
  type: string;
  parentId?: string;
  previousStatus?: TaskStatus;
  /** Enough of the task to render it without a read; `input` never travels (it can be 350 KB). */
  name: string;
  code: string;
  createdAt: string;
  createdBy?: string;
  updatedBy?: string;
  subTaskIndex?: number;
  attempt?: number;
  rerunOf?: string;
  /** Set when attributes were left out to fit SNS's 256 KB limit: receivers read the task instead. */
  attributesOmitted?: boolean;
}

/** The original's alarm for a task that failed. */
export interface AlarmNotification {
  action: 'sfn-alarm';
  id: string;
  table: string;
  pk: string;
  sk: string;
  tenantCode: string;
  content: { errorMessage: string; status: TaskStatus; type: string };
}

/** SNS allows 256 KB per message; keep room for message attributes and the envelope. */
export const MAX_NOTIFICATION_BYTES = 240_000;

export function notificationOf(change: TaskChange, table: string): TaskNotification {
  const { task, previous } = change;
  const notification: TaskNotification = {
    action: task.parentId ? 'sub-task-status' : 'task-status',
    id: task.id,
    table,
    pk: task.pk,
    sk: task.sk,
    tenantCode: task.tenantCode,
    content: { status: task.status, attributes: task.attributes },
    version: task.version,
    updatedAt: task.updatedAt,
    kind: task.kind,
    type: task.type,
    parentId: task.parentId,
    previousStatus: previous?.status,
    name: task.name,
    code: task.code,
    createdAt: task.createdAt,
    createdBy: task.createdBy,
    updatedBy: task.updatedBy,
    subTaskIndex: task.subTaskIndex,
    attempt: task.attempt,
    rerunOf: task.rerunOf,
  };
  if (Buffer.byteLength(JSON.stringify(notification)) > MAX_NOTIFICATION_BYTES) {
    return { ...notification, content: { status: task.status }, attributesOmitted: true };
  }
  return notification;
}

/** The alarm a change raises: when it moves a task into FAILED (not a FAILED task changed again). */
export function failureAlarmOf(change: TaskChange, table: string): AlarmNotification | undefined {
  return change.task.status === 'FAILED' && change.previous?.status !== 'FAILED' ? alarmOf(change.task, table) : undefined;
}

export function alarmOf(task: Task, table: string): AlarmNotification {
  const error = task.attributes.error;
  const errorMessage =
    typeof error === 'string'
      ? error
      : typeof (error as { message?: unknown } | undefined)?.message === 'string'
        ? (error as { message: string }).message
        : JSON.stringify(error ?? 'Task failed');
  return {
    action: 'sfn-alarm',
    id: task.id,
    table,
    pk: task.pk,
    sk: task.sk,
    tenantCode: task.tenantCode,
    content: { errorMessage, status: task.status, type: task.type },
  };
}

/** The task a notification describes; `input` is absent (undefined) and read on demand. */
export function taskOf(notification: TaskNotification): Task {
  return {
    id: notification.id,
    pk: notification.pk,
    sk: notification.sk,
    code: notification.code,
    kind: notification.kind,
    type: notification.type,
    name: notification.name,
    tenantCode: notification.tenantCode,
    status: notification.content.status,
    input: undefined,
    attributes: notification.content.attributes ?? {},
    version: notification.version,
    parentId: notification.parentId,
    subTaskIndex: notification.subTaskIndex,
    attempt: notification.attempt,
    rerunOf: typeof notification.rerunOf === 'string' ? notification.rerunOf : undefined,
    createdAt: notification.createdAt,
    updatedAt: notification.updatedAt,
    createdBy: notification.createdBy,
    updatedBy: notification.updatedBy,
  };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/** Checks the shape of a notification received from outside (SNS) before it reaches anyone. */
export function isTaskNotification(value: unknown): value is TaskNotification {
  if (!isObject(value) || !isObject(value.content)) return false;
  return (
    (value.action === 'task-status' || value.action === 'sub-task-status') &&
    typeof value.id === 'string' &&
    typeof value.pk === 'string' &&
    typeof value.sk === 'string' &&
    typeof value.tenantCode === 'string' &&
    typeof value.content.status === 'string' &&
    typeof value.version === 'number' &&
    typeof value.updatedAt === 'string' &&
    typeof value.type === 'string' &&
    (value.kind === 'TASK' || value.kind === 'SFN_TASK')
  );
}
