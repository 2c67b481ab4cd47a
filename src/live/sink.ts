import type { TaskStatusEvent } from './task-event.js';

/**
 * Where the engine delivers one subscription's events: the only thing it
 * knows of a transport. A sink that gave the engine its selection gets each
 * event executed (once per distinct selection, shared) as JSON; a sink that
 * executes for itself (SSE, through yoga) gets the event.
 */
export interface LiveSink {
  /** True while the transport has more unsent than it should take: the engine then holds events back. */
  readonly backedUp: boolean;
  /** Calls `listener` once, when what backed the transport up has gone out. */
  onDrain(listener: () => void): void;
  send(message: string | TaskStatusEvent): void;
  /** The end of the subscription: complete, or failed (a TaskError such as SLOW_CONSUMER, or an unexpected error). */
  close(error?: Error): void;
}
