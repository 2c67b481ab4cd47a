import type { IncomingMessage, Server } from 'node:http';
import { createSourceEventStream, getOperationAST, GraphQLError, type DocumentNode, type ExecutionArgs } from 'graphql';
import { handleProtocols, makeServer, type OperationResult } from 'graphql-ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Identity, TokenVerifier } from '../auth/verify-token.js';
import type { Context, SocketContext } from '../context.js';
import { TaskError } from '../errors.js';
import { TOKEN_EXPIRED_CLOSE_CODE, TOO_MANY_CONNECTIONS_CLOSE_CODE } from '../live/close-codes.js';
import type { LiveTasks } from '../live/live-tasks.js';
import type { Logger } from '../logger.js';
import type { Cancellable } from '../timers.js';
import { ExecutedStream } from './executed-stream.js';
import { type ConnectionExtra, serveGraphQLWs } from './ws-connection.js';
import { WebSocketSink } from './ws-sink.js';

export interface GraphQLWsOptions {
  http: Server;
  path: string;
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  verifyToken: TokenVerifier;
  live: LiveTasks;
  logger: Logger;
  /** Ping interval; a socket that misses a pong within it is terminated. */
  keepAliveMs: number;
  /** The client address of an upgrade request (the transport keeps the address, not the request). */
  clientIp: (request: IncomingMessage) => string | undefined;
  maxPayloadBytes: number;
  /** The server's one masking function (yoga's too). */
  maskError: (error: unknown, message: string, isDev: boolean) => Error;
  /** Unsent bytes past which a socket counts as backed up for the subscription engine. @default 1 MiB */
  highWaterBytes?: number;
}

/** How long a socket may stay open without connection_init (graphql-ws's default). */
const CONNECTION_INIT_WAIT_MS = 3_000;

interface ConnectionState {
  identity?: Identity;
  release?: () => void;
  expiry?: Cancellable;
}

/**
 * graphql-ws (graphql-transport-ws) on the HTTP server's upgrade, sharing
 * yoga's pipeline: the same schema, plugins, masking and context factory. The
 * token is verified once, at connection_init, before any subscription runs;
 * the socket closes when it expires.
 */
