import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The one bounded wait of the tests, never a fixed sleep: polls `probe` until
 * `ok` holds of its value (by default: the value is truthy) and returns that
 * value; after `timeoutMs` fails naming `what` and the last value.
 */
export async function until<T>(
  what: string | (() => string),
  probe: () => T | Promise<T>,
  ok: (value: T) => boolean = Boolean,
  timeoutMs = 10_000,
): Promise<Exclude<T, undefined | null | false>> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await probe();
    if (ok(last)) return last as Exclude<T, undefined | null | false>;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}; last: ${describe(last)}`);
    }
    await sleep(10);
  }
}

const describe = (value: unknown) => {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
};
