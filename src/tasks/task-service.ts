import { createHash } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import { badInput, conflict, notFound, TaskError } from '../errors.js';
import type { Logger } from '../logger.js';
import { Lru } from '../lru.js';
import type { BookkeepingChange } from './bookkeeping.js';
import { pooledRandom } from './random.js';
import { parseTaskId, requireTaskId, taskId, taskPk, taskSk, type ParsedTaskId } from './keys.js';
import { checkJson, checkName, MAX_ITEM_BYTES, checkSubTaskInput, checkTaskType, pageSize } from './limits.js';
import type { TaskChange, TaskPublisher } from './publisher.js';
import { rerunRequest, type RerunOptions } from './rerun.js';
import { assertTransition, canTransition, isTerminal, type TaskStatus } from './status.js';
import { applyStatusChange, StatusChangeRefused, statusesBefore, type StatusChange } from './status-change.js';
import type { Page, SortOrder, TaskStore } from './task-store.js';
import type { Actor, Task, TaskAttributes, TaskKind } from './task.js';
import { canAccessTenant, resolveTenant } from './tenancy.js';
import { assertCanView, assertCanViewSubTasksOf, assertFullAccess } from './viewer-scope.js';

export const FAILURE_POLICIES = ['CONTINUE', 'FAIL_PARENT', 'FAIL_FAST'] as const;
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

export interface CreateTaskRequest {
  /** Step Functions tasks only: how sub-task failures end the parent (CONTINUE by default). */
  failurePolicy?: FailurePolicy | null;
  taskType: string;
  name?: string | null;
  input?: unknown;
  tenantCode?: string | null;
  idempotencyKey?: string | null;
}

export interface UpdateStatusRequest {
  id: string;
  status: TaskStatus;
  attributes?: unknown;
  expectedVersion?: number | null;
  /** The worker's own change to its bookkeeping (never from a client). */
  bookkeeping?: BookkeepingChange;
}

export interface TaskFilter {
  kind?: TaskKind | null;
  taskType?: string | null;
  status?: TaskStatus | null;
  updatedSince?: Date | null;
  order?: SortOrder | null;
  tenantCode?: string | null;
}

export interface TaskServiceOptions {
  store: TaskStore;
  publisher: TaskPublisher;
  logger: Logger;
  /** Days a terminal task is kept before DynamoDB TTL may delete it; undefined keeps it forever. */
  retentionDays?: number;
  now?: () => Date;
}

const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,128}$/;
/** Re-reads after losing a version race, when the caller did not pin a version. */
const MAX_UPDATE_ATTEMPTS = 5;

export class TaskService {
  private readonly store: TaskStore;
  private readonly publisher: TaskPublisher;
  private readonly logger: Logger;
  private readonly retentionDays?: number;
  private readonly now: () => Date;
  private readonly newCode = monotonicFactory(pooledRandom);
  /** Inputs never change after creation; live events carry none, so many subscribers share one read. */
  private readonly inputs = new Lru<string, Promise<unknown>>(1_000);

  constructor(options: TaskServiceOptions) {
    this.store = options.store;
    this.publisher = options.publisher;
    this.logger = options.logger;
    this.retentionDays = options.retentionDays;
    this.now = options.now ?? (() => new Date());
  }

  createTask(actor: Actor, request: CreateTaskRequest): Promise<Task> {
    return this.create(actor, request, 'TASK');
  }

  createStepFunctionTask(actor: Actor, request: CreateTaskRequest): Promise<Task> {
    return this.create(actor, request, 'SFN_TASK');
  }

  /**
   * rerunTask: a new task (of the caller, in the task's tenant) like an ended
   * one, created, queued and published as createTask does; the old task is not
   * changed. See rerun.ts for what is copied.
   */
  async rerunTask(actor: Actor, id: string, options: RerunOptions = {}): Promise<Task> {
    assertFullAccess(actor, 're-run tasks');
    const task = await this.getTask(actor, id);
    if (!task) throw notFound(`Task ${id} not found`);
    return this.create(actor, await rerunRequest(this.store, task, options), task.kind, task.id);
  }

  async getTask(actor: Actor, id: string): Promise<Task | null> {
    const parsed = this.parseId(id);
    assertCanView(actor, id, parsed);
    // Another tenant's task reads exactly like a missing one.
    if (!canAccessTenant(actor, parsed.tenantCode)) return null;
    return (await this.store.get(parsed)) ?? null;
  }

