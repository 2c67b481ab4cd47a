import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import type { GraphQLSchema } from 'graphql';
import { createYoga } from 'graphql-yoga';
import type { Context } from '../context.js';
import type { Logger } from '../logger.js';
import { enforceBodyLimit } from './body-limit.js';
import { createMaskError } from './mask-error.js';
import { useErrorCodes } from './use-error-codes.js';

export interface ServerLimits {
  maxBodyBytes: number;
  maxDepth: number;
  maxCost: number;
  maxAliases: number;
}

export interface ServerOptions {
  schema: GraphQLSchema;
  context: (initial: { request: Request; req?: IncomingMessage }) => Promise<Context>;
  logger: Logger;
  host: string;
  port: number;
  limits: ServerLimits;
  /** Resolves when the backing table answers; drives /readyz. */
  checkReady: () => Promise<void>;
  /** false disables GraphiQL; an object pre-fills its headers editor. */
  graphiql: false | { headers?: Record<string, string> };
  /** How long in-flight requests get on stop before their sockets are closed. */
  shutdownGraceMs?: number;
}

export interface RunningServer {
  url: string;
  stop(): Promise<void>;
}

export const GRAPHQL_PATH = '/graphql';

/** yoga on node:http, plus health endpoints and a request body limit. */
export function createServer(options: ServerOptions) {
  const yoga = createYoga<{ req: IncomingMessage; res: ServerResponse }, Context>({
    schema: options.schema,
    graphqlEndpoint: GRAPHQL_PATH,
    context: options.context,
    logging: options.logger,
    maskedErrors: { maskError: createMaskError(options.logger) },
    graphiql: options.graphiql && {
      title: 'Tasks',
      headers: options.graphiql.headers ? JSON.stringify(options.graphiql.headers, null, 2) : undefined,
    },
    landingPage: false,
    plugins: [
      maxDepthPlugin({ n: options.limits.maxDepth }),
      costLimitPlugin({ maxCost: options.limits.maxCost }),
      maxAliasesPlugin({ n: options.limits.maxAliases }),
      useErrorCodes(),
    ],
  });

  const http = createHttpServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      try {
        await options.checkReady();
        return json(res, 200, { status: 'ready' });
      } catch (error) {
        options.logger.warn('readiness check failed', error);
        return json(res, 503, { status: 'unavailable' });
      }
    }
    if (path === GRAPHQL_PATH && !enforceBodyLimit(req, res, options.limits.maxBodyBytes)) return;
    return yoga.requestListener(req, res);
  });

  return {
    yoga,
    http,
    start(): Promise<RunningServer> {
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(options.port, options.host, () => {
          http.off('error', reject);
          const { address, port } = http.address() as AddressInfo;
          const host = address.includes(':') ? `[${address}]` : address;
          resolve({ url: `http://${host}:${port}${GRAPHQL_PATH}`, stop: () => stop(options.shutdownGraceMs ?? 10_000) });
        });
      });
    },
  };

  /** Stops accepting, lets in-flight requests finish within the grace period, then closes what is left. */
  async function stop(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => http.close(() => resolve()));
    http.closeIdleConnections();
    const timer = setTimeout(() => http.closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
    await yoga.dispose();
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
