import { BULK_CANCEL_CONCURRENCY, DEFAULT_BULK_CANCEL, MAX_BULK_CANCEL, type CancelTasksResult } from '../src/tasks/cancellation.js';
import { builder } from './builder.js';
import { TaskKindEnum, TaskRef, TaskStatusEnum } from './task.js';

const CancelTasksFilter = builder.inputType('CancelTasksFilter', {
  description: 'Which top-level tasks cancelTasks cancels; the fields narrow each other',
  fields: (t) => ({
    kind: t.field({ type: TaskKindEnum, defaultValue: 'TASK' }),
    taskType: t.string(),
    status: t.field({ type: TaskStatusEnum, description: 'A non-terminal status; every non-terminal status when absent' }),
    createdBefore: t.field({ type: 'DateTime', description: 'Only tasks created before this instant' }),
    tenantCode: t.string({ description: 'Only system_admin may name another tenant' }),
  }),
});

const CancelTasksResultRef = builder.objectRef<CancelTasksResult>('CancelTasksResult').implement({
  description: 'What one cancelTasks call did; call again while `remaining`',
  fields: (t) => ({
    cancelled: t.exposeInt('cancelled', { description: 'Tasks this call cancelled' }),
    skipped: t.exposeInt('skipped', { description: 'Matched, but ended or were cancelled by someone else before this call could' }),
    remaining: t.exposeBoolean('remaining', { description: 'Matching unfinished tasks are left' }),
    cancelledIds: t.idList({ description: 'The tasks this call cancelled, newest first', resolve: (result) => result.cancelledIds }),
  }),
});

builder.mutationFields((t) => ({
  rerunTask: t.field({
    type: TaskRef,
    description:
      "A new task like an ended (COMPLETED or FAILED) top-level one: same kind, taskType, name, input and failurePolicy, created by the caller in the old task's tenant, queued and run like createTask. Its rerunOf names the old task, which does not change. BAD_USER_INPUT for a task not ended, or a sub-task.",
    args: {
      id: t.arg.id({ required: true }),
      onlyFailed: t.arg.boolean({
        defaultValue: false,
        description: 'Step Functions tasks only: the input is the elements of the FAILED sub-tasks, in index order',
      }),
    },
    resolve: (_root, args, ctx) => ctx.tasks.rerunTask(ctx.actor, String(args.id), { onlyFailed: args.onlyFailed }),
  }),
  cancelTasks: t.field({
    type: CancelTasksResultRef,
    description: `Cancels, as cancelTask does and newest first, at most \`first\` top-level unfinished tasks the filter matches (${BULK_CANCEL_CONCURRENCY} at a time). A task that ends meanwhile is skipped, not an error.`,
    args: {
      filter: t.arg({ type: CancelTasksFilter, required: true }),
      first: t.arg.int({
        defaultValue: DEFAULT_BULK_CANCEL,
        description: `The most to cancel in this call, 1-${MAX_BULK_CANCEL}`,
      }),
    },
    resolve: (_root, args, ctx) => ctx.cancellation.cancelMatching(ctx.actor, args.filter, args.first),
  }),
}));
