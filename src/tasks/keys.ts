import { badInput } from '../errors.js';
import { CODE_PATTERN, CODE_RULE } from './limits.js';
import type { TaskKind } from './task.js';
import { TASK_KINDS } from './task.js';

/**
 * Key design shared with @mbc-cqrs-serverless/task:
 *   pk = `<KIND>#<tenantCode>`, sk = `<taskType>#<ULID>`, sub-task sk = `<parentSk>#<index>`,
 *   id = `<pk>#<sk>`.
 * Tenant codes, task types and codes never contain `#` (CODE_PATTERN), so an
 * id splits unambiguously and every key stays inside DynamoDB's key size limits.
 */
export const SEPARATOR = '#';

export const taskPk = (kind: TaskKind, tenantCode: string) => `${kind}${SEPARATOR}${tenantCode}`;
export const taskSk = (taskType: string, code: string) => `${taskType}${SEPARATOR}${code}`;
export const subTaskSk = (parentSk: string, index: number) => `${parentSk}${SEPARATOR}${index}`;
export const taskId = (pk: string, sk: string) => `${pk}${SEPARATOR}${sk}`;

export interface TaskKey {
  pk: string;
  sk: string;
}

export interface ParsedTaskId extends TaskKey {
  kind: TaskKind;
  tenantCode: string;
  type: string;
  code: string;
  /** Present when the id names a sub-task. */
  parentId?: string;
  subTaskIndex?: number;
}

const isPart = (part: string | undefined): part is string => part !== undefined && CODE_PATTERN.test(part);

/** Splits an id into its parts, or returns undefined when it is not one of ours. */
export function parseTaskId(id: string): ParsedTaskId | undefined {
  const parts = id.split(SEPARATOR);
  const [kind, tenantCode, type, code, index] = parts;
  if (parts.length < 4 || parts.length > 5) return undefined;
  if (!(TASK_KINDS as readonly string[]).includes(kind!)) return undefined;
  if (!isPart(tenantCode) || !isPart(type) || !isPart(code)) return undefined;
  if (index !== undefined && !/^(0|[1-9]\d{0,8})$/.test(index)) return undefined;
  const pk = taskPk(kind as TaskKind, tenantCode);
  const parentSk = taskSk(type, code);
  if (index === undefined) {
    return { pk, sk: parentSk, kind: kind as TaskKind, tenantCode, type, code };
  }
  return {
    pk,
    sk: subTaskSk(parentSk, Number(index)),
    kind: kind as TaskKind,
    tenantCode,
    type,
    code,
    parentId: taskId(pk, parentSk),
    subTaskIndex: Number(index),
  };
}

/** parseTaskId for ids a client sends: a malformed one is BAD_USER_INPUT naming the argument. */
export function requireTaskId(id: string, field = 'id'): ParsedTaskId {
  const parsed = parseTaskId(id);
  if (parsed) return parsed;
  const shown = id.length > 80 ? `${JSON.stringify(id.slice(0, 80))}…` : JSON.stringify(id);
  throw badInput(`${shown} is not a task id: <TASK|SFN_TASK>#<tenantCode>#<taskType>#<code>[#<index>], each part ${CODE_RULE}`, {
    field,
  });
}

export const kindOfPk = (pk: string): TaskKind | undefined => {
  const kind = pk.split(SEPARATOR)[0];
  return (TASK_KINDS as readonly string[]).includes(kind!) ? (kind as TaskKind) : undefined;
};
