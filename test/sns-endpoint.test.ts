import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSnsEndpoint, isSnsHostOf, type SnsEndpointOptions } from '../src/live/sns-endpoint.js';
import { createSignatureVerifier, stringToSign } from '../src/live/sns-signature.js';
import { createLogger } from '../src/logger.js';
import {
  CERT_PATH,
  confirmationFields,
  notificationFields,
  startSnsHost,
  startSnsStandIn,
  type Fields,
  type SnsHost,
  type SnsStandIn,
} from './helpers/sns.js';

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:tasks';

const servers: Server[] = [];

/** The stand-in SNS host (trusted) and its signing key. */
let snsHost: SnsStandIn;
/** A host that is not trusted, serving the same certificate. */
let untrustedHost: SnsHost;
/** Every request the stand-in SNS host and the untrusted host received. */
let standInRequests: SnsHost['requests'];
let untrustedRequests: SnsHost['requests'];
let standIn: string; // origin of the stand-in SNS host (trusted)
let untrusted: string; // origin of a host that is not trusted, serving the same certificate

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): Promise<string> {
  const server = createServer((req, res) => void handler(req, res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  snsHost = await startSnsStandIn();
  untrustedHost = await startSnsHost(snsHost.certificate);
  ({ origin: standIn, requests: standInRequests } = snsHost);
  ({ origin: untrusted, requests: untrustedRequests } = untrustedHost);
});

afterAll(async () => {
  await Promise.all([
    snsHost?.close(),
    untrustedHost?.close(),
    ...servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  ]);
});

// Signing, as SNS does, with the shared fixtures' own copy of the canonical
// format (not src/live/sns-signature.ts's): see test/helpers/sns.ts.
function sign(message: Fields, options: { version?: string; certUrl?: string; algorithm?: string } = {}): Fields {
  return snsHost.sign(message, options);
}

function notification(payload: unknown, extra: Fields = {}): Fields {
  return notificationFields({ topicArn: TOPIC, message: payload, unsubscribeOrigin: standIn, extra });
}

function confirmation(type: 'SubscriptionConfirmation' | 'UnsubscribeConfirmation', subscribeOrigin = standIn): Fields {
  return confirmationFields(type, TOPIC, subscribeOrigin);
}

const payload = (n = 1) => ({ action: 'task-status', id: `task-${n}`, version: n, content: { status: 'COMPLETED' } });

// ---------------------------------------------------------------------------
// The endpoint under test, on a real server.
// ---------------------------------------------------------------------------
interface Endpoint {
  url: string;
  delivered: unknown[];
  rejected: string[];
  confirmed: string[];
  logs: { level: string; msg?: string; data?: unknown[] }[];
  post(body: unknown, init?: RequestInit): Promise<{ status: number; text: string }>;
}

async function startEndpoint(overrides: Partial<SnsEndpointOptions> = {}): Promise<Endpoint> {
  const delivered: unknown[] = [];
  const rejected: string[] = [];
  const confirmed: string[] = [];
  const logs: Endpoint['logs'] = [];
  const handler = createSnsEndpoint({
    topicArn: TOPIC,
    region: 'eu-west-1',
    deliver: (message) => void delivered.push(message),
    logger: createLogger('debug', (line) => void logs.push(JSON.parse(line))),
    onRejected: (reason) => void rejected.push(reason),
    onSubscriptionConfirmed: (url) => void confirmed.push(url),
    isTrustedSnsUrl: (url) => url.origin === standIn,
    ...overrides,
  });
  const origin = await listen(handler);
  const url = `${origin}/sns`;
  return {
    url,
    delivered,
    rejected,
    confirmed,
    logs,
    async post(body, init = {}) {
      // SNS posts JSON as text/plain.
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=UTF-8' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        ...init,
      });
      return { status: response.status, text: await response.text() };
    },
  };
}

const certFetches = () => snsHost.certFetches();

