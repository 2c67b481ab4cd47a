/**
 * The load client, in its own process: holds every WebSocket (the `ws`
 * package speaking graphql-transport-ws directly, no graphql-ws client), sends
 * the triggers (GraphQL mutations, signed SNS deliveries, baseline broadcasts)
 * and timestamps receipts in its own clock, and drives the HTTP and raw
 * DynamoDB loads. The runner tells it what to do over IPC.
 */
import { Agent, request as httpRequest } from 'node:http';
import { BatchWriteItemCommand, DynamoDBClient, PutItemCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import WebSocket from 'ws';
import { toItem } from '../../src/aws/dynamo-task-store.js';
import { taskId, taskPk } from '../../src/tasks/keys.js';
import { subTasksOf } from '../../src/tasks/sub-tasks.js';
import type { Task } from '../../src/tasks/task.js';
import type { TaskStatus } from '../../src/tasks/status.js';
import { notificationFields, signFields } from '../helpers/sns.js';
import { serveIpc, signalReady } from './lib/ipc.js';
import { summarize } from './lib/stats.js';
import { taskFor } from './lib/task-items.js';

// ---------------------------------------------------------------------------
// HTTP with keep-alive
// ---------------------------------------------------------------------------
const agents = new Map<number, Agent>();
function agentFor(maxSockets: number): Agent {
  let agent = agents.get(maxSockets);
  if (!agent) agents.set(maxSockets, (agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets })));
  return agent;
}

interface HttpResult {
  status: number;
  text: string;
}