  /** A task's input, read once per task when the task came from a notification (which carries none). */
  inputOf(task: Task): Promise<unknown> {
    if (task.input !== undefined) return Promise.resolve(task.input);
    let input = this.inputs.get(task.id);
    if (!input) {
      input = this.store.get(task).then((stored) => stored?.input ?? null);
      input.catch(() => this.inputs.delete(task.id));
      this.inputs.set(task.id, input);
    }
    return input;
  }

  listTasks(actor: Actor, filter: TaskFilter = {}, first?: number | null, after?: string | null): Promise<Page<Task>> {
    assertFullAccess(actor, 'list tasks');
    const tenantCode = resolveTenant(actor, filter.tenantCode);
    if (filter.taskType) checkTaskType(filter.taskType);
    return this.store.list({
      kind: filter.kind ?? 'TASK',
      tenantCode,
      taskType: filter.taskType ?? undefined,
      status: filter.status ?? undefined,
      updatedSince: filter.updatedSince?.toISOString(),
      order: filter.order ?? 'DESC',
      limit: pageSize(first),
      after: after ?? undefined,
    });
  }

  async listSubTasks(actor: Actor, parentId: string, first?: number | null, after?: string | null): Promise<Page<Task>> {
    assertCanViewSubTasksOf(actor, parentId);
    const limit = pageSize(first);
    const parent = await this.getTask(actor, parentId);
    if (!parent) throw notFound(`Task ${parentId} not found`);
    return this.store.listSubTasks(parent, limit, after ?? undefined);
  }

  /**
   * One conditional write, no read first: the write itself requires a status
   * the task may leave for this one (and the pinned version). The task is read
   * only when the write is refused, to say why.
   */
  async updateStatus(actor: Actor, request: UpdateStatusRequest): Promise<Task> {
    assertFullAccess(actor, 'update tasks');
    const parsed = this.parseId(request.id);
    if (!canAccessTenant(actor, parsed.tenantCode)) throw notFound(`Task ${request.id} not found`);
    const attributes = checkAttributes(request.attributes);
    const pinned = request.expectedVersion ?? undefined;
    const change = this.statusChange(actor, request.status, attributes, request.bookkeeping ?? {});
    const condition = { from: statusesBefore(request.status), version: pinned };

    for (let attempt = 1; ; attempt++) {
      let previous: Task;
      try {
        previous = await this.store.update(parsed, change, condition);
      } catch (error) {
        if (!(error instanceof StatusChangeRefused)) throw error;
        const current = error.current;
        if (!current) throw notFound(`Task ${request.id} not found`);
        if (pinned !== undefined && current.version !== pinned) {
          throw conflict(`Task ${request.id} is at version ${current.version}, not ${pinned}`, {
            expectedVersion: pinned,
            currentVersion: current.version,
          });
        }
        if (attempt === 1) assertTransition(current.status, request.status);
        // It changed between the write and the read: the status now allows the change, so write again.
        if (canTransition(current.status, request.status) && attempt < MAX_UPDATE_ATTEMPTS) continue;
        throw conflict(`Task ${request.id} changed concurrently to ${current.status}; it can no longer move to ${request.status}`, {
          currentStatus: current.status,
          currentVersion: current.version,
        });
      }
      const stored = applyStatusChange(previous, change);
      await this.publish({ task: stored, previous });
      return stored;
    }
  }

  private async create(actor: Actor, request: CreateTaskRequest, kind: TaskKind, rerunOf?: string): Promise<Task> {
    assertFullAccess(actor, 'create tasks');
    const tenantCode = resolveTenant(actor, request.tenantCode);
    checkTaskType(request.taskType);
    const name = request.name ?? request.taskType;
    checkName(name);
    if (request.input === undefined) throw badInput('input is required', { field: 'input' });
    checkJson('input', request.input);
    if (kind === 'SFN_TASK') checkSubTaskInput(request.input);
    if (kind === 'TASK' && request.failurePolicy) {
      throw badInput('failurePolicy applies to Step Functions tasks only', { field: 'failurePolicy' });
    }

    const pk = taskPk(kind, tenantCode);
    let code = this.newCode(this.now().getTime());
    if (request.idempotencyKey !== undefined && request.idempotencyKey !== null) {
      const claimed = await this.claimIdempotencyKey(tenantCode, kind, request, pk, code);
      if (claimed) code = claimed;
    }
    const task = this.newTask(actor, { kind, tenantCode, pk, code, name, request, rerunOf });
    try {
      await this.store.create(task);
    } catch (error) {
      // A racing call with the same idempotency key wrote it first: theirs is ours.
      if (error instanceof TaskError && error.code === 'CONFLICT' && request.idempotencyKey) {
        const existing = await this.store.get(task);
        if (existing) return existing;
      }
      throw error;
    }
    await this.publish({ task, created: true });
    return task;
  }

