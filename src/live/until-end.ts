import type { Subscription, SubscriptionEngine } from './engine.js';
import type { TaskStatusEvent } from './task-event.js';

const DONE: IteratorResult<TaskStatusEvent> = { done: true, value: undefined };
const done = () => DONE;

/**
 * For a transport whose sink gets the events (WebSocket): an iterator that
 * yields nothing and completes with the subscription; leaving it (return,
 * throw) ends the subscription. A class rather than an object of closures:
 * every subscriber holds one.
 */
export class UntilEnd implements AsyncIterableIterator<TaskStatusEvent> {
  constructor(
    private readonly engine: SubscriptionEngine,
    private readonly subscription: Subscription,
  ) {}

  next(): Promise<IteratorResult<TaskStatusEvent>> {
    return this.subscription.finished.then(done);
  }

  async return(): Promise<IteratorResult<TaskStatusEvent>> {
    this.engine.end(this.subscription);
    return DONE;
  }

  async throw(): Promise<IteratorResult<TaskStatusEvent>> {
    return this.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
