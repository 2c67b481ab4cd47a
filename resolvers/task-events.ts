import type { TaskStatusEvent } from '../src/live/task-event.js';
import { builder } from './builder.js';
import { TaskKindEnum, TaskRef, TaskStatusEnum } from './task.js';

const TaskStatusEventRef = builder.objectRef<TaskStatusEvent>('TaskStatusEvent').implement({
  description: 'A task after one change',
  fields: (t) => ({
    action: t.exposeString('action', { description: '`task-status` or `sub-task-status`, as in the SNS notification' }),
    task: t.field({ type: TaskRef, resolve: (event) => event.task }),
    previousStatus: t.field({
      type: TaskStatusEnum,
      nullable: true,
      description: 'The status the task left; null for a task just created and for replayed states',
      resolve: (event) => event.previousStatus ?? null,
    }),
    replayed: t.exposeBoolean('replayed', {
      description: 'True for current states read from the table (snapshot or resume), false for live changes',
    }),
    cursor: t.exposeString('cursor', { description: 'Pass as `since` to resume after this event' }),
  }),
});

const TaskEventFilter = builder.inputType('TaskEventFilter', {
  fields: (t) => ({
    ids: t.idList({ description: 'Only these tasks (at most 100); completes when all are terminal' }),
    parentId: t.id({ description: 'A Step Functions task and its sub-tasks' }),
    kind: t.field({ type: TaskKindEnum }),
    taskType: t.string(),
    statuses: t.field({ type: [TaskStatusEnum], description: 'Only changes into these statuses' }),
    includeSubTasks: t.boolean({ description: 'Also sub-task changes (implied by ids and parentId)', defaultValue: false }),
    tenantCode: t.string({ description: 'Only system_admin may name another tenant' }),
  }),
});

builder.subscriptionFields((t) => ({
  taskStatusChanged: t.field({
    type: TaskStatusEventRef,
    description:
      "Status changes of the caller's tasks. Named tasks (ids, parentId) start with their current state; `since` first replays every matching task changed after that cursor or timestamp.",
    args: {
      filter: t.arg({ type: TaskEventFilter }),
      since: t.arg.string({ description: 'A cursor from a previous event, or an ISO 8601 timestamp' }),
    },
    subscribe: (_root, args, ctx, info) =>
      ctx.live.subscribe(
        ctx.actor,
        { ...args.filter, ids: args.filter?.ids?.map(String), parentId: args.filter?.parentId?.toString() },
        args.since,
        ctx.liveSink ? { sink: ctx.liveSink, selection: info } : { ownConnection: { expiresAt: ctx.expiresAt } },
      ),
    resolve: (event: TaskStatusEvent) => event,
  }),
}));
