import { isAbsolute, resolve } from 'node:path';
import type { AuthConfig } from './auth/verify-token.js';
import { DEFAULT_BRIDGE_QUEUE_PREFIX, MAX_BRIDGE_QUEUE_PREFIX_LENGTH } from './aws/sqs-bridge.js';
import { StartupError } from './lifecycle.js';
import { LOG_LEVELS, type LogLevel } from './logger.js';
import type { ServerLimits } from './server/server.js';

/**
 * Where tasks are stored: the embedded default runs dynalite in-process
 * (`dataDir` undefined keeps it in memory); `dynamodb` talks to DynamoDB or
 * anything that speaks its protocol, where the table must already exist.
 */
export type StorageConfig =
  | { mode: 'embedded'; dataDir?: string; tableName: string }
  | { mode: 'dynamodb'; endpoint?: string; region?: string; tableName: string };

/**
 * How a replica hears changes made on other replicas (SNS_BRIDGE):
 * `sqs` — a queue of its own subscribed to the topic, long-polled (works in private subnets);
 * `http` — `<PUBLIC_URL>/sns` subscribed to the topic (SNS must reach it: a public endpoint);
 * `off` — not at all (one process, or one that serves no subscribers).
 */
export const SNS_BRIDGE_MODES = ['sqs', 'http', 'off'] as const;
export type SnsBridgeMode = (typeof SNS_BRIDGE_MODES)[number];

/** SNS wiring; all absent in the embedded default, where changes are dispatched in-process only. */
export interface SnsConfig {
  topicArn?: string;
  alarmTopicArn?: string;
  /** This replica's public base URL: it subscribes `<PUBLIC_URL>/sns` to the topic at start (bridge `http`). */
  publicUrl?: string;
  /**
   * @default `http` with PUBLIC_URL; else `sqs` with SNS_TOPIC_ARN on AWS's DynamoDB
   * (TASKS_TABLE without DYNAMODB_ENDPOINT); else `off`.
   */
  bridge: SnsBridgeMode;
  /** Bridge `sqs`: queues are named `<prefix><ULID>`; the sweep looks only at this prefix. @default 'task-bridge-' */
  bridgeQueuePrefix: string;
  /** Taken from the topic ARN unless AWS_REGION says otherwise. */
  region?: string;
  /** `/sns` refuses messages signed longer ago than this, and remembers MessageIds this long. */
  maxMessageAgeMs: number;
  /**
   * Who publishes task changes to the topics (NOTIFICATIONS): `service`, each
   * write of this service; `stream`, the table's stream handler
   * (src/lambda/stream-handler.ts), which also hears other writers. @default 'service'
   */
  notifications: 'service' | 'stream';
}

export interface LiveConfig {
  maxQueuedEvents: number;
  maxConnectionsPerTenant: number;
  maxSubscriptionsPerConnection: number;
  keepAliveMs: number;
}

export interface WorkerConfig {
  /**
   * Queue new tasks and run them (default). Off: tasks stay CREATED and
   * backends drive every transition with updateStatus, as with the original package.
   */
  enabled: boolean;
  /** Tasks run at once by this process's in-process queue. */
  concurrency: number;
  /** A module exporting `handlers` and/or `subTaskHandlers` (HandlerMap), loaded by `npm start`. */
  handlersModule?: string;
  /** Register the ECHO and SLEEP examples (default: on in the embedded default). */
  exampleHandlers: boolean;
  /** Map MaxConcurrency of the Step Functions execution. */
  stepFunctionsConcurrency: number;
  leaseMs: number;
  /** On shutdown, how long running handlers get before they are aborted (their tasks are taken over on the next start). */
  shutdownGraceMs: number;
  progressIntervalMs: number;
  /** Sub-task counter changes within this window become one parent write and one parent event. */
  parentEventWindowMs: number;
  /** AWS: the state machine (statemachine/sub-tasks.asl.json) to start executions on. */
  stateMachineArn?: string;
  /** AWS: an SQS queue subscribed to SNS_TOPIC_ARN (filter action = task-execute) this process works from. */
  queueUrl?: string;
}

export interface Config {
  host: string;
  port: number;
  storage: StorageConfig;
  /**
   * Absent in embedded mode without JWT settings: a development secret is generated.
   * `viewerSecret`: VIEWER_TOKEN_SECRET, else JWT_SECRET (else the development secret).
   */
  auth: Omit<AuthConfig, 'secret' | 'jwksUrl'> & { secret?: string; jwksUrl?: string };
  retentionDays?: number;
  limits: ServerLimits;
  sns: SnsConfig;
  live: LiveConfig;
  worker: WorkerConfig;
  trustProxy: boolean;
  graphiql: boolean;
  /** Serve the dashboard at /dashboard (DASHBOARD). */
  dashboard: boolean;
  logLevel: LogLevel;
}

