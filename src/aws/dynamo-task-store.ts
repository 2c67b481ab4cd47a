import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DocumentSender } from './dynamo-client.js';
import { conflict, payloadTooLarge } from '../errors.js';
import { SEPARATOR, kindOfPk, parseTaskId, taskId, type ParsedTaskId, type TaskKey } from '../tasks/keys.js';
import {
  HEAD_ATTRIBUTES,
  type IdempotencyRecord,
  type Page,
  type SubTaskCountDelta,
  type SubTaskCounts,
  type TaskHead,
  type TaskListQuery,
  type TaskStore,
} from '../tasks/task-store.js';
import { mergeAttributes, StatusChangeRefused, type StatusChange, type StatusChangeCondition } from '../tasks/status-change.js';
import type { Task, TaskAttributes } from '../tasks/task.js';
import { TERMINAL_STATUSES, type TaskStatus } from '../tasks/status.js';
import { BOOKKEEPING_KEYS, separateBookkeeping } from '../tasks/bookkeeping.js';
import type { SubTaskRef } from '../tasks/sub-tasks.js';
import {
  LIST_ATTRIBUTES,
  LIST_PARTITION_ATTRIBUTES,
  LIST_UPDATED_ATTRIBUTE,
  SUB_TASK_INDEX,
  TABLE_KEY,
  listIndex,
  type IndexSpec,
  type ListFacet,
} from './task-table-schema.js';
import { decodeCursor, encodeCursor } from './cursor.js';

type Item = Record<string, unknown>;

const BATCH_WRITE_SIZE = 25;
/** DynamoDB refuses an expression string over 4 KB (dynalite takes any length). */
const MAX_EXPRESSION_BYTES = 4096;
const TERMINAL_VALUES = Object.fromEntries(TERMINAL_STATUSES.map((status, i) => [`:terminal${i}`, status]));
const IDEMPOTENCY_PREFIX = 'IDEMPOTENCY';
/** Every top-level field fromItem reads, but `input` and `attributes`. */
const HEAD_FIELDS = [
  'pk',
  'sk',
  'id',
  'code',
  'type',
  'name',
  'tenantCode',
  'status',
  'version',
  'parentId',
  'subTaskIndex',
  'rerunOf',
  'requestId',
  'createdAt',
  'updatedAt',
  'createdBy',
  'updatedBy',
  'createdIp',
  'updatedIp',
  'expiresAt',
];
/** What a keys-only listing reads (`TaskListQuery.keysOnly`), besides the index's own keys. */
const KEYS_ONLY = ['pk', 'sk', 'id', 'code', 'type', 'tenantCode', 'status', 'version'];

/**
 * The attributes the secondary indexes read. A top-level task carries the list
 * partition values; a sub-task carries only `parentId` and `subTaskIndex` (the
 * sub-task index), which keeps the list indexes sparse. The original package
 * writes none of them: they follow from the keys and status.
 */
export function indexKeys(
  task: Pick<Task, 'pk' | 'type' | 'status' | 'updatedAt' | 'parentId' | 'subTaskIndex'>,
): Record<string, string | number> {
  if (task.parentId) {
    return task.subTaskIndex === undefined ? {} : { parentId: task.parentId, subTaskIndex: task.subTaskIndex };
  }
  const values: Record<ListFacet, string> = {
    tenant: task.pk,
    type: [task.pk, task.type].join(SEPARATOR),
    status: [task.pk, task.status].join(SEPARATOR),
    typeStatus: [task.pk, task.type, task.status].join(SEPARATOR),
  };
  return {
    ...Object.fromEntries((Object.keys(values) as ListFacet[]).map((facet) => [LIST_PARTITION_ATTRIBUTES[facet], values[facet]])),
    [LIST_UPDATED_ATTRIBUTE]: utc(task.updatedAt),
  };
}

/** A timestamp in UTC with milliseconds, which sorts as text; as it is when it is not one. */
const utc = (timestamp: string): string => {
  const time = Date.parse(timestamp);
  return Number.isNaN(time) ? timestamp : new Date(time).toISOString();
};

export function toItem(task: Task): Item {
  return { ...task, ...indexKeys(task) };
}

