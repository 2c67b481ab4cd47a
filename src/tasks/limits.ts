import { badInput, payloadTooLarge } from '../errors.js';

/** A DynamoDB item is at most 400 KB; this leaves room for keys and attributes. */
export const MAX_INPUT_BYTES = 350_000;
export const MAX_SUB_TASKS = 10_000;
export const MAX_NAME_LENGTH = 256;
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

const CODE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export function checkTaskType(taskType: string): void {
  if (!CODE_PATTERN.test(taskType)) {
    throw badInput('taskType must be 1-64 characters of A-Z, a-z, 0-9, "_", "." or "-"', {
      field: 'taskType',
    });
  }
}

export function checkTenantCode(tenantCode: string): void {
  if (!CODE_PATTERN.test(tenantCode)) {
    throw badInput('tenantCode must be 1-64 characters of A-Z, a-z, 0-9, "_", "." or "-"', {
      field: 'tenantCode',
    });
  }
}

export function checkName(name: string): void {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw badInput(`name must be 1-${MAX_NAME_LENGTH} characters`, { field: 'name' });
  }
}

/** Serialized size in bytes, the measure DynamoDB's item limit is close to. */
export const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');

export function checkPayloadSize(field: string, value: unknown, limit = MAX_INPUT_BYTES): void {
  const bytes = jsonBytes(value);
  if (bytes > limit) {
    throw payloadTooLarge(`${field} is ${bytes} bytes serialized; the limit is ${limit}`, {
      field,
      bytes,
      limit,
    });
  }
}

export function checkSubTaskInput(input: unknown): unknown[] {
  if (!Array.isArray(input) || input.length === 0) {
    throw badInput('A Step Functions task needs input to be a non-empty JSON array, one element per sub-task', {
      field: 'input',
    });
  }
  if (input.length > MAX_SUB_TASKS) {
    throw badInput(`A Step Functions task has at most ${MAX_SUB_TASKS} sub-tasks; input has ${input.length}`, {
      field: 'input',
      limit: MAX_SUB_TASKS,
    });
  }
  return input;
}

export function pageSize(first: number | null | undefined): number {
  if (first === null || first === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw badInput(`first must be between 1 and ${MAX_PAGE_SIZE}`, { field: 'first' });
  }
  return first;
}
