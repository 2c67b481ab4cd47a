import { TaskError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TaskStatus } from '../tasks/status.js';
import type { BookkeepingChange, Lease } from '../tasks/bookkeeping.js';
import type { Actor, Task, TaskAttributes } from '../tasks/task.js';
import type { TaskService } from '../tasks/task-service.js';
import type { HandlerContext } from './handlers.js';

export interface RunSettings {
  workerId: string;
  leaseMs: number;
  /** Least time between two progress writes. */
  progressIntervalMs: number;
}

/** The run lost its task: it was cancelled, or another worker took it over. */
export class LostRunError extends Error {
  override name = 'LostRunError';
}

/**
 * One worker's run of a claimed task. Every write is pinned to the version the
 * run last wrote, so a cancellation or a takeover in between is noticed (the
 * write fails) and ends the run, rather than being overwritten. Writes are
 * serialized; progress is throttled; the lease is renewed while the handler works.
 */
export class ClaimedRun {
  readonly controller = new AbortController();
  private writes: Promise<unknown> = Promise.resolve();
  private lastWriteAt = Date.now();
  private pendingProgress?: { value: unknown };
  private progressTimer?: NodeJS.Timeout;
  /** Resolves the promise of the progress call whose write is pending (released by stop()). */
  private releaseProgress?: () => void;
  private heartbeat?: NodeJS.Timeout;

  constructor(
    private current: Task,
    private readonly tasks: TaskService,
    private readonly actor: Actor,
    private readonly settings: RunSettings,
    private readonly logger: Logger,
  ) {}

  get task(): Task {
    return this.current;
  }

  /** The context handed to the handler. */
  context(attempt: number): HandlerContext {
    return {
      attempt,
      signal: this.controller.signal,
      progress: (value) => this.progress(value),
      logger: this.logger,
    };
  }

  startHeartbeat(): void {
    const every = Math.max(100, Math.floor(this.settings.leaseMs / 3));
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastWriteAt >= every) this.write('PROCESSING', {}).catch(() => {});
    }, every);
    this.heartbeat.unref();
  }

  /** Writes a status change pinned to this run's version; renews the lease unless the task is done. */
  write(status: TaskStatus, attributes: TaskAttributes, bookkeeping: BookkeepingChange = {}): Promise<Task> {
    const next = this.writes.then(async () => {
      if (this.controller.signal.aborted) throw new LostRunError('the run was stopped');
      // A progress value still waiting for its throttle window rides along.
      if (this.pendingProgress && !('progress' in attributes)) {
        attributes = { ...attributes, progress: this.pendingProgress.value };
        this.pendingProgress = undefined;
      }
      const lease: Lease | null =
        status === 'PROCESSING' ? { owner: this.settings.workerId, until: Date.now() + this.settings.leaseMs } : null;
      try {
        this.current = await this.tasks.updateStatus(this.actor, {
          id: this.current.id,
          status,
          attributes,
          bookkeeping: { ...bookkeeping, lease },
          expectedVersion: this.current.version,
        });
        this.lastWriteAt = Date.now();
        return this.current;
      } catch (error) {
        if (error instanceof TaskError && (error.code === 'CONFLICT' || error.code === 'INVALID_TRANSITION')) {
          this.lose();
          throw new LostRunError(`task ${this.current.id} changed under the run: ${error.message}`);
        }
        throw error;
      }
    });
    this.writes = next.catch(() => {});
    return next;
  }

  /** Stops the handler (AbortSignal) and every further write. */
  lose(): void {
    if (!this.controller.signal.aborted) this.controller.abort(new LostRunError('task cancelled or taken over'));
    this.pendingProgress = undefined;
    this.stop();
  }

  stop(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
    // A pending progress value stays: the run's next (final) write carries it.
    this.releaseProgress?.();
    this.releaseProgress = undefined;
  }

  private progress(value: unknown): Promise<void> {
    if (this.controller.signal.aborted) return Promise.resolve();
    this.pendingProgress = { value };
    if (this.progressTimer) return Promise.resolve();
    const wait = Math.max(0, this.lastWriteAt + this.settings.progressIntervalMs - Date.now());
    return new Promise((resolve) => {
      this.releaseProgress = resolve;
      this.progressTimer = setTimeout(() => {
        this.progressTimer = undefined;
        this.releaseProgress = undefined;
        const pending = this.pendingProgress;
        this.pendingProgress = undefined;
        if (!pending) return resolve();
        this.write('PROCESSING', { progress: pending.value }).then(
          () => resolve(),
          (error) => {
            if (!(error instanceof LostRunError)) this.logger.warn('writing progress failed', error);
            resolve();
          },
        );
      }, wait);
    });
  }
}
