import type { LiveSink } from './sink.js';
import type { TaskStatusEvent } from './task-event.js';

const DONE: IteratorResult<TaskStatusEvent> = { done: true, value: undefined };

/**
 * The sink for transports that pull (SSE through yoga, which executes each
 * event with the subscriber's own context): an async iterator. It is backed
 * up while it holds an event not yet pulled, since yoga pulls the next one
 * only as fast as the response takes them; the engine holds the rest.
 */
export class IteratorSink implements LiveSink, AsyncIterableIterator<TaskStatusEvent> {
  private pending: TaskStatusEvent[] = [];
  private waiter?: { resolve: (result: IteratorResult<TaskStatusEvent>) => void; reject: (error: Error) => void };
  private drainListeners: (() => void)[] = [];
  private ended = false;
  private failure?: Error;

  /** `cancel` is called when the reader leaves (yoga calls return): the engine ends the subscription. */
  constructor(private readonly cancel: () => void) {}

  get backedUp(): boolean {
    return this.pending.length > 0;
  }

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  send(message: string | TaskStatusEvent): void {
    if (this.ended || typeof message === 'string') return;
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter.resolve({ value: message, done: false });
    else this.pending.push(message);
  }

  /** Completes after what is pending; an error is thrown to the reader at once, pending events discarded. */
  close(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    if (error) {
      this.failure = error;
      this.pending = [];
    }
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) error ? waiter.reject(error) : waiter.resolve(DONE);
  }

  next(): Promise<IteratorResult<TaskStatusEvent>> {
    const value = this.pending.shift();
    if (value) {
      if (this.pending.length === 0 && this.drainListeners.length > 0) {
        const listeners = this.drainListeners;
        this.drainListeners = [];
        queueMicrotask(() => {
          for (const listener of listeners) listener();
        });
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  return(): Promise<IteratorResult<TaskStatusEvent>> {
    this.close();
    this.pending = [];
    this.cancel();
    return Promise.resolve(DONE);
  }

  throw(): Promise<IteratorResult<TaskStatusEvent>> {
    return this.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
