import type { Logger } from '../logger.js';
import { parseTaskId, subTaskSk, type TaskKey } from '../tasks/keys.js';
import type { TaskPublisher } from '../tasks/publisher.js';
import { isTerminal } from '../tasks/status.js';
import { listedSubTasks, MAX_LISTED_SUB_TASKS, subTasksOf, type SubTaskRef } from '../tasks/sub-tasks.js';
import type { Actor, Task } from '../tasks/task.js';
import { FAILURE_POLICIES, type FailurePolicy, type TaskService } from '../tasks/task-service.js';
import type { SubTaskCountDelta, SubTaskCounts, TaskHead, TaskStore } from '../tasks/task-store.js';
import { TaskError } from '../errors.js';
import { ClaimedRun, LostRunError } from './claimed-run.js';
import type { HandlerRegistry } from './handlers.js';
import { executionName, type SubTaskEvent, type SubTaskExecutions } from './sub-task-executions.js';
import { errorAttribute, workerActor, type RunOutcome, type WorkerSettings } from './task-runner.js';

/** A sub-task already held by a live worker; the state machine retries the iteration later. */
export class SubTaskBusyError extends Error {
  override name = 'SubTaskBusy';
}

const PAGE = 100;
const NOT_RUN = { code: 'NOT_RUN', message: 'the execution ended before this sub-task ran' };
/** Races lost while failing one sub-task (to heartbeats, progress) before giving up on it for now. */
const MAX_FAIL_ATTEMPTS = 10;

/**
 * Step Functions tasks: fan the parent's input out into sub-tasks, run each
 * sub-task for a Map iteration, keep the parent's counters exact, and settle
 * the parent per its failure policy.
 *
 * Each sub-task transition is version-pinned, so exactly one writer makes it,
 * and that writer counts it. Counts are summed in-process over a short window
 * and written as one atomic ADD (one parent write and one parent event for
 * many sub-task changes). The parent settles once its counters agree with a
 * recount of the sub-tasks; at the end of the execution a difference (a
 * batch lost with its process) is repaired from that recount.
 *
 * Ending a parent early (cancelTask, FAIL_FAST) is a sweep: the terminal status
 * and a pending-sweep mark are written first, in one write; then every
 * unfinished sub-task is failed and the final counters are set from a
 * recount, which removes the mark. Counter additions to a terminal parent are
 * refused, so the recount is final. A sweep is idempotent; one a crash cut
 * short is finished by the next delivery of the parent (a safety-net message,
 * recovery at start) or by cancelTask again.
 */
export class StepFunctionTasks {
  /** Counter changes not yet written, by parent id: summed over a short window, then one atomic ADD. */
  private readonly pendingCounts = new Map<
    string,
    { parent: TaskKey; delta: { running: number; succeeded: number; failed: number }; timer: NodeJS.Timeout }
  >();
  /** Sub-task runs in this process, by sub-task id: a cancellation aborts them. */
  private readonly running = new Map<string, ClaimedRun>();

  constructor(
    private readonly deps: {
      tasks: TaskService;
      store: TaskStore;
      registry: HandlerRegistry;
      executions: SubTaskExecutions;
      publisher: TaskPublisher;
      logger: Logger;
      settings: WorkerSettings;
      maxConcurrency: number;
      /** Parent counter changes within this window go out as one event. */
      coalesceMs: number;
      /** Delivers the parent to `start` again after a delay: the safety net that finishes a sweep cut short. */
      redeliver: (parent: Task, delayMs: number) => Promise<void>;
    },
  ) {}

