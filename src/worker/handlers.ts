import type { Logger } from '../logger.js';
import type { Task } from '../tasks/task.js';

/** What a handler gets besides its task. */
export interface HandlerContext {
  /** 1 on the first run, 2 on the first retry, ... */
  attempt: number;
  /** Fires when the task is cancelled (or its run is taken over); stop and return or throw. */
  signal: AbortSignal;
  /**
   * Reports progress (stored in `attributes.progress`, streamed to subscribers).
   * Throttled: call it as often as you like; the latest value is written, at
   * most once per PROGRESS_INTERVAL_MS. The promise resolves once the value is
   * written, so do not await it in a tight loop unless you want that pace.
   */
  progress(value: unknown): Promise<void>;
  logger: Logger;
}

/** Does the work of one task (or one sub-task); its return value becomes `attributes.result`. */
export type TaskHandler = (task: Task, ctx: HandlerContext) => unknown;

export interface HandlerSpec {
  handler: TaskHandler;
  /** Runs before the task FAILs; default 3. Sub-tasks run once. */
  maxAttempts?: number;
  /** First retry delay; doubled on each retry (with jitter). Default 1000 ms. */
  retryDelayMs?: number;
}

/** Handlers by task type: a function, or a function with retry settings. */
export type HandlerMap = Record<string, TaskHandler | HandlerSpec>;

/** Throw this to fail a task at once, without retries. */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError';
}

export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_RETRY_DELAY_MS = 1000;

export interface ResolvedHandler {
  handler: TaskHandler;
  maxAttempts: number;
  retryDelayMs: number;
}

/** The registered work, by task type: task handlers and sub-task handlers. */
export class HandlerRegistry {
  private readonly tasks: Map<string, ResolvedHandler>;
  private readonly subTasks: Map<string, ResolvedHandler>;

  constructor(handlers: HandlerMap = {}, subTaskHandlers: HandlerMap = {}) {
    this.tasks = resolve(handlers);
    this.subTasks = resolve(subTaskHandlers);
  }

  /** The handler for a task: a sub-task's by its type among sub-task handlers, others among task handlers. */
  handlerFor(task: Pick<Task, 'type' | 'kind' | 'parentId'>): ResolvedHandler | undefined {
    return task.kind === 'SFN_TASK' ? this.subTasks.get(task.type) : this.tasks.get(task.type);
  }

  /** Whether this process can run a task of this kind and type (a Step Functions task needs a sub-task handler). */
  canRun(task: Pick<Task, 'type' | 'kind' | 'parentId'>): boolean {
    return this.handlerFor(task) !== undefined;
  }

  get types(): { tasks: string[]; subTasks: string[] } {
    return { tasks: [...this.tasks.keys()], subTasks: [...this.subTasks.keys()] };
  }
}

function resolve(map: HandlerMap): Map<string, ResolvedHandler> {
  return new Map(
    Object.entries(map).map(([type, spec]) => {
      const {
        handler,
        maxAttempts = DEFAULT_MAX_ATTEMPTS,
        retryDelayMs = DEFAULT_RETRY_DELAY_MS,
      } = typeof spec === 'function' ? { handler: spec } : spec;
      if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new Error(`${type}: maxAttempts must be >= 1`);
      return [type, { handler, maxAttempts, retryDelayMs }];
    }),
  );
}