describe('SNS endpoint: replays', () => {
  const at = (offsetMs: number) => ({ Timestamp: new Date(Date.now() + offsetMs).toISOString() });

  it('refuses a validly signed notification older than the age limit (one hour by default), and one from the future', async () => {
    const sns = await startEndpoint();
    const old = await sns.post(sign({ ...notification(payload(1)), ...at(-61 * 60_000) }));
    expect(old.status).toBe(403);
    const future = await sns.post(sign({ ...notification(payload(2)), ...at(10 * 60_000) }));
    expect(future.status).toBe(403);
    const garbled = await sns.post(sign({ ...notification(payload(3)), Timestamp: 'yesterday' }));
    expect(garbled.status).toBe(400);
    expect(sns.rejected).toEqual(['expired-message', 'future-message', 'malformed-timestamp']);
    expect(sns.delivered).toEqual([]);
  });

  it('accepts a notification within the limit, and drops its replay', async () => {
    const sns = await startEndpoint({ maxMessageAgeMs: 5 * 60_000 });
    const message = sign({ ...notification(payload(4)), ...at(-4 * 60_000) });
    expect((await sns.post(message)).status).toBe(200);
    expect((await sns.post(message)).text).toMatch(/duplicate/);
    expect(sns.delivered).toEqual([payload(4)]);
    const stale = await sns.post(sign({ ...notification(payload(5)), ...at(-6 * 60_000) }));
    expect(stale.status).toBe(403);
  });
});

