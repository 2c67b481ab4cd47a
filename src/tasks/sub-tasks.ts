import { subTaskSk, taskId } from './keys.js';
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
