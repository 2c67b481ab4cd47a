import type { Logger } from '../logger.js';
import type { TaskKey } from '../tasks/keys.js';
import { taskId } from '../tasks/keys.js';
import type { RunOutcome } from './task-runner.js';

/**
 * The embedded default's queue: runs at most `concurrency` tasks at once, in
 * arrival order, with delayed re-delivery for retries. A task already waiting
 * or running is not queued twice.
 */
export class LocalTaskQueue {
  private readonly waiting: TaskKey[] = [];
  private readonly known = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly active = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly run: (key: TaskKey) => Promise<RunOutcome>,
    private readonly concurrency: number,
    private readonly logger: Logger,
  ) {}

  enqueue(key: TaskKey, delayMs = 0): void {
    if (this.stopped) return;
    const id = taskId(key.pk, key.sk);
    if (this.known.has(id)) return;
    this.known.add(id);
    if (delayMs <= 0) {
      this.admit(key);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.admit(key);
    }, delayMs);
    this.timers.add(timer);
  }

  /**
   * Stops taking work and waits for runs in progress, at most `graceMs`; then
   * `onOverdue` (abort them) and a last short wait. A run still going is left
   * to its lease: the next start takes it over.
   */
  async stop(graceMs = 10_000, onOverdue?: () => void): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.waiting.length = 0;
    if (await settlesWithin(Promise.all(this.active), graceMs)) return;
    onOverdue?.();
    await settlesWithin(Promise.all(this.active), 2_000);
  }

  get size(): { waiting: number; running: number } {
    return { waiting: this.waiting.length, running: this.active.size };
  }

  private admit(key: TaskKey): void {
    this.waiting.push({ pk: key.pk, sk: key.sk });
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.active.size < this.concurrency && this.waiting.length > 0) {
      const key = this.waiting.shift()!;
      const id = taskId(key.pk, key.sk);
      const work: Promise<void> = this.run(key)
        .catch((error): RunOutcome => {
          this.logger.error('running a task failed; retrying', { id }, error);
          return { done: false, retryInMs: 5_000 };
        })
        .then((outcome) => {
          this.known.delete(id);
          if (!outcome.done) this.enqueue(key, outcome.retryInMs);
        })
        .finally(() => {
          this.active.delete(work);
          this.pump();
        });
      this.active.add(work);
    }
  }
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