describe('SNS endpoint: notifications', () => {
  it('delivers a valid SignatureVersion 1 notification once, parsed', async () => {
    const sns = await startEndpoint();
    const response = await sns.post(sign(notification(payload(1)), { version: '1' }));
    expect(response.status).toBe(200);
    expect(sns.delivered).toEqual([payload(1)]);
    expect(sns.rejected).toEqual([]);
  });

  it('delivers a valid SignatureVersion 2 notification once, parsed', async () => {
    const sns = await startEndpoint();
    const response = await sns.post(sign(notification(payload(2)), { version: '2' }));
    expect(response.status).toBe(200);
    expect(sns.delivered).toEqual([payload(2)]);
    expect(sns.rejected).toEqual([]);
  });

  it('signs Subject when present, and refuses a tampered Subject', async () => {
    const sns = await startEndpoint();
    const signed = sign(notification(payload(3), { Subject: 'task update' }));
    expect((await sns.post(signed)).status).toBe(200);
    const tampered = sign(notification(payload(4), { Subject: 'task update' }));
    expect((await sns.post({ ...tampered, Subject: 'something else' })).status).toBe(403);
    expect(sns.delivered).toEqual([payload(3)]);
    expect(sns.rejected).toEqual(['bad-signature']);
  });

  it('refuses a tampered Message with 403 and delivers nothing', async () => {
    const sns = await startEndpoint();
    const signed = sign(notification(payload(1)));
    const response = await sns.post({ ...signed, Message: JSON.stringify(payload(666)) });
    expect(response.status).toBe(403);
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual(['bad-signature']);
  });

  it('refuses an unsigned notification with 403', async () => {
    const sns = await startEndpoint();
    const { Signature: _signature, ...unsigned } = sign(notification(payload()));
    expect((await sns.post(unsigned)).status).toBe(403);
    expect((await sns.post(notification(payload()))).status).toBe(403); // no signature fields at all
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual(['unsigned', 'unsigned']);
  });

  it('refuses SignatureVersion 3 with 403', async () => {
    const sns = await startEndpoint();
    const response = await sns.post(sign(notification(payload()), { version: '3', algorithm: 'RSA-SHA256' }));
    expect(response.status).toBe(403);
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual(['unsupported-signature-version']);
  });

  it('refuses an RSA-SHA1 signature labelled SignatureVersion 2', async () => {
    const sns = await startEndpoint();
    const response = await sns.post(sign(notification(payload()), { version: '2', algorithm: 'RSA-SHA1' }));
    expect(response.status).toBe(403);
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual(['bad-signature']);
  });

  it('refuses a SigningCertURL on an untrusted host with 403 and never fetches it', async () => {
    const sns = await startEndpoint();
    const before = untrustedRequests.length;
    // The untrusted host serves the very certificate that signed the message: only the trust check refuses it.
    const response = await sns.post(sign(notification(payload()), { certUrl: `${untrusted}${CERT_PATH}` }));
    expect(response.status).toBe(403);
    expect(untrustedRequests.length).toBe(before);
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual(['untrusted-cert-url']);
  });

  it('refuses a foreign TopicArn with 403', async () => {
    const sns = await startEndpoint();
    const foreign = sign(notification(payload(), { TopicArn: 'arn:aws:sns:eu-west-1:999999999999:other' }));
    expect((await sns.post(foreign)).status).toBe(403);
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual(['foreign-topic']);
  });

  it('answers a replayed MessageId with 200 but delivers it only once', async () => {
    const sns = await startEndpoint();
    const signed = sign(notification(payload(7)));
    expect((await sns.post(signed)).status).toBe(200);
    expect((await sns.post(signed)).status).toBe(200);
    const concurrent = await Promise.all([1, 2, 3, 4].map(() => sns.post(signed)));
    expect(concurrent.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(sns.delivered).toEqual([payload(7)]);
    expect(sns.rejected).toEqual([]);
  });

  it('delivers concurrent first deliveries of one MessageId only once', async () => {
    const sns = await startEndpoint();
    const signed = sign(notification(payload(8)));
    const responses = await Promise.all([1, 2, 3, 4, 5].map(() => sns.post(signed)));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(sns.delivered).toEqual([payload(8)]);
  });

  it('does not mark a MessageId seen when its signature fails', async () => {
    const sns = await startEndpoint();
    const signed = sign(notification(payload(9)));
    expect((await sns.post({ ...signed, Signature: Buffer.from('forged').toString('base64') })).status).toBe(403);
    expect((await sns.post(signed)).status).toBe(200);
    expect(sns.delivered).toEqual([payload(9)]);
    expect(sns.rejected).toEqual(['bad-signature']);
  });

  it('refuses a malformed JSON body with 400', async () => {
    const sns = await startEndpoint();
    expect((await sns.post('{"Type": "Notification", ')).status).toBe(400);
    expect((await sns.post('[1, 2]')).status).toBe(400);
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual(['malformed-json', 'malformed-json']);
  });

  it('refuses a verified notification whose Message is not JSON with 400', async () => {
    const sns = await startEndpoint();
    const response = await sns.post(sign(notification('plain text, not JSON')));
    expect(response.status).toBe(400);
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual(['malformed-message']);
  });

  it('refuses an unknown Type and missing fields with 400', async () => {
    const sns = await startEndpoint();
    expect((await sns.post(sign({ ...notification(payload()), Type: 'Surprise' }))).status).toBe(400);
    const { Timestamp: _timestamp, ...noTimestamp } = notification(payload());
    expect((await sns.post(sign(noTimestamp))).status).toBe(400);
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual(['unknown-type', 'missing-fields']);
  });

  it('refuses GET with 405', async () => {
    const sns = await startEndpoint();
    const response = await fetch(sns.url);
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
    expect(sns.rejected).toEqual(['method-not-allowed']);
  });

  it('refuses a body over the default bound (512 KiB) with 413', async () => {
    const sns = await startEndpoint();
    const big = sign(notification({ padding: 'x'.repeat(600 * 1024) }));
    const response = await sns.post(big);
    expect(response.status).toBe(413);
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual(['body-too-large']);
  });

  it('refuses a chunked body over a configured bound with 413', async () => {
    const sns = await startEndpoint({ maxBodyBytes: 1024 });
    const chunk = new TextEncoder().encode('x'.repeat(512));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const response = await fetch(sns.url, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(413);
    await response.arrayBuffer().catch(() => undefined);
    expect(sns.rejected).toEqual(['body-too-large']);
  });

  it('answers 502 (so SNS retries) when the trusted certificate cannot be fetched', async () => {
    const sns = await startEndpoint();
    const response = await sns.post(sign(notification(payload()), { certUrl: `${standIn}/missing.pem` }));
    expect(response.status).toBe(502);
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual(['certificate-unavailable']);
  });

  it('answers 500 and lets the redelivery through when deliver throws', async () => {
    let calls = 0;
    const delivered: unknown[] = [];
    const sns = await startEndpoint({
      deliver: (message) => {
        if (calls++ === 0) throw new Error('dispatcher down');
        delivered.push(message);
      },
    });
    const signed = sign(notification(payload(10)));
    expect((await sns.post(signed)).status).toBe(500);
    expect((await sns.post(signed)).status).toBe(200);
    expect(delivered).toEqual([payload(10)]);
  });

  it('fetches the certificate once for many messages', async () => {
    const sns = await startEndpoint();
    const before = certFetches();
    const concurrent = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => sns.post(sign(notification(payload(n)), { version: n % 2 ? '1' : '2' }))),
    );
    for (const n of [6, 7, 8]) expect((await sns.post(sign(notification(payload(n))))).status).toBe(200);
    expect(concurrent.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(certFetches() - before).toBe(1);
    expect(sns.delivered).toHaveLength(8);
  });

  it('logs each rejection at warn with its reason, never the body', async () => {
    const sns = await startEndpoint();
    const secret = `secret-${randomUUID()}`;
    const signed = sign(notification({ secret }));
    await sns.post({ ...signed, Message: JSON.stringify({ secret, tampered: true }) });
    const warnings = sns.logs.filter((entry) => entry.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0])).toContain('bad-signature');
    expect(JSON.stringify(sns.logs)).not.toContain(secret);
  });
});

