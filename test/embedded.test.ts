import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { startApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createDynamoClients } from '../src/aws/dynamo-client.js';
import { createTaskTable } from '../src/aws/task-table.js';
import { startDynalite } from '../src/embedded/dynalite.js';
import { createLogger } from '../src/logger.js';
import { CREATE_TASK, GET_TASK, LIST_TASKS, TEST_SECRET } from './helpers/app.js';

const logger = createLogger('silent');
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function post(url: string, token: string, query: string, variables?: unknown) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: any; errors?: any[] };
}

describe('the embedded default', () => {
  test('prints a working dev token; tasks and the token survive a restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tasks-embedded-'));
    dirs.push(dataDir);
    const config = loadConfig({ DATA_DIR: dataDir, PORT: '0' });
    expect(config.storage).toEqual({ mode: 'embedded', dataDir, tableName: 'tasks' });

    const first = await startApp(config, { logger });
    expect(first.devToken).toBeTruthy();
    // A type without a handler: it is queued, and stays QUEUED for a backend to process.
    const created = await post(first.url, first.devToken!, CREATE_TASK, { input: { taskType: 'REPORT', input: { hi: 1 } } });
    expect(created.data.createTask).toMatchObject({ tenantCode: 'demo', status: 'CREATED', createdBy: 'dev' });
    await first.stop();

    const second = await startApp(config, { logger });
    try {
      // The first run's token still verifies: the development secret is kept beside the data.
      const found = await post(second.url, first.devToken!, GET_TASK, { id: created.data.createTask.id });
      const { status, version, updatedAt, updatedBy, ...unchanged } = created.data.createTask;
      expect(found.data.task).toMatchObject({ ...unchanged, status: 'QUEUED', version: 2, updatedBy: 'system:worker' });
      const listed = await post(second.url, second.devToken!, LIST_TASKS, {});
      expect(listed.data.tasks.edges.map((edge: any) => edge.node.id)).toEqual([created.data.createTask.id]);
    } finally {
      await second.stop();
    }
  });

  test('serves /healthz and /readyz, and GraphiQL on GET /graphql', async () => {
    const app = await startApp(loadConfig({ DATA_DIR: ':memory:', PORT: '0' }), { logger });
    try {
      const base = app.url.replace('/graphql', '');
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready' });
      const graphiql = await fetch(app.url, { headers: { accept: 'text/html' } });
      expect(graphiql.status).toBe(200);
      const html = await graphiql.text();
      expect(html).toContain('GraphiQL');
      // The dev token is pre-filled in GraphiQL's headers editor.
      expect(html).toContain(app.devToken!);
    } finally {
      await app.stop();
    }
  });

  test('GRAPHIQL=false serves no GraphiQL page', async () => {
    const app = await startApp(loadConfig({ DATA_DIR: ':memory:', PORT: '0', GRAPHIQL: 'false' }), { logger });
    try {
      const page = await fetch(app.url, { headers: { accept: 'text/html' } });
      expect(await page.text()).not.toContain('GraphiQL');
    } finally {
      await app.stop();
    }
  });
});

describe('the embedded DynamoDB', () => {
  /** A PutItem on a raw socket: dynalite checks the form of a signature, not the signature. */
  const putItem = (host: string, i: number) => {
    const body = JSON.stringify({
      TableName: 'tasks',
      Item: { pk: { S: 'TASK#closing' }, sk: { S: `WRITE#${i}` }, status: { S: 'CREATED' } },
    });
    return [
      'POST / HTTP/1.1',
      `Host: ${host}`,
      'Content-Type: application/x-amz-json-1.0',
      'X-Amz-Target: DynamoDB_20120810.PutItem',
      'X-Amz-Date: 20260101T000000Z',
      'Authorization: AWS4-HMAC-SHA256 Credential=l/20260101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
  };

  test('closing while writes are under way: each is answered or refused, never an uncaught "Database is closed"', async () => {
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', record);
    try {
      for (let round = 0; round < 10; round++) {
        const dir = await mkdtemp(join(tmpdir(), 'dynalite-close-'));
        const embedded = await startDynalite(dir);
        const { client } = createDynamoClients({ endpoint: embedded.endpoint, local: true });
        await createTaskTable(client, 'tasks');
        client.destroy();
        // Clients that go away mid-request, as an app's do when it stops, then the database closes.
        const { host, port } = new URL(embedded.endpoint);
        const sockets = Array.from({ length: 30 }, (_, i) => {
          const socket = connect(Number(port), '127.0.0.1').on('error', () => {});
          socket.write(putItem(host, i));
          return socket;
        });
        await new Promise((resolve) => setTimeout(resolve, round));
        for (const socket of sockets) socket.destroy();
        await embedded.close();
        await new Promise((resolve) => setTimeout(resolve, 50));
        await rm(dir, { recursive: true, force: true });
      }
      expect(uncaught.map(String)).toEqual([]);
    } finally {
      process.off('uncaughtException', record);
    }
  });
});

describe('DynamoDB mode', () => {
  test('a missing table stops start-up with the command to run', async () => {
    const dynamo = await startDynalite();
    // The SDK reads credentials from the process environment, as it would on AWS.
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'local');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'local');
    try {
      const config = loadConfig({
        DYNAMODB_ENDPOINT: dynamo.endpoint,
        AWS_REGION: 'local',
        TASKS_TABLE: 'absent-table',
        JWT_SECRET: TEST_SECRET,
        PORT: '0',
      });
      await expect(startApp(config, { logger })).rejects.toThrow(/npm run create-table/);
    } finally {
      vi.unstubAllEnvs();
      await dynamo.close();
    }
  });

  test('refuses to start without JWT settings', () => {
    expect(() => loadConfig({ TASKS_TABLE: 'tasks', AWS_REGION: 'eu-west-1' })).toThrow(/JWT_SECRET or JWKS_URL/);
  });

  test('bad settings name the variable', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ JWT_SECRET: 'short' })).toThrow(/JWT_SECRET/);
    expect(() => loadConfig({ TASK_RETENTION_DAYS: '0' })).toThrow(/TASK_RETENTION_DAYS/);
    expect(() => loadConfig({ TASK_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/tasks' })).toThrow(/SNS_TOPIC_ARN/);
  });
});
