import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.js';
import { Lru } from '../lru.js';
import { CertificateFetchError, createSignatureVerifier, type SignatureCheck, type SignatureVerifier } from './sns-signature.js';

/**
 * The Amazon SNS HTTP(S) subscription endpoint (`POST /sns`): checks each
 * delivery's topic and signature, confirms the subscription, drops redeliveries
 * of a MessageId seen recently, and hands each new Notification's parsed
 * Message to `deliver`. Nothing rejected ever reaches `deliver`.
 */
export interface SnsEndpointOptions {
  /** Only messages with this TopicArn are accepted. */
  topicArn: string;
  /** e.g. 'eu-west-1'. */
  region: string;
  /** Receives JSON.parse(Notification.Message) of each verified, not-seen-before Notification. */
  deliver(message: unknown): void;
  logger: Logger;
  /** Called once per rejected request with a short reason label (for metrics). */
  onRejected?(reason: string): void;
  onSubscriptionConfirmed?(subscribeUrl: string): void;
  /** Default: https URLs whose host is `sns.<region>.amazonaws.com` (or `.amazonaws.com.cn`). Tests pass a local stand-in. */
  isTrustedSnsUrl?(url: URL): boolean;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Default 512 KiB. */
  maxBodyBytes?: number;
  /**
   * Messages whose signed Timestamp is older than this are refused (a replay);
   * MessageIds are remembered this long. Default one hour.
   */
  maxMessageAgeMs?: number;
}

export const DEFAULT_SNS_MAX_BODY_BYTES = 512 * 1024;
export const DEFAULT_SNS_MAX_MESSAGE_AGE_MS = 60 * 60 * 1000;
/** A Timestamp this far ahead of our clock is clock skew; further is refused. */
const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;
/**
 * SNS delivers at least once; a redelivery of an id seen within the message
 * age limit is dropped. Only signed messages of our topic are remembered, and
 * expired ids are dropped as new ones arrive; the cap is a last resort.
 */
const SEEN_CAPACITY = 1_000_000;
const CONFIRM_TIMEOUT_MS = 10_000;

const MESSAGE_TYPES = ['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'] as const;
type MessageType = (typeof MESSAGE_TYPES)[number];

/** Fields each Type must carry as strings (the signature fields are checked by the verifier: missing → 403). */
const REQUIRED_FIELDS: Readonly<Record<MessageType, readonly string[]>> = {
  Notification: ['Type', 'MessageId', 'TopicArn', 'Message', 'Timestamp'],
  SubscriptionConfirmation: ['Type', 'MessageId', 'TopicArn', 'Message', 'Timestamp', 'Token', 'SubscribeURL'],
  UnsubscribeConfirmation: ['Type', 'MessageId', 'TopicArn', 'Message', 'Timestamp', 'Token', 'SubscribeURL'],
};

/** The default trust rule: an https URL on the SNS host of `region`, default port, no credentials. */
export function isSnsHostOf(region: string): (url: URL) => boolean {
  const hosts = new Set([`sns.${region}.amazonaws.com`, `sns.${region}.amazonaws.com.cn`]);
  return (url) => url.protocol === 'https:' && url.port === '' && url.username === '' && url.password === '' && hosts.has(url.hostname);
}

class BodyTooLarge extends Error {}