/** Reads our items and those written by @mbc-cqrs-serverless/task (which lack version, kind and index keys). */
export function fromItem(item: Item): Task {
  const pk = String(item.pk);
  const sk = String(item.sk);
  const parsed = parseTaskId(taskId(pk, sk));
  const type = String(item.type ?? parsed?.type ?? '');
  const { attributes, bookkeeping } = separateBookkeeping((item.attributes as TaskAttributes | undefined) ?? {}, item);
  return {
    id: String(item.id ?? taskId(pk, sk)),
    pk,
    sk,
    code: String(item.code ?? parsed?.code ?? ''),
    kind: kindOfPk(pk) ?? 'TASK',
    type,
    name: String(item.name ?? type),
    tenantCode: String(item.tenantCode ?? parsed?.tenantCode ?? ''),
    status: item.status as TaskStatus,
    input: item.input ?? null,
    attributes,
    ...bookkeeping,
    version: typeof item.version === 'number' ? item.version : 0,
    parentId: (item.parentId as string | undefined) ?? parsed?.parentId,
    subTaskIndex: (item.subTaskIndex as number | undefined) ?? parsed?.subTaskIndex,
    rerunOf: typeof item.rerunOf === 'string' ? item.rerunOf : undefined,
    requestId: item.requestId as string | undefined,
    // The original package writes local time with an offset: one instant, one text.
    createdAt: utc(String(item.createdAt ?? '')),
    updatedAt: utc(String(item.updatedAt ?? item.createdAt ?? '')),
    createdBy: item.createdBy as string | undefined,
    updatedBy: item.updatedBy as string | undefined,
    createdIp: item.createdIp as string | undefined,
    updatedIp: item.updatedIp as string | undefined,
    expiresAt: item.expiresAt as number | undefined,
  };
}

/**
 * The index attributes of a stored item that disagree with its fields
 * (missing, stale, or list keys present on a sub-task): what another writer,
 * such as @mbc-cqrs-serverless/task, leaves behind. Empty when the item is right.
 */
export function staleIndexKeys(item: Item): { set: Record<string, string | number>; remove: string[] } {
  const expected = indexKeys(fromItem(item));
  const set = Object.fromEntries(Object.entries(expected).filter(([name, value]) => item[name] !== value));
  const remove = LIST_ATTRIBUTES.filter((name) => !(name in expected) && item[name] !== undefined);
  return { set, remove };
}

/**
 * What getHead reads: every field but `input`, and of `attributes` the head's
 * keys and the bookkeeping items written before it moved out keep there.
 */
const HEAD_PROJECTION = (() => {
  const topLevel = [...HEAD_FIELDS, ...BOOKKEEPING_KEYS];
  const nested = [...HEAD_ATTRIBUTES, ...BOOKKEEPING_KEYS];
  const names: Record<string, string> = {
    '#attributes': 'attributes',
    ...Object.fromEntries(topLevel.map((name, i) => [`#h${i}`, name])),
    ...Object.fromEntries(nested.map((name, i) => [`#n${i}`, name])),
  };
  const paths = [...topLevel.map((_, i) => `#h${i}`), ...nested.map((_, i) => `#attributes.#n${i}`)];
  return { expression: paths.join(', '), names };
})();

const isConditionFailure = (error: unknown) =>
  error instanceof ConditionalCheckFailedException || (error as { name?: string } | null)?.name === 'ConditionalCheckFailedException';

export class DynamoTaskStore implements TaskStore {
  constructor(
    private readonly db: DocumentSender,
    readonly tableName: string,
  ) {}