  /**
   * Starts a queued Step Functions task: PROCESSING, sub-tasks written,
   * execution started. Idempotent. An ended one whose sweep is unfinished is swept.
   */
  async start(key: TaskKey): Promise<RunOutcome> {
    const { tasks, store, executions } = this.deps;
    let parent = await store.get(key);
    if (!parent || parent.parentId || parent.kind !== 'SFN_TASK') return { done: true };
    if (isTerminal(parent.status)) {
      if (needsSweep(parent)) await this.sweep(parent);
      return { done: true };
    }
    if (!this.deps.registry.canRun(parent)) return { done: true };
    const actor = workerActor(parent);
    const inputs = Array.isArray(parent.input) ? parent.input : [];
    try {
      if (parent.status !== 'PROCESSING') {
        parent = await tasks.updateStatus(actor, {
          id: parent.id,
          status: 'PROCESSING',
          expectedVersion: parent.version,
          attributes: {
            subTaskCount: inputs.length,
            subTaskRunningCount: 0,
            subTaskSucceedCount: 0,
            subTaskFailedCount: 0,
          },
        });
      }
      if (parent.subTasksWritten && policyOf(parent) === 'FAIL_FAST') {
        // Resumed after a crash: a failure whose reaction was lost ends the parent now, before more sub-tasks run.
        const failed = await this.firstFailed(parent);
        if (failed) {
          await this.failFast(parent, failed);
          return { done: true };
        }
      }
      if (!parent.subTasksWritten) {
        // Safe to (re)write: no iteration runs before subTasksWritten is set.
        const subTasks = subTasksOf(parent);
        await store.putSubTasks(subTasks);
        parent = await tasks.updateStatus(actor, {
          id: parent.id,
          status: 'PROCESSING',
          expectedVersion: parent.version,
          // As the original package does, for the readers that look there.
          attributes: { subTasks: listedSubTasks(parent, subTasks) },
          bookkeeping: { subTasksWritten: true },
        });
      }
    } catch (error) {
      if (!(error instanceof TaskError && error.code === 'CONFLICT')) throw error;
      // Ended while the sub-tasks were being written: those written after its sweep looked are swept now.
      const ended = await store.get(key);
      if (ended && isTerminal(ended.status)) {
        await this.sweep(ended);
        return { done: true };
      }
      return { done: false, retryInMs: 0 };
    }
    await executions.start(executionName(parent.id), {
      parentId: parent.id,
      indexes: inputs.map((_, index) => index),
      maxConcurrency: this.deps.maxConcurrency,
    });
    return { done: true };
  }

  /** The entry point of the state machine's Task states (locally, and as the Lambda handler on AWS). */
  handle(event: SubTaskEvent): Promise<unknown> {
    if (event.action === 'settle-parent') return this.settle(event.parentId, true).then((task) => ({ status: task?.status }));
    return this.runSubTask(event.parentId, event.index);
  }

  async runSubTask(parentId: string, index: number): Promise<{ index: number; status: string }> {
    const { store, registry, settings, logger } = this.deps;
    const parsed = parseTaskId(parentId);
    if (!parsed || parsed.parentId) throw new Error(`${parentId} is not a Step Functions task id`);
    const subKey = { pk: parsed.pk, sk: subTaskSk(parsed.sk, index) };
    // The parent's head: its input (every element of the fan-out) is not read once per sub-task.
    const [sub, parent] = await Promise.all([store.get(subKey), store.getHead(parsed)]);
    if (!sub || !parent) throw new Error(`sub-task ${index} of ${parentId} does not exist`);
    if (isTerminal(sub.status)) {
      // A failure whose FAIL_FAST reaction was lost with its process: the iteration's retry reacts.
      if (sub.status === 'FAILED' && !isTerminal(parent.status) && policyOf(parent) === 'FAIL_FAST') await this.failFast(parent, sub);
      return { index, status: sub.status };
    }
    if (isTerminal(parent.status)) {
      // The parent's sweep counts it.
      await this.failUnfinished(sub, sweepErrorOf(parent));
      return { index, status: 'FAILED' };
    }
    const { lease } = sub;
    if (
      sub.status === 'PROCESSING' &&
      lease &&
      lease.until > Date.now() &&
      !(settings.singleProcess && lease.owner !== settings.workerId)
    ) {
      throw new SubTaskBusyError(`sub-task ${index} of ${parentId} is running elsewhere`);
    }

    const run = new ClaimedRun(sub, this.deps.tasks, workerActor(sub), settings, logger);
    const firstClaim = sub.status !== 'PROCESSING';
    try {
      await run.write('PROCESSING', {}, { attempt: (sub.attempt ?? 0) + 1 });
    } catch (error) {
      if (error instanceof LostRunError) return this.runSubTask(parentId, index);
      throw error;
    }
    if (firstClaim) this.count(parent, { running: 1 });

    const spec = registry.handlerFor(sub);
    this.running.set(sub.id, run);
    let outcome: { status: 'COMPLETED'; result: unknown } | { status: 'FAILED'; error: unknown };
    run.startHeartbeat();
    try {
      if (!spec) throw new Error(`No sub-task handler for task type ${sub.type}`);
      outcome = { status: 'COMPLETED', result: (await spec.handler(run.task, run.context(1))) ?? null };
    } catch (error) {
      outcome = { status: 'FAILED', error: errorAttribute(error) };
    } finally {
      run.stop();
      this.running.delete(sub.id);
    }
    if (run.controller.signal.aborted) return { index, status: 'FAILED' }; // cancelled: the canceller counted it
    try {
      await run.write(outcome.status, outcome.status === 'COMPLETED' ? { result: outcome.result } : { error: outcome.error });
    } catch (error) {
      if (error instanceof LostRunError) return { index, status: 'FAILED' };
      throw error;
    }
    const failed = outcome.status === 'FAILED';
    // The parent settles when the counters, once written, show every sub-task done.
    this.count(parent, { running: -1, succeeded: failed ? 0 : 1, failed: failed ? 1 : 0 });
    if (failed && policyOf(parent) === 'FAIL_FAST') await this.failFast(parent, sub);
    return { index, status: outcome.status };
  }

