import { Agent as HttpAgent, createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  DynamoDBServiceException,
  InternalServerError,
  ProvisionedThroughputExceededException,
} from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';
import { createDynamoClients } from '../src/aws/dynamo-client.js';
import { DynamoWire } from '../src/aws/dynamo-wire.js';
import { createTaskTable } from '../src/aws/task-table.js';
import { startDynalite } from '../src/embedded/dynalite.js';
import { SigV4Signer } from '../src/aws/sigv4.js';

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Destroy the socket instead of answering: after the whole head and this much of the body, if given. */
  cut?: { status: number; partialBody: string };
  reset?: true;
}
interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  remotePort: number;
}

const answers: Answer[] = [];
const seen: Seen[] = [];
let server: Server;
let port: number;
let client: DynamoDBClient;
let wire: DynamoWire;

const json = (status: number, body: object, headers: Record<string, string> = {}): Answer => ({
  status,
  headers,
  body: JSON.stringify(body),
});
const refusal = (status: number, type: string, message: string, fields: object = {}) =>
  json(status, { __type: `com.amazonaws.dynamodb.v20120810#${type}`, message, ...fields });
const caught = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.unreachable('the call resolved'),
    (error: unknown) => error as DynamoDBServiceException & Record<string, unknown>,
  );
/** x-amz-date (20260314T150926Z) as epoch milliseconds. */
const amzTime = (value: string | string[] | undefined) =>
  Date.parse(String(value).replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        remotePort: req.socket.remotePort!,
      });
      const answer = answers.shift() ?? json(599, { message: 'no answer scripted' });
      if (answer.reset) {
        req.socket.destroy();
        return;
      }
      if (answer.cut) {
        res.writeHead(answer.cut.status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': '1000' });
        res.write(answer.cut.partialBody, () => req.socket.destroy());
        return;
      }
      res.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.0', ...answer.headers });
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  answers.length = 0;
  seen.length = 0;
  const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 50 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 50 }) };
  client = new DynamoDBClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'local',
    credentials: { accessKeyId: 'test-key', secretAccessKey: 'test-secret' },
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({ httpAgent: agents.http, httpsAgent: agents.https }),
  });
  wire = new DynamoWire(client, agents);
});

afterEach(() => {
  client.destroy();
});

const PUT = {
  TableName: 'tasks',
  Item: { pk: { S: 'tenant#demo' }, sk: { S: 'task#1' }, name: { S: 'Zoë 東京' }, version: { N: '1' } },
  ConditionExpression: 'attribute_not_exists(pk)',
};

