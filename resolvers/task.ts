import { TASK_STATUSES } from '../src/tasks/status.js';
import type { TASK_KINDS, Task } from '../src/tasks/task.js';
import type { Page } from '../src/tasks/task-store.js';
import { checkClientAttributes, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../src/tasks/limits.js';
import { attributesWithProgress } from '../src/tasks/sub-tasks.js';
import type { FAILURE_POLICIES } from '../src/tasks/task-service.js';
import { builder } from './builder.js';
import { PageInfoRef } from './connection.js';

export const TaskStatusEnum = builder.enumType('TaskStatus', { values: TASK_STATUSES });
export const TaskKindEnum = builder.enumType('TaskKind', {
  values: {
    TASK: { description: 'A standard task, run once by a worker.' },
    SFN_TASK: { description: 'A Step Functions task whose input array fans out into sub-tasks.' },
  } satisfies Record<(typeof TASK_KINDS)[number], unknown>,
});
export const FailurePolicyEnum = builder.enumType('FailurePolicy', {
  description: 'How failed sub-tasks end a Step Functions task',
  values: {
    CONTINUE: { description: 'Run every sub-task; the parent COMPLETES with the counts (the original behaviour)' },
    FAIL_PARENT: { description: 'Run every sub-task; the parent FAILS if any failed' },
    FAIL_FAST: { description: 'The first failure fails the parent, stops the execution and cancels unstarted sub-tasks' },
  } satisfies Record<(typeof FAILURE_POLICIES)[number], unknown>,
});
export const SortOrderEnum = builder.enumType('SortOrder', { values: ['ASC', 'DESC'] as const });

export const TaskRef = builder.objectRef<Task>('Task').implement({
  description: 'An asynchronous task, stored as in @mbc-cqrs-serverless/task.',
  fields: (t) => ({
    id: t.exposeID('id', { description: '`<pk>#<sk>`' }),
    pk: t.exposeString('pk', { description: '`TASK#<tenantCode>` or `SFN_TASK#<tenantCode>`' }),
    sk: t.exposeString('sk', { description: '`<taskType>#<code>`; a sub-task appends `#<index>`' }),
    code: t.exposeString('code', { description: 'ULID: sorts by creation time' }),
    kind: t.field({ type: TaskKindEnum, resolve: (task) => task.kind }),
    type: t.exposeString('type'),
    name: t.exposeString('name'),
    tenantCode: t.exposeString('tenantCode'),
    status: t.field({ type: TaskStatusEnum, resolve: (task) => task.status }),
    input: t.field({ type: 'JSON', nullable: true, resolve: (task, _args, ctx) => ctx.tasks.inputOf(task) }),
    attributes: t.field({
      type: 'JSON',
      description: '`result`, `error`, `progress`, sub-task counts and free metadata',
      resolve: (task) => attributesWithProgress(task),
    }),
    version: t.exposeInt('version', { description: 'Incremented by every write; pass as `expectedVersion`' }),
    attempt: t.exposeInt('attempt', {
      nullable: true,
      description: 'How many times a worker has started this task (retries included); null until the first start',
    }),
    parentId: t.exposeID('parentId', { nullable: true, description: 'Set on sub-tasks' }),
    subTaskIndex: t.exposeInt('subTaskIndex', { nullable: true, description: 'Set on sub-tasks' }),
    rerunOf: t.exposeID('rerunOf', { nullable: true, description: 'Set on a task created by rerunTask: the id of the task it re-runs' }),
    createdAt: t.field({ type: 'DateTime', resolve: (task) => task.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (task) => task.updatedAt }),
    createdBy: t.exposeString('createdBy', { nullable: true }),
    updatedBy: t.exposeString('updatedBy', { nullable: true }),
  }),
});

const TaskEdgeRef = builder.objectRef<Page<Task>['edges'][number]>('TaskEdge').implement({
  fields: (t) => ({
    cursor: t.exposeString('cursor'),
    node: t.field({ type: TaskRef, resolve: (edge) => edge.node }),
  }),
});

const TaskConnectionRef = builder.objectRef<Page<Task>>('TaskConnection').implement({
  fields: (t) => ({
    edges: t.field({ type: [TaskEdgeRef], resolve: (page) => page.edges }),
    pageInfo: t.field({ type: PageInfoRef, resolve: (page) => page.pageInfo }),
  }),
});

const CreateTaskInput = builder.inputType('CreateTaskInput', {
  fields: (t) => ({
    taskType: t.string({ required: true, description: '1-64 characters of A-Z a-z 0-9 _ . -' }),
    name: t.string({ description: 'Defaults to taskType; at most 256 characters' }),
    input: t.field({
      type: 'JSON',
      required: true,
      description: 'At most 350 KB serialized. For a Step Functions task: a non-empty array, one element per sub-task.',
    }),
    tenantCode: t.string({ description: 'Defaults to the token tenant; only system_admin may name another' }),
    idempotencyKey: t.string({ description: 'Repeating a create with the same key within 24 hours returns the original task' }),
    failurePolicy: t.field({ type: FailurePolicyEnum, description: 'Step Functions tasks only; CONTINUE by default' }),
  }),
});

const UpdateStatusInput = builder.inputType('UpdateStatusInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    status: t.field({ type: TaskStatusEnum, required: true }),
    attributes: t.field({
      type: 'JSON',
      description: 'Merged into the stored attributes (result, error, progress, metadata); a null value removes a key',
    }),
    expectedVersion: t.int({ description: 'Fail with CONFLICT unless the task is at this version' }),
  }),
});

