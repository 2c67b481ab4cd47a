import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import type { GraphQLResponse } from './app.js';

/**
 * The real server (`src/main.ts`, the embedded default: dynalite on DATA_DIR,
 * the local queue and the local Step Functions interpreter) as a child process
 * that a test can SIGKILL and start again on the same data directory.
 *
 * Every child still alive and every data directory made here is killed and
 * removed after the file's tests, whatever happened.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Variables src/config.ts reads that would take the child out of the embedded default, or make it differ between runs. */
const CONFIG_VARIABLES = [
  'AWS_REGION',
  'DATA_DIR',
  'DYNAMODB_ENDPOINT',
  'EXAMPLE_HANDLERS',
  'GRAPHIQL',
  'HANDLERS_MODULE',
  'HOST',
  'JWKS_URL',
  'JWT_ADMIN_ROLE',
  'JWT_AUDIENCE',
  'JWT_ISSUER',
  'JWT_ROLES_CLAIM',
  'JWT_SECRET',
  'JWT_TENANT_CLAIM',
  'JWT_USER_CLAIM',
  'LOG_LEVEL',
  'MAX_BODY_BYTES',
  'MAX_CONNECTIONS_PER_TENANT',
  'MAX_QUERY_ALIASES',
  'MAX_QUERY_COST',
  'MAX_QUERY_DEPTH',
  'MAX_QUEUED_EVENTS',
  'MAX_SUBSCRIPTIONS_PER_CONNECTION',
  'PARENT_EVENT_WINDOW_MS',
  'PORT',
  'PROGRESS_INTERVAL_MS',
  'PUBLIC_URL',
  'SFN_MAX_CONCURRENCY',
  'SFN_TASK_ARN',
  'SHUTDOWN_GRACE_MS',
  'SNS_ALARM_TOPIC_ARN',
  'SNS_TOPIC_ARN',
  'TASKS_TABLE',
  'TASK_EXECUTION',
  'TASK_LEASE_MS',
  'TASK_QUEUE_URL',
  'TASK_RETENTION_DAYS',
  'TRUST_PROXY',
  'WORKER_CONCURRENCY',
  'WS_KEEPALIVE_MS',
];

export interface ChildServer {
  /** e.g. http://127.0.0.1:41234/graphql */
  readonly url: string;
  /** The development token main printed (tenant "demo"); valid for every server on the same DATA_DIR. */
  readonly token: string;
  readonly dataDir: string;
  readonly pid: number;
  /** Milliseconds from spawn to the start-up banner. */
  readonly startMs: number;
  /** Everything the child wrote to stdout and stderr so far. */
  output(): string;
  /** POSTs a GraphQL operation with the development token. Rejects when the server is gone. */
  post<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<T>>;
  /** SIGKILL; resolves once the child has exited. */
  kill(): Promise<void>;
  /** SIGTERM (graceful stop), SIGKILL after `graceMs`; resolves once the child has exited. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: boolean;
}

const children = new Set<ChildProcess>();
const dataDirs: string[] = [];

const killAll = () => {
  for (const child of children) child.kill('SIGKILL');
};
// A vitest worker that dies without running afterAll must not leave servers behind.
process.once('exit', killAll);

afterAll(async () => {
  const alive = [...children];
  killAll();
  await Promise.all(alive.map((child) => exitOf(child)));
  await Promise.all(dataDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** A fresh temporary data directory, removed after the file's tests. */
export async function tempDataDir(prefix = 'tasks-child-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dataDirs.push(dir);
  return dir;
}

/**
 * Starts `node --import tsx src/main.ts` on `dataDir` (PORT=0 on 127.0.0.1,
 * LOG_LEVEL=warn, the development token) plus `env`, and waits for its banner.
 */
export async function startChildServer(options: {
  dataDir: string;
  env?: Record<string, string>;
  startTimeoutMs?: number;
}): Promise<ChildServer> {
  const { dataDir, env = {}, startTimeoutMs = 30_000 } = options;
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of CONFIG_VARIABLES) delete childEnv[name];
  Object.assign(childEnv, {
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...env,
  });

  const spawnedAt = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));

  const banner = await new Promise<{ url: string; token: string }>((resolve, reject) => {
    const check = () => {
      const url = /^Task API on (\S+)/m.exec(output)?.[1];
      const token = /^Authorization: Bearer (\S+)$/m.exec(output)?.[1];
      if (url && token) finish(() => resolve({ url, token }));
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(() => reject(new Error(`the server exited (${code ?? signal}) before it started:\n${output}`)));
    const timer = setTimeout(
      () => finish(() => reject(new Error(`the server did not start within ${startTimeoutMs} ms:\n${output}`))),
      startTimeoutMs,
    );
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.off('exit', onExit);
      settle();
    };
    child.stdout!.on('data', check);
    child.once('exit', onExit);
  }).catch(async (error: unknown) => {
    child.kill('SIGKILL');
    await exitOf(child);
    throw error;
  });
  const startMs = Date.now() - spawnedAt;

  const exited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    url: banner.url,
    token: banner.token,
    dataDir,
    pid: child.pid!,
    startMs,
    output: () => output,
    get exited() {
      return exited();
    },
    async post(query, variables) {
      const response = await fetch(banner.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${banner.token}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as GraphQLResponse<any>;
      return { status: response.status, data: body.data, errors: body.errors };
    },
    async kill() {
      child.kill('SIGKILL');
      await exitOf(child);
    },
    async stop(graceMs = 10_000) {
      if (exited()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exitOf(child);
      clearTimeout(timer);
    },
  };
}
