import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

export interface MessagingProps {
  /** Receives of one task-execute message before it moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
  /** The task queue's visibility timeout. */
  readonly visibilityTimeout: Duration;
}

export interface Messaging {
  readonly topicKey: kms.Key;
  readonly taskTopic: sns.Topic;
  readonly alarmTopic: sns.Topic;
  readonly taskQueue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
}

/**
 * The task topic (every change, and task-execute announcements), the alarm
 * topic, and the task queue the workers consume: subscribed to the task
 * topic for `task-execute` messages only, with raw delivery (the worker reads
 * either shape, src/aws/sqs-worker.ts parseTaskExecuteBody; raw is smaller).
 */
export function createMessaging(scope: Construct, props: MessagingProps): Messaging {
  // A customer managed key: CloudWatch alarms cannot publish to a topic under the AWS managed SNS key.
  const topicKey = new kms.Key(scope, 'TopicKey', {
    description: 'Encrypts the task and alarm topics',
    enableKeyRotation: true,
  });
  topicKey.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');

  const taskTopic = new sns.Topic(scope, 'TaskTopic', { masterKey: topicKey, enforceSSL: true });
  const alarmTopic = new sns.Topic(scope, 'AlarmTopic', { masterKey: topicKey, enforceSSL: true });

  const deadLetterQueue = new sqs.Queue(scope, 'TaskDeadLetterQueue', {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  const taskQueue = new sqs.Queue(scope, 'TaskQueue', {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    visibilityTimeout: props.visibilityTimeout,
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
  });
  taskTopic.addSubscription(
    new subscriptions.SqsSubscription(taskQueue, {
      rawMessageDelivery: true,
      // `action` is a message attribute of every publish (src/aws/sns-topic.ts).
      filterPolicy: { action: sns.SubscriptionFilter.stringFilter({ allowlist: ['task-execute'] }) },
    }),
  );

  return { topicKey, taskTopic, alarmTopic, taskQueue, deadLetterQueue };
}