describe('DynamoWire', () => {
  test('sends a signed JSON-protocol POST and returns the body with $metadata', async () => {
    answers.push(json(200, { ConsumedCapacity: { TableName: 'tasks', CapacityUnits: 1 } }, { 'x-amzn-requestid': 'REQ-1' }));
    const output = await wire.call('PutItem', PUT);
    expect(output).toEqual({
      ConsumedCapacity: { TableName: 'tasks', CapacityUnits: 1 },
      $metadata: { httpStatusCode: 200, requestId: 'REQ-1', attempts: 1, totalRetryDelay: 0 },
    });

    expect(seen).toHaveLength(1);
    const [request] = seen;
    expect(request!.method).toBe('POST');
    expect(request!.url).toBe('/');
    expect(request!.headers).toMatchObject({
      host: `127.0.0.1:${port}`,
      'x-amz-target': 'DynamoDB_20120810.PutItem',
      'content-type': 'application/x-amz-json-1.0',
      'content-length': String(Buffer.byteLength(request!.body)),
    });
    expect(JSON.parse(request!.body)).toEqual(PUT);
    expect(request!.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=test-key\/\d{8}\/local\/dynamodb\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$/,
    );
    expect(Math.abs(amzTime(request!.headers['x-amz-date']) - Date.now())).toBeLessThan(60_000);
    // The signature covers what arrived: the host, target and body as sent (the signer itself is checked in sigv4.test.ts).
    const resigned = new SigV4Signer('local', 'dynamodb').sign(
      { accessKeyId: 'test-key', secretAccessKey: 'test-secret' },
      '/',
      { host: request!.headers.host!, 'content-type': request!.headers['content-type']!, 'x-amz-target': 'DynamoDB_20120810.PutItem' },
      request!.body,
      new Date(amzTime(request!.headers['x-amz-date'])),
    );
    expect(request!.headers.authorization).toBe(resigned.authorization);
  });

  test('calls reuse the keep-alive connection', async () => {
    answers.push(json(200, {}), json(200, { Item: { pk: { S: 'a' } } }));
    await wire.call('PutItem', PUT);
    expect(await wire.call('GetItem', { TableName: 'tasks', Key: { pk: { S: 'a' } } })).toMatchObject({ Item: { pk: { S: 'a' } } });
    expect(seen.map((request) => request.headers['x-amz-target'])).toEqual(['DynamoDB_20120810.PutItem', 'DynamoDB_20120810.GetItem']);
    expect(seen[1]!.remotePort).toBe(seen[0]!.remotePort);
  });

  test('a failed condition is the SDK’s ConditionalCheckFailedException with the item, not retried', async () => {
    const item = { pk: { S: 'tenant#demo' }, version: { N: '3' } };
    answers.push({
      ...refusal(400, 'ConditionalCheckFailedException', 'The conditional request failed', { Item: item }),
      headers: { 'x-amzn-requestid': 'REQ-CCF' },
    });
    const error = await caught(wire.call('PutItem', PUT));
    expect(error).toBeInstanceOf(ConditionalCheckFailedException);
    expect(error).toBeInstanceOf(DynamoDBServiceException);
    expect(error.name).toBe('ConditionalCheckFailedException');
    expect(error.message).toBe('The conditional request failed');
    expect(error.$fault).toBe('client');
    expect(error.Item).toEqual(item);
    expect(error.$metadata).toEqual({ httpStatusCode: 400, requestId: 'REQ-CCF', attempts: 1, totalRetryDelay: 0 });
    expect(seen).toHaveLength(1);
  });

  test('a ValidationException is not retried', async () => {
    answers.push(
      json(400, { __type: 'com.amazon.coral.validate#ValidationException', message: 'One or more parameter values were invalid' }),
      json(200, {}),
    );
    const error = await caught(wire.call('PutItem', PUT));
    expect(error).toBeInstanceOf(DynamoDBServiceException);
    expect(error.name).toBe('ValidationException');
    expect(error.message).toBe('One or more parameter values were invalid');
    expect(error.$metadata).toMatchObject({ httpStatusCode: 400, attempts: 1 });
    expect(seen).toHaveLength(1);
  });

  test('an unknown __type is a DynamoDBServiceException with that name', async () => {
    answers.push(refusal(400, 'BrandNewException', 'something new'));
    const error = await caught(wire.call('PutItem', PUT));
    expect(error).toBeInstanceOf(DynamoDBServiceException);
    expect(error.constructor).toBe(DynamoDBServiceException);
    expect(error.name).toBe('BrandNewException');
    expect(error.message).toBe('something new');
    expect(error.$fault).toBe('client');
    expect(error.$metadata).toMatchObject({ httpStatusCode: 400, attempts: 1 });
    expect(seen).toHaveLength(1);
  });

  test('throttling is retried with the SDK’s backoff', { timeout: 20_000 }, async () => {
    const throttled = refusal(400, 'ProvisionedThroughputExceededException', 'The level of configured provisioned throughput was exceeded');
    answers.push(throttled, throttled, json(200, { Attributes: { version: { N: '2' } } }));
    const started = Date.now();
    const output = await wire.call('UpdateItem', { TableName: 'tasks', Key: { pk: { S: 'a' } } });
    const elapsed = Date.now() - started;
    expect(output).toMatchObject({ Attributes: { version: { N: '2' } }, $metadata: { httpStatusCode: 200, attempts: 3 } });
    expect(seen).toHaveLength(3);
    expect(new Set(seen.map((request) => request.body)).size).toBe(1);
    // The SDK reports the time it waited between attempts (its strategy sleeps inside refreshRetryTokenForRetry).
    expect(output.$metadata.totalRetryDelay).toBeGreaterThan(0);
    expect(output.$metadata.totalRetryDelay).toBeLessThanOrEqual(elapsed);
  });

  test('stops at maxAttempts and rejects with the last error', async () => {
    answers.push(
      refusal(500, 'InternalServerError', 'boom 1'),
      refusal(500, 'InternalServerError', 'boom 2'),
      refusal(500, 'InternalServerError', 'boom 3'),
      json(200, {}),
    );
    const error = await caught(wire.call('PutItem', PUT));
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error.message).toBe('boom 3');
    expect(error.$fault).toBe('server');
    expect(error.$metadata).toMatchObject({ httpStatusCode: 500, attempts: 3 });
    expect(seen).toHaveLength(3);
  });

  test('a 503 with an HTML body is a retried server error', async () => {
    const html = {
      status: 503,
      headers: { 'content-type': 'text/html' },
      body: '<html><body><h1>503 Service Unavailable</h1></body></html>',
    };
    answers.push(html, html, html, json(200, {}));
    const error = await caught(wire.call('PutItem', PUT));
    expect(error).toBeInstanceOf(DynamoDBServiceException);
    expect(error.$fault).toBe('server');
    expect(error.$metadata).toMatchObject({ httpStatusCode: 503, attempts: 3 });
    expect(seen).toHaveLength(3);

    seen.length = 0;
    answers.length = 0;
    answers.push(html, json(200, { Item: { pk: { S: 'a' } } }));
    expect(await wire.call('GetItem', { TableName: 'tasks', Key: { pk: { S: 'a' } } })).toMatchObject({
      Item: { pk: { S: 'a' } },
      $metadata: { httpStatusCode: 200, attempts: 2 },
    });
    expect(seen).toHaveLength(2);
  });

  test('a signature refusal with a server clock an hour ahead moves the clock and is retried', async () => {
    const ahead = new Date(Date.now() + 3_600_000).toUTCString();
    answers.push(
      { ...refusal(400, 'InvalidSignatureException', 'Signature not yet current'), headers: { date: ahead } },
      json(200, {}),
      json(200, {}),
    );
    const output = await wire.call('PutItem', PUT);
    expect(output.$metadata).toMatchObject({ httpStatusCode: 200, attempts: 2 });
    expect(seen).toHaveLength(2);
    const [first, second] = seen.map((request) => amzTime(request.headers['x-amz-date']));
    expect(Math.abs(second! - first! - 3_600_000)).toBeLessThan(60_000);
    expect(seen[1]!.headers.authorization).toContain(`/${String(seen[1]!.headers['x-amz-date']).slice(0, 8)}/local/`);

    // Later calls keep the corrected clock.
    await wire.call('PutItem', PUT);
    expect(Math.abs(amzTime(seen[2]!.headers['x-amz-date']) - Date.now() - 3_600_000)).toBeLessThan(60_000);
  });

  test('a signature refusal from a server whose clock agrees is not retried', async () => {
    answers.push(
      {
        ...refusal(400, 'InvalidSignatureException', 'The request signature we calculated does not match'),
        headers: { date: new Date().toUTCString() },
      },
      json(200, {}),
    );
    const error = await caught(wire.call('PutItem', PUT));
    expect(error.name).toBe('InvalidSignatureException');
    expect(error.$metadata).toMatchObject({ httpStatusCode: 400, attempts: 1 });
    expect(seen).toHaveLength(1);
  });

  test('a connection reset before the answer is retried', async () => {
    answers.push({ status: 0, reset: true }, json(200, { Item: { pk: { S: 'a' } } }));
    const output = await wire.call('GetItem', { TableName: 'tasks', Key: { pk: { S: 'a' } } });
    expect(output).toMatchObject({ Item: { pk: { S: 'a' } }, $metadata: { httpStatusCode: 200, attempts: 2 } });
    expect(seen).toHaveLength(2);
  });

  test('a connection reset in the middle of the answer is retried', { timeout: 5_000 }, async () => {
    answers.push({ status: 0, cut: { status: 200, partialBody: '{"Item":{"pk":' } }, json(200, { Item: { pk: { S: 'a' } } }));
    const output = await wire.call('GetItem', { TableName: 'tasks', Key: { pk: { S: 'a' } } });
    expect(output).toMatchObject({ Item: { pk: { S: 'a' } }, $metadata: { httpStatusCode: 200, attempts: 2 } });
    expect(seen).toHaveLength(2);
  });

  test('throttling that never ends rejects as the SDK’s exception after maxAttempts', { timeout: 20_000 }, async () => {
    const throttled = refusal(400, 'ProvisionedThroughputExceededException', 'exceeded');
    answers.push(throttled, throttled, throttled, json(200, {}));
    const error = await caught(wire.call('PutItem', PUT));
    expect(error).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(error.$metadata).toMatchObject({ httpStatusCode: 400, attempts: 3 });
    expect(seen).toHaveLength(3);
  });

  test('without an endpoint, AWS_ENDPOINT_URL_DYNAMODB is honoured as the SDK honours it', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL_DYNAMODB', `http://127.0.0.1:${port}`);
    const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };
    const configured = new DynamoDBClient({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'test-key', secretAccessKey: 'test-secret' },
      requestHandler: new NodeHttpHandler({ httpAgent: agents.http, httpsAgent: agents.https }),
    });
    try {
      answers.push(json(200, {}));
      await new DynamoWire(configured, agents).call('GetItem', { TableName: 'tasks', Key: PUT.Item });
      expect(seen).toHaveLength(1);
      expect(seen[0]!.headers.host).toBe(`127.0.0.1:${port}`);
      expect(seen[0]!.headers.authorization).toContain('/eu-west-1/dynamodb/aws4_request,');
    } finally {
      configured.destroy();
      vi.unstubAllEnvs();
    }
  });
});

