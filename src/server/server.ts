import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import type { GraphQLError, GraphQLSchema, ValidationContext } from 'graphql';
import { createYoga } from 'graphql-yoga';
import type { TokenVerifier } from '../auth/verify-token.js';
import { clientIp, type Context } from '../context.js';
import type { LiveTasks } from '../live/live-tasks.js';
import { StartupError } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import { enforceBodyLimit } from './body-limit.js';
import { renderGraphiQL, serveGraphiQLAsset } from './graphiql.js';
import { attachGraphQLWs } from './graphql-ws.js';
import { createMaskError } from './mask-error.js';
import { useDocumentLimits } from './use-document-limits.js';
import { useErrorCodes } from './use-error-codes.js';

export interface ServerLimits {
  maxBodyBytes: number;
  maxDepth: number;
  maxCost: number;
  maxAliases: number;
  /** Lexical tokens in one document: bounds parse and validation work (some validation is quadratic). */
  maxTokens: number;
}

/** Deeper than any real operation (selection depth 10, JSON 32 levels) and far short of the parser's stack. */
const MAX_DOCUMENT_NESTING = 64;

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface ServerOptions {
  schema: GraphQLSchema;
  context: (initial: { request: Request; req?: IncomingMessage }) => Promise<Context>;
  verifyToken: TokenVerifier;
  live: LiveTasks;
  logger: Logger;
  /** The one masking function, shared with the subscription engine. @default createMaskError(logger) */
  maskError?: ReturnType<typeof createMaskError>;
  host: string;
  port: number;
  limits: ServerLimits;
  /** WebSocket ping interval; dead sockets are reaped after one missed pong. */
  keepAliveMs: number;
  /** Take the client address from X-Forwarded-For (behind a load balancer). */
  trustProxy: boolean;
  /** Other endpoints by exact path: health, readiness, metrics, the SNS endpoint. */
  routes: Record<string, RouteHandler>;
  /** false disables GraphiQL; an object pre-fills its headers editor. */
  graphiql: false | { headers?: Record<string, string> };
  /** Serves the dashboard's paths (dashboard.ts); absent when it is off. */
  dashboard?: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean>;
  /** How long in-flight requests get on stop before their sockets are closed. */
  shutdownGraceMs?: number;
}

export interface RunningServer {
  url: string;
  stop(): Promise<void>;
}

export const GRAPHQL_PATH = '/graphql';

const reportAsValidationError = {
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
};

/**
 * One port: yoga for GraphQL over HTTP and SSE, graphql-ws for WebSocket on
 * the same path, and plain routes beside them.
 */
