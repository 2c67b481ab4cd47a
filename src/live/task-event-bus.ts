import type { Logger } from '../logger.js';
import { taskPk } from '../tasks/keys.js';
import type { Task } from '../tasks/task.js';
import { Lru } from '../lru.js';
import type { Metrics } from './metrics.js';
import { isTaskNotification, taskOf, type TaskNotification } from './notification.js';
import type { TaskEvent } from './task-event.js';

export type TaskEventListener = (event: TaskEvent) => void;

export interface TaskEventBusOptions {
  logger: Logger;
  metrics: Metrics;
  /** Reads a task whose notification left its attributes out (too large for SNS). */
  readTask(notification: TaskNotification): Promise<Task | undefined>;
}

/**
 * Hands notifications to this process's subscribers, by tenant: a listener
 * registered for one tenant is never called with another tenant's event.
 * The same notification may arrive twice (in-process and back through SNS, or
 * redelivered by SNS); only a version newer than the last dispatched one for
 * that task goes out. So each listener sees a task's versions in increasing
 * order, without duplicates.
 */
export class TaskEventBus {
  private readonly listeners = new Map<string, Set<TaskEventListener>>();
  /** Server-side observers of every tenant's events (e.g. cancellation reaching a running handler). */
  private readonly observers = new Set<TaskEventListener>();
  private readonly dispatched = new Lru<string, number>(50_000);

  constructor(private readonly options: TaskEventBusOptions) {}

  subscribe(tenantCode: string, listener: TaskEventListener): () => void {
    let set = this.listeners.get(tenantCode);
    if (!set) this.listeners.set(tenantCode, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(tenantCode) === set) this.listeners.delete(tenantCode);
    };
  }

  /** Observes every tenant's events; for the server's own components, never for subscribers. */
  observeAll(listener: TaskEventListener): () => void {
    this.observers.add(listener);
    return () => this.observers.delete(listener);
  }

  /** Whether this version of a task is newer than the last one dispatched; counts it as stale if not. */
  private isNewer(id: string, version: number): boolean {
    const last = this.dispatched.get(id);
    if (last === undefined || version > last) return true;
    this.options.metrics.eventsDropped.inc({ reason: 'stale' });
    return false;
  }

  /** Entry point for every transport: in-process, SNS HTTP deliveries. */
  async dispatch(message: unknown): Promise<void> {
    const { metrics, logger } = this.options;
    if (!isTaskNotification(message) || message.pk !== taskPk(message.kind, message.tenantCode)) {
      metrics.notificationsRejected.inc({ reason: 'shape' });
      logger.warn('ignored a notification that is not a task status change');
      return;
    }
    metrics.eventsReceived.inc();
    if (!this.isNewer(message.id, message.version)) return;
    let task: Task | undefined;
    if (message.attributesOmitted) {
      task = await this.options.readTask(message);
      // Two reads in flight may both return the latest version: only the first goes out.
      if (!task || !this.isNewer(task.id, task.version)) return;
    } else {
      task = taskOf(message);
    }
    this.dispatched.set(task.id, task.version);
    const event: TaskEvent = { action: message.action, task, previousStatus: message.previousStatus, replayed: false };
    for (const listener of [...this.observers, ...(this.listeners.get(message.tenantCode) ?? [])]) {
      try {
        listener(event);
      } catch (error) {
        logger.error('a task event listener failed', error);
      }
    }
  }
}