describe('DynamoWire against dynalite', () => {
  test('binary values (B, BS, inside maps) are written and read back as the SDK carries them', async () => {
    const dynamo = await startDynalite();
    const { client: admin, doc } = createDynamoClients({ endpoint: dynamo.endpoint, local: true });
    try {
      await createTaskTable(admin, 'binary');
      const item = {
        pk: 'BIN',
        sk: '1',
        buffer: Buffer.from([0, 1, 2, 250]),
        bytes: new Uint8Array([9, 8, 7]),
        set: new Set([new Uint8Array([1]), new Uint8Array([2, 3])]),
        attributes: { B: 'a string named B', nested: { raw: new Uint8Array([255]) } },
      };
      await doc.send(new PutCommand({ TableName: 'binary', Item: item }));
      const { Item } = await doc.send(new GetCommand({ TableName: 'binary', Key: { pk: 'BIN', sk: '1' } }));
      expect(Item).toEqual({
        pk: 'BIN',
        sk: '1',
        buffer: new Uint8Array([0, 1, 2, 250]),
        bytes: new Uint8Array([9, 8, 7]),
        set: new Set([new Uint8Array([1]), new Uint8Array([2, 3])]),
        attributes: { B: 'a string named B', nested: { raw: new Uint8Array([255]) } },
      });
      expect(Item!.bytes).toBeInstanceOf(Uint8Array);
    } finally {
      admin.destroy();
      await dynamo.close();
    }
  });
});