export class ConfigError extends StartupError {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

/** Parses the environment once; a bad value stops start-up with a message naming the variable. */
export function loadConfig(env: Env = process.env): Readonly<Config> {
  const text = (name: string) => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const integer = (name: string, fallback: number, min = 0): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
    return value;
  };
  const choice = <T extends string>(name: string, values: readonly T[], fallback: T): T => {
    const raw = text(name)?.toLowerCase() ?? fallback;
    if (!(values as readonly string[]).includes(raw)) {
      throw new ConfigError(`${name} must be ${values.slice(0, -1).join(', ')} or ${values.at(-1)}, got "${raw}"`);
    }
    return raw as T;
  };
  const flag = (name: string, fallback: boolean): boolean => {
    const raw = text(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    throw new ConfigError(`${name} must be true or false, got "${raw}"`);
  };

  const endpoint = text('DYNAMODB_ENDPOINT');
  const tableName = text('TASKS_TABLE');
  const storage: StorageConfig =
    endpoint || tableName
      ? { mode: 'dynamodb', endpoint, region: text('AWS_REGION'), tableName: tableName ?? 'tasks' }
      : { mode: 'embedded', dataDir: dataDirOf(text('DATA_DIR') ?? './data'), tableName: 'tasks' };

  const secret = text('JWT_SECRET');
  const jwksUrl = text('JWKS_URL');
  if (secret && jwksUrl) throw new ConfigError('Set JWT_SECRET or JWKS_URL, not both');
  if (secret && secret.length < 32) throw new ConfigError('JWT_SECRET must be at least 32 characters');
  // Viewer tokens (createViewerToken) are HS256, signed by this service: JWT_SECRET by default; with JWKS_URL only, none.
  const viewerSecret = text('VIEWER_TOKEN_SECRET');
  if (viewerSecret && viewerSecret.length < 32) throw new ConfigError('VIEWER_TOKEN_SECRET must be at least 32 characters');
  if (storage.mode === 'dynamodb' && !secret && !jwksUrl) {
    throw new ConfigError('With DynamoDB configured, set JWT_SECRET or JWKS_URL (development tokens are for the embedded default only)');
  }

  const logLevel = choice<LogLevel>('LOG_LEVEL', LOG_LEVELS, 'info');
  const retention = text('TASK_RETENTION_DAYS');
  const topicArn = text('SNS_TOPIC_ARN');
  const publicUrl = text('PUBLIC_URL');
  if (publicUrl && !topicArn) throw new ConfigError('PUBLIC_URL subscribes this server to SNS_TOPIC_ARN: set both');
  if (publicUrl && !/^https?:\/\/[^/]+/.test(publicUrl)) throw new ConfigError('PUBLIC_URL must be an http(s) URL');
  const notifications = choice<SnsConfig['notifications']>('NOTIFICATIONS', ['service', 'stream'], 'service');
  const bridge = snsBridgeOf(text('SNS_BRIDGE')?.toLowerCase(), { topicArn, publicUrl, storage });
  const bridgeQueuePrefix = text('BRIDGE_QUEUE_PREFIX') ?? DEFAULT_BRIDGE_QUEUE_PREFIX;
  if (!new RegExp(`^[A-Za-z0-9_-]{1,${MAX_BRIDGE_QUEUE_PREFIX_LENGTH}}$`).test(bridgeQueuePrefix)) {
    throw new ConfigError(`BRIDGE_QUEUE_PREFIX must be 1 to ${MAX_BRIDGE_QUEUE_PREFIX_LENGTH} letters, digits, hyphens or underscores`);
  }
  // Without the topic a worker would run as the single embedded process and take over other consumers' live leases.
  if (text('TASK_QUEUE_URL') && !topicArn) throw new ConfigError('TASK_QUEUE_URL is the queue subscribed to SNS_TOPIC_ARN: set both');
  const arnRegion = (arn?: string) => arn?.split(':')[3];

  return Object.freeze({
    host: text('HOST') ?? '127.0.0.1',
    port: integer('PORT', 4000),
    storage,
    auth: {
      secret,
      jwksUrl,
      issuer: text('JWT_ISSUER'),
      audience: text('JWT_AUDIENCE'),
      claims: {
        user: text('JWT_USER_CLAIM') ?? 'sub',
        tenant: text('JWT_TENANT_CLAIM') ?? 'custom:tenant',
        roles: text('JWT_ROLES_CLAIM') ?? 'custom:roles',
      },
      adminRole: text('JWT_ADMIN_ROLE') ?? 'system_admin',
      viewerSecret: viewerSecret ?? secret,
    },
    retentionDays: retention === undefined ? undefined : integer('TASK_RETENTION_DAYS', 0, 1),
    limits: {
      maxBodyBytes: integer('MAX_BODY_BYTES', 1_048_576, 1024),
      maxDepth: integer('MAX_QUERY_DEPTH', 10, 1),
      maxCost: integer('MAX_QUERY_COST', 5000, 1),
      maxAliases: integer('MAX_QUERY_ALIASES', 15, 1),
      maxTokens: integer('MAX_QUERY_TOKENS', 10_000, 100),
    },
    sns: {
      topicArn,
      alarmTopicArn: text('SNS_ALARM_TOPIC_ARN'),
      publicUrl: publicUrl?.replace(/\/+$/, ''),
      bridge,
      bridgeQueuePrefix,
      region: text('AWS_REGION') ?? arnRegion(topicArn) ?? arnRegion(text('SNS_ALARM_TOPIC_ARN')),
      maxMessageAgeMs: integer('SNS_MAX_MESSAGE_AGE_SECONDS', 3600, 60) * 1000,
      notifications,
    },
    live: {
      maxQueuedEvents: integer('MAX_QUEUED_EVENTS', 1000, 1),
      maxConnectionsPerTenant: integer('MAX_CONNECTIONS_PER_TENANT', 1000, 1),
      maxSubscriptionsPerConnection: integer('MAX_SUBSCRIPTIONS_PER_CONNECTION', 50, 1),
      keepAliveMs: integer('WS_KEEPALIVE_MS', 12_000, 0),
    },
    worker: {
      enabled: flag('TASK_EXECUTION', true),
      concurrency: integer('WORKER_CONCURRENCY', 4, 1),
      handlersModule: text('HANDLERS_MODULE'),
      exampleHandlers: flag('EXAMPLE_HANDLERS', storage.mode === 'embedded'),
      stepFunctionsConcurrency: integer('SFN_MAX_CONCURRENCY', 2, 1),
      leaseMs: integer('TASK_LEASE_MS', 30_000, 100),
      shutdownGraceMs: integer('SHUTDOWN_GRACE_MS', 10_000, 0),
      progressIntervalMs: integer('PROGRESS_INTERVAL_MS', 500, 0),
      parentEventWindowMs: integer('PARENT_EVENT_WINDOW_MS', 250, 0),
      stateMachineArn: text('SFN_TASK_ARN'),
      queueUrl: text('TASK_QUEUE_URL'),
    },
    trustProxy: flag('TRUST_PROXY', false),
    graphiql: flag('GRAPHIQL', true),
    dashboard: flag('DASHBOARD', true),
    logLevel,
  });
}

/** SNS_BRIDGE, checked against the settings each mode needs, or its default. */
function snsBridgeOf(
  raw: string | undefined,
  { topicArn, publicUrl, storage }: { topicArn?: string; publicUrl?: string; storage: StorageConfig },
): SnsBridgeMode {
  if (raw === undefined) {
    if (!topicArn) return 'off';
    if (publicUrl) return 'http';
    // A single embedded process has no other replicas; a custom DYNAMODB_ENDPOINT is a local setup: neither reaches for SQS unasked.
    return storage.mode === 'dynamodb' && !storage.endpoint ? 'sqs' : 'off';
  }
  if (!SNS_BRIDGE_MODES.includes(raw as SnsBridgeMode)) {
    throw new ConfigError(`SNS_BRIDGE must be one of ${SNS_BRIDGE_MODES.join(', ')}, got "${raw}"`);
  }
  const mode = raw as SnsBridgeMode;
  if (mode !== 'off' && !topicArn) throw new ConfigError(`SNS_BRIDGE=${mode} bridges SNS_TOPIC_ARN: set it`);
  if (mode === 'http' && !publicUrl) throw new ConfigError('SNS_BRIDGE=http subscribes <PUBLIC_URL>/sns to the topic: set PUBLIC_URL');
  if (mode !== 'http' && publicUrl) {
    throw new ConfigError(`PUBLIC_URL is the endpoint of SNS_BRIDGE=http; with SNS_BRIDGE=${mode} leave it unset`);
  }
  return mode;
}

/** `:memory:` keeps embedded data in memory only. */
function dataDirOf(value: string): string | undefined {
  if (value === ':memory:') return undefined;
  return isAbsolute(value) ? value : resolve(process.cwd(), value);
}