  /**
   * Ends the parent once every sub-task is terminal and its counters agree
   * with a recount. A disagreement means a counter update is still on its way
   * (its sub-task settles again after it), or, once the execution has ended,
   * that one was lost to a crash: then the difference is added. With
   * `executionEnded`, sub-tasks the execution never ran are failed first.
   */
  async settle(parentId: string, executionEnded: boolean): Promise<Task | undefined> {
    const parsed = parseTaskId(parentId)!;
    if (executionEnded) await this.flushCounts(parentId);
    let parent = await this.deps.store.get(parsed);
    if (!parent || isTerminal(parent.status)) return parent;
    const counts = await this.recount(parent, executionEnded ? NOT_RUN : undefined);
    if (counts.open > 0) return parent;
    const delta = {
      running: counts.running - Number(parent.attributes.subTaskRunningCount ?? 0),
      succeeded: counts.succeeded - Number(parent.attributes.subTaskSucceedCount ?? 0),
      failed: counts.failed - Number(parent.attributes.subTaskFailedCount ?? 0),
    };
    if (delta.running || delta.succeeded || delta.failed) {
      if (!executionEnded) return parent;
      const repaired = await this.addCounts(parent, delta);
      if (!repaired) return this.deps.store.get(parsed); // ended meanwhile: its sweep set the counters
      parent = repaired;
    }
    const failed = counts.failed > 0 && policyOf(parent) !== 'CONTINUE';
    try {
      // Pinned to the status, not the version: counter updates may land in between.
      return await this.deps.tasks.updateStatus(workerActor(parent), {
        id: parent.id,
        status: failed ? 'FAILED' : 'COMPLETED',
        attributes: {
          subTasks: listedSubTasks(parent, counts.listed),
          ...(failed ? { error: { code: 'SUB_TASKS_FAILED', message: `${counts.failed} sub-tasks failed` } } : {}),
        },
      });
    } catch (error) {
      // Settled (or cancelled) by someone else meanwhile.
      if (error instanceof TaskError && (error.code === 'CONFLICT' || error.code === 'INVALID_TRANSITION')) {
        return this.deps.store.get(parsed);
      }
      throw error;
    }
  }

  /**
   * Ends a parent early (cancelTask, FAIL_FAST): FAILED with `attributes`
   * (its error) and the pending sweep in one write, then swept. `subTaskError`
   * is what each unfinished sub-task gets. Status-pinned, like any unpinned
   * update: INVALID_TRANSITION when it had already ended.
   */
  async end(actor: Actor, parent: TaskHead, attributes: Record<string, unknown>, subTaskError: Record<string, unknown>): Promise<Task> {
    const ended = await this.deps.tasks.updateStatus(actor, {
      id: parent.id,
      status: 'FAILED',
      attributes,
      bookkeeping: { lease: null, pendingSweep: subTaskError },
    });
    await this.deps.redeliver(ended, this.deps.settings.leaseMs);
    return this.sweep(ended);
  }

