/**
 * `npm run soak`: does the server's memory level off under an ordinary mixed load?
 *
 * Two phases, each against a fresh server started as a child process (the
 * embedded default: dynalite over LevelDB in a fresh temporary DATA_DIR,
 * PORT=0, 127.0.0.1):
 *
 *   A. 10 client loops, each sending one request then pausing 100 ms:
 *      createTask ECHO (run by the example handler), createTask REPORT (no
 *      handler: stays QUEUED), updateStatus on the REPORT task (PROCESSING
 *      with progress, twice, then COMPLETED), updateStatus on the ECHO task,
 *      and a `tasks` listing.
 *   B. the same load plus 200 graphql-ws subscribers (one socket and one
 *      `taskStatusChanged` subscription each, all in the load's tenant).
 *
 * Every 10 s it reads the server's RSS, heapUsed, external and arrayBuffers
 * from its /metrics (cross-checked with /proc/<pid>/status VmRSS). It reports,
 * per phase, the samples and the growth after warm-up: RSS at the end of the
 * warm-up (120 s, or the first 20% of a shorter run) against the end, as a
 * percentage and as a slope (least squares over the samples after warm-up).
 * Target: RSS grows by no more than 5% after warm-up.
 *
 * Environment:
 *   SOAK_SECONDS       seconds per phase (default 600)
 *   SOAK_PHASES        A, B or A,B (default A,B)
 *   SOAK_SUBSCRIBERS   subscribers in phase B (default 200)
 *   SOAK_CLIENTS       client loops (default 10)
 *   SOAK_DATA_DIR      DATA_DIR for the server instead of a fresh temporary directory (`:memory:` for memory-level)
 *   SOAK_NODE_OPTIONS  extra node flags for the server, e.g. `--max-old-space-size=256`
 *   SOAK_SERVER_STDERR=1  copy the server's stderr to this process's stderr
 *   SOAK_TSX=1         run src/main.ts with tsx instead of building and running dist/src/main.js
 * Other variables (LOG_LEVEL, WORKER_CONCURRENCY, …) pass through to the server.
 *
 * Writes soak-results.json at the repository root. Exit code 0 unless a
 * server crashed (or could not start).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = positive('SOAK_SECONDS', 600);
const CLIENTS = positive('SOAK_CLIENTS', 10);
const SUBSCRIBERS = positive('SOAK_SUBSCRIBERS', 200);
const PHASES = (process.env.SOAK_PHASES ?? 'A,B')
  .split(',')
  .map((p) => p.trim().toUpperCase())
  .filter(Boolean);
const SAMPLE_MS = 10_000;
const PAUSE_MS = 100;
const REQUEST_TIMEOUT_MS = 10_000;
const WARMUP_S = Math.min(120, SECONDS * 0.2);
const TARGET_PCT = 5;
const MB = 1024 * 1024;

function positive(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

interface Sample {
  t: number; // seconds since the load started
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  vmRss?: number;
  requests: number;
  errors: number;
  eventsReceived: number;
  liveSubscriptions?: number;
}

interface PhaseResult {
  phase: string;
  subscribers: number;
  seconds: number;
  warmupSeconds: number;
  crashed: boolean;
  crash?: string;
  samples: Sample[];
  requests: Record<string, number>;
  errors: Record<string, number>;
  subscriberEvents: number;
  subscriberErrors: number;
  growth?: {
    rssStart: number;
    rssWarm: number;
    /** RSS at 120 s, when the run is that long (the reference of the target for the default 10-minute run). */
    rssAt120?: number;
    rssEnd: number;
    /** RSS minus the V8 heap's size: Buffers, native add-ons (LevelDB), code, stacks. */
    nativeWarm: number;
    nativeEnd: number;
    growthPct: number;
    slopeMbPerMin: number;
    heapUsedWarm: number;
    heapUsedEnd: number;
    externalWarm: number;
    externalEnd: number;
    meetsTarget: boolean;
  };
}

// ---------------------------------------------------------------- server

interface Server {
  child: ChildProcess;
  url: string;
  token: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderrTail(): string;
  dataDir?: string;
}