const TaskFilter = builder.inputType('TaskFilter', {
  fields: (t) => ({
    kind: t.field({ type: TaskKindEnum, defaultValue: 'TASK' }),
    taskType: t.string(),
    status: t.field({ type: TaskStatusEnum }),
    updatedSince: t.field({ type: 'DateTime', description: 'Only tasks changed at or after this time, ordered by last change' }),
    order: t.field({ type: SortOrderEnum, defaultValue: 'DESC' }),
    tenantCode: t.string({ description: 'Only system_admin may name another tenant' }),
  }),
});

const pageDescription = `Page size, ${DEFAULT_PAGE_SIZE} by default, at most ${MAX_PAGE_SIZE}`;

builder.queryFields((t) => ({
  task: t.field({
    type: TaskRef,
    nullable: true,
    description: "A task or sub-task of the caller's tenant; null when absent",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.tasks.getTask(ctx.actor, String(args.id)),
  }),
  tasks: t.field({
    type: TaskConnectionRef,
    description: 'Top-level tasks, newest first by default',
    args: {
      filter: t.arg({ type: TaskFilter }),
      first: t.arg.int({ description: pageDescription }),
      after: t.arg.string(),
    },
    resolve: (_root, args, ctx) => ctx.tasks.listTasks(ctx.actor, args.filter ?? {}, args.first, args.after),
  }),
  subTasks: t.field({
    type: TaskConnectionRef,
    description: 'The sub-tasks of a Step Functions task, in input order',
    args: {
      parentId: t.arg.id({ required: true }),
      first: t.arg.int({ description: pageDescription }),
      after: t.arg.string(),
    },
    resolve: (_root, args, ctx) => ctx.tasks.listSubTasks(ctx.actor, String(args.parentId), args.first, args.after),
  }),
}));

builder.mutationFields((t) => ({
  createTask: t.field({
    type: TaskRef,
    args: { input: t.arg({ type: CreateTaskInput, required: true }) },
    resolve: (_root, args, ctx) => ctx.tasks.createTask(ctx.actor, args.input),
  }),
  createStepFunctionTask: t.field({
    type: TaskRef,
    args: { input: t.arg({ type: CreateTaskInput, required: true }) },
    resolve: (_root, args, ctx) => ctx.tasks.createStepFunctionTask(ctx.actor, args.input),
  }),
  cancelTask: t.field({
    type: TaskRef,
    description:
      "Moves a task that is not terminal, and its unfinished sub-tasks, to FAILED with error { code: CANCELLED, by }; a running handler's AbortSignal fires and a running execution stops",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.cancellation.cancel(ctx.actor, String(args.id)),
  }),
  updateStatus: t.field({
    type: TaskRef,
    args: { input: t.arg({ type: UpdateStatusInput, required: true }) },
    resolve: (_root, args, ctx) => {
      checkClientAttributes(args.input.attributes);
      return ctx.tasks.updateStatus(ctx.actor, { ...args.input, id: String(args.input.id) });
    },
  }),
}));
