import { createVerify, X509Certificate } from 'node:crypto';
import { Lru } from '../lru.js';

/**
 * Verification of Amazon SNS message signatures, as described in the AWS docs
 * ("Verifying the signatures of Amazon SNS messages"): rebuild the canonical
 * string-to-sign from the message's fields, fetch the signing certificate from
 * `SigningCertURL` (only from a trusted SNS host), and check the signature
 * with RSA-SHA1 (`SignatureVersion` '1') or RSA-SHA256 ('2').
 */

/** The JSON envelope SNS POSTs to an HTTP(S) subscription. Only string fields are meaningful. */
export interface SnsMessage {
  Type: string;
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  Subject?: string;
  SubscribeURL?: string;
  Token?: string;
  UnsubscribeURL?: string;
  SignatureVersion?: string;
  Signature?: string;
  SigningCertURL?: string;
}

/** Fields signed for a Notification, in signing order; `Subject` only when present. */
const NOTIFICATION_FIELDS = ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'] as const;
/** Fields signed for SubscriptionConfirmation and UnsubscribeConfirmation, in signing order. */
const CONFIRMATION_FIELDS = ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'] as const;
const OPTIONAL_FIELDS: ReadonlySet<string> = new Set(['Subject']);

const ALGORITHMS: Readonly<Record<string, string>> = { '1': 'RSA-SHA1', '2': 'RSA-SHA256' };

/** Real SNS certificates are ~2 KB; refuse anything absurd from a (trusted) host. */
const MAX_CERTIFICATE_BYTES = 64 * 1024;

/**
 * The canonical string SNS signs for `message`: "Key\nvalue\n" for each signed
 * field in order. undefined when the Type is not one SNS signs or a required
 * field is missing or not a string.
 */
export function stringToSign(message: Record<string, unknown>): string | undefined {
  const fields =
    message.Type === 'Notification'
      ? NOTIFICATION_FIELDS
      : message.Type === 'SubscriptionConfirmation' || message.Type === 'UnsubscribeConfirmation'
        ? CONFIRMATION_FIELDS
        : undefined;
  if (!fields) return undefined;
  let canonical = '';
  for (const field of fields) {
    const value = message[field];
    if (value === undefined && OPTIONAL_FIELDS.has(field)) continue;
    if (typeof value !== 'string') return undefined;
    canonical += `${field}\n${value}\n`;
  }
  return canonical;
}

/** Why a message's signature was not accepted; short labels fit for metrics. */
export type SignatureRejection =
  | 'unsigned'
  | 'unsupported-signature-version'
  | 'untrusted-cert-url'
  | 'invalid-certificate'
  | 'unsignable-message'
  | 'bad-signature';

export type SignatureCheck = { valid: true } | { valid: false; reason: SignatureRejection };

/** The certificate could not be fetched (network, non-2xx, oversized): transient, unlike a bad signature. */
export class CertificateFetchError extends Error {
  override readonly name = 'CertificateFetchError';
}

export interface SignatureVerifierOptions {
  /** Whether a SigningCertURL may be fetched. Untrusted URLs are never requested. */
  isTrustedUrl(url: URL): boolean;
  fetch?: typeof fetch;
  /** Certificates kept, by URL. Default 100. */
  cacheSize?: number;
  /** How long a fetched certificate is kept. Default 1 hour. */
  cacheTtlMs?: number;
  /** Timeout of one certificate fetch. Default 5 s. */
  fetchTimeoutMs?: number;
  now?: () => number;
}

export interface SignatureVerifier {
  /** The verdict with a reason. Rejects with CertificateFetchError when the (trusted) certificate could not be fetched. */
  check(message: Record<string, unknown>): Promise<SignatureCheck>;
  /** `check` as a boolean. Rejects with CertificateFetchError like `check`. */
  verify(message: Record<string, unknown>): Promise<boolean>;
}

export function createSignatureVerifier(options: SignatureVerifierOptions): SignatureVerifier {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const now = options.now ?? Date.now;
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 5_000;
  const certificates = new Lru<string, X509Certificate>(options.cacheSize ?? 100, options.cacheTtlMs ?? 60 * 60 * 1000, now);
  const inFlight = new Map<string, Promise<X509Certificate>>();

  async function download(url: URL): Promise<X509Certificate> {
    let response: Response;
    try {
      // No redirects: a trusted host must not be able to send us somewhere untrusted.
      response = await fetchImpl(url, { redirect: 'error', signal: AbortSignal.timeout(fetchTimeoutMs) });
    } catch (error) {
      throw new CertificateFetchError(`Fetching the SNS signing certificate failed: ${(error as Error).message}`, { cause: error });
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw new CertificateFetchError(`Fetching the SNS signing certificate answered ${response.status}`);
    }
    const declared = Number(response.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > MAX_CERTIFICATE_BYTES) {
      await response.body?.cancel().catch(() => undefined);
      throw new CertificateFetchError(`The SNS signing certificate is larger than ${MAX_CERTIFICATE_BYTES} bytes`);
    }
    const pem = await response.text();
    if (Buffer.byteLength(pem) > MAX_CERTIFICATE_BYTES) {
      throw new CertificateFetchError(`The SNS signing certificate is larger than ${MAX_CERTIFICATE_BYTES} bytes`);
    }
    // Parsing failure is a property of the content, not a transient fault.
    return new X509Certificate(pem);
  }

  /** The certificate at `url`, cached; concurrent requests for one URL share a single fetch. */
  function certificateAt(url: URL): Promise<X509Certificate> {
    const key = url.href;
    const cached = certificates.get(key);
    if (cached) return Promise.resolve(cached);
    const pending = inFlight.get(key);
    if (pending) return pending;
    const fetching = download(url)
      .then((certificate) => {
        certificates.set(key, certificate);
        return certificate;
      })
      .finally(() => inFlight.delete(key));
    inFlight.set(key, fetching);
    return fetching;
  }

  async function check(message: Record<string, unknown>): Promise<SignatureCheck> {
    const { Signature: signature, SignatureVersion: version, SigningCertURL: certUrl } = message;
    if (typeof signature !== 'string' || signature === '' || typeof version !== 'string' || typeof certUrl !== 'string') {
      return { valid: false, reason: 'unsigned' };
    }
    const algorithm = Object.hasOwn(ALGORITHMS, version) ? ALGORITHMS[version] : undefined;
    if (!algorithm) return { valid: false, reason: 'unsupported-signature-version' };

    let url: URL;
    try {
      url = new URL(certUrl);
    } catch {
      return { valid: false, reason: 'untrusted-cert-url' };
    }
    if (!options.isTrustedUrl(url)) return { valid: false, reason: 'untrusted-cert-url' };

    const canonical = stringToSign(message);
    if (canonical === undefined) return { valid: false, reason: 'unsignable-message' };

    let certificate: X509Certificate;
    try {
      certificate = await certificateAt(url);
    } catch (error) {
      if (error instanceof CertificateFetchError) throw error;
      return { valid: false, reason: 'invalid-certificate' };
    }
    const at = now();
    if (at < Date.parse(certificate.validFrom) || at > Date.parse(certificate.validTo)) {
      return { valid: false, reason: 'invalid-certificate' };
    }

    try {
      const verifier = createVerify(algorithm);
      verifier.update(canonical, 'utf8');
      const ok = verifier.verify(certificate.publicKey, Buffer.from(signature, 'base64'));
      return ok ? { valid: true } : { valid: false, reason: 'bad-signature' };
    } catch {
      return { valid: false, reason: 'bad-signature' };
    }
  }

  return {
    check,
    verify: async (message) => (await check(message)).valid,
  };
}
