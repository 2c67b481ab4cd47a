import { Duration } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { repoPath } from './paths.js';
import { createBundledFunction } from './workers.js';

export interface StreamPublisherProps {
  /** A table with a stream (NEW_AND_OLD_IMAGES): the caller checks that it has one. */
  readonly table: dynamodb.ITable;
  readonly taskTopic: sns.ITopic;
  readonly alarmTopic: sns.ITopic;
  /** Environment shared with the server and the workers (NOTIFICATIONS=stream, LOG_LEVEL, …). */
  readonly environment: Record<string, string>;
  readonly logRetention: logs.RetentionDays;
}

export interface StreamPublisher {
  readonly streamPublisher: nodejs.NodejsFunction;
  /** The event source's on-failure destination: metadata of the batches given up on. */
  readonly streamDeadLetterQueue: sqs.Queue;
}

/**
 * Stream mode (NOTIFICATIONS=stream): src/lambda/stream-handler.ts on the
 * table's stream publishes every change, whoever wrote it, and repairs stale
 * list-index attributes (hence read and write on the table).
 *
 * The event source starts at TRIM_HORIZON, not LATEST: the mapping starts
 * polling some time after CloudFormation creates it, and in the same deploy
 * the server and workers stop publishing; from LATEST, changes written in
 * between would never be announced. From TRIM_HORIZON nothing is lost; what it
 * costs is, on an adopted table, a replay of up to 24 hours of retained
 * records, published again with versions subscribers already hold (they drop
 * them; the repair is pinned to what it saw, so it never overwrites a newer
 * change). A new table's stream is empty then.
 */
export function createStreamPublisher(scope: Construct, props: StreamPublisherProps): StreamPublisher {
  const streamPublisher = createBundledFunction(scope, 'StreamPublisher', {
    entry: repoPath('src/lambda/stream-handler.ts'),
    handler: 'streamHandler',
    description: 'Publishes every task change on the table stream to the task topic (NOTIFICATIONS=stream)',
    environment: {
      ...props.environment,
      TASKS_TABLE: props.table.tableName,
      SNS_TOPIC_ARN: props.taskTopic.topicArn,
      SNS_ALARM_TOPIC_ARN: props.alarmTopic.topicArn,
      // Functions serve no subscribers: nothing to bridge.
      SNS_BRIDGE: 'off',
      NODE_OPTIONS: '--enable-source-maps',
    },
    // A batch of 100 is 100 sequential reads, repairs and publishes; a stuck batch holds its shard until this.
    timeout: Duration.minutes(2),
    memorySize: 512,
    logRetention: props.logRetention,
    table: props.table,
    topics: [props.taskTopic, props.alarmTopic],
  });

  const streamDeadLetterQueue = new sqs.Queue(scope, 'StreamDeadLetterQueue', {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  // Also grants the function the stream's read actions (table.grantStreamRead).
  streamPublisher.addEventSource(
    new DynamoEventSource(props.table, {
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: 100,
      // The handler stops at the first failure and names it; Lambda retries from there.
      reportBatchItemFailures: true,
      // A batch that fails as a whole (a crash, a timeout) is halved until the bad record is alone.
      bisectBatchOnError: true,
      // Bounded, so one poisoned record holds its shard (and the changes behind it) for minutes, not the stream's 24 hours.
      retryAttempts: 10,
      onFailure: new SqsDlq(streamDeadLetterQueue),
    }),
  );
  return { streamPublisher, streamDeadLetterQueue };
}