describe('SNS endpoint: subscription', () => {
  it('confirms a SubscriptionConfirmation by GET of its trusted SubscribeURL', async () => {
    const sns = await startEndpoint();
    const message = confirmation('SubscriptionConfirmation');
    const before = standInRequests.length;
    const response = await sns.post(sign(message, { version: '2' }));
    expect(response.status).toBe(200);
    const confirmations = standInRequests.slice(before).filter((request) => request.url.startsWith('/?'));
    expect(confirmations).toHaveLength(1);
    expect(confirmations[0]!.method).toBe('GET');
    const url = new URL(confirmations[0]!.url, standIn);
    expect(url.pathname).toBe('/');
    expect(Object.fromEntries(url.searchParams)).toEqual({ Action: 'ConfirmSubscription', TopicArn: TOPIC, Token: message.Token });
    expect(sns.confirmed).toEqual([message.SubscribeURL]);
    expect(sns.delivered).toEqual([]);
    expect(sns.rejected).toEqual([]);
  });

  it('refuses a SubscriptionConfirmation whose SubscribeURL is untrusted, and never fetches it', async () => {
    const sns = await startEndpoint();
    const before = untrustedRequests.length;
    const response = await sns.post(sign(confirmation('SubscriptionConfirmation', untrusted)));
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(untrustedRequests.length).toBe(before);
    expect(sns.confirmed).toEqual([]);
    expect(sns.rejected).toEqual(['untrusted-subscribe-url']);
  });

  it('refuses an unsigned SubscriptionConfirmation and a foreign-topic one, without confirming', async () => {
    const sns = await startEndpoint();
    const before = standInRequests.length;
    expect((await sns.post(confirmation('SubscriptionConfirmation'))).status).toBe(403);
    expect((await sns.post(sign({ ...confirmation('SubscriptionConfirmation'), TopicArn: `${TOPIC}-other` }))).status).toBe(403);
    expect(standInRequests.slice(before).filter((request) => request.url.startsWith('/?'))).toEqual([]);
    expect(sns.confirmed).toEqual([]);
    expect(sns.rejected).toEqual(['unsigned', 'foreign-topic']);
  });

  it('answers 502 when the confirmation GET fails', async () => {
    const sns = await startEndpoint();
    const message = { ...confirmation('SubscriptionConfirmation'), SubscribeURL: `${standIn}/broken` };
    const response = await sns.post(sign(message));
    expect(response.status).toBe(502);
    expect(sns.confirmed).toEqual([]);
    expect(sns.rejected).toEqual(['confirmation-failed']);
  });

  it('acknowledges an UnsubscribeConfirmation with 200 and nothing else', async () => {
    const sns = await startEndpoint();
    const before = standInRequests.filter((request) => request.url.startsWith('/?')).length;
    const response = await sns.post(sign(confirmation('UnsubscribeConfirmation')));
    expect(response.status).toBe(200);
    expect(standInRequests.filter((request) => request.url.startsWith('/?')).length).toBe(before);
    expect(sns.delivered).toEqual([]);
    expect(sns.confirmed).toEqual([]);
    expect(sns.rejected).toEqual([]);
  });
});

