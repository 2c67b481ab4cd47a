import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Request/response over the Node IPC channel between the bench runner and its
 * children (service wrapper, bare ws baseline, load client). Every call has a
 * timeout; a child that dies rejects every pending call.
 */

export interface Request {
  id: number;
  cmd: string;
  args?: unknown;
}

export interface Response {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export type Handlers = Record<string, (args: any) => unknown>;

/** In a child: answers requests from the parent with `handlers`. */
export function serveIpc(handlers: Handlers): void {
  if (!process.send) throw new Error('not started with an IPC channel');
  process.on('message', async (message: Request) => {
    if (!message || typeof message.id !== 'number') return;
    let response: Response;
    try {
      const handler = handlers[message.cmd];
      if (!handler) throw new Error(`unknown command ${message.cmd}`);
      response = { id: message.id, ok: true, result: await handler(message.args) };
    } catch (error) {
      response = { id: message.id, ok: false, error: error instanceof Error ? `${error.message}\n${error.stack}` : String(error) };
    }
    process.send!(response);
  });
  // The parent going away ends the child.
  process.on('disconnect', () => process.exit(0));
}

export interface Child {
  name: string;
  process: ChildProcess;
  call<T = any>(cmd: string, args?: unknown, timeoutMs?: number): Promise<T>;
  /** Resolves once the child sent { ready: ... }. */
  ready: Promise<any>;
  stop(timeoutMs?: number): Promise<void>;
}

const TSX = fileURLToPath(import.meta.resolve('tsx'));

/**
 * Starts `script` under node with tsx, with an IPC channel, via bash so the
 * soft descriptor limit can be raised to `nofile` (or to the hard limit when
 * that is lower).
 */
export function startChild(
  name: string,
  script: string,
  options: { env?: Record<string, string>; nodeArgs?: string[]; nofile?: number; readyTimeoutMs?: number } = {},
): Child {
  const nofile = options.nofile ?? 65536;
  const nodeArgs = ['--import', TSX, ...(options.nodeArgs ?? []), script];
  const shell = `ulimit -n ${nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"`;
  const child = spawn('bash', ['-c', shell, process.execPath, ...nodeArgs], {
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...options.env },
  });
  // Children log JSON lines on stderr; pass them through, prefixed.
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    partial += chunk;
    let newline: number;
    while ((newline = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, newline);
      partial = partial.slice(newline + 1);
      if (line.trim()) process.stderr.write(`  [${name}] ${line.slice(0, 2000)}\n`);
    }
  });

  let nextId = 1;
  const pending = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  let exited = false;
  let resolveReady!: (value: any) => void;
  let rejectReady!: (error: Error) => void;
  const ready = new Promise<any>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  const readyTimer = setTimeout(() => rejectReady(new Error(`${name} not ready in time`)), options.readyTimeoutMs ?? 60_000);
  void ready.catch(() => {}).finally(() => clearTimeout(readyTimer));

  child.on('message', (message: any) => {
    if (message && 'ready' in message) return resolveReady(message.ready);
    if (message && 'readyError' in message) return rejectReady(new Error(`${name} failed to start: ${message.readyError}`));
    const entry = pending.get(message?.id);
    if (!entry) return;
    pending.delete(message.id);
    clearTimeout(entry.timer);
    if (message.ok) entry.resolve(message.result);
    else entry.reject(new Error(`${name}: ${message.error}`));
  });
  child.on('exit', (code, signal) => {
    exited = true;
    const error = new Error(`${name} exited (code ${code}, signal ${signal})`);
    rejectReady(error);
    for (const entry of pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(error);
    }
    pending.clear();
  });

  return {
    name,
    process: child,
    ready,
    call(cmd, args, timeoutMs = 60_000) {
      if (exited) return Promise.reject(new Error(`${name} has exited`));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name}: ${cmd} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve, reject, timer });
        child.send({ id, cmd, args } satisfies Request);
      });
    },
    async stop(timeoutMs = 15_000) {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        child.disconnect();
      } catch {
        // already disconnected
      }
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** In a child: tells the parent it is ready (or why it is not). */
export function signalReady(info: unknown): void {
  process.send!({ ready: info });
}

export function signalReadyError(error: unknown): void {
  process.send!({ readyError: error instanceof Error ? `${error.message}\n${error.stack}` : String(error) });
}
