import { setTimeout as sleep } from 'node:timers/promises';
import type { HandlerMap, TaskHandler } from './handlers.js';

/**
 * The example handlers the embedded default ships, for task types ECHO and
 * SLEEP. Each also serves as the sub-task handler for its type, so a Step
 * Functions task of either type fans out without writing code.
 *
 * ECHO   input: any JSON. result: the input. When the input has an `error`
 *        string, it throws with that message (so the task retries, then FAILs;
 *        add `"retryable": false` to fail at once).
 * SLEEP  input: { "ms": n, "steps"?: k }. Sleeps n ms in k steps (default 10),
 *        reporting { current, total } progress after each; result: { sleptMs }.
 */
const echo: TaskHandler = (task) => {
  const input = task.input as { error?: unknown; retryable?: unknown } | null;
  if (input && typeof input === 'object' && typeof input.error === 'string') {
    const error = new Error(input.error);
    if (input.retryable === false) error.name = 'NonRetryableError';
    throw error;
  }
  return task.input;
};

const MAX_SLEEP_MS = 10 * 60 * 1000;

const sleepHandler: TaskHandler = async (task, ctx) => {
  const { ms = 1000, steps = 10 } = (task.input ?? {}) as { ms?: number; steps?: number };
  if (typeof ms !== 'number' || ms < 0 || ms > MAX_SLEEP_MS) throw new Error(`SLEEP needs 0 <= ms <= ${MAX_SLEEP_MS}`);
  const total = Math.max(1, Math.min(1000, Math.floor(steps)));
  for (let current = 1; current <= total; current++) {
    await sleep(ms / total, undefined, { signal: ctx.signal });
    // Not awaited: a throttled write would pace the loop at PROGRESS_INTERVAL_MS.
    void ctx.progress({ current, total });
  }
  return { sleptMs: ms };
};

export const exampleHandlers: HandlerMap = {
  ECHO: { handler: echo, maxAttempts: 3, retryDelayMs: 500 },
  SLEEP: sleepHandler,
};

export const exampleSubTaskHandlers: HandlerMap = { ECHO: echo, SLEEP: sleepHandler };
