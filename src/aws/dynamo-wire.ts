import { type Agent as HttpAgent, type IncomingMessage, request as httpRequest } from 'node:http';
import { type Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import * as dynamodb from '@aws-sdk/client-dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { isClockSkewError, isServerError, isThrottlingError, isTransientError, StandardRetryStrategy } from '@smithy/core/retry';
import type { ResponseMetadata, RetryStrategyV2, SdkError } from '@smithy/types';
import { SigV4Signer } from './sigv4.js';

/** The SDK's response metadata, and its mark on an error after which the clock was corrected. */
type WireMetadata = ResponseMetadata & { clockSkewCorrected?: true };

interface Endpoint {
  request: typeof httpRequest;
  agent: HttpAgent | HttpsAgent;
  hostname: string;
  port?: string;
  /** The Host header, which the signature covers. */
  host: string;
  path: string;
  signer: SigV4Signer;
}

type ServiceError = SdkError & { $metadata: WireMetadata };
type ErrorClass = new (options: { message: string; $metadata: WireMetadata } & Record<string, unknown>) => ServiceError;

/** Beyond this a server's Date says our clock is off (the SDK's threshold too). */
const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * DynamoDB's JSON protocol over node:http(s), for the store's calls: one
 * signed POST per attempt, without the SDK's per-request middleware, schema
 * serializers and handler contexts (most of a PutItem's client CPU: 0.86 ms
 * through the SDK, here about a third of it).
 *
 * What the SDK client does for a request is kept, from that client's own
 * resolved configuration: its credential provider (with refresh), region and
 * endpoint, its retry strategy (standard or adaptive, maxAttempts) with the
 * SDK's error classification, clock-skew correction, and its socket pool
 * (`agents`, given to the client's request handler too, so destroying the
 * client closes them). Errors are the SDK's exception classes with the same
 * fields, so `instanceof ConditionalCheckFailedException` holds.
 */
export class DynamoWire {
  private endpoint?: Promise<Endpoint>;
  private retries?: Promise<RetryStrategyV2>;
  private clockOffsetMs = 0;

  constructor(
    private readonly client: DynamoDBClient,
    private readonly agents: { http: HttpAgent; https: HttpsAgent },
  ) {}

  async call<Output extends object>(operation: string, input: object): Promise<Output & { $metadata: WireMetadata }> {
    this.endpoint ??= this.resolveEndpoint();
    const endpoint = await this.endpoint;
    const body = JSON.stringify(input, binaryAsBase64);
    this.retries ??= this.resolveRetryStrategy();
    const strategy = await this.retries;
    let token = await strategy.acquireInitialRetryToken('');
    let attempts = 0;
    let totalRetryDelay = 0;
    for (;;) {
      try {
        const output = await this.attempt<Output>(endpoint, operation, body);
        strategy.recordSuccess(token);
        Object.assign(output.$metadata, { attempts: attempts + 1, totalRetryDelay });
        return output;
      } catch (caught) {
        const error = caught as ServiceError;
        error.$metadata ??= {};
        try {
          token = await strategy.refreshRetryTokenForRetry(token, { errorType: errorType(error), error } as never);
        } catch {
          Object.assign(error.$metadata, { attempts: attempts + 1, totalRetryDelay });
          throw error;
        }
        attempts = token.getRetryCount();
        // The standard strategy now waits inside refreshRetryTokenForRetry and logs that wait; older ones leave it to us.
        const delay = token.getRetryDelay();
        totalRetryDelay += ((token as { $retryLog?: { acquisitionDelay?: number } }).$retryLog?.acquisitionDelay ?? 0) + delay;
        if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private async attempt<Output extends object>(
    endpoint: Endpoint,
    operation: string,
    body: string,
  ): Promise<Output & { $metadata: WireMetadata }> {
    const credentials = await this.client.config.credentials();
    const headers = endpoint.signer.sign(
      credentials,
      endpoint.path,
      {
        host: endpoint.host,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `DynamoDB_20120810.${operation}`,
      },
      body,
      new Date(Date.now() + this.clockOffsetMs),
    );
    headers['content-length'] = String(Buffer.byteLength(body));
    const response = await new Promise<{ status: number; headers: IncomingMessage['headers']; text: string }>((resolve, reject) => {
      const request = endpoint.request(
        { method: 'POST', hostname: endpoint.hostname, port: endpoint.port, path: endpoint.path, headers, agent: endpoint.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      request.on('error', reject);
      request.end(body);
    });
    const $metadata: WireMetadata = {
      httpStatusCode: response.status,
      requestId: header(response.headers['x-amzn-requestid']),
    };
    const parsed = parseBody(response.text);
    if (response.status >= 200 && response.status < 300 && parsed) return { ...(parsed as Output), $metadata };
    const error = serviceError(response.status, parsed, $metadata);
    this.correctClockSkew(error, header(response.headers.date));
    throw error;
  }

  /** As the SDK does: a clock-skew refusal with a server Date far from ours moves our clock, and is then retried. */
  private correctClockSkew(error: ServiceError, serverDate: string | undefined) {
    const serverTime = serverDate ? Date.parse(serverDate) : Number.NaN;
    if (!isClockSkewError(error) || Number.isNaN(serverTime)) return;
    if (Math.abs(serverTime - (Date.now() + this.clockOffsetMs)) < CLOCK_SKEW_MS) return;
    this.clockOffsetMs = serverTime - Date.now();
    error.$metadata.clockSkewCorrected = true;
  }

  /** The client's strategy; a legacy (v1) one configured by hand is replaced by the standard one with its attempts. */
  private async resolveRetryStrategy(): Promise<RetryStrategyV2> {
    const strategy = await this.client.config.retryStrategy();
    if ('acquireInitialRetryToken' in strategy) return strategy;
    return new StandardRetryStrategy(this.client.config.maxAttempts);
  }

  private async resolveEndpoint(): Promise<Endpoint> {
    const config = this.client.config;
    const region = await config.region();
    // An endpoint given to the client, else the SDK's rules: AWS_ENDPOINT_URL_DYNAMODB (or the shared
    // config's), FIPS and dual-stack settings, the region's partition.
    const url = config.endpoint
      ? await config.endpoint()
      : config.endpointProvider({
          Region: region,
          UseFIPS: await config.useFipsEndpoint(),
          UseDualStack: await config.useDualstackEndpoint(),
          Endpoint: await config.serviceConfiguredEndpoint?.(),
        }).url;
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    const port = url.port ? String(url.port) : undefined;
    const https = url.protocol === 'https:';
    const defaultPort = https ? '443' : '80';
    return {
      request: https ? httpsRequest : httpRequest,
      agent: https ? this.agents.https : this.agents.http,
      hostname,
      port,
      host: port && port !== defaultPort ? `${url.hostname}:${port}` : url.hostname,
      path: ('pathname' in url ? url.pathname : url.path) || '/',
      signer: new SigV4Signer(region, 'dynamodb'),
    };
  }
}

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/**
 * Binary values (B, BS) travel as base64 in DynamoDB's JSON, as the SDK sends
 * and reads them. A Buffer's own toJSON runs before a replacer, so the holder's
 * value is what is checked.
 */
function binaryAsBase64(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : value;
}

/** Only an AttributeValue has a B key holding a string, or a BS key holding strings (a map's values are AttributeValues). */
function base64AsBinary(key: string, value: unknown): unknown {
  if (key === 'B' && typeof value === 'string') return new Uint8Array(Buffer.from(value, 'base64'));
  if (key === 'BS' && Array.isArray(value) && value.every((item) => typeof item === 'string')) {
    return value.map((item: string) => new Uint8Array(Buffer.from(item, 'base64')));
  }
  return value;
}

function parseBody(text: string): Record<string, unknown> | undefined {
  if (!text) return {};
  try {
    // The reviver only when a binary value may be there: it costs a call per value.
    const value: unknown = /"BS?":/.test(text) ? JSON.parse(text, base64AsBinary) : JSON.parse(text);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The SDK's exception for a refusal: the class named by `__type` (after '#'), its fields copied as the SDK copies them. */
function serviceError(status: number, body: Record<string, unknown> | undefined, $metadata: WireMetadata): ServiceError {
  const { __type, message, Message, ...fields } = body ?? {};
  const name =
    typeof __type === 'string' ? __type.split('#').pop()!.split(':')[0]! : status >= 500 ? 'InternalServerError' : 'UnknownError';
  const text = String(message ?? Message ?? (body ? name : `DynamoDB answered HTTP ${status} with a body that is not JSON`));
  const known = (dynamodb as unknown as Record<string, ErrorClass | undefined>)[name];
  if (known && known.prototype instanceof dynamodb.DynamoDBServiceException) return new known({ ...fields, message: text, $metadata });
  return new dynamodb.DynamoDBServiceException({
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata,
    message: text,
  }) as ServiceError;
}

/** The SDK's retry classes, by the SDK's own tests (as its retry middleware classifies). */
function errorType(error: ServiceError) {
  if (isThrottlingError(error)) return 'THROTTLING';
  if (isTransientError(error)) return 'TRANSIENT';
  if (isServerError(error)) return 'SERVER_ERROR';
  return 'CLIENT_ERROR';
}
