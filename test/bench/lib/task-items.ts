import { monotonicFactory } from 'ulid';
import { taskId, taskPk, taskSk } from '../../../src/tasks/keys.js';
import type { TaskStatus } from '../../../src/tasks/status.js';
import type { Task } from '../../../src/tasks/task.js';

const nextCode = monotonicFactory();

/** A top-level task as createTask would write it (the service's own item shape via toItem). */
export function taskFor(tenantCode: string, taskType: string, input: unknown, status: TaskStatus = 'CREATED', at = new Date()): Task {
  const pk = taskPk('TASK', tenantCode);
  const code = nextCode(at.getTime());
  const sk = taskSk(taskType, code);
  const now = at.toISOString();
  return {
    id: taskId(pk, sk),
    pk,
    sk,
    code,
    kind: 'TASK',
    type: taskType,
    name: taskType,
    tenantCode,
    status,
    input,
    attributes: {},
    version: 1,
    requestId: `bench-${code}`,
    createdAt: now,
    updatedAt: now,
    createdBy: `user-of-${tenantCode}`,
    updatedBy: `user-of-${tenantCode}`,
    createdIp: '127.0.0.1',
    updatedIp: '127.0.0.1',
  };
}