function serverCommand(): string[] {
  const extra = (process.env.SOAK_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
  if (process.env.SOAK_TSX === '1') return [...extra, '--import', 'tsx', join(ROOT, 'src/main.ts')];
  return [...extra, join(ROOT, 'dist/src/main.js')];
}

async function startServer(): Promise<Server> {
  const ownDir = process.env.SOAK_DATA_DIR ? undefined : mkdtempSync(join(tmpdir(), 'tasks-soak-'));
  const child = spawn(process.execPath, serverCommand(), {
    cwd: ROOT,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: process.env.SOAK_DATA_DIR ?? join(ownDir!, 'data'),
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      // The embedded default: no DynamoDB endpoint, no table, no JWT settings (a development token is printed).
      DYNAMODB_ENDPOINT: '',
      TASKS_TABLE: '',
      JWT_SECRET: '',
      JWKS_URL: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
    if (process.env.SOAK_SERVER_STDERR === '1') process.stderr.write(chunk);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  );
  const started = new Promise<{ url: string; token: string }>((res, rej) => {
    const onData = (chunk: Buffer) => {
      stdout += chunk.toString();
      const url = /Task API on (http:\/\/\S+\/graphql)/.exec(stdout)?.[1];
      const token = /Authorization: Bearer (\S+)/.exec(stdout)?.[1];
      if (url && token) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        res({ url, token });
      }
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code, signal }) =>
      rej(new Error(`the server exited at start (code ${code}, signal ${signal}):\n${stdout}\n${stderr}`)),
    );
  });
  const { url, token } = await Promise.race([
    started,
    sleep(60_000).then(() => {
      throw new Error(`the server did not start within 60 s:\n${stdout}\n${stderr}`);
    }),
  ]);
  return { child, url, token, exited, stderrTail: () => stderr, dataDir: ownDir };
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGTERM');
    const done = await Promise.race([server.exited.then(() => true), sleep(20_000).then(() => false)]);
    if (!done) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
  }
  if (server.dataDir) rmSync(server.dataDir, { recursive: true, force: true });
}

