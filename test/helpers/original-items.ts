import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DocumentSender } from '../../src/aws/dynamo-client.js';
import { monotonicFactory } from 'ulid';

/**
 * The writes of the original package (@mbc-cqrs-serverless/task's TaskService
 * over @mbc-cqrs-serverless/core's DynamoDbService), as raw DynamoDB requests
 * with the same shape: `version` 0, no `attributes` until a status update, no
 * index attributes (list keys, `parentId`, `subTaskIndex`), timestamps as
 * core's toISOStringWithTimezone writes them (whole seconds, `+hh:mm`), and
 * status updates that replace `attributes` whole and leave `version` alone.
 */

export type Item = Record<string, any>;

export interface OriginalCaller {
  userId: string;
  /** The Lambda's awsRequestId. */
  requestId: string;
  /** requestContext.http.sourceIp. */
  sourceIp: string;
}

const pad = (n: number) => String(Math.floor(Math.abs(n))).padStart(2, '0');

/** core's toISOStringWithTimezone, in a process whose local offset is `offsetMinutes` (0 on Lambda's default TZ). */
export function originalTimestamp(at: number | Date, offsetMinutes = 0): string {
  const local = new Date((typeof at === 'number' ? at : at.getTime()) + offsetMinutes * 60_000);
  const sign = offsetMinutes >= 0 ? '+' : '-';
  return `${local.toISOString().slice(0, 19)}${sign}${pad(Math.abs(offsetMinutes) / 60)}:${pad(Math.abs(offsetMinutes) % 60)}`;
}

export class OriginalWriter {
  private readonly newCode = monotonicFactory();

  constructor(
    private readonly db: DocumentSender,
    private readonly tableName: string,
    /** The writing process's UTC offset, in minutes. */
    private readonly offsetMinutes = 0,
  ) {}

  stamp(at: number): string {
    return originalTimestamp(at, this.offsetMinutes);
  }

  /** TaskService.createTask: pk `TASK#<tenant>`. */
  createTask(dto: { tenantCode: string; taskType: string; name?: string; input: unknown }, caller: OriginalCaller, at: number) {
    return this.create('TASK', dto, caller, at);
  }

  /** TaskService.createStepFunctionTask: pk `SFN_TASK#<tenant>`. */
  createStepFunctionTask(
    dto: { tenantCode: string; taskType: string; name?: string; input: unknown[] },
    caller: OriginalCaller,
    at: number,
  ) {
    return this.create('SFN_TASK', dto, caller, at);
  }

  private async create(
    kind: 'TASK' | 'SFN_TASK',
    dto: { tenantCode: string; taskType: string; name?: string; input: unknown },
    caller: OriginalCaller,
    at: number,
  ): Promise<Item> {
    const code = this.newCode(at);
    const pk = `${kind}#${dto.tenantCode}`;
    const sk = `${dto.taskType}#${code}`;
    const item: Item = {
      id: `${pk}#${sk}`,
      pk,
      sk,
      version: 0,
      code,
      type: dto.taskType,
      name: dto.name || dto.taskType,
      tenantCode: dto.tenantCode,
      status: 'CREATED',
      input: dto.input,
      requestId: caller.requestId,
      createdAt: this.stamp(at),
      updatedAt: this.stamp(at),
      createdBy: caller.userId,
      updatedBy: caller.userId,
      createdIp: caller.sourceIp,
      updatedIp: caller.sourceIp,
    };
    await this.db.send(new PutCommand({ TableName: this.tableName, Item: item }));
    return item;
  }

  /**
   * TaskService.createSubTask: one item per input element under the parent's
   * pk, sk `<parentSk>#<index>`, a ULID of its own, the parent's name, and the
   * parent's requestId, createdBy/updatedBy and createdIp/updatedIp (from the
   * parent as the queue event carried it: as created). Written concurrently.
   */
  async createSubTasks(parent: Item, at: number): Promise<Item[]> {
    const subTasks = (parent.input as unknown[]).map((input, index) => {
      const sk = `${parent.sk}#${index}`;
      return {
        id: `${parent.pk}#${sk}`,
        pk: parent.pk,
        sk,
        version: 0,
        code: this.newCode(at),
        type: parent.type,
        name: parent.name,
        tenantCode: parent.tenantCode,
        status: 'CREATED',
        input,
        requestId: parent.requestId,
        createdAt: this.stamp(at),
        updatedAt: this.stamp(at),
        createdBy: parent.createdBy,
        updatedBy: parent.updatedBy,
        createdIp: parent.createdIp,
        updatedIp: parent.updatedIp,
      };
    });
    await Promise.all(subTasks.map((item) => this.db.send(new PutCommand({ TableName: this.tableName, Item: item }))));
    return subTasks;
  }

  /**
   * TaskService.updateStatus / updateSubTaskStatus / updateStepFunctionTask
   * through DynamoDbService.updateItem: SET status, `attributes` replaced whole
   * (left alone when undefined), updatedAt. Nothing else: `version` and any
   * index attributes stay as they were. `by` also sets updatedBy/updatedIp.
   */
  async updateStatus(
    key: Item,
    status: string,
    attributes: Record<string, unknown> | undefined,
    at: number,
    by?: { userId: string; sourceIp: string },
  ): Promise<Item> {
    const set: Record<string, unknown> = { status, attributes, updatedAt: this.stamp(at), updatedBy: by?.userId, updatedIp: by?.sourceIp };
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const assignments: string[] = [];
    for (const [name, value] of Object.entries(set)) {
      if (value === undefined) continue;
      names[`#${name}`] = name;
      values[`:${name}`] = value;
      assignments.push(`#${name}=:${name}`);
    }
    const { Attributes } = await this.db.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: key.pk, sk: key.sk },
        UpdateExpression: `SET ${assignments.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
      }),
    );
    return Attributes!;
  }

  /**
   * What the original's task queue handler does with a new Step Functions
   * task: PROCESSING with `{}`, its sub-tasks written, then PROCESSING with
   * the counters and `subTasks: [{ pk, sk, status }]`. Returns the parent as
   * stored and its sub-tasks.
   */
  async startStepFunctionTask(parent: Item, at: number): Promise<{ parent: Item; subTasks: Item[] }> {
    await this.updateStatus(parent, 'PROCESSING', {}, at);
    const subTasks = await this.createSubTasks(parent, at);
    const stored = await this.updateStatus(
      parent,
      'PROCESSING',
      {
        subTaskCount: subTasks.length,
        subTaskSucceedCount: 0,
        subTaskFailedCount: 0,
        subTaskRunningCount: 0,
        subTasks: subTasks.map((subTask) => ({ pk: subTask.pk, sk: subTask.sk, status: subTask.status })),
      },
      at,
    );
    return { parent: stored, subTasks };
  }

  async get(key: Item): Promise<Item | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: key.pk, sk: key.sk }, ConsistentRead: true }),
    );
    return Item;
  }
}
