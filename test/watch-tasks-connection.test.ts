/**
 * watchTasks' onConnectionChange, which the dashboard's badge shows: told
 * `connected` on every acknowledged connection and `reconnecting` when one is
 * lost, across a restart on the same port.
 */
import { afterAll, expect, test } from 'vitest';
import WebSocket from 'ws';
import { startApp, type RunningApp } from '../src/app.js';
import { mintToken } from '../src/auth/mint-token.js';
import { watchTasks } from '../src/client/index.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { TEST_SECRET } from './helpers/app.js';
import { until } from './helpers/wait.js';

const env = { DATA_DIR: ':memory:', JWT_SECRET: TEST_SECRET, HOST: '127.0.0.1', TASK_EXECUTION: 'false', SHUTDOWN_GRACE_MS: '0' };
const logger = createLogger('silent');
const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

test('connected, reconnecting while the server is away, connected again; nothing after dispose', async () => {
  let server: RunningApp = await startApp(loadConfig({ ...env, PORT: '0' }), { logger });
  cleanup.push(() => server.stop());
  const states: string[] = [];
  const watch = watchTasks({
    url: server.url,
    webSocketImpl: WebSocket,
    token: await mintToken({ secret: TEST_SECRET, tenantCode: 't', userId: 'u' }),
    retryWait: () => new Promise((resolve) => setTimeout(resolve, 50)),
    onEvent: () => {},
    onConnectionChange: (state) => states.push(state),
  });
  cleanup.push(() => watch.dispose());
  await until('the first connection', () => states.length === 1);
  expect(states).toEqual(['connected']);

  await server.stop();
  await until('the lost connection', () => states.includes('reconnecting'));
  server = await startApp(loadConfig({ ...env, PORT: new URL(server.url).port }), { logger });
  await until('the reconnection', () => states.at(-1) === 'connected');
  // Every failed try while the server was down is one more `reconnecting`, never a `connected`.
  expect(states[0]).toBe('connected');
  expect(states.slice(1, -1).every((state) => state === 'reconnecting')).toBe(true);

  watch.dispose();
  const told = states.length;
  await server.stop();
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(states).toHaveLength(told);
});