function vmRssOf(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function scrape(server: Server): Promise<Record<string, number>> {
  const response = await fetch(new URL('/metrics', server.url), { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await response.text();
  const values: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+)$/.exec(line);
    if (match && !match[2]) values[match[1]!] = Number(match[3]);
  }
  return values;
}

// ---------------------------------------------------------------- load

const CREATE = `mutation($type: String!, $input: JSON!) {
  createTask(input: { taskType: $type, input: $input }) { id status version }
}`;
const UPDATE = `mutation($id: ID!, $status: TaskStatus!, $attributes: JSON) {
  updateStatus(input: { id: $id, status: $status, attributes: $attributes }) { id status version }
}`;
const LIST = `query { tasks(first: 20) { edges { cursor node { id type status version updatedAt } } pageInfo { hasNextPage endCursor } } }`;
const SUBSCRIBE = `subscription { taskStatusChanged { action previousStatus replayed cursor task { id status version attributes updatedAt } } }`;

class Load {
  readonly requests: Record<string, number> = {};
  readonly errors: Record<string, number> = {};
  total = 0;
  failed = 0;
  private stopped = false;

  constructor(private readonly server: Server) {}

  stop(): void {
    this.stopped = true;
  }

  private async gql(op: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
    this.requests[op] = (this.requests[op] ?? 0) + 1;
    this.total++;
    try {
      const response = await fetch(this.server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.server.token}` },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const body = (await response.json()) as { data?: any; errors?: { extensions?: { code?: string } }[] };
      if (body.errors?.length) {
        this.fail(`${op}: ${body.errors[0]!.extensions?.code ?? 'error'}`);
        return undefined;
      }
      return body.data;
    } catch (error) {
      this.fail(`${op}: ${(error as Error).name}`);
      return undefined;
    }
  }

  private fail(key: string): void {
    this.failed++;
    this.errors[key] = (this.errors[key] ?? 0) + 1;
  }

  private async pause(): Promise<boolean> {
    await sleep(PAUSE_MS);
    return !this.stopped;
  }

  /** One client: the cycle of operations, one request at a time, 100 ms apart. */
  async loop(n: number): Promise<void> {
    let i = 0;
    while (!this.stopped) {
      i++;
      const echo = await this.gql('createTask ECHO', CREATE, { type: 'ECHO', input: { client: n, i, text: 'x'.repeat(200) } });
      if (!(await this.pause())) break;
      const report = await this.gql('createTask REPORT', CREATE, { type: 'REPORT', input: { client: n, i, month: '2026-10' } });
      if (!(await this.pause())) break;
      const reportId: string | undefined = report?.createTask?.id;
      if (reportId) {
        for (const [status, attributes] of [
          ['PROCESSING', { progress: { current: 1, total: 2 } }],
          ['PROCESSING', { progress: { current: 2, total: 2 } }],
          ['COMPLETED', { result: { rows: 2 } }],
        ] as const) {
          await this.gql('updateStatus REPORT', UPDATE, { id: reportId, status, attributes });
          if (!(await this.pause())) return;
        }
      }
      const echoId: string | undefined = echo?.createTask?.id;
      if (echoId) {
        // Usually already COMPLETED by the ECHO handler: an INVALID_TRANSITION answer is ordinary load too.
        await this.gql('updateStatus ECHO', UPDATE, { id: echoId, status: 'PROCESSING', attributes: { note: 'x' } });
        if (!(await this.pause())) break;
      }
      await this.gql('tasks', LIST);
      if (!(await this.pause())) break;
    }
  }
}

class Subscribers {
  events = 0;
  errors = 0;
  private readonly clients: Client[] = [];
  private readonly disposers: (() => void)[] = [];

  async open(server: Server, count: number): Promise<void> {
    const wsUrl = server.url.replace(/^http/, 'ws');
    const acks: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const client = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${server.token}` },
        lazy: true,
        retryAttempts: 0,
      });
      this.clients.push(client);
      acks.push(
        new Promise<void>((res) => {
          let first = true;
          const done = () => {
            if (first) {
              first = false;
              res();
            }
          };
          client.on('connected', done);
          client.on('closed', done);
          this.disposers.push(
            client.subscribe(
              { query: SUBSCRIBE },
              {
                next: () => {
                  this.events++;
                },
                error: () => {
                  this.errors++;
                  done();
                },
                complete: () => {},
              },
            ),
          );
        }),
      );
      if (i % 20 === 19) await sleep(20);
    }
    await Promise.race([Promise.all(acks), sleep(30_000)]);
  }

  async close(): Promise<void> {
    for (const dispose of this.disposers) dispose();
    await Promise.all(this.clients.map((c) => c.dispose()));
  }
}

// ---------------------------------------------------------------- phases