/** Reads the request body up to `maxBytes`; throws BodyTooLarge beyond it (the rest is drained, not buffered). */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume();
    return Promise.reject(new BodyTooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      received += chunk.length;
      if (received > maxBytes) {
        over = true;
        chunks.length = 0;
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const isMessageType = (value: unknown): value is MessageType => MESSAGE_TYPES.includes(value as MessageType);

export function createSnsEndpoint(options: SnsEndpointOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { logger, topicArn } = options;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_SNS_MAX_BODY_BYTES;
  const isTrusted = (raw: string): boolean => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return false;
    }
    return (options.isTrustedSnsUrl ?? isSnsHostOf(options.region))(url);
  };
  const verifier: SignatureVerifier = createSignatureVerifier({
    isTrustedUrl: options.isTrustedSnsUrl ?? isSnsHostOf(options.region),
    fetch: fetchImpl,
  });
  const maxAgeMs = options.maxMessageAgeMs ?? DEFAULT_SNS_MAX_MESSAGE_AGE_MS;
  const seen = new Lru<string, true>(SEEN_CAPACITY, maxAgeMs + MAX_CLOCK_SKEW_MS);

  return async function handleSns(req, res) {
    /** Context for log lines about this request; never the body. */
    const about: Record<string, unknown> = {};

    const answer = (status: number, text: string, headers: Record<string, string> = {}) => {
      if (res.headersSent) return;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(`${text}\n`);
    };
    const reject = (status: number, reason: string, headers: Record<string, string> = {}, cause?: unknown) => {
      if (cause === undefined) logger.warn('sns: request rejected', { reason, status, ...about });
      else logger.warn('sns: request rejected', { reason, status, ...about }, cause);
      try {
        options.onRejected?.(reason);
      } catch (error) {
        logger.error('sns: onRejected threw', error);
      }
      answer(status, reason, headers);
    };

    try {
      if (req.method !== 'POST') {
        req.resume();
        return reject(405, 'method-not-allowed', { allow: 'POST' });
      }

      let body: Buffer;
      try {
        body = await readBody(req, maxBodyBytes);
      } catch (error) {
        if (error instanceof BodyTooLarge) return reject(413, 'body-too-large', { connection: 'close' });
        throw error;
      }

      // SNS posts JSON with content-type text/plain; the content-type is not checked.
      let message: unknown;
      try {
        message = JSON.parse(body.toString('utf8'));
      } catch {
        return reject(400, 'malformed-json');
      }
      if (!isObject(message)) return reject(400, 'malformed-json');

      const type = message.Type;
      if (typeof type === 'string') about.type = type.slice(0, 64);
      if (typeof message.MessageId === 'string') about.messageId = message.MessageId.slice(0, 128);
      if (typeof message.TopicArn === 'string') about.topicArn = message.TopicArn.slice(0, 256);

      if (!isMessageType(type)) return reject(400, 'unknown-type');
      const headerType = req.headers['x-amz-sns-message-type'];
      if (headerType !== undefined && headerType !== type) return reject(400, 'type-mismatch');
      if (REQUIRED_FIELDS[type].some((field) => typeof message[field] !== 'string')) return reject(400, 'missing-fields');
      if (message.TopicArn !== topicArn) return reject(403, 'foreign-topic');

      let verdict: SignatureCheck;
      try {
        verdict = await verifier.check(message);
      } catch (error) {
        if (!(error instanceof CertificateFetchError)) throw error;
        return reject(502, 'certificate-unavailable', {}, error);
      }
      if (!verdict.valid) return reject(403, verdict.reason);
      // The Timestamp is signed: an old message is a replay (or beyond SNS's own retries).
      const sentAt = Date.parse(message.Timestamp as string);
      if (Number.isNaN(sentAt)) return reject(400, 'malformed-timestamp');
      if (sentAt < Date.now() - maxAgeMs) return reject(403, 'expired-message');
      if (sentAt > Date.now() + MAX_CLOCK_SKEW_MS) return reject(403, 'future-message');

      const messageId = message.MessageId as string;

      if (type === 'SubscriptionConfirmation') {
        const subscribeUrl = message.SubscribeURL as string;
        if (!isTrusted(subscribeUrl)) return reject(403, 'untrusted-subscribe-url');
        let response: Response;
        try {
          response = await fetchImpl(subscribeUrl, { redirect: 'error', signal: AbortSignal.timeout(CONFIRM_TIMEOUT_MS) });
          await response.body?.cancel().catch(() => undefined);
        } catch (error) {
          return reject(502, 'confirmation-failed', {}, error);
        }
        if (!response.ok) return reject(502, 'confirmation-failed', {}, { confirmationStatus: response.status });
        logger.info('sns: subscription confirmed', { topicArn });
        try {
          options.onSubscriptionConfirmed?.(subscribeUrl);
        } catch (error) {
          logger.error('sns: onSubscriptionConfirmed threw', error);
        }
        return answer(200, 'confirmed');
      }

      if (type === 'UnsubscribeConfirmation') {
        logger.info('sns: unsubscribe confirmation received', { topicArn });
        return answer(200, 'acknowledged');
      }

      // Notification. From here to deliver nothing awaits, so two concurrent
      // deliveries of one MessageId cannot both pass the seen check.
      if (seen.has(messageId)) {
        logger.debug('sns: duplicate notification dropped', about);
        return answer(200, 'duplicate');
      }
      let payload: unknown;
      try {
        payload = JSON.parse(message.Message as string);
      } catch {
        return reject(400, 'malformed-message');
      }
      seen.set(messageId, true);
      try {
        options.deliver(payload);
      } catch (error) {
        // Let SNS retry: forget the id so the redelivery is not dropped.
        seen.delete(messageId);
        logger.error('sns: deliver threw', about, error);
        return answer(500, 'delivery-failed');
      }
      return answer(200, 'delivered');
    } catch (error) {
      logger.error('sns: unexpected failure', about, error);
      answer(500, 'internal-error');
    }
  };
}
