/**
 * The Lambda on the task table's stream (StreamViewType NEW_AND_OLD_IMAGES;
 * event source mapping created with FunctionResponseTypes
 * ["ReportBatchItemFailures"]): publishes every task change to SNS_TOPIC_ARN
 * in the service's notification shape, whoever wrote it, and repairs the
 * list-index attributes other writers leave stale (src/aws/stream-notifications.ts).
 *
 * Configured like the other handlers (src/config.ts): TASKS_TABLE (+ AWS_REGION
 * or DYNAMODB_ENDPOINT), SNS_TOPIC_ARN, optionally SNS_ALARM_TOPIC_ARN. With it
 * deployed, the service's own SNS publish of task changes is switched off with
 * NOTIFICATIONS=stream (each process still dispatches to its own subscribers).
 */
import { randomBytes } from 'node:crypto';
import { SNSClient } from '@aws-sdk/client-sns';
import { createDynamoClients } from '../aws/dynamo-client.js';
import { DynamoTaskStore } from '../aws/dynamo-task-store.js';
import { SnsTopic } from '../aws/sns-topic.js';
import { StreamNotifier, type DynamoDbStreamRecord, type StreamOutcome } from '../aws/stream-notifications.js';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger, type Logger } from '../logger.js';

export interface DynamoDbStreamEvent {
  Records: DynamoDbStreamRecord[];
}

/** A partial batch response: Lambda retries from the first record named here, in order. */
export interface StreamBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/**
 * Handles a batch in order, since a task's records must be handled in the
 * order they were written. At the first failure it stops and reports that
 * record's sequence number: Lambda retries the batch from there, and a record
 * published again carries a version subscribers already have (they drop it).
 */
export function createStreamHandler(notifier: StreamNotifier, logger: Logger, onOutcome?: (outcome: StreamOutcome) => void) {
  return async (event: DynamoDbStreamEvent): Promise<StreamBatchResponse> => {
    const records = Array.isArray(event?.Records) ? event.Records : [];
    for (const record of records) {
      try {
        const outcome = await notifier.handle(record);
        onOutcome?.(outcome);
      } catch (error) {
        const sequenceNumber = record.dynamodb?.SequenceNumber;
        logger.error('a stream record failed; the batch is retried from it', { eventID: record.eventID, sequenceNumber }, error);
        if (!sequenceNumber) throw error;
        return { batchItemFailures: [{ itemIdentifier: sequenceNumber }] };
      }
    }
    return { batchItemFailures: [] };
  };
}

type Env = Record<string, string | undefined>;

export interface StreamHandlerOptions {
  /** An SNS client to use instead of a new one (tests wrap it with aws-sdk-client-mock). */
  sns?: SNSClient;
  logger?: Logger;
}

/** Builds the handler from the environment (the same variables as the service). */
export function createStreamHandlerFromEnv(env: Env = process.env, options: StreamHandlerOptions = {}) {
  // loadConfig insists on JWT settings with DynamoDB; this handler verifies no tokens.
  const config = loadConfig(env.JWT_SECRET || env.JWKS_URL ? env : { ...env, JWT_SECRET: randomBytes(32).toString('hex') });
  if (config.storage.mode !== 'dynamodb') throw new ConfigError('The stream handler needs TASKS_TABLE (DynamoDB)');
  if (!config.sns.topicArn) throw new ConfigError('The stream handler needs SNS_TOPIC_ARN');
  const logger = options.logger ?? createLogger(config.logLevel);
  const { doc } = createDynamoClients({ endpoint: config.storage.endpoint, region: config.storage.region });
  const sns = options.sns ?? new SNSClient({ region: config.sns.region });
  const topicOf = (topicArn: string) => new SnsTopic({ client: sns, topicArn, logger });
  const notifier = new StreamNotifier({
    store: new DynamoTaskStore(doc, config.storage.tableName),
    table: config.storage.tableName,
    topic: topicOf(config.sns.topicArn),
    alarmTopic: config.sns.alarmTopicArn ? topicOf(config.sns.alarmTopicArn) : undefined,
    logger,
  });
  return createStreamHandler(notifier, logger);
}

let handler: ReturnType<typeof createStreamHandlerFromEnv> | undefined;

/** Handler of the stream's event source mapping; built once per container. */
export const streamHandler = (event: DynamoDbStreamEvent): Promise<StreamBatchResponse> =>
  (handler ??= createStreamHandlerFromEnv())(event);
