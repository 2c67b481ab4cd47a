import { ListSubscriptionsByTopicCommand, UnsubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import {
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Logger } from '../logger.js';

/** The tags every bridge queue is created with (atomically, by CreateQueue). */
export const BRIDGE_TAGS = {
  /** The replica that created the queue (for operators). */
  owner: 'owner',
  /** ISO time of the owner's last sign of life; refreshed with TagQueue. */
  heartbeat: 'heartbeat',
  /** The name of the topic the queue is subscribed to: a sweep only touches its own topic's queues. */
  topic: 'topic',
} as const;

/** `<prefix>` followed by a ULID: the names bridge queues are created with. */
export const bridgeQueueNamePattern = (prefix: string): RegExp =>
  new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}[0-9A-HJKMNP-TV-Z]{26}$`);

/** The topic name of `arn:<partition>:sns:<region>:<account>:<name>`. */
export const topicNameOf = (topicArn: string): string => topicArn.slice(topicArn.lastIndexOf(':') + 1);

/** SQS's "no such queue", in the JSON protocol (QueueDoesNotExist) and the older query protocol. */
export const isQueueGone = (error: unknown): boolean =>
  error instanceof Error && (error.name === 'QueueDoesNotExist' || error.name === 'AWS.SimpleQueueService.NonExistentQueue');

export interface SweepOptions {
  sns: SNSClient;
  sqs: SQSClient;
  topicArn: string;
  /** Only queues named `<prefix><ULID>` are looked at. */
  queuePrefix: string;
  /** Never swept, whatever its tags say. */
  ownQueueUrl?: string;
  /** A queue whose heartbeat is older than this belongs to a dead replica. */
  staleAfterMs: number;
  now(): number;
  logger: Logger;
}

/**
 * Deletes the bridge queues of replicas that died without stopping: a queue
 * of this topic whose heartbeat tag is older than `staleAfterMs` is
 * unsubscribed from the topic (found by its ARN among the topic's
 * subscriptions), then deleted. Queues without our tags are never touched:
 * bridge queues get them at creation, so an untagged queue with a matching
 * name is someone else's. Returns the URLs of the queues deleted.
 *
 * Replicas sweep concurrently: a queue or subscription another sweep removed
 * first counts as removed.
 */
export async function sweepBridgeQueues(options: SweepOptions): Promise<string[]> {
  const { sns, sqs, topicArn, logger } = options;
  const namePattern = bridgeQueueNamePattern(options.queuePrefix);
  const topicName = topicNameOf(topicArn);
  const now = options.now();

  const stale: string[] = [];
  for (const queueUrl of await listQueues(sqs, options.queuePrefix)) {
    if (queueUrl === options.ownQueueUrl || !namePattern.test(queueUrl.slice(queueUrl.lastIndexOf('/') + 1))) continue;
    let tags: Record<string, string>;
    try {
      tags = (await sqs.send(new ListQueueTagsCommand({ QueueUrl: queueUrl }))).Tags ?? {};
    } catch (error) {
      if (!isQueueGone(error)) logger.warn('sqs bridge sweep: reading queue tags failed', { queueUrl }, error);
      continue;
    }
    const heartbeat = Date.parse(tags[BRIDGE_TAGS.heartbeat] ?? '');
    if (tags[BRIDGE_TAGS.topic] !== topicName || Number.isNaN(heartbeat)) continue;
    if (now - heartbeat > options.staleAfterMs) stale.push(queueUrl);
  }
  if (stale.length === 0) return [];

  const arns = new Map<string, string>();
  for (const queueUrl of stale) {
    try {
      const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
      if (Attributes?.QueueArn) arns.set(queueUrl, Attributes.QueueArn);
    } catch (error) {
      if (!isQueueGone(error)) logger.warn('sqs bridge sweep: reading the queue ARN failed', { queueUrl }, error);
    }
  }
  const subscriptions = await subscriptionsByEndpoint(sns, topicArn);

  const deleted: string[] = [];
  for (const [queueUrl, queueArn] of arns) {
    try {
      for (const subscriptionArn of subscriptions.get(queueArn) ?? []) {
        await sns.send(new UnsubscribeCommand({ SubscriptionArn: subscriptionArn })).catch((error: unknown) => {
          if ((error as Error)?.name !== 'NotFoundException') throw error;
        });
      }
      await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch((error: unknown) => {
        if (!isQueueGone(error)) throw error;
      });
      deleted.push(queueUrl);
      logger.info('sqs bridge sweep: deleted the queue of a replica that stopped sending heartbeats', { queueUrl });
    } catch (error) {
      // Kept whole (queue and subscription) for the next sweep: a queue deleted with its subscription left would be lost to it.
      logger.warn('sqs bridge sweep: removing a stale queue failed', { queueUrl }, error);
    }
  }
  return deleted;
}

async function listQueues(sqs: SQSClient, prefix: string): Promise<string[]> {
  const urls: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix, MaxResults: 1000, NextToken: nextToken }));
    urls.push(...(page.QueueUrls ?? []));
    nextToken = page.NextToken;
  } while (nextToken);
  return urls;
}

/** Endpoint → subscription ARNs of the topic's confirmed subscriptions, over every page. */
async function subscriptionsByEndpoint(sns: SNSClient, topicArn: string): Promise<Map<string, string[]>> {
  const byEndpoint = new Map<string, string[]>();
  let nextToken: string | undefined;
  do {
    const page = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn, NextToken: nextToken }));
    for (const { Endpoint, SubscriptionArn } of page.Subscriptions ?? []) {
      if (!Endpoint || !SubscriptionArn?.startsWith('arn:')) continue; // 'PendingConfirmation' cannot be unsubscribed
      byEndpoint.set(Endpoint, [...(byEndpoint.get(Endpoint) ?? []), SubscriptionArn]);
    }
    nextToken = page.NextToken;
  } while (nextToken);
  return byEndpoint;
}