  /**
   * Finishes the sweep of an ended parent: its execution stopped, every
   * unfinished sub-task failed, the final counters set from a recount and the
   * pending-sweep mark removed. Idempotent, and safe beside another sweep of
   * the same parent.
   */
  async sweep(parent: Task): Promise<Task> {
    const error = sweepErrorOf(parent);
    await this.deps.executions.stop(executionName(parent.id), String(error.code ?? 'CANCELLED'));
    if (typeof parent.attributes.subTaskCount === 'number' && !parent.subTasksWritten) {
      // Started, its sub-tasks perhaps partly written and none run here: write the missing ones, already
      // failed. Those that exist are left to the recount (the original package writes its own and runs them).
      const existing = new Set<string>();
      for await (const page of this.subTaskPages(parent)) for (const sub of page) existing.add(sub.sk);
      const missing = subTasksOf(parent).filter((sub) => !existing.has(sub.sk));
      await this.deps.store.putSubTasks(missing.map((sub) => ({ ...sub, status: 'FAILED', attributes: { error } })));
    }
    this.dropPendingCounts(parent.id);
    const counts = await this.recount(parent, error);
    if (counts.open > 0) throw new Error(`${counts.open} sub-tasks of ${parent.id} could not be failed; the sweep is retried`);
    const after = await this.deps.store.finishSweep(parent, counts, listedSubTasks(parent, counts.listed), new Date().toISOString());
    await this.deps.publisher.publish({ task: after });
    return after;
  }

  /** Fails one unfinished sub-task (cancelTask on a sub-task) and counts it; a concurrent finish wins and counts instead. */
  async cancelSubTask(sub: Task, error: Record<string, unknown>): Promise<void> {
    const { failedFrom: before } = await this.failUnfinished(sub, error);
    if (!before) return;
    const parent = await this.deps.store.get(parseTaskId(sub.parentId!)!);
    if (parent) this.count(parent, { running: before.status === 'PROCESSING' ? -1 : 0, failed: 1 });
  }

  /** Aborts this process's run of a sub-task (it was cancelled). */
  abort(id: string): void {
    this.running.get(id)?.lose();
  }

  /** Writes every pending counter change now (shutdown, end of a Lambda invocation). */
  flush(): Promise<void> {
    return this.flushCounts();
  }

  /** Writes pending counter changes (of one parent, or all); settles a parent whose sub-tasks are then all done. */
  async flushCounts(parentId?: string): Promise<void> {
    for (const id of parentId ? [parentId] : [...this.pendingCounts.keys()]) {
      const pending = this.pendingCounts.get(id);
      if (!pending) continue;
      this.pendingCounts.delete(id);
      clearTimeout(pending.timer);
      const { delta } = pending;
      if (!delta.running && !delta.succeeded && !delta.failed) continue;
      const after = await this.addCounts(pending.parent, delta);
      if (after && !isTerminal(after.status) && doneCount(after) >= Number(after.attributes.subTaskCount ?? 0)) {
        await this.settle(after.id, false);
      }
    }
  }

  /** The first failure under FAIL_FAST: the parent fails, the execution stops, unfinished sub-tasks are failed. */
  private async failFast(parent: TaskHead, failedSub: Task): Promise<void> {
    try {
      await this.end(
        workerActor(parent),
        parent,
        { error: { code: 'SUB_TASK_FAILED', message: `sub-task ${failedSub.subTaskIndex} failed` } },
        { code: 'CANCELLED', message: 'FAIL_FAST: another sub-task failed' },
      );
    } catch (caught) {
      // Another failure (or a cancel) ended it first, and sweeps it.
      if (!(caught instanceof TaskError && (caught.code === 'CONFLICT' || caught.code === 'INVALID_TRANSITION'))) throw caught;
    }
  }

  /**
   * Fails an unfinished sub-task, pinned to the version read; after losing a
   * race it reads again, until the sub-task is terminal. Returns its final
   * status, and the sub-task as this call found it when this call failed it.
   */
  private async failUnfinished(sub: Task, error: Record<string, unknown>): Promise<{ status: Task['status']; failedFrom?: Task }> {
    let current: Task | undefined = sub;
    for (let attempt = 0; current && !isTerminal(current.status); attempt++) {
      try {
        await this.deps.tasks.updateStatus(workerActor(current), {
          id: current.id,
          status: 'FAILED',
          expectedVersion: current.version,
          attributes: { error },
          bookkeeping: { lease: null },
        });
        return { status: 'FAILED', failedFrom: current };
      } catch (caught) {
        if (!(caught instanceof TaskError && caught.code === 'CONFLICT') || attempt >= MAX_FAIL_ATTEMPTS) throw caught;
      }
      current = await this.deps.store.get(current);
    }
    return { status: current?.status ?? sub.status };
  }

  private async firstFailed(parent: Task): Promise<Task | undefined> {
    for await (const page of this.subTaskPages(parent)) {
      const failed = page.find((sub) => sub.status === 'FAILED');
      if (failed) return failed;
    }
    return undefined;
  }

