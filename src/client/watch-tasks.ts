import type { GraphQLFormattedError } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { TOKEN_EXPIRED_CLOSE_CODE } from '../live/close-codes.js';
import type { TaskKind } from '../tasks/task.js';
import type { TaskStatus } from '../tasks/status.js';
import { DeliveredVersions } from './delivered-versions.js';
import { watchTasksDocument, type TaskStatusEvent } from './task-status-event.js';

/** The `filter` argument of `taskStatusChanged` (schema.graphql's `TaskEventFilter`). */
export interface TaskEventFilter {
  /** Only these tasks (at most 100); the watch completes when all are terminal. */
  ids?: string[];
  /** A Step Functions task and its sub-tasks. */
  parentId?: string;
  kind?: TaskKind;
  taskType?: string;
  /** Only changes into these statuses. */
  statuses?: TaskStatus[];
  /** @default false */
  includeSubTasks?: boolean;
  /** Only system_admin may name another tenant. */
  tenantCode?: string;
}

export interface WatchTasksOptions<Event = TaskStatusEvent> {
  /** The GraphQL endpoint: `ws(s)://host/graphql`; `http(s)://` is turned into `ws(s)://`. */
  url: string;
  /** A bearer token, used for every connection. */
  token?: string;
  /**
   * Asked before every connection and reconnection, so an expired token can be
   * replaced; with it, a close for token expiry (4401) is retried.
   * @default () => token
   */
  getToken?: () => string | Promise<string>;
  filter?: TaskEventFilter;
  /** Where to start: a cursor from an earlier event, or an ISO 8601 timestamp. @default live changes only */
  since?: string;
  /**
   * The fields of `taskStatusChanged` to receive; `cursor` and `task { id version }` are always added.
   * Name the matching type as `Event`.
   * @default TASK_STATUS_EVENT_SELECTION
   */
  selection?: string;
  /** Every change once, in version order per task. */
  onEvent(event: Event): void;
  /** The watch ended: the server refused it, or the connection could not be re-established. */
  onError?(error: WatchTasksError): void;
  /** The watch ended because the subscription completed (every task named in `filter.ids` is terminal). */
  onComplete?(): void;
  /**
   * The connection's state, for a status indicator: `connected` once the server
   * acknowledges a connection (the first and every reconnection), `reconnecting`
   * when it was lost and another is about to be tried. The end of the watch is
   * told by onError or onComplete.
   */
  onConnectionChange?(state: 'connected' | 'reconnecting'): void;
  /**
   * Reconnections tried in a row before giving up; the count restarts once a connection is acknowledged.
   * @default 10
   */
  retryAttempts?: number;
  /**
   * Waits before reconnection number `retries + 1`.
   * @default exponential from 0.5 s, at most 30 s, with jitter
   */
  retryWait?: (retries: number) => Promise<void>;
  /**
   * A WebSocket class: `ws` in Node before 22.
   * @default globalThis.WebSocket
   */
  webSocketImpl?: unknown;
  /**
   * Tasks whose last delivered version is remembered to drop repeats.
   * @default 5000
   */
  maxTrackedTasks?: number;
}

export interface TaskWatch {
  /** Stops watching; neither onComplete nor onError is called afterwards. */
  dispose(): void;
}

/** Why a watch ended. */
export class WatchTasksError extends Error {
  override readonly name = 'WatchTasksError';
  /** The WebSocket close code, when the connection was closed. */
  readonly closeCode?: number;
  /** The server's errors, when it refused the subscription. */
  readonly graphQLErrors?: readonly GraphQLFormattedError[];

  constructor(message: string, details: { closeCode?: number; graphQLErrors?: readonly GraphQLFormattedError[]; cause?: unknown } = {}) {
    super(message, { cause: details.cause });
    this.closeCode = details.closeCode;
    this.graphQLErrors = details.graphQLErrors;
  }
}

/**
 * Close codes a reconnection cannot fix: protocol errors, and graphql-ws's
 * refusals (4400 bad request, 4403 forbidden, 4004 bad response, 4005 client
 * error, 4406 subprotocol, 4409 duplicate id, 4429 repeated init, 4500 server
 * error). 4401 is ours for a bad or expired token: retried only with getToken.
 * Everything else is retried: 1000/1001/1006/1012 (restart, deploy, network),
 * 1011, 4008 (slow consumer: resuming is the remedy), 4029 (connection quota).
 */
const FATAL_CLOSE_CODES = new Set([1002, 1003, 1007, 1009, 4004, 4005, 4400, 4403, 4406, 4409, 4429, 4500]);

interface CloseLike {
  code: number;
  reason?: string;
}

const isCloseLike = (value: unknown): value is CloseLike =>
  typeof value === 'object' && value !== null && typeof (value as CloseLike).code === 'number' && 'reason' in value;

/** What `watchTasks` itself relies on in every event, whatever the selection. */
interface EventKeys {
  cursor: string;
  task: { id: string; version: number };
}

/** graphql-ws's dispose() awaits the connection, so it rejects when that failed: nothing to report then. */
const release = (client: Client | undefined) => void Promise.resolve(client?.dispose()).catch(() => {});

