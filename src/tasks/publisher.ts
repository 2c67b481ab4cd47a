import type { Task } from './task.js';

/** One stored change of a task: its new state and, unless it was just created, the state it left. */
export interface TaskChange {
  task: Task;
  previous?: Task;
  /** Set once, when the task was just stored for the first time. */
  created?: boolean;
}

/**
 * Called after every successful write, never before: the seam through which
 * status changes reach SNS, live subscribers and the worker. A publisher
 * handles its own retries; a failure to publish never undoes a stored change.
 */
export interface TaskPublisher {
  publish(change: TaskChange): Promise<void>;
}

/** Publishes nowhere: for a TaskService that needs no notifications (tests, scripts). */
export const silentPublisher: TaskPublisher = { publish: async () => {} };

/** Hands each change to every publisher, in order; members can be added after construction (wiring cycles). */
export class PublisherChain implements TaskPublisher {
  private readonly members: TaskPublisher[];

  constructor(members: TaskPublisher[] = []) {
    this.members = [...members];
  }

  add(publisher: TaskPublisher): void {
    this.members.push(publisher);
  }

  async publish(change: TaskChange): Promise<void> {
    for (const member of this.members) await member.publish(change);
  }
}
