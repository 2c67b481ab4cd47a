import type { IncomingMessage } from 'node:http';
import type { Identity, TokenVerifier } from './auth/verify-token.js';
import type { ViewerTokenIssuer } from './auth/viewer-token.js';
import type { LiveTasks } from './live/live-tasks.js';
import type { LiveSink } from './live/sink.js';
import { TaskError } from './errors.js';
import { toGraphQLError } from './server/mask-error.js';
import type { TaskCancellation } from './tasks/cancellation.js';
import type { Actor } from './tasks/task.js';
import type { TaskService } from './tasks/task-service.js';

/** What every resolver receives: who is acting, and the services to act with. */
export interface Context {
  actor: Actor;
  /** When the caller's token expires, epoch seconds. */
  expiresAt: number;
  tasks: TaskService;
  live: LiveTasks;
  cancellation: TaskCancellation;
  /** Signs viewer tokens; absent when the server has no secret for them (JWKS_URL only). */
  viewerTokens?: ViewerTokenIssuer;
  /** Set on WebSocket subscriptions: the sink the subscription engine writes this operation's events to. */
  liveSink?: LiveSink;
}

/** What the WebSocket transport hands over, having verified the token at connection_init. */
export interface SocketContext {
  identity: Identity;
  /** The client address, read from the upgrade request (the transport does not keep the request). */
  ip: string | undefined;
  liveSink: LiveSink;
}

export interface ContextDependencies {
  verifyToken: TokenVerifier;
  tasks: TaskService;
  live: LiveTasks;
  cancellation: TaskCancellation;
  viewerTokens?: ViewerTokenIssuer;
  /** Take the client address from X-Forwarded-For (behind a load balancer). */
  trustProxy: boolean;
}

/** The client address of a request, honouring a trusted proxy's X-Forwarded-For. */
export function clientIp(req: IncomingMessage | undefined, trustProxy: boolean): string | undefined {
  if (!req) return undefined;
  const forwarded = req.headers['x-forwarded-for'];
  if (trustProxy && typeof forwarded === 'string' && forwarded.trim() !== '') {
    return forwarded.split(',')[0]!.trim();
  }
  return req.socket.remoteAddress;
}

/** yoga's context factory: verifies the token before any resolver runs. */
export function createContextFactory(deps: ContextDependencies) {
  return async (initial: { request?: Request; req?: IncomingMessage } & Partial<SocketContext>): Promise<Context> => {
    const { request, req } = initial;
    const identity =
      initial.identity ??
      (await deps.verifyToken(request?.headers.get('authorization')).catch((error: unknown) => {
        // A refused token ends the request with its HTTP status (401) and is no server error.
        throw error instanceof TaskError ? toGraphQLError(error, undefined, true) : error;
      }));
    return {
      actor: {
        userId: identity.userId,
        tenantCode: identity.tenantCode,
        isAdmin: identity.isAdmin,
        scope: identity.scope,
        // A WebSocket subscription brings the address its transport read from the upgrade request.
        ip: initial.ip ?? clientIp(req, deps.trustProxy),
        requestId: request?.headers.get('x-request-id') ?? undefined,
      },
      expiresAt: identity.expiresAt,
      tasks: deps.tasks,
      live: deps.live,
      cancellation: deps.cancellation,
      viewerTokens: deps.viewerTokens,
      liveSink: initial.liveSink,
    };
  };
}
