/**
 * `npm run bench:write-path`: where a createTask and an updateStatus spend
 * their CPU, layer by layer. DynamoDB's stand-in (dynalite) runs in a process
 * of its own, the callers in the load client; the service runs in this
 * process against that endpoint, as a replica runs against DynamoDB. Each
 * layer does the same write at concurrency 32:
 *
 *   raw    the SDK call from a caller (the load client): PutItem / UpdateItem
 *   store  DynamoTaskStore in this process: the DynamoDB call (DynamoWire) plus item mapping
 *   domain TaskService: validation, codes, the conditional write, publishing
 *   plain  the same input as JSON over HTTP from the load client, with the
 *          token check, to a bare node:http handler calling TaskService: the
 *          floor of a request without GraphQL
 *   http   the GraphQL mutation over HTTP from the load client
 *
 * It prints CPU µs per operation in each process. Figures move with the
 * machine's load: compare layers of one run, not runs.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startApp } from '../../src/app.js';
import { mintToken } from '../../src/auth/mint-token.js';
import { createTokenVerifier } from '../../src/auth/verify-token.js';
import { createDynamoClients } from '../../src/aws/dynamo-client.js';
import { createTaskTable } from '../../src/aws/task-table.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { requireTaskId } from '../../src/tasks/keys.js';
import type { StatusChange } from '../../src/tasks/status-change.js';
import type { Actor, Task } from '../../src/tasks/task.js';
import { startChild } from './lib/ipc.js';
import { taskFor } from './lib/task-items.js';
import { cpuProfiler } from './lib/probe.js';

const COUNT = Number(process.env.BENCH_WRITE_OPS ?? 3000);
const CONCURRENCY = 32;
const WARM_UP = 300;
const SECRET = 'write-path-bench-secret-of-at-least-32-chars';
const TABLE = 'tasks';
/** BENCH_CPU_PROF=<dir>: a CPU profile of this process per measured layer. */
const profiler = cpuProfiler(process.env.BENCH_CPU_PROF);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

interface Cpu {
  service: number;
  dynamo: number;
  caller: number;
}

const dynamo = startChild('dynalite', here('./dynalite-server.ts'));
const client = startChild('load-client', here('./load-client.ts'));
const { endpoint } = await dynamo.ready;
await client.ready;
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});
await createTaskTable(createDynamoClients({ endpoint, region: 'local' }).client, TABLE);
const config = loadConfig({
  DYNAMODB_ENDPOINT: endpoint,
  AWS_REGION: 'local',
  TASKS_TABLE: TABLE,
  JWT_SECRET: SECRET,
  HOST: '127.0.0.1',
  PORT: '0',
  TASK_EXECUTION: 'false',
  GRAPHIQL: 'false',
  DASHBOARD: 'false',
});
const app = await startApp(config, { logger: createLogger('warn') });

const tenant = 'write-path';
const actor: Actor = { userId: 'bench', tenantCode: tenant, isAdmin: false };
const token = await mintToken({ secret: SECRET, tenantCode: tenant, userId: 'bench', expiresIn: '1h' });

/**
 * The plain layer: the load client's GraphQL body, but only its variables are
 * read. The input goes to TaskService after the same token check the server
 * makes, and the answer has the shape the client expects.
 */
