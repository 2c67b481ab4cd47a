/**
 * The per-subscription buffer between the event bus (push) and the transport
 * (pull, paced by the socket: graphql-ws awaits each send). Bounded: past
 * `maxQueued` it keeps only the latest event per task; if that is still over
 * the bound the subscriber is too slow to keep, and the queue fails.
 */
export class SlowConsumerError extends Error {
  override name = 'SlowConsumerError';
}

export interface EventQueueHooks {
  onCoalesced?(dropped: number): void;
  onOverflow?(): void;
}

export class EventQueue<T> implements AsyncIterator<T> {
  private items: T[] = [];
  private head = 0;
  private waiter?: { resolve: (result: IteratorResult<T>) => void; reject: (error: Error) => void };
  private ended = false;
  private failure?: Error;

  constructor(
    private readonly maxQueued: number,
    private readonly keyOf: (item: T) => string,
    private readonly hooks: EventQueueHooks = {},
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    if (this.ended) return;
    if (this.waiter) {
      const { resolve } = this.waiter;
      this.waiter = undefined;
      resolve({ value: item, done: false });
      return;
    }
    this.items.push(item);
    if (this.length > this.maxQueued) this.coalesce();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.length > 0) {
      const value = this.items[this.head++]!;
      // Compact now and then so a long-lived queue does not keep a dead prefix.
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Ends the queue: pending items are discarded, a waiting reader completes. */
  end(): void {
    this.ended = true;
    this.items = [];
    this.head = 0;
    this.waiter?.resolve({ value: undefined, done: true });
    this.waiter = undefined;
  }

  /** Ends the queue with an error for the reader, also one already waiting. */
  fail(error: Error): void {
    this.failure = error;
    const waiter = this.waiter;
    this.waiter = undefined;
    this.end();
    waiter?.reject(error);
  }

  /** Keeps the latest event of each task, in the order of those latest events. */
  private coalesce(): void {
    const pending = this.items.slice(this.head);
    const seen = new Set<string>();
    const latest: T[] = [];
    for (let i = pending.length - 1; i >= 0; i--) {
      const key = this.keyOf(pending[i]!);
      if (seen.has(key)) continue;
      seen.add(key);
      latest.push(pending[i]!);
    }
    latest.reverse();
    this.items = latest;
    this.head = 0;
    this.hooks.onCoalesced?.(pending.length - latest.length);
    if (latest.length > this.maxQueued) {
      this.hooks.onOverflow?.();
      this.fail(new SlowConsumerError(`More than ${this.maxQueued} tasks changed faster than the subscriber reads`));
    }
  }
}