export function attachGraphQLWs(options: GraphQLWsOptions) {
  const { yoga, live, logger } = options;
  // Upgrades are routed here rather than binding ws to the HTTP server, which
  // would re-emit the server's own errors (a port in use) as WebSocket errors.
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes, handleProtocols });
  options.http.on('upgrade', (req, socket, head) => {
    if ((req.url ?? '/').split('?')[0] !== options.path) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (client) => wss.emit('connection', client, req));
  });
  const states = new WeakMap<object, ConnectionState>();
  const { maskError } = options;
  const highWaterBytes = options.highWaterBytes ?? 1 << 20;
  /**
   * graphql-js subscribe (its mapping of events to results as one
   * ExecutedStream) without envelop's per-subscription wrappers (about
   * 4 KiB a subscriber): taskStatusChanged over WebSocket is served by the
   * subscription engine, whose shared executions mask with the same function;
   * errors of setting a subscription up (FORBIDDEN, BAD_USER_INPUT) are masked here.
   */
  const subscribe = async (args: ExecutionArgs): Promise<OperationResult> => {
    const result = await createSourceEventStream(args);
    if (Symbol.asyncIterator in result) return new ExecutedStream(result[Symbol.asyncIterator](), args);
    if (!result.errors) return result;
    return { ...result, errors: result.errors.map((error) => maskError(error, 'Unexpected error.', false) as GraphQLError) };
  };

  const protocol = makeServer<Record<string, unknown> | undefined, ConnectionExtra>({
    // The wait for connection_init is ws-connection.ts's: its timer is dropped once the init arrives.
    connectionInitWaitTimeout: 0,
    execute: (args) => (args.rootValue as Enveloped).execute(args),
    subscribe: (args) => (args.rootValue as Enveloped).subscribe(args),
    onConnect: async (ctx) => {
      ctx.extra.initialised();
      const { socket } = ctx.extra;
      const params = ctx.connectionParams ?? {};
      const authorization = params.authorization ?? params.Authorization;
      const state: ConnectionState = {};
      states.set(ctx, state);
      try {
        state.identity = await options.verifyToken(typeof authorization === 'string' ? authorization : undefined);
        // The identity is all that is needed from here on; do not keep the token for the connection's life.
        (ctx as { connectionParams?: unknown }).connectionParams = undefined;
      } catch (error) {
        socket.close(TOKEN_EXPIRED_CLOSE_CODE, error instanceof TaskError ? error.message.slice(0, 120) : 'Unauthorized');
        return false;
      }
      try {
        state.release = live.acquireConnection(state.identity.tenantCode);
      } catch {
        socket.close(TOO_MANY_CONNECTIONS_CLOSE_CODE, 'Too many connections for this tenant');
        return false;
      }
      state.expiry = live.timers.at(state.identity.expiresAt * 1000, () => socket.close(TOKEN_EXPIRED_CLOSE_CODE, 'Token expired'));
      return true;
    },
    onSubscribe: async (ctx, id, payload) => {
      const state = states.get(ctx);
      if (!state?.identity) return [new GraphQLError('Not connected', { extensions: { code: 'UNAUTHENTICATED' } })];
      // graphql-ws has already registered this subscription in ctx.subscriptions.
      const active = Object.keys(ctx.subscriptions).length;
      if (active > live.limits.maxSubscriptionsPerConnection) {
        return [
          new GraphQLError(`At most ${live.limits.maxSubscriptionsPerConnection} subscriptions per connection`, {
            extensions: { code: 'QUOTA_EXCEEDED', limit: live.limits.maxSubscriptionsPerConnection },
          }),
        ];
      }
      const socketContext: SocketContext = {
        identity: state.identity,
        ip: ctx.extra.ip,
        liveSink: new WebSocketSink(ctx.extra.socket, ctx.extra.tcp, id, highWaterBytes),
      };
      // Only what the context factory needs: the context lives as long as the subscription.
      const enveloped = yoga.getEnveloped(socketContext);
      let document: DocumentNode;
      try {
        document = enveloped.parse(payload.query);
      } catch (error) {
        return [maskError(error, 'Unexpected error.', false) as GraphQLError];
      }
      const errors = enveloped.validate(enveloped.schema, document);
      if (errors.length > 0) return errors.map((error: GraphQLError) => maskError(error, 'Unexpected error.', false) as GraphQLError);
      const args: ExecutionArgs = {
        schema: enveloped.schema,
        operationName: payload.operationName,
        document,
        variableValues: payload.variables,
        contextValue: await enveloped.contextFactory(),
        // A subscription keeps only what it needs: its args live as long as it does.
        rootValue:
          getOperationAST(document, payload.operationName)?.operation === 'subscription'
            ? { subscribe }
            : { execute: enveloped.execute, subscribe },
      };
      return args;
    },
    onClose: (ctx) => {
      const state = states.get(ctx);
      state?.expiry?.cancel();
      state?.release?.();
    },
    onError: (_ctx, _id, _payload, errors) => {
      logger.debug(
        'graphql-ws operation errors',
        errors.map((error) => error.message),
      );
    },
  });
  const dispose = serveGraphQLWs({
    wss,
    protocol,
    logger,
    clientIp: options.clientIp,
    keepAliveMs: options.keepAliveMs,
    connectionInitWaitMs: CONNECTION_INIT_WAIT_MS,
  });

  return {
    wss,
    /** Closes every socket (1001 going away) and the WebSocket server. */
    dispose,
  };
}

/** yoga's enveloped execute and subscribe, carried to graphql-ws in rootValue. */
type Enveloped = {
  execute: (args: ExecutionArgs) => OperationResult;
  subscribe: (args: ExecutionArgs) => OperationResult;
};
