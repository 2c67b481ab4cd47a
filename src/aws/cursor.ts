import { badInput } from '../errors.js';
import { parseTaskId, taskId } from '../tasks/keys.js';
import type { IndexSpec } from './task-table-schema.js';

/**
 * Opaque page cursors: the index key of the last item of a page. A cursor is
 * accepted only by a query on the same index and partition, so a cursor taken
 * from one tenant or filter cannot steer a query into another.
 */
const MAX_CURSOR_LENGTH = 2_048;

interface CursorBody {
  i: string;
  k: Record<string, string | number>;
}

const keyAttributes = (index: IndexSpec) => ['pk', 'sk', index.partitionKey, index.sortKey];

export function encodeCursor(index: IndexSpec, item: Record<string, unknown>): string {
  const k = Object.fromEntries(keyAttributes(index).map((name) => [name, item[name] as string | number]));
  return Buffer.from(JSON.stringify({ i: index.name, k } satisfies CursorBody)).toString('base64url');
}

export function decodeCursor(
  cursor: string,
  index: IndexSpec,
  partition: string,
  sortFrom?: string,
  sortPrefix?: string,
): Record<string, string | number> {
  const invalid = () => badInput('after is not a cursor of this query', { field: 'after' });
  // Ours are a few hundred characters: the key of one item.
  if (cursor.length > MAX_CURSOR_LENGTH) throw invalid();
  let body: CursorBody;
  try {
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as CursorBody;
  } catch {
    throw invalid();
  }
  if (body === null || typeof body !== 'object' || body.i !== index.name || typeof body.k !== 'object' || body.k === null) {
    throw invalid();
  }
  const expected = keyAttributes(index);
  const names = Object.keys(body.k);
  if (names.length !== new Set(expected).size || !expected.every((name) => name in body.k)) throw invalid();
  const sortType = index.sortKeyType === 'N' ? 'number' : 'string';
  for (const name of expected) {
    const value = body.k[name];
    const wanted = name === index.sortKey ? sortType : 'string';
    if (typeof value !== wanted) throw invalid();
    // DynamoDB refuses empty key strings and numbers it cannot store; ours are short strings and sub-task indexes.
    if (typeof value === 'string' && value === '') throw invalid();
    if (typeof value === 'number' && !(Number.isSafeInteger(value) && value >= 0)) throw invalid();
  }
  if (body.k[index.partitionKey] !== partition) throw invalid();
  // The item key goes to DynamoDB as ExclusiveStartKey: it must be one of ours, within the key size limits.
  if (!parseTaskId(taskId(String(body.k.pk), String(body.k.sk)))) throw invalid();
  if (sortFrom !== undefined && (body.k[index.sortKey] as string) < sortFrom) throw invalid();
  if (sortPrefix !== undefined && !String(body.k[index.sortKey]).startsWith(sortPrefix)) throw invalid();
  return body.k;
}