async function runPhase(phase: string): Promise<PhaseResult> {
  const subscriberCount = phase === 'B' ? SUBSCRIBERS : 0;
  const result: PhaseResult = {
    phase,
    subscribers: subscriberCount,
    seconds: SECONDS,
    warmupSeconds: WARMUP_S,
    crashed: false,
    samples: [],
    requests: {},
    errors: {},
    subscriberEvents: 0,
    subscriberErrors: 0,
  };
  console.log(`\nPhase ${phase}: ${CLIENTS} client loops${subscriberCount ? ` + ${subscriberCount} subscribers` : ''}, ${SECONDS} s`);
  let server: Server;
  try {
    server = await startServer();
  } catch (error) {
    result.crashed = true;
    result.crash = String((error as Error).message);
    console.log(`  the server did not start: ${result.crash}`);
    return result;
  }
  console.log(`  server pid ${server.child.pid} at ${server.url}`);
  let crashed = false;
  let stopping = false;
  void server.exited.then(({ code, signal }) => {
    if (!stopping) {
      crashed = true;
      result.crashed = true;
      result.crash = `exited during the load (code ${code}, signal ${signal}); stderr tail:\n${server.stderrTail()}`;
    }
  });

  const subscribers = new Subscribers();
  if (subscriberCount) {
    await subscribers.open(server, subscriberCount);
    const live = await scrape(server).catch(() => ({}) as Record<string, number>);
    console.log(`  subscribed: ${live.tasks_live_subscriptions ?? '?'} subscriptions on ${live.tasks_live_connections ?? '?'} connections`);
  }

  const load = new Load(server);
  const started = Date.now();
  const loops = Array.from({ length: CLIENTS }, (_, n) => load.loop(n));

  const header = `  ${'t(s)'.padStart(5)} ${'RSS MB'.padStart(8)} ${'VmRSS'.padStart(8)} ${'heapUsed'.padStart(9)} ${'heapTot'.padStart(8)} ${'external'.padStart(9)} ${'arrayBuf'.padStart(9)} ${'req/s'.padStart(6)} ${'errors'.padStart(7)} ${'events'.padStart(9)}`;
  console.log(header);
  let lastRequests = 0;
  let lastT = 0;
  const sample = async () => {
    const t = Math.round((Date.now() - started) / 1000);
    try {
      const m = await scrape(server);
      const s: Sample = {
        t,
        rss: m.process_resident_memory_bytes ?? NaN,
        heapUsed: m.nodejs_heap_size_used_bytes ?? NaN,
        heapTotal: m.nodejs_heap_size_total_bytes ?? NaN,
        external: m.nodejs_external_memory_bytes ?? NaN,
        arrayBuffers: m.nodejs_array_buffers_bytes ?? NaN,
        vmRss: vmRssOf(server.child.pid),
        requests: load.total,
        errors: load.failed,
        eventsReceived: subscribers.events,
        liveSubscriptions: m.tasks_live_subscriptions,
      };
      if (Number.isNaN(s.rss) && s.vmRss) s.rss = s.vmRss;
      result.samples.push(s);
      const rate = t > lastT ? (load.total - lastRequests) / (t - lastT) : 0;
      lastRequests = load.total;
      lastT = t;
      const mb = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '?' : (v / MB).toFixed(1));
      console.log(
        `  ${String(t).padStart(5)} ${mb(s.rss).padStart(8)} ${mb(s.vmRss).padStart(8)} ${mb(s.heapUsed).padStart(9)} ${mb(s.heapTotal).padStart(8)} ${mb(s.external).padStart(9)} ${mb(s.arrayBuffers).padStart(9)} ${rate.toFixed(0).padStart(6)} ${String(s.errors).padStart(7)} ${String(s.eventsReceived).padStart(9)}`,
      );
    } catch (error) {
      if (!crashed) console.log(`  ${String(t).padStart(5)} (scrape failed: ${(error as Error).message})`);
    }
  };

  await sample();
  const end = started + SECONDS * 1000;
  while (!crashed && Date.now() < end) {
    const next = started + (result.samples.length || 1) * SAMPLE_MS;
    await sleep(Math.max(0, Math.min(next, end) - Date.now()));
    if (crashed) break;
    if (Date.now() >= end || Date.now() >= next) await sample();
  }
  if (!crashed && (result.samples.at(-1)?.t ?? 0) < SECONDS) await sample();

  load.stop();
  await Promise.race([Promise.all(loops), sleep(REQUEST_TIMEOUT_MS + 2000)]);
  await subscribers.close().catch(() => {});
  stopping = true;
  await stopServer(server);

  result.requests = load.requests;
  result.errors = load.errors;
  result.subscriberEvents = subscribers.events;
  result.subscriberErrors = subscribers.errors;
  result.growth = growthOf(result.samples);
  if (crashed) console.log(`  SERVER CRASHED: ${result.crash}`);
  return result;
}

