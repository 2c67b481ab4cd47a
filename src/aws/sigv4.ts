import { createHash, createHmac } from 'node:crypto';

export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * AWS Signature Version 4 for a JSON-protocol POST with no query: every
 * header given is signed. The signing key depends only on the secret,
 * the day, the region and the service, so it is derived once a day, not per
 * request (the SDK's signer also caches it). Checked against the SDK's own
 * signer in test/sigv4.test.ts.
 */
export class SigV4Signer {
  private key?: { secret: string; day: string; value: Buffer };

  constructor(
    private readonly region: string,
    private readonly service: string,
  ) {}

  /** The headers to send: `headers` plus x-amz-date, the session token and Authorization. */
  sign(
    credentials: SigningCredentials,
    /** Already URI-encoded, as a request path is: `/`, or an endpoint's own path. */
    path: string,
    headers: Record<string, string>,
    body: string,
    now: Date,
  ): Record<string, string> {
    const amzDate = now.toISOString().replace(/[-:]|\.\d{3}/g, '');
    const day = amzDate.slice(0, 8);
    const signed: Record<string, string> = { ...headers, 'x-amz-date': amzDate };
    if (credentials.sessionToken) signed['x-amz-security-token'] = credentials.sessionToken;

    const names = Object.keys(signed)
      .map((name) => name.toLowerCase())
      .sort();
    const values = new Map(
      Object.entries(signed).map(([name, value]) => [
        name.toLowerCase(),
        value
          .replace(/[\r\n]/g, ' ')
          .replace(/[ \t]+/g, ' ')
          .replace(/^ | $/g, ''),
      ]),
    );
    const signedHeaders = names.join(';');
    const canonicalRequest = [
      'POST',
      path,
      '',
      ...names.map((name) => `${name}:${values.get(name)}`),
      '',
      signedHeaders,
      sha256(body),
    ].join('\n');
    const scope = `${day}/${this.region}/${this.service}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256(canonicalRequest)}`;
    const signature = createHmac('sha256', this.signingKey(credentials.secretAccessKey, day)).update(stringToSign).digest('hex');
    signed.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return signed;
  }

  private signingKey(secret: string, day: string): Buffer {
    if (this.key?.secret !== secret || this.key.day !== day) {
      let value = hmac(`AWS4${secret}`, day);
      for (const part of [this.region, this.service, 'aws4_request']) value = hmac(value, part);
      this.key = { secret, day, value };
    }
    return this.key.value;
  }
}

const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
