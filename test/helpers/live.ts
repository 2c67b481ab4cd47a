import { createClient, type Client } from 'graphql-ws';
import { afterAll } from 'vitest';
import WebSocket from 'ws';

const disposers: (() => unknown)[] = [];
afterAll(async () => {
  for (const dispose of disposers.splice(0)) await dispose();
});

export const TASK_EVENT_FIELDS = `action previousStatus replayed cursor task { id status version attempt updatedAt attributes parentId kind type tenantCode }`;

export const SUBSCRIBE = `subscription($filter: TaskEventFilter, $since: String) {
  taskStatusChanged(filter: $filter, since: $since) { ${TASK_EVENT_FIELDS} }
}`;

export interface Collected<T = any> {
  events: T[];
  errors: unknown[];
  completed: boolean;
  /** Resolves once `count` events arrived (or the stream ended). */
  waitFor(count: number, timeoutMs?: number): Promise<T[]>;
  /** Resolves when the stream completes or fails. */
  done: Promise<void>;
  stop(): void;
}

function collector<T>(): Collected<T> & { push(event: T): void; end(error?: unknown): void } {
  const waiters: { count: number; resolve: () => void }[] = [];
  let endDone!: () => void;
  const done = new Promise<void>((resolve) => (endDone = resolve));
  const state = {
    events: [] as T[],
    errors: [] as unknown[],
    completed: false,
    done,
    stop: () => {},
    push(event: T) {
      state.events.push(event);
      for (const waiter of [...waiters]) if (state.events.length >= waiter.count) waiter.resolve();
    },
    end(error?: unknown) {
      if (error !== undefined) state.errors.push(error);
      state.completed = true;
      for (const waiter of waiters) waiter.resolve();
      endDone();
    },
    waitFor(count: number, timeoutMs = 10_000) {
      return new Promise<T[]>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `waited for ${count} events, got ${state.events.length}: ${JSON.stringify(state.events.map((e: any) => (e?.task ? `${e.task.id}@${e.task.version}` : e)))}`,
              ),
            ),
          timeoutMs,
        );
        const finish = () => {
          clearTimeout(timer);
          resolve(state.events);
        };
        if (state.events.length >= count || state.completed) return finish();
        waiters.push({ count, resolve: finish });
      });
    },
  };
  return state;
}

/** A graphql-ws client on a real WebSocket; closed after the file's tests. */
export function wsClient(httpUrl: string, token: string | null, extra: Partial<Parameters<typeof createClient>[0]> = {}): Client {
  const client = createClient({
    url: httpUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: token === null ? {} : { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
    ...extra,
  });
  disposers.push(() => client.dispose());
  return client;
}

/** Subscribes over graphql-ws and collects `taskStatusChanged` payloads. */
export function subscribeWs(client: Client, variables: Record<string, unknown> = {}, query = SUBSCRIBE): Collected {
  const out = collector<any>();
  out.stop = client.subscribe(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) out.errors.push(...result.errors);
        if (result.data) out.push((result.data as any).taskStatusChanged ?? result.data);
      },
      error: (error) => out.end(error),
      complete: () => out.end(),
    },
  );
  return out;
}

/**
 * GraphQL over Server-Sent Events, as a browser's EventSource-less client
 * would do it with fetch: POST with `accept: text/event-stream`, parse frames.
 */
export function subscribeSse(httpUrl: string, token: string, variables: Record<string, unknown> = {}, query = SUBSCRIBE) {
  const out = collector<any>() as ReturnType<typeof collector<any>> & { status: Promise<number> };
  const abort = new AbortController();
  out.stop = () => abort.abort();
  disposers.push(() => abort.abort());
  let setStatus!: (status: number) => void;
  out.status = new Promise((resolve) => (setStatus = resolve));
  (async () => {
    const response = await fetch(httpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
      signal: abort.signal,
    });
    setStatus(response.status);
    if (!response.body) return out.end();
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let split: number;
      while ((split = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, split);
        buffer = buffer.slice(split + 2);
        const event = /^event: (.*)$/m.exec(frame)?.[1];
        const data = frame
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (event === 'complete') return out.end();
        if (!data) continue;
        const result = JSON.parse(data);
        if (result.errors) out.errors.push(...result.errors);
        if (result.data) out.push(result.data.taskStatusChanged ?? result.data);
      }
    }
    out.end();
  })().catch((error) => {
    if (!abort.signal.aborted) out.end(error);
    else out.end();
  });
  return out;
}