  async get(key: TaskKey): Promise<Task | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: key.pk, sk: key.sk }, ConsistentRead: true }),
    );
    return Item ? fromItem(Item) : undefined;
  }

  async getHead(key: TaskKey): Promise<TaskHead | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { pk: key.pk, sk: key.sk },
        ConsistentRead: true,
        ProjectionExpression: HEAD_PROJECTION.expression,
        ExpressionAttributeNames: HEAD_PROJECTION.names,
      }),
    );
    if (!Item) return undefined;
    const { input: _input, ...head } = fromItem(Item);
    return head;
  }

  async create(task: Task): Promise<void> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: toItem(task),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) throw conflict(`Task ${task.id} already exists`);
      throw error;
    }
  }

  async update(key: ParsedTaskId, change: StatusChange, condition: StatusChangeCondition): Promise<Task> {
    // No status may change to this one (CREATED): nothing to write.
    if (condition.from.length === 0) throw new StatusChangeRefused(await this.get(key));
    const write = this.statusChangeWrite(key, change, condition);
    if (write) {
      try {
        return await this.sendStatusChange(key, write);
      } catch (error) {
        // An item without an `attributes` map (written elsewhere) cannot take nested paths.
        if (!((error as Error).name === 'ValidationException' && /document path/i.test((error as Error).message))) throw error;
      }
    }
    // Write the merged map whole, pinned to the version it was merged from, so no concurrent counter ADD is lost.
    const current = await this.get(key);
    if (!current || !condition.from.includes(current.status) || (condition.version ?? current.version) !== current.version) {
      throw new StatusChangeRefused(current);
    }
    const pinned = { ...condition, version: current.version };
    const whole = this.statusChangeWrite(key, change, pinned, mergeAttributes(current.attributes, change.attributes))!;
    return this.sendStatusChange(key, whole);
  }

  /**
   * The UpdateItem of a status change, read-free: SETs only what a status
   * change touches (attributes key by key, a null removing one), so attributes
   * this service does not know survive, and so do concurrent counter ADDs.
   * Each bookkeeping key changed is also removed from `attributes`, where items
   * written before it moved out keep it. Undefined when the attributes delta
   * has too many keys for one expression (then the map is written whole).
   */
  private statusChangeWrite(
    key: ParsedTaskId,
    change: StatusChange,
    condition: StatusChangeCondition,
    wholeAttributes?: TaskAttributes,
  ): { expression: string; condition: string; names: Record<string, string>; values: Record<string, unknown> } | undefined {
    const names: Record<string, string> = { '#version': 'version', '#status': 'status' };
    const values: Record<string, unknown> = {};
    const set: string[] = [];
    const remove: string[] = [];
    const fields: Record<string, unknown> = {
      status: change.status,
      updatedAt: change.updatedAt,
      updatedBy: change.updatedBy,
      updatedIp: change.updatedIp,
      requestId: change.requestId,
      expiresAt: change.expiresAt,
      ...indexKeys({ ...key, status: change.status, updatedAt: change.updatedAt }),
      ...(wholeAttributes ? { attributes: wholeAttributes } : {}),
    };
    Object.entries(fields).forEach(([name, value], i) => {
      if (value === undefined) return;
      names[`#f${i}`] = name;
      values[`:f${i}`] = value;
      set.push(`#f${i} = :f${i}`);
    });
    if (!wholeAttributes && Object.keys(change.attributes).length > 0) {
      names['#attributes'] = 'attributes';
      Object.entries(change.attributes).forEach(([name, value], i) => {
        names[`#k${i}`] = name;
        if (value === null) {
          remove.push(`#attributes.#k${i}`);
          return;
        }
        values[`:k${i}`] = value;
        set.push(`#attributes.#k${i} = :k${i}`);
      });
    }
    Object.entries(change.bookkeeping).forEach(([name, value], i) => {
      if (value === undefined) return;
      names[`#b${i}`] = name;
      if (value === null) remove.push(`#b${i}`);
      else {
        values[`:b${i}`] = value;
        set.push(`#b${i} = :b${i}`);
      }
      if (!wholeAttributes) {
        names['#attributes'] = 'attributes';
        remove.push(`#attributes.#b${i}`);
      }
    });
    const from = condition.from.map((status, i) => {
      values[`:from${i}`] = status;
      return `:from${i}`;
    });
    const pins = ['attribute_exists(pk)', `#status IN (${from.join(', ')})`];
    if (condition.version !== undefined) {
      values[':expected'] = condition.version;
      values[':next'] = condition.version + 1;
      set.push('#version = :next');
      pins.push(condition.version === 0 ? '(attribute_not_exists(#version) OR #version = :expected)' : '#version = :expected');
    } else values[':one'] = 1;
    const expression = [
      `SET ${set.join(', ')}`,
      remove.length ? `REMOVE ${remove.join(', ')}` : '',
      condition.version === undefined ? 'ADD #version :one' : '',
    ]
      .filter(Boolean)
      .join(' ');
    if (!wholeAttributes && Buffer.byteLength(expression) > MAX_EXPRESSION_BYTES) return undefined;
    return { expression, condition: pins.join(' AND '), names, values };
  }

  /** Sends a status change; returns the task as it was before it (ALL_OLD), from which the caller knows the new one. */
  private async sendStatusChange(key: ParsedTaskId, write: NonNullable<ReturnType<DynamoTaskStore['statusChangeWrite']>>): Promise<Task> {
    try {
      const { Attributes } = await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: key.pk, sk: key.sk },
          UpdateExpression: write.expression,
          ConditionExpression: write.condition,
          ExpressionAttributeNames: write.names,
          ExpressionAttributeValues: write.values,
          ReturnValues: 'ALL_OLD',
        }),
      );
      return fromItem(Attributes!);
    } catch (error) {
      // Refused: read the task to say why (rare; dynalite cannot return it with the refusal).
      if (isConditionFailure(error)) throw new StatusChangeRefused(await this.get(key));
      if ((error as Error).name === 'ValidationException' && /item size/i.test((error as Error).message)) {
        throw payloadTooLarge(`Task ${taskId(key.pk, key.sk)} would exceed DynamoDB's item size limit of 400 KB with this change`, {
          field: 'attributes',
        });
      }
      throw error;
    }
  }

  /**
   * Makes a stored item's index attributes agree with its fields, and with
   * `bumpVersion` gives it the next version (for a change by a writer that
   * keeps none, so subscribers, who drop versions they already have, see it).
   * Pinned to the status, version and updatedAt of `seen`, the image it was
   * computed from: when the item changed since, nothing is written and
   * undefined is returned (the newer change is repaired on its own). Returns
   * the item as written, which is what to publish.
   */
  async repairIndexKeys(seen: Item, options: { bumpVersion?: boolean } = {}): Promise<Task | undefined> {
    const { set, remove } = staleIndexKeys(seen);
    const names: Record<string, string> = { '#version': 'version', '#updatedAt': 'updatedAt' };
    const values: Record<string, unknown> = {};
    const assignments = Object.entries(set).map(([name, value], i) => {
      names[`#l${i}`] = name;
      values[`:l${i}`] = value;
      return `#l${i} = :l${i}`;
    });
    const removals = remove.map((name, i) => {
      names[`#r${i}`] = name;
      return `#r${i}`;
    });
    const version = typeof seen.version === 'number' ? seen.version : undefined;
    if (options.bumpVersion) {
      values[':next'] = (version ?? 0) + 1;
      assignments.push('#version = :next');
    }
    if (assignments.length === 0 && removals.length === 0) return fromItem(seen);
    // The list keys follow the status; version and updatedAt tell a later change by any writer.
    names['#status'] = 'status';
    const pins: string[] = ['attribute_exists(pk)'];
    for (const name of ['status', 'version', 'updatedAt']) {
      const value = name === 'version' ? version : seen[name];
      if (value === undefined) pins.push(`attribute_not_exists(#${name})`);
      else {
        values[`:${name}`] = value;
        pins.push(`#${name} = :${name}`);
      }
    }
    try {
      const { Attributes } = await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: seen.pk, sk: seen.sk },
          UpdateExpression: [
            assignments.length ? `SET ${assignments.join(', ')}` : '',
            removals.length ? `REMOVE ${removals.join(', ')}` : '',
          ]
            .filter(Boolean)
            .join(' '),
          ConditionExpression: pins.join(' AND '),
          ExpressionAttributeNames: names,
          ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return fromItem(Attributes!);
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  async putSubTasks(subTasks: readonly Task[]): Promise<void> {
    for (let start = 0; start < subTasks.length; start += BATCH_WRITE_SIZE) {
      let requests = subTasks.slice(start, start + BATCH_WRITE_SIZE).map((task) => ({ PutRequest: { Item: toItem(task) } }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
        const { UnprocessedItems } = await this.db.send(new BatchWriteCommand({ RequestItems: { [this.tableName]: requests } }));
        requests = (UnprocessedItems?.[this.tableName] ?? []) as typeof requests;
      }
    }
  }

  list(query: TaskListQuery): Promise<Page<Task>> {
    if (query.codeBefore !== undefined && query.updatedSince) throw new Error('codeBefore lists by creation: not with updatedSince');
    const facet: ListFacet = query.taskType && query.status ? 'typeStatus' : query.taskType ? 'type' : query.status ? 'status' : 'tenant';
    const index = listIndex(facet, query.updatedSince ? 'updated' : 'created');
    const pk = `${query.kind}${SEPARATOR}${query.tenantCode}`;
    const partition = [pk, query.taskType, query.status].filter(Boolean).join(SEPARATOR);
    return this.queryIndex(index, partition, {
      limit: query.limit,
      after: query.after,
      forward: query.order === 'ASC',
      sortFrom: query.updatedSince,
      sortBefore: query.codeBefore,
      projection: query.keysOnly ? [...KEYS_ONLY, index.partitionKey, index.sortKey] : undefined,
      // Another writer (the original package) may change a status without moving the item's list keys:
      // never list a task under a status it no longer has.
      keep: query.status ? (item) => item.status === query.status : undefined,
    });
  }

  listSubTasks(parent: Task, limit: number, after?: string): Promise<Page<Task>> {
    // Ours from the start (created here: it has a failure policy), so a listing never switches order mid-run.
    if (parent.subTasksWritten || parent.attributes.failurePolicy !== undefined) {
      return this.queryIndex(SUB_TASK_INDEX, parent.id, { limit, after, forward: true });
    }
    return this.queryIndex(TABLE_KEY, parent.pk, { limit, after, forward: true, sortPrefix: `${parent.sk}${SEPARATOR}` });
  }

  async addSubTaskCounts(parent: TaskKey, delta: SubTaskCountDelta, updatedAt: string): Promise<Task> {
    const counters: [string, number | undefined][] = [
      ['subTaskRunningCount', delta.running],
      ['subTaskSucceedCount', delta.succeeded],
      ['subTaskFailedCount', delta.failed],
    ];
    const names: Record<string, string> = {
      '#attributes': 'attributes',
      '#version': 'version',
      '#updatedAt': 'updatedAt',
      '#listUpdatedAt': LIST_UPDATED_ATTRIBUTE,
      '#status': 'status',
    };
    const values: Record<string, unknown> = { ':one': 1, ':updatedAt': updatedAt, ...TERMINAL_VALUES };
    const additions = ['#version :one'];
    counters.forEach(([name, by], i) => {
      if (!by) return;
      names[`#c${i}`] = name;
      values[`:c${i}`] = by;
      additions.push(`#attributes.#c${i} :c${i}`);
    });
    try {
      const { Attributes } = await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: parent.pk, sk: parent.sk },
          UpdateExpression: `SET #updatedAt = :updatedAt, #listUpdatedAt = :updatedAt ADD ${additions.join(', ')}`,
          // A terminal parent's counters are final: set from a recount by whoever ended it.
          ConditionExpression: `attribute_exists(pk) AND NOT #status IN (${Object.keys(TERMINAL_VALUES).join(', ')})`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return fromItem(Attributes!);
    } catch (error) {
      if (isConditionFailure(error)) throw conflict(`Task ${taskId(parent.pk, parent.sk)} has ended; its counters are final`);
      throw error;
    }
  }

  async finishSweep(parent: TaskKey, counts: SubTaskCounts, subTasks: readonly SubTaskRef[], updatedAt: string): Promise<Task> {
    const { Attributes } = await this.db.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: parent.pk, sk: parent.sk },
        UpdateExpression:
          'SET #updatedAt = :updatedAt, #listUpdatedAt = :updatedAt, #attributes.#running = :running, #attributes.#succeeded = :succeeded, ' +
          '#attributes.#failed = :failed, #attributes.#list = :list REMOVE #sweep, #attributes.#sweep ADD #version :one',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: {
          '#updatedAt': 'updatedAt',
          '#listUpdatedAt': LIST_UPDATED_ATTRIBUTE,
          '#attributes': 'attributes',
          '#running': 'subTaskRunningCount',
          '#succeeded': 'subTaskSucceedCount',
          '#failed': 'subTaskFailedCount',
          '#list': 'subTasks',
          '#sweep': 'pendingSweep',
          '#version': 'version',
        },
        ExpressionAttributeValues: {
          ':updatedAt': updatedAt,
          ':running': counts.running,
          ':succeeded': counts.succeeded,
          ':failed': counts.failed,
          ':list': subTasks,
          ':one': 1,
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return fromItem(Attributes!);
  }

  async *scanUnfinished(statuses: readonly TaskStatus[]): AsyncIterable<Task> {
    const values = Object.fromEntries(statuses.map((status, i) => [`:s${i}`, status]));
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new ScanCommand({
          TableName: this.tableName,
          // A pending sweep is kept in `attributes` by items written before the bookkeeping moved out.
          FilterExpression: `#status IN (${Object.keys(values).join(', ')}) OR attribute_exists(#sweep) OR attribute_exists(#attributes.#sweep)`,
          ExpressionAttributeNames: { '#status': 'status', '#attributes': 'attributes', '#sweep': 'pendingSweep' },
          ExpressionAttributeValues: values,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) if (kindOfPk(String(item.pk))) yield fromItem(item);
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  async claimIdempotencyKey(record: IdempotencyRecord): Promise<IdempotencyRecord | undefined> {
    const key = { pk: `${IDEMPOTENCY_PREFIX}${SEPARATOR}${record.tenantCode}`, sk: record.key };
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...key, ...record },
          // An expired record still waiting for TTL counts as free.
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
          ExpressionAttributeValues: { ':now': Math.floor(Date.now() / 1000) },
        }),
      );
      return undefined;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const { Item } = await this.db.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }));
    if (!Item) return this.claimIdempotencyKey(record); // expired and deleted between the two calls
    return {
      tenantCode: record.tenantCode,
      key: record.key,
      taskKey: Item.taskKey as TaskKey,
      fingerprint: String(Item.fingerprint),
      expiresAt: Number(Item.expiresAt),
    };
  }

  /**
   * Reads one page of an index. Every filter is a key condition, so every item
   * read is normally returned; the loop continues past DynamoDB's 1 MB response
   * cap, and past items `keep` refuses (stale index entries), so pages stay full.
   */
  private async queryIndex(
    index: IndexSpec,
    partition: string,
    options: {
      limit: number;
      after?: string;
      forward: boolean;
      sortFrom?: string;
      sortBefore?: string;
      sortPrefix?: string;
      /** Attributes to read (the index and table keys among them, for the cursor); all when absent. */
      projection?: readonly string[];
      keep?: (item: Item) => boolean;
    },
  ): Promise<Page<Task>> {
    const names: Record<string, string> = { '#p': index.partitionKey };
    const values: Record<string, unknown> = { ':p': partition };
    let condition = '#p = :p';
    if (options.sortFrom !== undefined) {
      names['#s'] = index.sortKey;
      values[':s'] = options.sortFrom;
      condition += ' AND #s >= :s';
    }
    if (options.sortBefore !== undefined) {
      names['#s'] = index.sortKey;
      values[':before'] = options.sortBefore;
      condition += ' AND #s < :before';
    }
    let projection: string | undefined;
    if (options.projection) {
      projection = [...new Set(options.projection)]
        .map((name, i) => {
          names[`#a${i}`] = name;
          return `#a${i}`;
        })
        .join(', ');
    }
    if (options.sortPrefix !== undefined) {
      names['#s'] = index.sortKey;
      values[':prefix'] = options.sortPrefix;
      condition += ' AND begins_with(#s, :prefix)';
    }
    let startKey = options.after ? decodeCursor(options.after, index, partition, options.sortFrom, options.sortPrefix) : undefined;
    const items: Item[] = [];
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: index.isTable ? undefined : index.name,
          KeyConditionExpression: condition,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ScanIndexForward: options.forward,
          ProjectionExpression: projection,
          Limit: options.limit + 1 - items.length,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) if (!options.keep || options.keep(item)) items.push(item);
      startKey = page.LastEvaluatedKey;
    } while (startKey && items.length <= options.limit);

    const hasNextPage = items.length > options.limit;
    const edges = items.slice(0, options.limit).map((item) => ({
      cursor: encodeCursor(index, item),
      node: fromItem(item),
    }));
    return { edges, pageInfo: { hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