type Outcome =
  | { kind: 'completed' }
  | { kind: 'refused'; errors: readonly GraphQLFormattedError[] }
  | { kind: 'interrupted'; close?: CloseLike; error?: unknown };

/**
 * Watches task status changes over graphql-ws and resumes by itself: every
 * (re)connection subscribes anew with `since` set to the cursor of the last
 * event received and a token from `getToken`, so nothing changed while the
 * connection was down is lost, and a version already delivered is dropped.
 *
 * Each connection is a graphql-ws client of its own with `retryAttempts: 0`:
 * graphql-ws's own retry would re-send the first payload (the first `since`).
 */
export function watchTasks<Event = TaskStatusEvent>(options: WatchTasksOptions<Event>): TaskWatch {
  const webSocketImpl = options.webSocketImpl ?? (globalThis as { WebSocket?: unknown }).WebSocket;
  if (!webSocketImpl) {
    throw new TypeError("watchTasks: no WebSocket here; in Node pass `webSocketImpl` (import WebSocket from 'ws')");
  }
  const url = options.url.replace(/^http/, 'ws');
  const query = watchTasksDocument(options.selection);
  const retryAttempts = options.retryAttempts ?? 10;
  const delivered = new DeliveredVersions(options.maxTrackedTasks ?? 5_000);
  let cursor = options.since;
  let retries = 0;
  let disposed = false;
  let client: Client | undefined;
  let waitTimer: ReturnType<typeof setTimeout> | undefined;

  const wait = (retries: number): Promise<void> => {
    if (options.retryWait) return options.retryWait(retries);
    const ms = Math.min(30_000, 500 * 2 ** retries) * (0.5 + Math.random() / 2);
    return new Promise((resolve) => (waitTimer = setTimeout(resolve, ms)));
  };

  const end = (error?: WatchTasksError) => {
    disposed = true;
    release(client);
    client = undefined;
    if (error) options.onError?.(error);
    else options.onComplete?.();
  };

  const connect = () => {
    if (disposed) return;
    let over = false;
    let tokenError: { error: unknown } | undefined;

    const settle = (outcome: Outcome) => {
      if (over) return;
      over = true;
      release(connection);
      if (client === connection) client = undefined;
      if (disposed) return;
      if (outcome.kind === 'completed') return end();
      if (outcome.kind === 'refused') {
        const messages = outcome.errors.map((error) => error.message).join('; ');
        return end(new WatchTasksError(`taskStatusChanged refused: ${messages}`, { graphQLErrors: outcome.errors }));
      }
      const { close } = outcome;
      const failure = tokenError
        ? new WatchTasksError('getToken failed', { cause: tokenError.error, closeCode: close?.code })
        : close
          ? new WatchTasksError(`connection closed: ${close.code}${close.reason ? ` ${close.reason}` : ''}`, {
              closeCode: close.code,
              cause: close,
            })
          : new WatchTasksError(`connection failed: ${String(outcome.error)}`, { cause: outcome.error });
      const retryable =
        tokenError !== undefined ||
        close === undefined ||
        (close.code === TOKEN_EXPIRED_CLOSE_CODE ? options.getToken !== undefined : !FATAL_CLOSE_CODES.has(close.code));
      if (!retryable || retries >= retryAttempts) return end(failure);
      options.onConnectionChange?.('reconnecting');
      wait(retries++).then(connect, (error: unknown) => end(new WatchTasksError('retryWait failed', { cause: error })));
    };

    const connection = createClient({
      url,
      webSocketImpl,
      lazy: true,
      retryAttempts: 0,
      // Called for this connection only, so every reconnection asks for a token again.
      connectionParams: async () => {
        try {
          const token = options.getToken ? await options.getToken() : options.token;
          return token ? { authorization: `Bearer ${token}` } : {};
        } catch (error) {
          tokenError = { error };
          throw error;
        }
      },
      on: {
        connected: () => {
          retries = 0;
          if (!over && !disposed) options.onConnectionChange?.('connected');
        },
        // Told apart from a clean close (1000), which graphql-ws also reports as `complete`.
        message: (message) => {
          if (message.type === 'complete') settle({ kind: 'completed' });
        },
        closed: (event) => settle({ kind: 'interrupted', close: isCloseLike(event) ? event : undefined }),
      },
    });
    client = connection;

    // Read now, not when watchTasks was called: this is the resume point.
    const variables = { filter: options.filter, since: cursor };
    connection.subscribe<{ taskStatusChanged: Event & EventKeys }>(
      { query, variables },
      {
        next: (result) => {
          if (over) return;
          const event = result.data?.taskStatusChanged;
          if (!event) {
            if (result.errors?.length) settle({ kind: 'refused', errors: result.errors });
            return;
          }
          cursor = event.cursor;
          if (delivered.admit(event.task.id, event.task.version)) options.onEvent(event);
        },
        error: (error) => {
          if (Array.isArray(error)) settle({ kind: 'refused', errors: error as GraphQLFormattedError[] });
          else settle({ kind: 'interrupted', close: isCloseLike(error) ? error : undefined, error });
        },
        complete: () => settle({ kind: 'interrupted' }),
      },
    );
  };

  connect();
  return {
    dispose() {
      disposed = true;
      clearTimeout(waitTimer);
      release(client);
      client = undefined;
    },
  };
}
