import { TaskError, notFound } from '../errors.js';
import { BackgroundWork } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import { parseTaskId, type TaskKey } from '../tasks/keys.js';
import type { TaskChange, TaskPublisher } from '../tasks/publisher.js';
import { assertTransition, isTerminal } from '../tasks/status.js';
import type { Actor, Task } from '../tasks/task.js';
import type { TaskService } from '../tasks/task-service.js';
import type { TaskStore } from '../tasks/task-store.js';
import { assertFullAccess } from '../tasks/viewer-scope.js';
import type { CancelTasksFilter, CancelTasksResult, TaskCancellation } from '../tasks/cancellation.js';
import { cancelTasks } from './bulk-cancel.js';
import { needsSweep, type StepFunctionTasks } from './step-function-tasks.js';
import type { RunOutcome, TaskRunner } from './task-runner.js';
import { workerActor } from './task-runner.js';

/**
 * Where queued tasks go: the in-process queue (embedded default), or SNS
 * `task-execute` notifications that an SQS queue delivers to workers (AWS).
 */
export interface DispatchQueue {
  enqueue(task: Pick<Task, 'pk' | 'sk' | 'tenantCode' | 'type' | 'kind' | 'id'>, delayMs?: number): Promise<void>;
  stop?(): Promise<void>;
}

/**
 * Task dispatch: queues each new task, hands what a queue delivers to its
 * runner (a standard task, or the start of a Step Functions task), cancels
 * (the domain's TaskCancellation), and recovers work a dead process left behind.
 */
export class TaskDispatcher implements TaskCancellation {
  private readonly queueing = new BackgroundWork();

  constructor(
    private readonly deps: {
      tasks: TaskService;
      store: TaskStore;
      queue: DispatchQueue;
      runner: TaskRunner;
      stepFunctions: StepFunctionTasks;
      logger: Logger;
    },
  ) {}

  /** A publisher that queues every newly created top-level task (QUEUED + task-execute). */
  get onCreated(): TaskPublisher {
    return {
      publish: async (change: TaskChange) => {
        if (!change.created || change.task.parentId) return;
        // In the background: the mutation answers CREATED; the queued change streams to subscribers.
        this.queueing.track(
          this.queueNew(change.task).catch((error) =>
            this.deps.logger.error('queueing a new task failed; it is picked up on recovery', { id: change.task.id }, error),
          ),
        );
      },
    };
  }

  async queueNew(task: Task): Promise<void> {
    const queued = await this.deps.tasks.updateStatus(workerActor(task), {
      id: task.id,
      status: 'QUEUED',
      expectedVersion: task.version,
    });
    await this.deps.queue.enqueue(queued);
  }

  /** Waits for new tasks being queued (graceful shutdown). */
  drain(): Promise<void> {
    return this.queueing.drain();
  }

  /** Runs what a queue delivered; idempotent, so a redelivered message changes nothing twice. */
  dispatch(key: TaskKey): Promise<RunOutcome> {
    const parsed = parseTaskId(`${key.pk}#${key.sk}`);
    if (!parsed || parsed.parentId) return Promise.resolve({ done: true });
    return parsed.kind === 'SFN_TASK' ? this.deps.stepFunctions.start(key) : this.deps.runner.run(key);
  }

  /**
   * cancelTask: FAILED with `error: { code: 'CANCELLED', by }`, with its
   * unfinished sub-tasks; a running handler's AbortSignal fires; a running
   * execution is stopped. A Step Functions task that has ended with sub-tasks
   * still unfinished (a sweep a crash cut short) is swept again.
   */
  async cancel(actor: Actor, id: string): Promise<Task> {
    assertFullAccess(actor, 'cancel tasks');
    const { tasks, stepFunctions } = this.deps;
    const current = await tasks.getTask(actor, id);
    if (!current) throw notFound(`Task ${id} not found`);
    const isParent = current.kind === 'SFN_TASK' && !current.parentId;
    if (isParent && isTerminal(current.status) && needsSweep(current)) return stepFunctions.sweep(current);
    assertTransition(current.status, 'FAILED');
    const error = { code: 'CANCELLED', by: actor.userId, message: 'Cancelled' };
    let cancelled: Task;
    if (current.parentId) {
      await stepFunctions.cancelSubTask(current, error);
      await stepFunctions.flushCounts(current.parentId); // the caller sees the parent's counters move
      cancelled = (await tasks.getTask(actor, id))!;
      if (cancelled.status !== 'FAILED') throw new TaskError('CONFLICT', `Task ${id} finished before it could be cancelled`);
    } else if (isParent) {
      cancelled = await stepFunctions.end(actor, current, { error }, error);
    } else {
      cancelled = await tasks.updateStatus(actor, { id, status: 'FAILED', attributes: { error }, bookkeeping: { lease: null } });
    }
    this.deps.runner.abort(id);
    stepFunctions.abort(id);
    return cancelled;
  }

  /** cancelTasks: cancel, through `cancel`, a bounded batch of the tasks a filter matches (bulk-cancel.ts). */
  cancelMatching(actor: Actor, filter: CancelTasksFilter, first?: number | null): Promise<CancelTasksResult> {
    return cancelTasks({ store: this.deps.store, cancel: (by, id) => this.cancel(by, id) }, actor, filter, first);
  }

  /** Aborts this process's run of a task another replica cancelled (seen on the event bus). */
  observe(task: Task): void {
    if (task.status !== 'FAILED') return;
    this.deps.runner.abort(task.id);
    this.deps.stepFunctions.abort(task.id);
  }

  /**
   * Embedded default, at start: queue again what a dead process left CREATED,
   * QUEUED, ERRORED or PROCESSING (its leases are void: one process per data
   * directory), and Step Functions tasks whose sweep it did not finish.
   */
  async recover(): Promise<number> {
    let count = 0;
    for await (const task of this.deps.store.scanUnfinished(['CREATED', 'QUEUED', 'ERRORED', 'PROCESSING'])) {
      if (task.parentId || (isTerminal(task.status) && !needsSweep(task))) continue;
      if (task.status === 'CREATED') await this.queueNew(task).catch(() => {});
      else await this.deps.queue.enqueue(task);
      count++;
    }
    return count;
  }
}