export function createGraphQLServer(options: ServerOptions) {
  const maskError = options.maskError ?? createMaskError(options.logger);
  const yoga = createYoga<{ req: IncomingMessage; res: ServerResponse }, Context>({
    schema: options.schema,
    graphqlEndpoint: GRAPHQL_PATH,
    context: options.context,
    // yoga logs every error our masking replaced at error level; the masking itself logs each at its own level.
    logging: { ...options.logger, error: options.logger.debug },
    maskedErrors: { maskError },
    graphiql: options.graphiql && {
      title: 'Tasks',
      headers: options.graphiql.headers ? JSON.stringify(options.graphiql.headers, null, 2) : undefined,
    },
    // Served from this process (graphiql.ts), not yoga's default page, which loads everything from unpkg.com.
    renderGraphiQL,
    landingPage: false,
    // enforceBodyLimit (body-limit.ts) bounds every GraphQL request body before yoga sees it; yoga's own
    // limit piped each body through a TransformStream again (3% of a createTask's CPU).
    maxRequestBodySize: false,
    plugins: [
      // Report limit violations as validation errors (given a code by useErrorCodes) rather than throwing.
      maxDepthPlugin({ n: options.limits.maxDepth, ...reportAsValidationError }),
      costLimitPlugin({ maxCost: options.limits.maxCost, ...reportAsValidationError }),
      // Every alias counts, __typename's too: the default allow-list let 1,000 of them through.
      maxAliasesPlugin({ n: options.limits.maxAliases, allowList: [], ...reportAsValidationError }),
      useDocumentLimits({ maxNesting: MAX_DOCUMENT_NESTING, maxTokens: options.limits.maxTokens }),
      useErrorCodes(),
    ],
  });

  const http = createHttpServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = options.routes[path];
    if (route) return route(req, res);
    if (options.graphiql && (await serveGraphiQLAsset(req, res, path))) return;
    if (options.dashboard && (await options.dashboard(req, res, path))) return;
    if (path === GRAPHQL_PATH && isSingleConnectionSse(req)) return refuseSingleConnectionSse(res);
    if (path === GRAPHQL_PATH && !enforceBodyLimit(req, res, options.limits.maxBodyBytes)) return;
    return yoga.requestListener(req, res);
  });

  const ws = attachGraphQLWs({
    http,
    path: GRAPHQL_PATH,
    yoga: yoga as never,
    verifyToken: options.verifyToken,
    live: options.live,
    logger: options.logger,
    keepAliveMs: options.keepAliveMs,
    clientIp: (request) => clientIp(request, options.trustProxy),
    maxPayloadBytes: options.limits.maxBodyBytes,
    maskError,
  });

  return {
    yoga,
    http,
    start(): Promise<RunningServer> {
      return new Promise((resolve, reject) => {
        http.once('error', (error: NodeJS.ErrnoException) => reject(listenError(error, options.host, options.port)));
        http.listen(options.port, options.host, () => {
          http.off('error', reject);
          const { address, port } = http.address() as AddressInfo;
          const host = address.includes(':') ? `[${address}]` : address;
          resolve({ url: `http://${host}:${port}${GRAPHQL_PATH}`, stop: () => stop(options.shutdownGraceMs ?? 10_000) });
        });
      });
    },
  };

  /**
   * Closes WebSockets (1001 going away: clients reconnect elsewhere and resume),
   * completes SSE streams, stops accepting, lets in-flight requests finish
   * within the grace period.
   */
  async function stop(graceMs: number): Promise<void> {
    await ws.dispose();
    options.live.close();
    const closed = new Promise<void>((resolve) => http.close(() => resolve()));
    http.closeIdleConnections();
    const timer = setTimeout(() => http.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
    await yoga.dispose();
  }
}

/**
 * graphql-sse's single-connection mode: a PUT reserves a stream, and later
 * requests name it with a token (header or `token` query parameter). Not
 * served: its reservations would be per-replica state behind a load balancer.
 * The distinct-connections mode (POST with `accept: text/event-stream`) and
 * WebSocket are.
 */
function isSingleConnectionSse(req: IncomingMessage): boolean {
  if (req.method === 'PUT' || req.headers['x-graphql-event-stream-token'] !== undefined) return true;
  return req.method === 'GET' && /[?&]token=/.test(req.url ?? '');
}

function refuseSingleConnectionSse(res: ServerResponse): void {
  res.setHeader('allow', 'GET, POST');
  json(res, 405, {
    errors: [
      {
        message:
          'graphql-sse single-connection mode is not supported: use its distinct-connections mode (POST with accept: text/event-stream) or graphql-ws over WebSocket',
        extensions: { code: 'BAD_USER_INPUT' },
      },
    ],
  });
}

/** Why listening failed, in words an operator can act on. */
function listenError(error: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = `${host}:${port}`;
  if (error.code === 'EADDRINUSE') return new StartupError(`${where} is already in use (set PORT or HOST)`);
  if (error.code === 'EACCES') return new StartupError(`no permission to listen on ${where}`);
  if (error.code === 'EADDRNOTAVAIL') return new StartupError(`${host} is not an address of this machine (set HOST)`);
  return error;
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