function post(url: string, body: string, headers: Record<string, string>, agent: Agent, timeoutMs = 30_000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`POST ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function gql<T = any>(
  url: string,
  token: string,
  query: string,
  variables: Record<string, unknown> = {},
  agent = agentFor(4),
): Promise<T> {
  const res = await post(url, JSON.stringify({ query, variables }), { authorization: `Bearer ${token}` }, agent);
  const body = JSON.parse(res.text) as { data?: T; errors?: { message: string }[] };
  if (res.status !== 200 || body.errors) throw new Error(`GraphQL ${res.status}: ${JSON.stringify(body.errors ?? res.text).slice(0, 500)}`);
  return body.data as T;
}

/** Runs `count` operations with `concurrency` in flight; per-operation latency in ms. */
async function pool(count: number, concurrency: number, op: (i: number) => Promise<void>, deadlineMs = 300_000, keepSamples = false) {
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const errors: string[] = [];
  let next = 0;
  const deadline = performance.now() + deadlineMs;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count && performance.now() < deadline) {
        const i = next++;
        const t = performance.now();
        try {
          await op(i);
          latencies.push(performance.now() - t);
        } catch (error) {
          if (errors.length < 5) errors.push(error instanceof Error ? error.message.slice(0, 300) : String(error));
          else errors.push('');
        }
      }
    }),
  );
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return {
    ms,
    done: latencies.length,
    errors: errors.length,
    errorSamples: errors.filter(Boolean),
    latency: summarize(latencies),
    /** This (load client) process's CPU over the run: shows when the client, not the server, is the limit. */
    clientCpuMs: (used.user + used.system) / 1000,
    samples: keepSamples ? latencies : undefined,
  };
}

// ---------------------------------------------------------------------------
// WebSockets
// ---------------------------------------------------------------------------
interface Sock {
  ws: WebSocket;
  group: number;
  /** The seq of the last event counted on this socket. */
  seen: number;
  acked: boolean;
  onAck?: () => void;
  subscribe: string;
}

interface LiveEvent {
  seq: number;
  marker: Buffer;
  group: number | null;
  expected: number;
  received: number;
  tFirst: number;
  tLast: number;
  wrong: number;
  dup: number;
  sample?: Buffer;
  done: () => void;
}

let sockets: Sock[] = [];
let current: LiveEvent | null = null;
let eventSeq = 0;
const counters = { stray: 0, protocolErrors: 0, closedUnexpectedly: 0, lastProtocolError: '' };
const closeCodes = new Map<number, number>();
let closingAll = false;

function onMessage(sock: Sock, data: Buffer) {
  if (!sock.acked) {
    if (data.includes('"connection_ack"')) {
      sock.acked = true;
      sock.ws.send(sock.subscribe);
      sock.onAck?.();
    }
    return;
  }
  const event = current;
  if (event && data.indexOf(event.marker) !== -1) {
    if (sock.seen === event.seq) {
      event.dup++;
      return;
    }
    sock.seen = event.seq;
    if (event.group !== null && sock.group !== event.group) {
      event.wrong++;
      return;
    }
    const now = performance.now();
    if (event.received === 0) {
      event.tFirst = now;
      event.sample = data;
    }
    event.received++;
    event.tLast = now;
    if (event.received === event.expected) event.done();
    return;
  }
  if (data.includes('"type":"ping"')) {
    sock.ws.send('{"type":"pong"}');
  } else if (data.includes('"type":"error"') || data.includes('"type":"complete"')) {
    counters.protocolErrors++;
    counters.lastProtocolError = data.toString('utf8').slice(0, 300);
  } else {
    counters.stray++;
  }
}

interface ConnectArgs {
  /** ws:// URL; `?g=<group>` is appended for the bare baseline's grouping. */
  url: string;
  groups: { token: string; count: number; group: number }[];
  /** The graphql-transport-ws subscribe message's payload.query. */
  query: string;
  concurrency: number;
  timeoutMs: number;
}

async function connect(args: ConnectArgs) {
  const plan: { token: string; group: number }[] = [];
  for (const g of args.groups) for (let i = 0; i < g.count; i++) plan.push({ token: g.token, group: g.group });
  const started = performance.now();
  const deadline = started + args.timeoutMs;
  let failed = 0;
  const failures: string[] = [];
  const subscribe = JSON.stringify({ id: '1', type: 'subscribe', payload: { query: args.query } });
  const openOne = (entry: { token: string; group: number }) =>
    new Promise<void>((resolve, reject) => {
      const sep = args.url.includes('?') ? '&' : '?';
      const ws = new WebSocket(`${args.url}${sep}g=${entry.group}`, 'graphql-transport-ws', { perMessageDeflate: false });
      const sock: Sock = { ws, group: entry.group, seen: 0, acked: false, subscribe };
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('connect timeout'));
      }, 20_000);
      sock.onAck = () => {
        clearTimeout(timer);
        sock.onAck = undefined;
        sockets.push(sock);
        resolve();
      };
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${entry.token}` } })));
      ws.on('message', (data: Buffer) => onMessage(sock, data));
      ws.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      ws.on('close', (code) => {
        clearTimeout(timer);
        closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
        if (!sock.acked) reject(new Error(`closed ${code} before ack`));
        else if (!closingAll) counters.closedUnexpectedly++;
      });
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(args.concurrency, plan.length) }, async () => {
      while (next < plan.length && performance.now() < deadline) {
        const entry = plan[next++]!;
        try {
          await openOne(entry);
        } catch (error) {
          failed++;
          if (failures.length < 5) failures.push(error instanceof Error ? error.message : String(error));
        }
      }
    }),
  );
  return { opened: sockets.length, failed, failures, ms: performance.now() - started, notAttempted: plan.length - next };
}

async function closeAll() {
  closingAll = true;
  const count = sockets.length;
  for (const sock of sockets) sock.ws.terminate();
  sockets = [];
  await new Promise((resolve) => setTimeout(resolve, 200));
  closingAll = false;
  counters.closedUnexpectedly = 0;
  return { closed: count };
}

// ---------------------------------------------------------------------------
// Triggers
// ---------------------------------------------------------------------------
let sns: { privateKey: string; certUrl: string } | undefined;

interface FireArgs {
  url: string;
  headers?: Record<string, string>;
  /** The body as is, or an SNS notification to sign (before the clock starts). */
  body?: string;
  sns?: { topicArn: string; message: unknown };
  /** Bytes that identify this event in a received frame. */
  marker: string;
  /** Only sockets of this group should receive it (null: all). */
  group: number | null;
  expected: number;
  timeoutMs: number;
  wantSample?: boolean;
}

const triggerAgent = () => agentFor(1);

