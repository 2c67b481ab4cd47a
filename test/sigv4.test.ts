import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Checksum, SourceData } from '@smithy/types';
import { describe, expect, test } from 'vitest';
import { SigV4Signer, type SigningCredentials } from '../src/aws/sigv4.js';

/** SHA-256 (an HMAC when given a secret) over node:crypto, as the SDK's signer takes it. */
class Sha256 implements Checksum {
  private hash: Hash | Hmac;

  constructor(private readonly secret?: SourceData) {
    this.hash = this.create();
  }

  update(chunk: Uint8Array) {
    this.hash.update(chunk);
  }

  async digest() {
    return new Uint8Array(this.hash.digest());
  }

  reset() {
    this.hash = this.create();
  }

  private create() {
    const secret = this.secret;
    if (secret === undefined) return createHash('sha256');
    if (typeof secret === 'string') return createHmac('sha256', secret);
    const bytes = ArrayBuffer.isView(secret) ? Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength) : Buffer.from(secret);
    return createHmac('sha256', bytes);
  }
}

const KEYS: SigningCredentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const SESSION: SigningCredentials = { ...KEYS, sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ==' };
const NOW = new Date('2026-03-14T15:09:26.535Z');
const AWS_HOST = 'dynamodb.eu-west-1.amazonaws.com';
const BODY = '{"TableName":"tasks","Item":{"pk":{"S":"tenant#demo"},"sk":{"S":"task#1"}}}';

const wireHeaders = (host: string, operation = 'PutItem') => ({
  host,
  'content-type': 'application/x-amz-json-1.0',
  'x-amz-target': `DynamoDB_20120810.${operation}`,
});

/** The headers the SDK's own signer produces for the same request. */
async function sdkHeaders(
  credentials: SigningCredentials,
  headers: Record<string, string>,
  body: string,
  now: Date,
  options: { region?: string; protocol?: string; port?: number; path?: string } = {},
) {
  const { region = 'eu-west-1', protocol = 'https:', port, path = '/' } = options;
  const signer = new SignatureV4({ credentials, region, service: 'dynamodb', sha256: Sha256, applyChecksum: false });
  const hostname = headers.host!.replace(/:\d+$/, '');
  const signed = await signer.sign({ method: 'POST', protocol, hostname, port, path, headers, body }, { signingDate: now });
  return signed.headers;
}

describe('SigV4Signer', () => {
  test('signs as the SDK does without a session token', async () => {
    const headers = wireHeaders(AWS_HOST);
    const ours = new SigV4Signer('eu-west-1', 'dynamodb').sign(KEYS, '/', headers, BODY, NOW);
    const sdk = await sdkHeaders(KEYS, headers, BODY, NOW);
    expect(ours['x-amz-date']).toBe('20260314T150926Z');
    expect(ours['x-amz-security-token']).toBeUndefined();
    expect(ours.authorization).toBe(sdk.authorization);
    expect(ours).toEqual(sdk);
  });

  test('signs the session token as the SDK does', async () => {
    const headers = wireHeaders(AWS_HOST, 'GetItem');
    const ours = new SigV4Signer('eu-west-1', 'dynamodb').sign(SESSION, '/', headers, BODY, NOW);
    const sdk = await sdkHeaders(SESSION, headers, BODY, NOW);
    expect(ours['x-amz-security-token']).toBe(SESSION.sessionToken);
    expect(ours['x-amz-security-token']).toBe(sdk['x-amz-security-token']);
    expect(ours.authorization).toContain('SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,');
    expect(ours.authorization).toBe(sdk.authorization);
    expect(ours).toEqual(sdk);
  });

  test('signs a host with a non-default port', async () => {
    const headers = wireHeaders('127.0.0.1:8000');
    const ours = new SigV4Signer('local', 'dynamodb').sign(KEYS, '/', headers, BODY, NOW);
    const sdk = await sdkHeaders(KEYS, headers, BODY, NOW, { region: 'local', protocol: 'http:', port: 8000 });
    expect(ours.authorization).toContain('Credential=AKIDEXAMPLE/20260314/local/dynamodb/aws4_request,');
    expect(ours.authorization).toBe(sdk.authorization);
    expect(ours).toEqual(sdk);
  });

  test('signs an endpoint with a path of its own (a proxy in front of DynamoDB)', async () => {
    const headers = wireHeaders('proxy.internal:8443');
    const ours = new SigV4Signer('eu-west-1', 'dynamodb').sign(KEYS, '/dynamodb', headers, BODY, NOW);
    const sdk = await sdkHeaders(KEYS, headers, BODY, NOW, { port: 8443, path: '/dynamodb' });
    expect(ours.authorization).toBe(sdk.authorization);
    expect(ours.authorization).not.toBe(new SigV4Signer('eu-west-1', 'dynamodb').sign(KEYS, '/', headers, BODY, NOW).authorization);
  });

  test('a signer used across midnight derives the next day’s key', async () => {
    const signer = new SigV4Signer('eu-west-1', 'dynamodb');
    const headers = wireHeaders(AWS_HOST);
    const days = [new Date('2026-03-14T23:59:59.999Z'), new Date('2026-03-15T00:00:00.000Z'), new Date('2026-03-14T12:00:00.000Z')];
    for (const day of days) {
      const ours = signer.sign(SESSION, '/', headers, BODY, day);
      const sdk = await sdkHeaders(SESSION, headers, BODY, day);
      expect(ours['x-amz-date']).toBe(sdk['x-amz-date']);
      expect(ours.authorization).toBe(sdk.authorization);
    }
    expect(signer.sign(SESSION, '/', headers, BODY, days[1]!).authorization).toContain('/20260315/eu-west-1/dynamodb/aws4_request,');
  });

  test('a signer given rotated credentials the same day derives a new key', async () => {
    const signer = new SigV4Signer('eu-west-1', 'dynamodb');
    const headers = wireHeaders(AWS_HOST);
    const rotated = { accessKeyId: 'ASIAROTATED', secretAccessKey: 'another/secret+key', sessionToken: 'token-2' };
    for (const credentials of [SESSION, rotated]) {
      expect(signer.sign(credentials, '/', headers, BODY, NOW).authorization).toBe(
        (await sdkHeaders(credentials, headers, BODY, NOW)).authorization,
      );
    }
  });

  test('hashes a non-ASCII body as UTF-8', async () => {
    const body = JSON.stringify({ TableName: 'tasks', Item: { name: { S: 'Zoë – 東京 🚀 naïve' } } });
    const headers = wireHeaders(AWS_HOST);
    const ours = new SigV4Signer('eu-west-1', 'dynamodb').sign(KEYS, '/', headers, body, NOW);
    const sdk = await sdkHeaders(KEYS, headers, body, NOW);
    expect(Buffer.byteLength(body)).toBeGreaterThan(body.length);
    expect(ours.authorization).toBe(sdk.authorization);
  });

  test('collapses whitespace in header values as the SDK does, and sends them unchanged', async () => {
    const headers = {
      host: AWS_HOST,
      'content-type': 'application/x-amz-json-1.0;   charset=utf-8',
      'X-Amz-Target': '  DynamoDB_20120810.Query  ',
      'x-custom': ' a   b \t c\t',
    };
    const ours = new SigV4Signer('eu-west-1', 'dynamodb').sign(SESSION, '/', headers, BODY, NOW);
    const sdk = await sdkHeaders(SESSION, headers, BODY, NOW);
    expect(ours.authorization).toBe(sdk.authorization);
    expect(ours['x-custom']).toBe(' a   b \t c\t');
    expect(ours).toEqual(sdk);
  });
});