function growthOf(samples: Sample[]): PhaseResult['growth'] {
  const valid = samples.filter((s) => Number.isFinite(s.rss));
  if (valid.length < 2) return undefined;
  const warm = valid.find((s) => s.t >= WARMUP_S) ?? valid.at(-1)!;
  const last = valid.at(-1)!;
  const after = valid.filter((s) => s.t >= warm.t);
  let slope = 0;
  if (after.length >= 2) {
    const mt = after.reduce((a, s) => a + s.t, 0) / after.length;
    const mr = after.reduce((a, s) => a + s.rss, 0) / after.length;
    const num = after.reduce((a, s) => a + (s.t - mt) * (s.rss - mr), 0);
    const den = after.reduce((a, s) => a + (s.t - mt) ** 2, 0);
    slope = den ? ((num / den) * 60) / MB : 0;
  }
  const growthPct = ((last.rss - warm.rss) / warm.rss) * 100;
  return {
    rssStart: valid[0]!.rss,
    rssWarm: warm.rss,
    rssAt120: valid.find((s) => s.t >= 120)?.rss,
    rssEnd: last.rss,
    nativeWarm: warm.rss - warm.heapTotal,
    nativeEnd: last.rss - last.heapTotal,
    growthPct,
    slopeMbPerMin: slope,
    heapUsedWarm: warm.heapUsed,
    heapUsedEnd: last.heapUsed,
    externalWarm: warm.external,
    externalEnd: last.external,
    meetsTarget: growthPct <= TARGET_PCT,
  };
}

function build(): void {
  if (process.env.SOAK_TSX === '1') return;
  console.log('Building (npm run build)…');
  const built = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  if (built.status !== 0) {
    console.log('The build failed: running src/main.ts with tsx instead.');
    process.env.SOAK_TSX = '1';
  }
}

async function main(): Promise<void> {
  build();
  console.log(
    `Soak: ${PHASES.join(', ')}; ${SECONDS} s per phase, warm-up ${WARMUP_S} s, samples every ${SAMPLE_MS / 1000} s; server: node ${serverCommand().join(' ')}`,
  );
  const results: PhaseResult[] = [];
  for (const phase of PHASES) results.push(await runPhase(phase));

  const mb = (v: number) => `${(v / MB).toFixed(1)} MB`;
  console.log(`\nSummary (target: RSS grows by at most ${TARGET_PCT}% after the ${WARMUP_S} s warm-up)`);
  for (const r of results) {
    const g = r.growth;
    const requests = Object.values(r.requests).reduce((a, b) => a + b, 0);
    const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
    console.log(
      `  Phase ${r.phase} (${r.subscribers} subscribers): ${requests} requests (${(requests / r.seconds).toFixed(0)}/s), ${errors} with errors${r.subscribers ? `, ${r.subscriberEvents} events received by subscribers` : ''}`,
    );
    if (Object.keys(r.errors).length) console.log(`    errors: ${JSON.stringify(r.errors)}`);
    if (g) {
      console.log(
        `    RSS ${mb(g.rssStart)} at start, ${mb(g.rssWarm)} at ${WARMUP_S} s${g.rssAt120 !== undefined && WARMUP_S !== 120 ? ` (${mb(g.rssAt120)} at 120 s)` : ''}, ${mb(g.rssEnd)} at end: ${g.growthPct >= 0 ? '+' : ''}${g.growthPct.toFixed(1)}% after warm-up, ${g.slopeMbPerMin.toFixed(2)} MB/min → ${g.meetsTarget ? 'PASS' : 'FAIL'}`,
      );
      console.log(
        `    from ${WARMUP_S} s to the end: heapUsed ${mb(g.heapUsedWarm)} → ${mb(g.heapUsedEnd)}, external ${mb(g.externalWarm)} → ${mb(g.externalEnd)}, RSS outside the V8 heap ${mb(g.nativeWarm)} → ${mb(g.nativeEnd)}`,
      );
    }
    if (r.crashed) console.log(`    SERVER CRASHED: ${r.crash}`);
  }
  const out = join(ROOT, 'soak-results.json');
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        seconds: SECONDS,
        warmupSeconds: WARMUP_S,
        clients: CLIENTS,
        pauseMs: PAUSE_MS,
        targetPct: TARGET_PCT,
        server: `node ${serverCommand().join(' ')}`,
        dataDir: process.env.SOAK_DATA_DIR ?? '(fresh temporary directory)',
        phases: results,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nWrote ${out}`);
  process.exitCode = results.some((r) => r.crashed) ? 1 : 0;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