async function fire(args: FireArgs) {
  let body = args.body ?? '';
  let headers = args.headers ?? {};
  if (args.sns) {
    if (!sns) throw new Error('snsInit first');
    const fields = signFields(notificationFields({ topicArn: args.sns.topicArn, message: args.sns.message }), {
      privateKey: sns.privateKey,
      certUrl: sns.certUrl,
      version: '2',
    });
    body = JSON.stringify(fields);
    headers = { ...headers, 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': 'Notification' };
  }
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const event: LiveEvent = {
    seq: ++eventSeq,
    marker: Buffer.from(args.marker),
    group: args.group,
    expected: args.expected,
    received: 0,
    tFirst: 0,
    tLast: 0,
    wrong: 0,
    dup: 0,
    done: finish,
  };
  current = event;
  const timer = setTimeout(finish, args.timeoutMs);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let httpMs = 0;
  const response = post(args.url, body, headers, triggerAgent()).then(
    (res) => {
      httpMs = performance.now() - t0;
      return res;
    },
    (error: Error) => ({ status: 0, text: error.message }),
  );
  await done;
  const cpu = process.cpuUsage(cpu0);
  clearTimeout(timer);
  const res = await response;
  // Late copies (after the timeout) still count as dup/wrong until the next event.
  const ok = res.status === 200 && !res.text.includes('"errors"');
  return {
    latencyMs: event.received > 0 ? event.tLast - t0 : null,
    firstMs: event.received > 0 ? event.tFirst - t0 : null,
    received: event.received,
    expected: event.expected,
    complete: event.received >= event.expected,
    wrong: event.wrong,
    dup: event.dup,
    /** This process's CPU from the trigger to the last receipt (is the client the limit?). */
    clientCpuUs: cpu.user + cpu.system,
    httpStatus: res.status,
    httpOk: ok,
    httpMs,
    httpText: ok ? undefined : res.text.slice(0, 500),
    sample: args.wantSample && event.sample ? event.sample.toString('utf8') : undefined,
  };
}

// ---------------------------------------------------------------------------
// Raw DynamoDB
// ---------------------------------------------------------------------------
let dynamo: { client: DynamoDBClient; endpoint: string; table: string } | undefined;
function dynamoClient(endpoint: string, table: string) {
  if (!dynamo || dynamo.table !== table || dynamo.endpoint !== endpoint) {
    dynamo?.client.destroy();
    dynamo = {
      endpoint,
      table,
      client: new DynamoDBClient({
        endpoint,
        region: 'local',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        maxAttempts: 5,
        requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) } as never,
      }),
    };
  }
  return dynamo;
}

const MARSHALL = { removeUndefinedValues: true, convertEmptyValues: false } as const;
const STATUSES: TaskStatus[] = ['CREATED', 'QUEUED', 'PROCESSING', 'COMPLETED', 'FAILED'];

/** The UpdateItem the store sends for a status change (same SET list and version condition). */
function updateInput(table: string, task: Task, status: TaskStatus, attributes: Record<string, unknown>) {
  const next: Record<string, unknown> = {
    status,
    attributes,
    version: task.version + 1,
    updatedAt: new Date().toISOString(),
    updatedBy: task.updatedBy,
    updatedIp: task.updatedIp,
    requestId: task.requestId,
  };
  if (!task.parentId) {
    next.listKey = task.pk;
    next.listTypeKey = `${task.pk}#${task.type}`;
    next.listStatusKey = `${task.pk}#${status}`;
    next.listTypeStatusKey = `${task.pk}#${task.type}#${status}`;
  }
  const names: Record<string, string> = { '#version': 'version' };
  const values: Record<string, unknown> = { ':expected': task.version };
  const assignments = Object.entries(next)
    .filter(([, value]) => value !== undefined)
    .map(([name, value], i) => {
      names[`#a${i}`] = name;
      values[`:a${i}`] = value;
      return `#a${i} = :a${i}`;
    });
  task.version++;
  return new UpdateItemCommand({
    TableName: table,
    Key: marshall({ pk: task.pk, sk: task.sk }),
    UpdateExpression: `SET ${assignments.join(', ')}`,
    ConditionExpression: 'attribute_exists(pk) AND #version = :expected',
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: marshall(values, MARSHALL) as Record<string, AttributeValue>,
  });
}

