import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { startApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { claimDataDir } from '../src/embedded/data-dir.js';
import { StartupError } from '../src/lifecycle.js';
import { createLogger } from '../src/logger.js';
import { Lru } from '../src/lru.js';
import { CREATE_TASK, GET_TASK, TEST_SECRET } from './helpers/app.js';
import { SUBSCRIBE } from './helpers/live.js';
import { mintToken } from '../src/auth/mint-token.js';
import { until } from './helpers/wait.js';

const logger = createLogger('silent');
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tasks-lifecycle-'));
  dirs.push(dir);
  return dir;
};

describe('start-up errors an operator can act on', () => {
  test('a port in use is a StartupError naming the address', async () => {
    const first = await startApp(loadConfig({ DATA_DIR: ':memory:', PORT: '0', JWT_SECRET: TEST_SECRET }), { logger });
    try {
      const port = new URL(first.url).port;
      const second = startApp(loadConfig({ DATA_DIR: ':memory:', PORT: port, JWT_SECRET: TEST_SECRET }), { logger });
      await expect(second).rejects.toThrow(StartupError);
      await expect(second).rejects.toThrow(`127.0.0.1:${port} is already in use`);
    } finally {
      await first.stop();
    }
  });

  test('a DATA_DIR that is a file is a StartupError', async () => {
    const file = join(await tempDir(), 'not-a-dir');
    await writeFile(file, '');
    await expect(claimDataDir(file)).rejects.toThrow(`DATA_DIR ${file} is a file, not a directory`);
  });

  test('a DATA_DIR claimed by a running process is refused; a claim left by a dead one is taken over', async () => {
    const dir = await tempDir();
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await writeFile(join(dir, 'server.pid'), String(sleeper.pid));
      await expect(claimDataDir(dir)).rejects.toThrow(`is in use by another server (pid ${sleeper.pid})`);
    } finally {
      sleeper.kill('SIGKILL');
      await new Promise((resolve) => sleeper.once('exit', resolve));
    }
    const release = await claimDataDir(dir);
    await release();
  });

  test('two servers on one DATA_DIR: the second refuses to start, the first keeps working', async () => {
    const dir = await tempDir();
    const first = await startApp(loadConfig({ DATA_DIR: dir, PORT: '0' }), { logger });
    try {
      await expect(startApp(loadConfig({ DATA_DIR: dir, PORT: '0' }), { logger })).rejects.toThrow(StartupError);
      const created = await gql(first.url, first.devToken!, CREATE_TASK, { input: { taskType: 'REPORT', input: {} } });
      expect(created.data.createTask.status).toBe('CREATED');
    } finally {
      await first.stop();
    }
    // Released on stop: the next start takes it.
    const again = await startApp(loadConfig({ DATA_DIR: dir, PORT: '0' }), { logger });
    await again.stop();
  });
});

describe('shutdown', () => {
  test('within SHUTDOWN_GRACE_MS and a small margin, with a task running and an SSE stream that ends cleanly', async () => {
    const graceMs = 1_000;
    const app = await startApp(
      loadConfig({ DATA_DIR: ':memory:', PORT: '0', JWT_SECRET: TEST_SECRET, SHUTDOWN_GRACE_MS: String(graceMs) }),
      { logger },
    );
    const token = await mintToken({ secret: TEST_SECRET, tenantCode: 'bye', userId: 'u' });
    const created = await gql(app.url, token, CREATE_TASK, { input: { taskType: 'SLEEP', input: { ms: 60_000 } } });
    const id = created.data.createTask.id;
    await until(
      'the task to run',
      async () => (await gql(app.url, token, GET_TASK, { id })).data.task.status,
      (s) => s === 'PROCESSING',
    );

    const response = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: SUBSCRIBE, variables: {} }),
    });
    const stream = (async () => {
      let text = '';
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk);
      return text;
    })();

    const started = Date.now();
    await app.stop();
    const tookMs = Date.now() - started;
    // The handler is aborted after the grace period, and the abort gets a short wait of its own.
    expect(tookMs).toBeLessThan(graceMs + 2_500);
    // The stream completed (graphql-sse's `complete` event) and ended without a socket error.
    expect(await stream).toMatch(/event: complete/);
  });
});

describe('Lru', () => {
  test('expired entries are dropped as new ones are set, so its size follows the recent rate', () => {
    let now = 0;
    const lru = new Lru<number, true>(1_000_000, 1_000, () => now);
    for (let i = 0; i < 10_000; i++) {
      now = i;
      lru.set(i, true);
    }
    expect(lru.size).toBe(1_001);
    expect(lru.has(9_000)).toBe(true);
    expect(lru.has(8_000)).toBe(false);
  });
});

async function gql(url: string, token: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data: any; errors?: any[] };
}