  /**
   * Counts the sub-tasks by status, and lists the first ones with their status;
   * with `failWith`, fails the unfinished ones first (a page at a time, concurrently).
   */
  private async recount(parent: Task, failWith?: Record<string, unknown>): Promise<SubTaskCounts & { open: number; listed: SubTaskRef[] }> {
    const counts = { running: 0, succeeded: 0, failed: 0, open: 0, listed: [] as SubTaskRef[] };
    for await (const page of this.subTaskPages(parent)) {
      const statuses = await Promise.all(
        page.map(async (sub) => (failWith && !isTerminal(sub.status) ? (await this.failUnfinished(sub, failWith)).status : sub.status)),
      );
      page.forEach((sub, i) => {
        if (counts.listed.length < MAX_LISTED_SUB_TASKS) counts.listed.push({ pk: sub.pk, sk: sub.sk, status: statuses[i]! });
      });
      for (const status of statuses) {
        if (status === 'COMPLETED') counts.succeeded++;
        else if (status === 'FAILED') counts.failed++;
        else {
          counts.open++;
          if (status === 'PROCESSING') counts.running++;
        }
      }
    }
    return counts;
  }

  private async *subTaskPages(parent: Task): AsyncGenerator<Task[]> {
    let after: string | undefined;
    do {
      const page = await this.deps.store.listSubTasks(parent, PAGE, after);
      yield page.edges.map((edge) => edge.node);
      after = page.pageInfo.hasNextPage ? (page.pageInfo.endCursor ?? undefined) : undefined;
    } while (after);
  }

  /**
   * Adds to the parent's counters within the window: one atomic ADD (and one
   * parent event) for many sub-task changes. A change lost with its process is
   * repaired from a recount when the execution settles the parent.
   */
  private count(parent: TaskHead, delta: SubTaskCountDelta): void {
    let pending = this.pendingCounts.get(parent.id);
    if (!pending) {
      const timer = setTimeout(() => {
        this.flushCounts(parent.id).catch((error) =>
          this.deps.logger.error('writing sub-task counters failed; they are repaired when the parent settles', { id: parent.id }, error),
        );
      }, this.deps.coalesceMs);
      pending = { parent: { pk: parent.pk, sk: parent.sk }, delta: { running: 0, succeeded: 0, failed: 0 }, timer };
      this.pendingCounts.set(parent.id, pending);
    }
    pending.delta.running += delta.running ?? 0;
    pending.delta.succeeded += delta.succeeded ?? 0;
    pending.delta.failed += delta.failed ?? 0;
  }

  /** Undefined when the parent has ended: its counters were set by the recount that ended it. */
  private async addCounts(parent: TaskKey, delta: SubTaskCountDelta): Promise<Task | undefined> {
    let after: Task;
    try {
      after = await this.deps.store.addSubTaskCounts(parent, delta, new Date().toISOString());
    } catch (error) {
      if (error instanceof TaskError && error.code === 'CONFLICT') return undefined;
      throw error;
    }
    await this.deps.publisher.publish({ task: after });
    return after;
  }

  /** Counter changes of an ended parent would be refused: its sweep counts everything. */
  private dropPendingCounts(parentId: string): void {
    const pending = this.pendingCounts.get(parentId);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pendingCounts.delete(parentId);
  }
}

export const policyOf = (parent: TaskHead): FailurePolicy =>
  (FAILURE_POLICIES as readonly string[]).includes(String(parent.attributes.failurePolicy))
    ? (parent.attributes.failurePolicy as FailurePolicy)
    : 'CONTINUE';

/** What an ended parent's unfinished sub-tasks get: the error its sweep recorded, or a cancellation. */
const sweepErrorOf = (parent: TaskHead): Record<string, unknown> =>
  parent.pendingSweep ?? { code: 'CANCELLED', message: `parent ${parent.status}` };

/** A terminal parent whose sweep did not finish: marked, or (data from before sweeps were marked) counted short. */
export const needsSweep = (parent: Task): boolean =>
  parent.pendingSweep !== undefined ||
  (typeof parent.attributes.subTaskCount === 'number' && doneCount(parent) < parent.attributes.subTaskCount);

const doneCount = (parent: Task) => Number(parent.attributes.subTaskSucceedCount ?? 0) + Number(parent.attributes.subTaskFailedCount ?? 0);