const verify = createTokenVerifier(config.auth);
const plain = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', async () => {
    try {
      const identity = await verify(req.headers.authorization);
      const caller: Actor = { userId: identity.userId, tenantCode: identity.tenantCode, isAdmin: identity.isAdmin };
      const { input } = JSON.parse(Buffer.concat(chunks).toString('utf8')).variables;
      const data =
        'taskType' in input
          ? { createTask: await app.tasks.createTask(caller, input) }
          : { updateStatus: await app.tasks.updateStatus(caller, input) };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data }));
    } catch (error) {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ message: String(error) }] }));
    }
  });
});
await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/`;

/** Runs `count` operations with `concurrency` in flight in this process. */
async function inProcess(count: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) await op(next++);
    }),
  );
}

/** CPU per operation in each process while `run` does `count` operations. */
async function measure(
  label: string,
  count: number,
  run: () => Promise<{ clientCpuMs?: number; errors?: number } | undefined>,
): Promise<Cpu> {
  await profiler?.start(label);
  await dynamo.call('windowStart');
  const started = process.cpuUsage();
  const out = await run();
  const used = process.cpuUsage(started);
  const window = await dynamo.call('windowEnd');
  await profiler?.stop();
  if (out?.errors) throw new Error(`${out.errors} operations failed`);
  return {
    service: (used.user + used.system) / count,
    dynamo: window.cpuUs / count,
    caller: ((out?.clientCpuMs ?? 0) * 1000) / count,
  };
}

const raw = (op: 'put' | 'update', set: string, count: number) =>
  client.call('raw', { endpoint, table: TABLE, op, set, count, concurrency: CONCURRENCY, tenant: `${tenant}-raw` }, 300_000);
const http = (op: 'create' | 'update', set: string, count: number, url = app.url) =>
  client.call('mutations', { url, token, op, set, count, concurrency: CONCURRENCY }, 300_000);

const storeTasks = new Map<string, Task[]>();
const domainTasks = new Map<string, Task[]>();
const progress: StatusChange = {
  status: 'PROCESSING',
  updatedAt: '',
  attributes: { progress: { current: 1, total: 2 } },
  bookkeeping: {},
};

async function createLayers(set: string, count: number) {
  const tasks = Array.from({ length: count }, (_, i) => taskFor(tenant, 'BENCH', { n: i }));
  storeTasks.set(set, tasks);
  const created: Task[] = [];
  domainTasks.set(set, created);
  return {
    raw: await measure(`${set}-create-raw`, count, () => raw('put', set, count)),
    store: await measure(`${set}-create-store`, count, async () => void (await inProcess(count, (i) => app.store.create(tasks[i]!)))),
    domain: await measure(`${set}-create-domain`, count, async () => {
      await inProcess(count, async (i) => created.push(await app.tasks.createTask(actor, { taskType: 'BENCH', input: { n: i } })));
      return undefined;
    }),
    plain: await measure(`${set}-create-plain`, count, () => http('create', `${set}-plain`, count, plainUrl)),
    http: await measure(`${set}-create-http`, count, () => http('create', set, count)),
  };
}

async function updateLayers(set: string, count: number) {
  const tasks = storeTasks.get(set)!;
  const created = domainTasks.get(set)!;
  return {
    raw: await measure(`${set}-update-raw`, count, () => raw('update', set, count)),
    store: await measure(`${set}-update-store`, count, async () => {
      await inProcess(count, (i) =>
        app.store.update(requireTaskId(tasks[i]!.id), { ...progress, updatedAt: new Date().toISOString() }, { from: ['CREATED'] }),
      );
      return undefined;
    }),
    domain: await measure(`${set}-update-domain`, count, async () => {
      await inProcess(count, (i) =>
        app.tasks.updateStatus(actor, { id: created[i]!.id, status: 'PROCESSING', attributes: progress.attributes }),
      );
      return undefined;
    }),
    plain: await measure(`${set}-update-plain`, count, () => http('update', `${set}-plain`, count, plainUrl)),
    http: await measure(`${set}-update-http`, count, () => http('update', set, count)),
  };
}

const LAYERS = [
  ['raw', 'the SDK call from a caller'],
  ['store', 'DynamoTaskStore (DynamoWire + item mapping)'],
  ['domain', 'TaskService (+ validation, codes, publishing)'],
  ['plain', 'JSON over plain HTTP (+ HTTP, token check; no GraphQL)'],
  ['http', 'GraphQL over HTTP (+ yoga, execution)'],
] as const;

function print(name: string, layers: Record<(typeof LAYERS)[number][0], Cpu>) {
  const us = (value: number) => (value ? `${Math.round(value).toLocaleString('en-US')} µs` : '-');
  console.log(`\n${name}: CPU per operation`);
  console.log('| Layer | Service process | DynamoDB (dynalite) | Caller | Service adds over the layer above |');
  console.log('|---|---|---|---|---|');
  let previous: number | undefined;
  for (const [key, label] of LAYERS) {
    const cpu = layers[key];
    const adds = key === 'raw' ? '' : previous === undefined ? us(cpu.service) : us(cpu.service - previous);
    // The raw call's SDK work is the caller's: it is what the service's store layer does in-process.
    previous = key === 'raw' ? cpu.caller : cpu.service;
    console.log(`| ${label} | ${us(cpu.service)} | ${us(cpu.dynamo)} | ${us(cpu.caller)} | ${adds} |`);
  }
}

try {
  console.log(`write path, ${cpus().length} × ${cpus()[0]?.model.trim()}, node ${process.version}, load ${loadavg()[0]!.toFixed(2)}`);
  console.log(`${COUNT} operations per layer at concurrency ${CONCURRENCY}, after ${WARM_UP} of each to warm up`);
  await createLayers('warm', WARM_UP);
  await updateLayers('warm', WARM_UP);
  print('createTask', await createLayers('measured', COUNT));
  print('updateStatus', await updateLayers('measured', COUNT));
} finally {
  plain.close();
  await app.stop();
  await client.stop();
  await dynamo.stop();
}