const rawSets = new Map<string, Task[]>();

interface RawArgs {
  endpoint: string;
  table: string;
  op: 'put' | 'update';
  /** put: new tasks under this name; update: the tasks put under it. */
  set: string;
  count: number;
  concurrency: number;
  tenant: string;
  /** put: 'task' (top-level, like createTask) or 'subtask' (sub-task items of one parent). */
  shape?: 'task' | 'subtask';
  /** update: the status written (a second round uses another). */
  status?: TaskStatus;
}

async function raw(args: RawArgs) {
  const { client, table } = dynamoClient(args.endpoint, args.table);
  if (args.op === 'put') {
    let tasks: Task[];
    if (args.shape === 'subtask') {
      const parent = {
        ...taskFor(
          args.tenant,
          'NOOP',
          Array.from({ length: args.count }, (_, i) => ({ i })),
        ),
        kind: 'SFN_TASK' as const,
      };
      parent.pk = taskPk('SFN_TASK', args.tenant);
      parent.id = taskId(parent.pk, parent.sk);
      tasks = subTasksOf(parent);
    } else {
      tasks = Array.from({ length: args.count }, (_, i) => taskFor(args.tenant, 'BENCH', { n: i }));
    }
    // Built and marshalled before the clock starts: the floor is the write itself.
    const commands = tasks.map(
      (task) =>
        new PutItemCommand({
          TableName: table,
          Item: marshall(toItem(task), MARSHALL) as Record<string, AttributeValue>,
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
    );
    rawSets.set(args.set, tasks);
    return pool(commands.length, args.concurrency, async (i) => void (await client.send(commands[i]!)));
  }
  const tasks = rawSets.get(args.set);
  if (!tasks) throw new Error(`no raw set ${args.set}`);
  const status = args.status ?? 'PROCESSING';
  const commands = tasks.slice(0, args.count).map((task) => updateInput(table, task, status, { progress: { current: 1, total: 2 } }));
  return pool(commands.length, args.concurrency, async (i) => void (await client.send(commands[i]!)));
}

interface SeedArgs {
  endpoint: string;
  table: string;
  tenant: string;
  count: number;
  concurrency: number;
  deadlineMs: number;
}

/** BatchWriteItem of real items (toItem), newest last, statuses cycling through five values. */
async function seed(args: SeedArgs) {
  const { client, table } = dynamoClient(args.endpoint, args.table);
  const batches = Math.ceil(args.count / 25);
  let written = 0;
  let unprocessedRetries = 0;
  const startedAt = Date.now() - args.count; // one ms apart, so codes and updatedAt spread out
  const result = await pool(
    batches,
    args.concurrency,
    async (b) => {
      let requests = Array.from({ length: Math.min(25, args.count - b * 25) }, (_, j) => {
        const n = b * 25 + j;
        const task = taskFor(args.tenant, n % 2 === 0 ? 'REPORT' : 'IMPORT', { n }, STATUSES[n % STATUSES.length], new Date(startedAt + n));
        return { PutRequest: { Item: marshall(toItem(task), MARSHALL) as Record<string, AttributeValue> } };
      });
      for (let attempt = 0; requests.length > 0 && attempt < 10; attempt++) {
        const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
        const left = (out.UnprocessedItems?.[table] ?? []) as typeof requests;
        written += requests.length - left.length;
        if (left.length) unprocessedRetries++;
        requests = left;
      }
    },
    args.deadlineMs,
  );
  return { written, ms: result.ms, errors: result.errors, errorSamples: result.errorSamples, unprocessedRetries };
}

// ---------------------------------------------------------------------------
// GraphQL loads
// ---------------------------------------------------------------------------
const gqlSets = new Map<string, string[]>();

interface MutationArgs {
  url: string;
  token: string;
  op: 'create' | 'update';
  set: string;
  count: number;
  concurrency: number;
  status?: TaskStatus;
}

const CREATE = `mutation($input: CreateTaskInput!) { createTask(input: $input) { id version } }`;
const UPDATE = `mutation($input: UpdateStatusInput!) { updateStatus(input: $input) { id version } }`;

async function mutations(args: MutationArgs) {
  const agent = agentFor(args.concurrency);
  if (args.op === 'create') {
    const ids: string[] = [];
    const out = await pool(args.count, args.concurrency, async (i) => {
      const data = await gql(args.url, args.token, CREATE, { input: { taskType: 'BENCH', input: { n: i } } }, agent);
      ids.push(data.createTask.id);
    });
    gqlSets.set(args.set, ids);
    return out;
  }
  const ids = gqlSets.get(args.set);
  if (!ids) throw new Error(`no gql set ${args.set}`);
  const status = args.status ?? 'PROCESSING';
  return pool(Math.min(args.count, ids.length), args.concurrency, async (i) => {
    await gql(args.url, args.token, UPDATE, { input: { id: ids[i], status, attributes: { progress: { current: 1, total: 2 } } } }, agent);
  });
}

interface ListArgs {
  url: string;
  token: string;
  count: number;
  status?: TaskStatus;
  deadlineMs: number;
}

const LIST = `query($filter: TaskFilter, $first: Int) {
  tasks(filter: $filter, first: $first) { edges { cursor node { id status updatedAt } } pageInfo { hasNextPage endCursor } }
}`;

async function list(args: ListArgs) {
  const agent = agentFor(1);
  let minEdges = Infinity;
  const variables = { first: 20, filter: args.status ? { status: args.status } : undefined };
  const out = await pool(
    args.count,
    1,
    async () => {
      const data = await gql(args.url, args.token, LIST, variables, agent);
      const edges = data.tasks.edges as { node: { status: string } }[];
      minEdges = Math.min(minEdges, edges.length);
      if (args.status && edges.some((edge) => edge.node.status !== args.status)) throw new Error('filter returned another status');
    },
    args.deadlineMs,
    true,
  );
  return { ...out, minEdges: Number.isFinite(minEdges) ? minEdges : 0 };
}

interface SfnArgs {
  url: string;
  token: string;
  count: number;
  pollMs: number;
  timeoutMs: number;
}

async function stepFunctionRun(args: SfnArgs) {
  const input = Array.from({ length: args.count }, (_, i) => ({ i }));
  const t0 = performance.now();
  const created = await gql(
    args.url,
    args.token,
    `mutation($input: CreateTaskInput!) { createStepFunctionTask(input: $input) { id status } }`,
    { input: { taskType: 'NOOP', input } },
  );
  const id = created.createStepFunctionTask.id as string;
  const createdMs = performance.now() - t0;
  let task: { status: string; attributes: Record<string, unknown> } | null = null;
  let polls = 0;
  while (performance.now() - t0 < args.timeoutMs) {
    // Fine-grained at first (a small run ends quickly), then lighter: polling is load on the server too.
    await new Promise((resolve) => setTimeout(resolve, performance.now() - t0 < 2000 ? Math.min(50, args.pollMs) : args.pollMs));
    polls++;
    const data = await gql(args.url, args.token, `query($id: ID!) { task(id: $id) { status attributes } }`, { id });
    task = data.task;
    if (task && (task.status === 'COMPLETED' || task.status === 'FAILED')) break;
  }
  const ms = performance.now() - t0;
  return { id, ms, createdMs, polls, status: task?.status, attributes: task?.attributes };
}

// ---------------------------------------------------------------------------
serveIpc({
  gql: (args: { url: string; token: string; query: string; variables?: Record<string, unknown> }) =>
    gql(args.url, args.token, args.query, args.variables),
  connect,
  closeAll,
  counters: () => ({ ...counters, sockets: sockets.length, closeCodes: Object.fromEntries(closeCodes) }),
  resetCounters: () => {
    counters.stray = 0;
    counters.protocolErrors = 0;
    counters.closedUnexpectedly = 0;
    counters.lastProtocolError = '';
    closeCodes.clear();
    return true;
  },
  snsInit: (args: { privateKey: string; certUrl: string }) => {
    sns = args;
    return true;
  },
  fire,
  raw,
  seed,
  mutations,
  list,
  stepFunctionRun,
  memory: () => process.memoryUsage(),
});
signalReady({ pid: process.pid });
