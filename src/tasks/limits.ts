import { badInput, payloadTooLarge } from '../errors.js';
import { BOOKKEEPING_KEYS } from './bookkeeping.js';

/** A DynamoDB item is at most 400 KB; this leaves room for keys and attributes. */
export const MAX_INPUT_BYTES = 350_000;
/** Whole item minus key overhead; DynamoDB refuses items over 400 KB. */
export const MAX_ITEM_BYTES = 390_000;
export const MAX_SUB_TASKS = 10_000;
export const MAX_NAME_LENGTH = 256;
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
/**
 * DynamoDB refuses items nested deeper than 32 levels, counting the item
 * itself: one attribute's value (`input`, the `attributes` map) holds at most
 * 31 levels of maps and lists. dynalite stores any depth; DynamoDB Local, like
 * DynamoDB, refuses 32 with "Nesting Levels have exceeded supported limits".
 */
export const MAX_JSON_DEPTH = 31;

/**
 * Tenant codes, task types and id parts: no key separator, no control
 * characters, and short enough that every key stays far inside DynamoDB's
 * limits (2,048 bytes for a partition key, 1,024 for a sort key).
 */
export const CODE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const CODE_RULE = '1-64 characters of A-Z, a-z, 0-9, "_", "." or "-"';

export function checkTaskType(taskType: string): void {
  if (!CODE_PATTERN.test(taskType)) {
    throw badInput(`taskType must be ${CODE_RULE}`, {
      field: 'taskType',
    });
  }
}

export function checkTenantCode(tenantCode: string): void {
  if (!CODE_PATTERN.test(tenantCode)) {
    throw badInput(`tenantCode must be ${CODE_RULE}`, {
      field: 'tenantCode',
    });
  }
}

export function checkName(name: string): void {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw badInput(`name must be 1-${MAX_NAME_LENGTH} characters`, { field: 'name' });
  }
}

/** DynamoDB's number range: magnitudes from 1e-130 to 9.99…e125 (and zero). */
const MIN_STORED_MAGNITUDE = 1e-130;
const MAX_STORED_MAGNITUDE = 1e126;

/**
 * What in a JSON value DynamoDB cannot store, found without recursion and
 * only as far as `MAX_JSON_DEPTH + 1` levels (so no value a client sends can
 * exhaust the stack here or in what later walks it): nesting past 31 levels,
 * a number outside DynamoDB's range, an empty key, or a `__proto__` key (which
 * JavaScript objects cannot hold as data). Undefined when there is nothing.
 */
export function unstorableJson(value: unknown): { problem: string; limit?: number } | undefined {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node === 'number') {
      const magnitude = Math.abs(node);
      if (!Number.isFinite(node) || magnitude >= MAX_STORED_MAGNITUDE || (magnitude !== 0 && magnitude < MIN_STORED_MAGNITUDE)) {
        return { problem: `holds the number ${node}, outside DynamoDB's range (magnitudes 1e-130 to 9.99e125)` };
      }
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    if (depth + 1 > MAX_JSON_DEPTH) {
      return {
        problem: `nests more than ${MAX_JSON_DEPTH} levels deep; DynamoDB stores at most ${MAX_JSON_DEPTH + 1}, counting the item`,
        limit: MAX_JSON_DEPTH,
      };
    }
    if (!Array.isArray(node) && Object.hasOwn(node, '__proto__')) return { problem: 'has a "__proto__" key' };
    // DynamoDB refuses an empty attribute name at any depth ("Empty attribute name"); dynalite stores it.
    if (!Array.isArray(node) && Object.hasOwn(node, '')) return { problem: 'has an empty key ("")' };
    for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push([child, depth + 1]);
  }
  return undefined;
}

/** A JSON value a client sends: storable by DynamoDB (unstorableJson), then within `limit` bytes serialized. */
export function checkJson(field: string, value: unknown, limit = MAX_INPUT_BYTES): void {
  const found = unstorableJson(value);
  if (found) {
    throw badInput(`${field} ${found.problem}`, { field, ...(found.limit ? { limit: found.limit } : {}) });
  }
  checkPayloadSize(field, value, limit);
}

/**
 * The worker's bookkeeping keys are refused in a client's attributes: items
 * written before the bookkeeping moved out of `attributes` are read from
 * there, so a client could otherwise hold a lease forever or fake a sweep.
 */
export const RESERVED_ATTRIBUTE_KEYS = BOOKKEEPING_KEYS;

export function checkClientAttributes(attributes: unknown): void {
  if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes)) return;
  const reserved = RESERVED_ATTRIBUTE_KEYS.filter((key) => Object.hasOwn(attributes, key));
  if (reserved.length > 0) {
    throw badInput(`attributes ${reserved.join(', ')} ${reserved.length === 1 ? 'is' : 'are'} kept by the worker and cannot be set`, {
      field: 'attributes',
      reserved,
    });
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
