import { setTimeout as delay } from 'node:timers/promises';

/** Time as the rate limiter and the backfill's backoff see it; tests pass a virtual one. */
export interface Clock {
  /** Milliseconds, monotonic enough for rates. */
  now(): number;
  /** Resolves after `ms`; rejects (AbortError) when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) => delay(ms, undefined, { signal }),
};

/**
 * A token bucket shared by concurrent callers: `rate` permits a second, at
 * most `burst` of them saved up. Each `take` reserves the next permit at once
 * (the balance may go negative) and waits until it is due, so concurrent
 * callers get distinct, evenly spaced slots and no caller can starve another.
 * In any window of t seconds at most `burst + rate · t` permits are granted.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  /**
   * @param rate permits a second (> 0)
   * @param burst permits that may be granted at once after a pause (>= 1). @default max(1, rate / 10)
   */
  constructor(
    readonly rate: number,
    readonly burst: number = Math.max(1, rate / 10),
    private readonly clock: Clock = systemClock,
  ) {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate must be a positive number, got ${rate}`);
    if (!(burst >= 1)) throw new RangeError(`burst must be at least 1, got ${burst}`);
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Waits for one permit. When `signal` aborts during the wait the permit is given back and the call rejects. */
  async take(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return;
    try {
      await this.clock.sleep((-this.tokens * 1000) / this.rate, signal);
    } catch (error) {
      this.tokens += 1;
      throw error;
    }
  }
}
