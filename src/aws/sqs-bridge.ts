import { hostname } from 'node:os';
import { SubscribeCommand, UnsubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  TagQueueCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { ulid } from 'ulid';
import type { TaskNotification } from '../live/notification.js';
import type { Logger } from '../logger.js';
import { BRIDGE_TAGS, isQueueGone, sweepBridgeQueues, topicNameOf } from './sqs-bridge-sweep.js';
import { stoppable } from './stoppable.js';

export const DEFAULT_BRIDGE_QUEUE_PREFIX = 'task-bridge-';
/** SQS queue names are at most 80 characters; a ULID takes 26. */
export const MAX_BRIDGE_QUEUE_PREFIX_LENGTH = 80 - 26;

/**
 * Only status changes cross the bridge: the topic also carries task-execute
 * messages (for the worker queue), which no subscriber wants.
 */
const BRIDGED_ACTIONS: readonly TaskNotification['action'][] = ['task-status', 'sub-task-status'];
const MAX_MESSAGES_PER_RECEIVE = 10;

export interface SqsBridgeOptions {
  sns: SNSClient;
  sqs: SQSClient;
  /** The task topic (SNS_TOPIC_ARN): the only sender the queue accepts. */
  topicArn: string;
  /** Receives JSON.parse(body) of each message, as `/sns` hands on a Notification's Message. */
  deliver(message: unknown): Promise<void>;
  logger: Logger;
  /** Called once per message refused (a body that is not JSON), with a short reason label (for metrics). */
  onRejected?(reason: string): void;
  /** @default 'task-bridge-' */
  queuePrefix?: string;
  /** The `owner` tag of the queue. @default `<hostname>:<pid>` */
  replicaId?: string;
  /** A notification older than this is useless (subscribers recover from the table on resume). @default 300 */
  retentionSeconds?: number;
  /** Long-poll wait. @default 20 (the maximum) */
  waitTimeSeconds?: number;
  /** How often this replica refreshes its queue's heartbeat tag. @default 60_000 */
  heartbeatEveryMs?: number;
  /** A queue whose heartbeat is older than this belongs to a dead replica and is swept. @default 300_000 */
  staleAfterMs?: number;
  /** About how often other replicas' dead queues are swept (each wait is jittered by up to half). @default 300_000 */
  sweepEveryMs?: number;
  /** First pause after a failed receive, doubled up to 30 s. @default 1000 */
  receiveErrorDelayMs?: number;
  /** The clock of heartbeats and sweeps. @default Date.now */
  now?(): number;
}

export interface SqsBridge {
  /** This replica's queue; a new one if the old one was deleted under it. */
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly subscriptionArn: string;
  /** Refreshes the heartbeat tag now (also done every `heartbeatEveryMs`). */
  heartbeat(): Promise<void>;
  /** Sweeps dead replicas' queues now (also done every `sweepEveryMs`); returns the URLs deleted. */
  sweep(): Promise<string[]>;
  /** Ends the long poll (aborting the receive in flight), then unsubscribes and deletes the queue. */
  stop(): Promise<void>;
}

interface Established {
  queueUrl: string;
  queueArn: string;
  subscriptionArn: string;
}

/** The queue policy: only the task topic, through SNS, may send. */
export function bridgeQueuePolicy(queueArn: string, topicArn: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'TaskTopicOnly',
        Effect: 'Allow',
        Principal: { Service: 'sns.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: queueArn,
        Condition: { ArnEquals: { 'aws:SourceArn': topicArn } },
      },
    ],
  });
}

/**
 * How a replica in a private subnet hears changes made on other replicas:
 * SNS cannot reach it over HTTP(S), so it creates a queue of its own,
 * subscribes it to the task topic with raw delivery (a body is the
 * notification JSON itself), and long-polls it, handing each notification to
 * `deliver` (the same dispatcher `/sns` feeds) and deleting it.
 *
 * The queue lives as long as the replica: stop() unsubscribes and deletes it.
 * A replica that dies cannot, so each one refreshes a heartbeat tag on its
 * queue and now and then sweeps the queues whose heartbeat went stale
 * (sqs-bridge-sweep.ts); the short retention bounds what a dead queue holds
 * meanwhile. If this replica's own queue disappears (swept after its
 * heartbeats failed for too long), it creates a new one.
 */