  /**
   * Claims the key for the task about to be written. Returns the code of the
   * task an earlier call with the same key created (or is creating), so this
   * call writes, or finds, that same task.
   */
  private async claimIdempotencyKey(
    tenantCode: string,
    kind: TaskKind,
    request: CreateTaskRequest,
    pk: string,
    code: string,
  ): Promise<string | undefined> {
    const key = request.idempotencyKey!;
    if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
      throw badInput('idempotencyKey must be 1-128 printable ASCII characters without spaces', {
        field: 'idempotencyKey',
      });
    }
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([kind, request.taskType, request.name ?? null, request.input, request.failurePolicy ?? null]))
      .digest('base64url');
    const existing = await this.store.claimIdempotencyKey({
      tenantCode,
      key,
      taskKey: { pk, sk: taskSk(request.taskType, code) },
      fingerprint,
      expiresAt: Math.floor(this.now().getTime() / 1000) + IDEMPOTENCY_TTL_SECONDS,
    });
    if (!existing) return undefined;
    if (existing.fingerprint !== fingerprint) {
      throw conflict('idempotencyKey was already used for a different request in the last 24 hours', {
        field: 'idempotencyKey',
      });
    }
    return parseTaskId(taskId(existing.taskKey.pk, existing.taskKey.sk))?.code;
  }

  private newTask(
    actor: Actor,
    fields: {
      kind: TaskKind;
      tenantCode: string;
      pk: string;
      code: string;
      name: string;
      request: CreateTaskRequest;
      rerunOf?: string;
    },
  ): Task {
    const now = this.now().toISOString();
    const sk = taskSk(fields.request.taskType, fields.code);
    return {
      id: taskId(fields.pk, sk),
      pk: fields.pk,
      sk,
      code: fields.code,
      kind: fields.kind,
      type: fields.request.taskType,
      name: fields.name,
      tenantCode: fields.tenantCode,
      status: 'CREATED',
      input: fields.request.input,
      attributes: fields.kind === 'SFN_TASK' ? { failurePolicy: fields.request.failurePolicy ?? 'CONTINUE' } : {},
      version: 1,
      ...(fields.rerunOf !== undefined ? { rerunOf: fields.rerunOf } : {}),
      requestId: actor.requestId,
      createdAt: now,
      updatedAt: now,
      createdBy: actor.userId,
      updatedBy: actor.userId,
      createdIp: actor.ip,
      updatedIp: actor.ip,
    };
  }

  private statusChange(actor: Actor, status: TaskStatus, attributes: TaskAttributes, bookkeeping: BookkeepingChange): StatusChange {
    const now = this.now();
    return {
      status,
      attributes,
      bookkeeping,
      updatedAt: now.toISOString(),
      updatedBy: actor.userId,
      updatedIp: actor.ip,
      requestId: actor.requestId,
      expiresAt:
        isTerminal(status) && this.retentionDays !== undefined ? Math.floor(now.getTime() / 1000) + this.retentionDays * 86_400 : undefined,
    };
  }

  private parseId(id: string): ParsedTaskId {
    return requireTaskId(id);
  }

  private async publish(change: TaskChange): Promise<void> {
    try {
      await this.publisher.publish(change);
    } catch (error) {
      // The change is stored; subscribers recover it from the table.
      this.logger.error('publishing a task change failed', { id: change.task.id, version: change.task.version }, error);
    }
  }
}

function checkAttributes(value: unknown): TaskAttributes {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw badInput('attributes must be a JSON object', { field: 'attributes' });
  }
  checkJson('attributes', value, MAX_ITEM_BYTES);
  return value as TaskAttributes;
}
