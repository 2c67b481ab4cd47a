import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { CloseCode, type Server, type WebSocket as ProtocolSocket } from 'graphql-ws';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../logger.js';

/** An internal error closes the socket with a fixed reason: the details are logged, never sent. */
const INTERNAL_ERROR_REASON = 'Internal server error';

/** What a connection keeps of its upgrade request: not the request itself (headers and all), which would live as long as the socket. */
export interface ConnectionExtra {
  socket: WebSocket;
  /** The TCP socket under the WebSocket: its `drain` says a backlog went out. */
  tcp: Socket;
  /** The client address, read from the upgrade request. */
  ip: string | undefined;
  /** Called on connection_init: the wait for it is over. */
  initialised(): void;
}

export interface ServeOptions {
  /** Made with graphql-ws's `handleProtocols`. */
  wss: WebSocketServer;
  protocol: Server<ConnectionExtra>;
  logger: Logger;
  clientIp: (request: IncomingMessage) => string | undefined;
  /** Ping interval; a socket that has not answered the previous ping when the next is due is terminated. 0 disables. */
  keepAliveMs: number;
  /** A socket whose `connection_init` has not been handled by then (see `initialised`) is closed with 4408. */
  connectionInitWaitMs: number;
}

/**
 * One WebSocket as graphql-ws's protocol server (its `makeServer`) sees it,
 * in place of graphql-ws/use/ws, whose per-socket closures, two keep-alive
 * timers, once-listeners and the upgrade request held for the socket's life
 * cost about 2 KiB a connection. Here a connection is this object and three
 * listeners; one interval pings every socket.
 */
export class WsConnection implements ProtocolSocket, ConnectionExtra {
  /** graphql-ws's handler of incoming messages. */
  private receive?: (data: string) => Promise<void>;
  /** graphql-ws's end of the connection. */
  closed?: (code: number, reason: string) => Promise<void>;
  private initTimer?: NodeJS.Timeout;
  /** A ping went out and its pong has not come back yet. */
  awaitingPong = false;

  constructor(
    readonly socket: WebSocket,
    readonly tcp: Socket,
    readonly ip: string | undefined,
    private readonly logger: Logger,
  ) {}

  get protocol(): string {
    return this.socket.protocol;
  }

  send(data: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.readyState !== this.socket.OPEN) return resolve();
      this.socket.send(data, (error) => (error ? reject(error) : resolve()));
    });
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  onMessage(receive: (data: string) => Promise<void>): void {
    this.receive = receive;
  }

  /** connection_init arrived: the wait for it is over (and its timer is not kept for the connection's life). */
  initialised(): void {
    clearTimeout(this.initTimer);
    this.initTimer = undefined;
  }

  /** @internal */
  awaitInit(waitMs: number): void {
    if (waitMs > 0 && Number.isFinite(waitMs)) {
      this.initTimer = setTimeout(() => this.close(CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout'), waitMs);
    }
  }

  /** @internal */
  message(data: RawData): void {
    // Not awaited here: a subscription's handler runs as long as the subscription, and would hold this frame's buffer.
    this.receive?.(String(data)).catch((error: unknown) => this.fail('Internal error occurred during message handling', error));
  }

  /** @internal */
  ended(code: number, reason: Buffer): void {
    this.initialised();
    void this.closed?.(code, String(reason));
  }

  /** @internal */
  fail(what: string, error: unknown): void {
    this.logger.error(what, error);
    this.close(CloseCode.InternalServerError, INTERNAL_ERROR_REASON);
  }
}

/** Serves graphql-ws's protocol on a `ws` server; returns the disposer (1001 to every socket, then the server closes). */
export function serveGraphQLWs(options: ServeOptions): () => Promise<void> {
  const { wss, protocol, logger } = options;
  const connections = new Set<WsConnection>();
  wss.once('error', (error) => {
    logger.error('Internal error emitted on the WebSocket server', error);
    for (const connection of connections) connection.close(CloseCode.InternalServerError, INTERNAL_ERROR_REASON);
  });
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    const connection = new WsConnection(socket, request.socket, options.clientIp(request), logger);
    connections.add(connection);
    socket.on('error', (error) => connection.fail('Internal error emitted on a WebSocket socket', error));
    socket.on('message', (data) => connection.message(data));
    socket.on('close', (code, reason) => {
      connections.delete(connection);
      connection.ended(code, reason);
    });
    if (options.keepAliveMs > 0) socket.on('pong', () => void (connection.awaitingPong = false));
    connection.awaitInit(options.connectionInitWaitMs);
    connection.closed = protocol.opened(connection, connection);
  });
  // One ping round for all sockets: a socket still owing the last round's pong is dead.
  const keepAlive =
    options.keepAliveMs > 0 && Number.isFinite(options.keepAliveMs)
      ? setInterval(() => {
          for (const connection of connections) {
            if (connection.socket.readyState !== connection.socket.OPEN) continue;
            if (connection.awaitingPong) connection.socket.terminate();
            else {
              connection.awaitingPong = true;
              connection.socket.ping();
            }
          }
        }, options.keepAliveMs)
      : undefined;
  keepAlive?.unref();

  return async () => {
    clearInterval(keepAlive);
    for (const connection of connections) connection.close(1001, 'Going away');
    wss.removeAllListeners();
    await new Promise<void>((resolve, reject) => wss.close((error) => (error ? reject(error) : resolve())));
  };
}
