import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { TaskError } from '../errors.js';
import { SLOW_CONSUMER_CLOSE_CODE } from '../live/close-codes.js';
import type { LiveSink } from '../live/sink.js';

/**
 * One graphql-transport-ws subscription as the engine's sink: the only code
 * that knows the `next` frame and the socket. The engine hands it each event's
 * result already serialized (shared by every subscriber of the same
 * selection); it adds the operation id and writes.
 */
export class WebSocketSink implements LiveSink {
  private readonly frameHead: string;

  constructor(
    private readonly socket: WebSocket,
    /** The TCP socket under it (the upgrade request's): its `drain` says the backlog went out. */
    private readonly tcp: Socket,
    id: string,
    /** Unsent bytes past which the socket counts as backed up. */
    private readonly highWaterBytes: number,
  ) {
    this.frameHead = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
  }

  get backedUp(): boolean {
    return this.socket.bufferedAmount > this.highWaterBytes;
  }

  onDrain(listener: () => void): void {
    if (this.tcp.writableNeedDrain) this.tcp.once('drain', listener);
    else setImmediate(listener);
  }

  send(message: string | object): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(`${this.frameHead}${message as string}}`);
  }

  /** Completion is graphql-ws's (it sends `complete` when the subscription's iterator ends); errors close the socket. */
  close(error?: Error): void {
    if (!error) return;
    if (error instanceof TaskError && error.code === 'SLOW_CONSUMER') this.socket.close(SLOW_CONSUMER_CLOSE_CODE, 'Slow consumer');
    else this.socket.close(1011, 'Internal error');
  }
}
