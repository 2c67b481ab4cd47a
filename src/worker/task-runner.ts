import type { Logger } from '../logger.js';
import type { TaskKey } from '../tasks/keys.js';
import { isTerminal } from '../tasks/status.js';
import type { Actor, Task } from '../tasks/task.js';
import type { TaskService } from '../tasks/task-service.js';
import type { TaskStore } from '../tasks/task-store.js';
import { ClaimedRun, LostRunError, type RunSettings } from './claimed-run.js';
import type { HandlerRegistry, ResolvedHandler } from './handlers.js';

/** What the queue does with the message: drop it, or deliver it again after a delay. */
export type RunOutcome = { done: true } | { done: false; retryInMs: number };

export interface WorkerSettings extends RunSettings {
  /**
   * Only one worker process can exist (the embedded default): a PROCESSING task
   * leased by another worker id was left by a dead process and is taken over at once.
   */
  singleProcess: boolean;
}

export const workerActor = (task: Pick<Task, 'tenantCode'>): Actor => ({
  userId: 'system:worker',
  tenantCode: task.tenantCode,
  isAdmin: false,
});

/** An error as stored in `attributes.error`. */
export function errorAttribute(error: unknown, attempt?: number) {
  const { name, message } = error instanceof Error ? error : { name: 'Error', message: String(error) };
  return { name, message, ...(attempt === undefined ? {} : { attempt }) };
}

export const isNonRetryable = (error: unknown) => (error as { name?: string } | null)?.name === 'NonRetryableError';

/**
 * Runs one standard task to an outcome, idempotently: a terminal task is left
 * alone, a task another live worker holds is retried later, a task whose
 * worker died is taken over. PROCESSING → handler → COMPLETED, or ERRORED →
 * QUEUED again with exponential backoff until the type's maxAttempts, then FAILED.
 */
export class TaskRunner {
  /** Runs in this process, by task id: cancellation aborts them. */
  private readonly running = new Map<string, ClaimedRun>();

  constructor(
    private readonly deps: {
      tasks: TaskService;
      store: TaskStore;
      registry: HandlerRegistry;
      logger: Logger;
      settings: WorkerSettings;
    },
  ) {}

  /** Aborts this process's run of a task (it was cancelled). */
  abort(id: string): void {
    this.running.get(id)?.lose();
  }

  /** Stops every run of this process (shutdown): their tasks stay leased and are taken over later. */
  abortAll(): void {
    for (const run of this.running.values()) run.lose();
  }

  get runningCount(): number {
    return this.running.size;
  }

  async run(key: TaskKey): Promise<RunOutcome> {
    const { store, registry, logger } = this.deps;
    const task = await store.get(key);
    if (!task || isTerminal(task.status) || task.parentId || task.kind !== 'TASK') return { done: true };
    const spec = registry.handlerFor(task);
    if (!spec) {
      logger.debug('no handler for this task type here; it stays QUEUED', { id: task.id, type: task.type });
      return { done: true };
    }
    const claimed = await this.claim(task, spec);
    if (!(claimed instanceof ClaimedRun)) return claimed;
    return this.execute(claimed, spec);
  }

  /** Moves the task to PROCESSING under this worker's lease, or says when to look again. */
  private async claim(task: Task, spec: ResolvedHandler): Promise<ClaimedRun | RunOutcome> {
    const { settings } = this.deps;
    const { lease } = task;
    if (task.status === 'PROCESSING' && lease) {
      const alive = lease.until > Date.now() && !(settings.singleProcess && lease.owner !== settings.workerId);
      if (alive) return { done: false, retryInMs: lease.until - Date.now() + 100 };
    }
    if (!['CREATED', 'QUEUED', 'PROCESSING', 'ERRORED'].includes(task.status)) return { done: true };
    const attempt = (task.attempt ?? 0) + 1;
    const run = new ClaimedRun(task, this.deps.tasks, workerActor(task), settings, this.deps.logger);
    try {
      if (task.status === 'ERRORED') await run.write('QUEUED', {});
      if (attempt > spec.maxAttempts) {
        // Its last attempt died with its worker.
        await run.write('FAILED', { error: { name: 'WorkerLost', message: 'The worker running the last attempt stopped' } });
        return { done: true };
      }
      await run.write('PROCESSING', {}, { attempt });
      return run;
    } catch (error) {
      if (error instanceof LostRunError) return { done: false, retryInMs: 0 };
      throw error;
    }
  }

  private async execute(run: ClaimedRun, spec: ResolvedHandler): Promise<RunOutcome> {
    const attempt = run.task.attempt ?? 1;
    this.running.set(run.task.id, run);
    run.startHeartbeat();
    try {
      let result: unknown;
      try {
        result = await spec.handler(run.task, run.context(attempt));
      } catch (error) {
        if (run.controller.signal.aborted) return { done: true };
        run.stop();
        if (isNonRetryable(error) || attempt >= spec.maxAttempts) {
          await run.write('FAILED', { error: errorAttribute(error, attempt) }, { nextAttemptAt: null });
          return { done: true };
        }
        const delay = backoff(spec.retryDelayMs, attempt);
        await run.write('ERRORED', { error: errorAttribute(error, attempt) });
        await run.write('QUEUED', {}, { nextAttemptAt: new Date(Date.now() + delay).toISOString() });
        return { done: false, retryInMs: delay };
      }
      if (run.controller.signal.aborted) return { done: true };
      run.stop();
      await run.write('COMPLETED', { result: result ?? null, error: null }, { nextAttemptAt: null });
      return { done: true };
    } catch (error) {
      if (error instanceof LostRunError) return { done: true };
      throw error;
    } finally {
      run.stop();
      this.running.delete(run.task.id);
    }
  }
}

/** Exponential backoff with jitter: base · 2^(attempt-1), between half and all of it. */
export function backoff(baseMs: number, attempt: number): number {
  const full = baseMs * 2 ** (attempt - 1);
  return Math.round(full / 2 + Math.random() * (full / 2));
}