export async function startSqsBridge(options: SqsBridgeOptions): Promise<SqsBridge> {
  const { sns, sqs, topicArn, logger } = options;
  const queuePrefix = options.queuePrefix ?? DEFAULT_BRIDGE_QUEUE_PREFIX;
  const replicaId = options.replicaId ?? `${hostname()}:${process.pid}`;
  const retentionSeconds = options.retentionSeconds ?? 300;
  const waitTimeSeconds = options.waitTimeSeconds ?? 20;
  const heartbeatEveryMs = options.heartbeatEveryMs ?? 60_000;
  const staleAfterMs = options.staleAfterMs ?? 300_000;
  const sweepEveryMs = options.sweepEveryMs ?? 300_000;
  const baseErrorDelayMs = options.receiveErrorDelayMs ?? 1000;
  const now = options.now ?? Date.now;

  const controller = new AbortController();
  const { signal } = controller;

  async function establish(): Promise<Established> {
    const { QueueUrl: queueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: `${queuePrefix}${ulid()}`,
        Attributes: {
          MessageRetentionPeriod: String(retentionSeconds),
          ReceiveMessageWaitTimeSeconds: String(waitTimeSeconds),
        },
        tags: {
          [BRIDGE_TAGS.owner]: replicaId,
          [BRIDGE_TAGS.heartbeat]: new Date(now()).toISOString(),
          [BRIDGE_TAGS.topic]: topicNameOf(topicArn),
        },
      }),
    );
    if (!queueUrl) throw new Error('CreateQueue returned no QueueUrl');
    try {
      const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
      const queueArn = Attributes?.QueueArn;
      if (!queueArn) throw new Error('GetQueueAttributes returned no QueueArn');
      // The policy names the queue's ARN, known only once it exists; nothing is subscribed before it is set.
      await sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { Policy: bridgeQueuePolicy(queueArn, topicArn) } }));
      const { SubscriptionArn: subscriptionArn } = await sns.send(
        new SubscribeCommand({
          TopicArn: topicArn,
          Protocol: 'sqs',
          Endpoint: queueArn,
          Attributes: { RawMessageDelivery: 'true', FilterPolicy: JSON.stringify({ action: BRIDGED_ACTIONS }) },
          ReturnSubscriptionArn: true,
        }),
      );
      if (!subscriptionArn) throw new Error('Subscribe returned no SubscriptionArn');
      logger.info("sqs bridge: subscribed this replica's queue to the task topic", { queueUrl, subscriptionArn });
      return { queueUrl, queueArn, subscriptionArn };
    } catch (error) {
      await sqs
        .send(new DeleteQueueCommand({ QueueUrl: queueUrl }))
        .catch((cause: unknown) =>
          logger.warn(
            'sqs bridge: deleting the queue of a failed start failed; the sweep of another replica removes it',
            { queueUrl },
            cause,
          ),
        );
      throw error;
    }
  }

  let current = await establish();

  const { orStop, pause } = stoppable(signal);

  /** Hands each body on, in order; returns the messages to delete (handled or malformed). */
  async function handle(messages: Message[]): Promise<Message[]> {
    const done: Message[] = [];
    for (const message of messages) {
      let payload: unknown;
      try {
        payload = JSON.parse(message.Body ?? '');
      } catch {
        logger.warn('sqs bridge: deleting a message that is not JSON', { messageId: message.MessageId, body: message.Body?.slice(0, 256) });
        try {
          options.onRejected?.('malformed-json');
        } catch (error) {
          logger.error('sqs bridge: onRejected threw', error);
        }
        done.push(message);
        continue;
      }
      try {
        await options.deliver(payload);
        done.push(message);
      } catch (error) {
        // Kept: SQS delivers it again when its visibility times out (within the retention).
        logger.error('sqs bridge: delivering a notification failed; the queue delivers it again', { messageId: message.MessageId }, error);
      }
    }
    return done;
  }

  async function remove(queueUrl: string, messages: Message[]): Promise<void> {
    const entries = messages.flatMap((message, i) =>
      message.ReceiptHandle ? [{ Id: String(i), ReceiptHandle: message.ReceiptHandle }] : [],
    );
    if (entries.length === 0) return;
    try {
      const { Failed } = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      // A message not deleted comes back; the event bus drops a version it already dispatched.
      if (Failed?.length) logger.warn('sqs bridge: some messages were not deleted', { queueUrl, failed: Failed });
    } catch (error) {
      logger.warn('sqs bridge: deleting handled messages failed', { queueUrl }, error);
    }
  }

  /** The queue was deleted under us (swept while our heartbeats failed): a new queue and subscription. */
  async function replace(): Promise<void> {
    const old = current;
    logger.warn("sqs bridge: this replica's queue no longer exists; creating a new one", { queueUrl: old.queueUrl });
    await sns.send(new UnsubscribeCommand({ SubscriptionArn: old.subscriptionArn })).catch(() => undefined); // the sweep usually did
    current = await establish();
  }

  async function poll(): Promise<void> {
    let errorDelayMs = baseErrorDelayMs;
    while (!signal.aborted) {
      const { queueUrl } = current;
      let messages: Message[];
      try {
        const sending = sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: MAX_MESSAGES_PER_RECEIVE,
            WaitTimeSeconds: waitTimeSeconds,
          }),
          { abortSignal: signal },
        );
        sending.catch(() => {}); // it may reject after stop() already ended the wait
        // Also ends the wait when a client ignores the signal.
        const received = await orStop(sending);
        if (!received) break;
        messages = received.Messages ?? [];
        errorDelayMs = baseErrorDelayMs;
      } catch (error) {
        if (signal.aborted) break;
        try {
          if (isQueueGone(error)) {
            await replace();
            errorDelayMs = baseErrorDelayMs;
            continue;
          }
          logger.error('sqs bridge: receiving failed; retrying', { queueUrl, retryInMs: errorDelayMs }, error);
        } catch (replaceError) {
          logger.error('sqs bridge: replacing the queue failed; retrying', { retryInMs: errorDelayMs }, replaceError);
        }
        await pause(errorDelayMs);
        errorDelayMs = Math.min(30_000, errorDelayMs * 2);
        continue;
      }
      // Handled even when stop() came meanwhile: they were taken off the queue.
      await remove(queueUrl, await handle(messages));
    }
  }

  async function heartbeat(): Promise<void> {
    const { queueUrl } = current;
    try {
      await sqs.send(new TagQueueCommand({ QueueUrl: queueUrl, Tags: { [BRIDGE_TAGS.heartbeat]: new Date(now()).toISOString() } }));
    } catch (error) {
      // A queue gone is replaced by the poll loop, whose receive fails the same way.
      if (!isQueueGone(error)) logger.warn('sqs bridge: refreshing the heartbeat failed', { queueUrl }, error);
    }
  }

  const sweep = () => sweepBridgeQueues({ sns, sqs, topicArn, queuePrefix, ownQueueUrl: current.queueUrl, staleAfterMs, now, logger });

  const heartbeats = setInterval(() => void heartbeat(), heartbeatEveryMs);
  heartbeats.unref();
  // Jittered, so replicas started together do not sweep together.
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> = Promise.resolve();
  const scheduleSweep = () => {
    sweepTimer = setTimeout(
      () => {
        sweeping = sweep()
          .catch((error) => logger.warn('sqs bridge: sweeping stale queues failed', error))
          .finally(() => {
            if (!signal.aborted) scheduleSweep();
          });
      },
      sweepEveryMs * (0.5 + Math.random() / 2),
    );
    sweepTimer.unref();
  };
  scheduleSweep();

  const loop = poll().catch((error) => logger.error('sqs bridge: the poll loop stopped', error));

  let stopping: Promise<void> | undefined;
  async function stop(): Promise<void> {
    controller.abort();
    clearInterval(heartbeats);
    clearTimeout(sweepTimer);
    await loop;
    await sweeping;
    const { queueUrl, subscriptionArn } = current;
    try {
      await sns.send(new UnsubscribeCommand({ SubscriptionArn: subscriptionArn }));
    } catch (error) {
      // Deleting the queue now would leave the subscription where no sweep finds it; with the heartbeat stopped, a sweep removes both.
      logger.warn('sqs bridge: unsubscribing failed; another replica sweeps the queue once its heartbeat is stale', { queueUrl }, error);
      return;
    }
    try {
      await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
    } catch (error) {
      if (!isQueueGone(error)) logger.warn('sqs bridge: deleting the queue failed; another replica sweeps it', { queueUrl }, error);
    }
    logger.info("sqs bridge: unsubscribed and deleted this replica's queue", { queueUrl });
  }

  return {
    get queueUrl() {
      return current.queueUrl;
    },
    get queueArn() {
      return current.queueArn;
    },
    get subscriptionArn() {
      return current.subscriptionArn;
    },
    heartbeat,
    sweep,
    stop: () => (stopping ??= stop()),
  };
}
