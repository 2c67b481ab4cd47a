import { execFileSync } from 'node:child_process';
import { createSign, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Shared SNS test fixtures: a throwaway signing key and self-signed
 * certificate (made with the openssl CLI), a local stand-in for the SNS host
 * that serves the certificate and answers subscription confirmations, and
 * builders of signed SNS envelopes.
 */

/** Where the stand-in host serves the signing certificate. */
export const CERT_PATH = '/SimpleNotificationService-test.pem';

/** An SNS envelope: string fields, some optional. */
export type Fields = Record<string, string | undefined>;

export interface TestKeyPair {
  /** PEM, PKCS#8. */
  privateKey: string;
  /** PEM, self-signed, CN=sns.local. */
  certificate: string;
}

/** A fresh RSA 2048 key and a certificate valid for `days` days, made by the openssl CLI in a temp dir (removed after). */
export function generateTestCertificate(days = 1): TestKeyPair {
  const dir = mkdtempSync(join(tmpdir(), 'sns-test-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'k.pem',
        '-out',
        'c.pem',
        '-days',
        String(days),
        '-subj',
        '/CN=sns.local',
      ],
      { cwd: dir, stdio: 'ignore' },
    );
    return { privateKey: readFileSync(join(dir, 'k.pem'), 'utf8'), certificate: readFileSync(join(dir, 'c.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface HostRequest {
  method: string;
  url: string;
}

/** A local stand-in for an SNS host on 127.0.0.1. */
export interface SnsHost {
  /** e.g. http://127.0.0.1:41234 */
  origin: string;
  /** `${origin}${CERT_PATH}` */
  certUrl: string;
  /** Every request received, in order (method and path with query). */
  requests: HostRequest[];
  /** How many times the certificate was fetched. */
  certFetches(): number;
  /** The `isTrustedSnsUrl` that trusts this host, and only it. */
  isTrustedSnsUrl(url: URL): boolean;
  close(): Promise<void>;
}

/**
 * Serves `certificate` at CERT_PATH, answers `GET /?Action=ConfirmSubscription…`
 * with 200, `/broken` with 500 and anything else with 404; records every request.
 */
export async function startSnsHost(certificate: string): Promise<SnsHost> {
  const requests: HostRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '' });
    const url = new URL(req.url ?? '/', 'http://host');
    if (url.pathname === CERT_PATH) return void res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(certificate);
    if (url.pathname === '/' && url.searchParams.get('Action') === 'ConfirmSubscription') {
      return void res.writeHead(200, { 'content-type': 'text/xml' }).end('<ConfirmSubscriptionResponse/>');
    }
    res.writeHead(url.pathname === '/broken' ? 500 : 404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    certUrl: `${origin}${CERT_PATH}`,
    requests,
    certFetches: () => requests.filter((request) => request.url === CERT_PATH).length,
    isTrustedSnsUrl: (url) => url.origin === origin,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------
// Signing, as SNS does. The canonical format is duplicated here on purpose from
// the AWS docs rather than imported from src/live/sns-signature.ts, so that a
// canonicalization bug in the production code cannot hide in the tests too.
// ---------------------------------------------------------------------------

/** The canonical string SNS signs: "Key\nvalue\n" for each present signed field, in the documented order. */
export function canonicalForTest(message: Fields): string {
  const keys =
    message.Type === 'Notification'
      ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return keys
    .filter((key) => message[key] !== undefined)
    .map((key) => `${key}\n${message[key]}\n`)
    .join('');
}

export interface SignOptions {
  privateKey: string;
  certUrl: string;
  /** SignatureVersion, default '1'; '2' signs RSA-SHA256, anything else RSA-SHA1, unless `algorithm` says otherwise. */
  version?: string;
  algorithm?: string;
}

/** `message` plus SignatureVersion, SigningCertURL and Signature. */
export function signFields(message: Fields, { privateKey, certUrl, version = '1', algorithm }: SignOptions): Fields {
  const signer = createSign(algorithm ?? (version === '2' ? 'RSA-SHA256' : 'RSA-SHA1'));
  signer.update(canonicalForTest(message));
  return { ...message, SignatureVersion: version, SigningCertURL: certUrl, Signature: signer.sign(privateKey, 'base64') };
}

export interface NotificationInit {
  topicArn: string;
  /** Sent as is when a string, else JSON.stringify'd. */
  message: unknown;
  /** Default a random UUID. */
  messageId?: string;
  /** Origin for the UnsubscribeURL; omitted when absent. */
  unsubscribeOrigin?: string;
  /** Overrides or additions (e.g. Subject). */
  extra?: Fields;
}

/** An unsigned Notification envelope. */
export function notificationFields({
  topicArn,
  message,
  messageId = randomUUID(),
  unsubscribeOrigin,
  extra = {},
}: NotificationInit): Fields {
  return {
    Type: 'Notification',
    MessageId: messageId,
    TopicArn: topicArn,
    Message: typeof message === 'string' ? message : JSON.stringify(message),
    Timestamp: new Date().toISOString(),
    ...(unsubscribeOrigin
      ? { UnsubscribeURL: `${unsubscribeOrigin}/?Action=Unsubscribe&SubscriptionArn=${encodeURIComponent(`${topicArn}:sub`)}` }
      : {}),
    ...extra,
  };
}

/** An unsigned SubscriptionConfirmation or UnsubscribeConfirmation whose SubscribeURL points at `subscribeOrigin`. */
export function confirmationFields(
  type: 'SubscriptionConfirmation' | 'UnsubscribeConfirmation',
  topicArn: string,
  subscribeOrigin: string,
): Fields {
  const token = `token-${randomUUID()}`;
  return {
    Type: type,
    MessageId: randomUUID(),
    Token: token,
    TopicArn: topicArn,
    Message: `You have chosen to subscribe to the topic ${topicArn}.`,
    SubscribeURL: `${subscribeOrigin}/?Action=ConfirmSubscription&TopicArn=${encodeURIComponent(topicArn)}&Token=${token}`,
    Timestamp: new Date().toISOString(),
  };
}

/** A key pair and the trusted stand-in host serving its certificate, with signing bound to both. */
export interface SnsStandIn extends SnsHost, TestKeyPair {
  /** Signs with this stand-in's key; the SigningCertURL defaults to its certificate. */
  sign(message: Fields, options?: { version?: string; certUrl?: string; algorithm?: string }): Fields;
  /** A Notification carrying `message`, signed as SNS would sign it. */
  signedNotification(init: { topicArn: string; message: unknown; messageId?: string; version: '1' | '2'; extra?: Fields }): Fields;
}

/** Generates a key and certificate and serves the certificate from a stand-in SNS host on 127.0.0.1:0. Close it after use. */
export async function startSnsStandIn(): Promise<SnsStandIn> {
  const keys = generateTestCertificate();
  const host = await startSnsHost(keys.certificate);
  const sign: SnsStandIn['sign'] = (message, options = {}) =>
    signFields(message, {
      privateKey: keys.privateKey,
      certUrl: options.certUrl ?? host.certUrl,
      version: options.version,
      algorithm: options.algorithm,
    });
  return {
    ...host,
    ...keys,
    sign,
    signedNotification: ({ topicArn, message, messageId, version, extra }) =>
      sign(notificationFields({ topicArn, message, messageId, unsubscribeOrigin: host.origin, extra }), { version }),
  };
}