describe('SNS signature pieces', () => {
  it('builds the canonical string in the documented order', () => {
    expect(
      stringToSign({
        Type: 'Notification',
        MessageId: 'm1',
        TopicArn: 't',
        Message: 'hello',
        Timestamp: 'ts',
        Subject: 's',
        Signature: 'x',
      }),
    ).toBe('Message\nhello\nMessageId\nm1\nSubject\ns\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n');
    expect(stringToSign({ Type: 'Notification', MessageId: 'm1', TopicArn: 't', Message: 'hello', Timestamp: 'ts' })).toBe(
      'Message\nhello\nMessageId\nm1\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n',
    );
    expect(
      stringToSign({
        Type: 'SubscriptionConfirmation',
        MessageId: 'm',
        TopicArn: 't',
        Message: 'hi',
        Timestamp: 'ts',
        Token: 'k',
        SubscribeURL: 'u',
      }),
    ).toBe('Message\nhi\nMessageId\nm\nSubscribeURL\nu\nTimestamp\nts\nToken\nk\nTopicArn\nt\nType\nSubscriptionConfirmation\n');
    expect(stringToSign({ Type: 'Notification', MessageId: 'm1', TopicArn: 't', Timestamp: 'ts' })).toBeUndefined();
    expect(stringToSign({ Type: 'Other', MessageId: 'm1', TopicArn: 't', Message: 'x', Timestamp: 'ts' })).toBeUndefined();
  });

  it('refuses a certificate outside its validity period', async () => {
    const verifier = createSignatureVerifier({
      isTrustedUrl: (url) => url.origin === standIn,
      now: () => Date.now() + 3 * 24 * 60 * 60 * 1000, // the test certificate is valid for one day
    });
    expect(await verifier.check(sign(notification(payload())))).toEqual({ valid: false, reason: 'invalid-certificate' });
  });

  it('trusts by default only https on the SNS host of the region', () => {
    const trusted = isSnsHostOf('eu-west-1');
    expect(trusted(new URL('https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem'))).toBe(true);
    expect(trusted(new URL('https://sns.eu-west-1.amazonaws.com.cn/x.pem'))).toBe(true);
    expect(trusted(new URL('http://sns.eu-west-1.amazonaws.com/x.pem'))).toBe(false);
    expect(trusted(new URL('https://sns.us-east-1.amazonaws.com/x.pem'))).toBe(false);
    expect(trusted(new URL('https://sns.eu-west-1.amazonaws.com.evil.example/x.pem'))).toBe(false);
    expect(trusted(new URL('https://evil.example/sns.eu-west-1.amazonaws.com/x.pem'))).toBe(false);
    expect(trusted(new URL('https://sns.eu-west-1.amazonaws.com:8443/x.pem'))).toBe(false);
    expect(trusted(new URL('https://user@sns.eu-west-1.amazonaws.com/x.pem'))).toBe(false);
  });
});
