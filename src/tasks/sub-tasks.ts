import { subTaskSk, taskId } from './keys.js';
import { MAX_ITEM_BYTES } from './limits.js';
import type { TaskStatus } from './status.js';
import type { Task } from './task.js';

/**
 * The sub-tasks of a Step Functions task, one per element of its input array,
 * keyed `<parentSk>#<index>` as the original package does.
 */
export function subTasksOf(parent: Task, now: Date = new Date()): Task[] {
  if (!Array.isArray(parent.input)) return [];
  const at = now.toISOString();
  return parent.input.map((input, index) => {
    const sk = subTaskSk(parent.sk, index);
    return {
      id: taskId(parent.pk, sk),
      pk: parent.pk,
      sk,
      code: parent.code,
      kind: parent.kind,
      type: parent.type,
      name: `${parent.name} #${index}`,
      tenantCode: parent.tenantCode,
      status: 'CREATED',
      input,
      attributes: {},
      version: 1,
      parentId: parent.id,
      subTaskIndex: index,
      // Copied from the parent, as the original package does.
      requestId: parent.requestId,
      createdIp: parent.createdIp,
      updatedIp: parent.updatedIp,
      createdAt: at,
      updatedAt: at,
      createdBy: parent.updatedBy,
      updatedBy: parent.updatedBy,
    };
  });
}

/**
 * A Step Functions task's progress, derived from its sub-task counts (which
 * change atomically, so a stored progress would race them).
 */
export function attributesWithProgress(task: Task): Task['attributes'] {
  const total = task.attributes.subTaskCount;
  if (task.kind !== 'SFN_TASK' || task.parentId || typeof total !== 'number') return task.attributes;
  const current = Number(task.attributes.subTaskSucceedCount ?? 0) + Number(task.attributes.subTaskFailedCount ?? 0);
  return { ...task.attributes, progress: { current, total } };
}

/** One entry of a parent's `attributes.subTasks`, as the original package writes it. */
export interface SubTaskRef {
  pk: string;
  sk: string;
  status: TaskStatus;
}

/**
 * The most sub-tasks a parent lists in `attributes.subTasks`; `subTasks(parentId)`
 * lists them all. Small on purpose: DynamoDB bills every write by the size of the
 * whole item, and each counter update rewrites the parent (1,000 entries, about
 * 110 KB, made a run of 1,000 sub-tasks three times slower in `npm run bench`).
 */
export const MAX_LISTED_SUB_TASKS = 100;

/**
 * A parent's `attributes.subTasks`: its first sub-tasks, at most
 * MAX_LISTED_SUB_TASKS of them and only as many as keep the parent item
 * under DynamoDB's 400 KB beside its input. A list shorter than
 * `subTaskCount` was cut at that cap.
 */
export function listedSubTasks(parent: Task, subTasks: readonly SubTaskRef[]): SubTaskRef[] {
  const { subTasks: _previous, ...attributes } = parent.attributes;
  const parentBytes = Buffer.byteLength(JSON.stringify({ ...parent, attributes }));
  const room = MAX_ITEM_BYTES - parentBytes - 2_000;
  const listed: SubTaskRef[] = [];
  let used = 2;
  for (const { pk, sk, status } of subTasks) {
    const ref = { pk, sk, status };
    used += Buffer.byteLength(JSON.stringify(ref)) + 1;
    if (listed.length >= MAX_LISTED_SUB_TASKS || used > room) break;
    listed.push(ref);
  }
  return listed;
}
