import type { LiveSink } from '../../src/live/sink.js';
import type { TaskEvent, TaskStatusEvent } from '../../src/live/task-event.js';
import type { TaskStatus } from '../../src/tasks/status.js';
import type { Task } from '../../src/tasks/task.js';
import type { Cancellable, Clock } from '../../src/timers.js';

/** A sink that records what it gets; `backedUp` is set by the test, `drain()` plays the transport catching up. */
export class FakeSink implements LiveSink {
  readonly messages: (string | TaskStatusEvent)[] = [];
  backedUp = false;
  closed: { error?: Error } | undefined;
  private drainListeners: (() => void)[] = [];

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  send(message: string | TaskStatusEvent): void {
    if (this.closed) throw new Error('send after close');
    this.messages.push(message);
  }

  close(error?: Error): void {
    this.closed = { error };
  }

  drain(): void {
    this.backedUp = false;
    const listeners = this.drainListeners;
    this.drainListeners = [];
    for (const listener of listeners) listener();
  }

  get drainWaiters(): number {
    return this.drainListeners.length;
  }

  /** The events it got (sinks without a selection get events). */
  get events(): TaskStatusEvent[] {
    return this.messages.filter((message): message is TaskStatusEvent => typeof message !== 'string');
  }

  /** `id@version` of each event, replayed ones marked `r`. */
  get trail(): string[] {
    return this.events.map((event) => `${event.task.id}@${event.task.version}${event.replayed ? 'r' : ''}`);
  }
}

/** A clock whose time moves only when the test says. */
export class FakeClock implements Clock {
  now = 0;
  private readonly timers = new Set<{ at: number; fire: () => void }>();

  at(at: number, fire: () => void): Cancellable {
    const timer = { at, fire };
    this.timers.add(timer);
    return { cancel: () => this.timers.delete(timer) };
  }

  get pending(): number {
    return this.timers.size;
  }

  advanceTo(now: number): void {
    this.now = now;
    for (const timer of [...this.timers]) {
      if (timer.at > now) continue;
      this.timers.delete(timer);
      timer.fire();
    }
  }
}

export function task(id: string, version: number, fields: Partial<Task> = {}): Task {
  return {
    id,
    pk: `TASK#${fields.tenantCode ?? 't1'}`,
    sk: id,
    code: id,
    kind: 'TASK',
    type: 'demo',
    name: id,
    tenantCode: 't1',
    status: 'PROCESSING' as TaskStatus,
    input: null,
    attributes: {},
    version,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, version)).toISOString(),
    ...fields,
  } as Task;
}

export function live(id: string, version: number, fields: Partial<Task> = {}): TaskEvent {
  const t = task(id, version, fields);
  return { action: t.parentId ? 'sub-task-status' : 'task-status', task: t, replayed: false };
}

/** Lets pending promise callbacks and immediates run. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));
