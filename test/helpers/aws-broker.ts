import { randomUUID } from 'node:crypto';
import {
  ListSubscriptionsByTopicCommand,
  NotFoundException,
  PublishCommand,
  SubscribeCommand,
  UnsubscribeCommand,
  type SNSClient,
} from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  TagQueueCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

/**
 * A tiny in-memory model of SNS and SQS, plugged in at the SDK boundary (it
 * replaces a client's `send`), for tests of several replicas talking through a
 * topic: no local implementation of either service is available here. Storage
 * is never simulated (tests keep dynalite).
 *
 * Modelled: topics; `sqs` subscriptions with RawMessageDelivery and a
 * FilterPolicy of exact string matches on message attributes; queue policies
 * (a delivery needs an Allow of sqs:SendMessage for sns.amazonaws.com on the
 * queue ARN, with any ArnEquals aws:SourceArn naming the topic); queues with
 * tags, receive (long polling honours WaitTimeSeconds as a short real wait,
 * ends early on a message and rejects on the abort signal), visibility, and
 * batch delete; paging of ListQueues and ListSubscriptionsByTopic.
 */
export interface AwsBroker {
  readonly region: string;
  readonly account: string;
  /** Creates a topic; returns its ARN. */
  createTopic(name: string): string;
  /** Routes the client's commands to this broker. */
  attach(client: SNSClient | SQSClient): void;
  /** Adds a queue as someone else created it (e.g. a dead replica's, with an old heartbeat). */
  seedQueue(name: string, tags?: Record<string, string>): { url: string; arn: string };
  queues(): BrokerQueue[];
  subscriptions(topicArn: string): BrokerSubscription[];
  /** Every command received, in order. */
  readonly log: { command: string; input: any }[];
  /** Deliveries a queue policy refused. */
  readonly refused: { topicArn: string; queueArn: string }[];
}

export interface BrokerQueue {
  name: string;
  url: string;
  arn: string;
  attributes: Record<string, string>;
  tags: Record<string, string>;
  messages: { messageId: string; body: string; receiptHandle?: string; visibleAt: number }[];
}

export interface BrokerSubscription {
  subscriptionArn: string;
  protocol: string;
  endpoint: string;
  attributes: Record<string, string>;
}

export interface AwsBrokerOptions {
  region?: string;
  account?: string;
  /** Real milliseconds a long poll waits per WaitTimeSeconds second. @default 10 */
  msPerWaitSecond?: number;
  /** Items per page of ListQueues (besides MaxResults) and ListSubscriptionsByTopic. @default 100 */
  pageSize?: number;
}

type Send = (command: { input: any }, options?: { abortSignal?: AbortSignal }) => Promise<any>;

export function createAwsBroker(options: AwsBrokerOptions = {}): AwsBroker {
  const region = options.region ?? 'eu-west-1';
  const account = options.account ?? '123456789012';
  const msPerWaitSecond = options.msPerWaitSecond ?? 10;
  const pageSize = options.pageSize ?? 100;
  const topics = new Map<string, BrokerSubscription[]>();
  const queues = new Map<string, BrokerQueue>(); // by URL
  const waiters = new Set<() => void>();
  const log: AwsBroker['log'] = [];
  const refused: AwsBroker['refused'] = [];

  const metadata = { $metadata: {} };
  const queueGone = () => new QueueDoesNotExist({ message: 'The specified queue does not exist.', ...metadata });
  const notFound = (what: string) => new NotFoundException({ message: `${what} does not exist`, ...metadata });
  const queueOf = (url: string) => {
    const queue = queues.get(url);
    if (!queue) throw queueGone();
    return queue;
  };
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const addQueue = (name: string, attributes: Record<string, string>, tags: Record<string, string>): BrokerQueue => {
    const url = `https://sqs.${region}.amazonaws.com/${account}/${name}`;
    const existing = queues.get(url);
    if (existing) return existing;
    const queue: BrokerQueue = {
      name,
      url,
      arn: `arn:aws:sqs:${region}:${account}:${name}`,
      attributes: { CreatedTimestamp: String(Math.floor(Date.now() / 1000)), VisibilityTimeout: '30', ...attributes },
      tags: { ...tags },
      messages: [],
    };
    queues.set(url, queue);
    return queue;
  };

  function allows(queue: BrokerQueue, topicArn: string): boolean {
    let policy: any;
    try {
      policy = JSON.parse(queue.attributes.Policy ?? '');
    } catch {
      return false;
    }
    const list = (value: unknown) => (Array.isArray(value) ? value : [value]);
    return list(policy?.Statement).some(
      (statement: any) =>
        statement?.Effect === 'Allow' &&
        list(statement.Principal?.Service).includes('sns.amazonaws.com') &&
        list(statement.Action).some((action: unknown) => action === 'sqs:SendMessage' || action === 'sqs:*') &&
        list(statement.Resource).includes(queue.arn) &&
        (statement.Condition === undefined || list(statement.Condition?.ArnEquals?.['aws:SourceArn']).includes(topicArn)),
    );
  }

  function matches(filterPolicy: string | undefined, attributes: Record<string, { StringValue?: string }> = {}): boolean {
    if (!filterPolicy) return true;
    const policy = JSON.parse(filterPolicy) as Record<string, string[]>;
    return Object.entries(policy).every(([key, values]) => {
      const value = attributes[key]?.StringValue;
      return value !== undefined && values.includes(value);
    });
  }

  function publish(input: any) {
    const subscriptions = topics.get(input.TopicArn);
    if (!subscriptions) throw notFound(`Topic ${input.TopicArn}`);
    const messageId = randomUUID();
    for (const subscription of subscriptions) {
      if (subscription.protocol !== 'sqs' || !matches(subscription.attributes.FilterPolicy, input.MessageAttributes)) continue;
      const queue = [...queues.values()].find((candidate) => candidate.arn === subscription.endpoint);
      if (!queue) continue; // SNS drops deliveries to a queue that is gone
      if (!allows(queue, input.TopicArn)) {
        refused.push({ topicArn: input.TopicArn, queueArn: queue.arn });
        continue;
      }
      const body =
        subscription.attributes.RawMessageDelivery === 'true'
          ? input.Message
          : JSON.stringify({
              Type: 'Notification',
              MessageId: messageId,
              TopicArn: input.TopicArn,
              Message: input.Message,
              Timestamp: new Date().toISOString(),
            });
      queue.messages.push({ messageId: randomUUID(), body, visibleAt: 0 });
    }
    wake();
    return { MessageId: messageId };
  }

  function take(queue: BrokerQueue, max: number, visibilitySeconds: number) {
    const now = Date.now();
    const taken = queue.messages.filter((message) => message.visibleAt <= now).slice(0, max);
    for (const message of taken) {
      message.receiptHandle = randomUUID();
      message.visibleAt = now + visibilitySeconds * 1000;
    }
    return taken.map(({ messageId, body, receiptHandle }) => ({ MessageId: messageId, Body: body, ReceiptHandle: receiptHandle }));
  }

  async function receive(input: any, signal?: AbortSignal) {
    const deadline = Date.now() + (input.WaitTimeSeconds ?? 0) * msPerWaitSecond;
    const max = input.MaxNumberOfMessages ?? 1;
    for (;;) {
      if (signal?.aborted) throw Object.assign(new Error('Request aborted'), { name: 'AbortError' });
      const queue = queueOf(input.QueueUrl);
      const messages = take(queue, max, input.VisibilityTimeout ?? Number(queue.attributes.VisibilityTimeout));
      if (messages.length > 0) return { Messages: messages };
      const left = deadline - Date.now();
      if (left <= 0) return {};
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, left);
        waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  function page<T>(items: T[], nextToken: string | undefined, max = pageSize) {
    const start = Number(nextToken ?? 0);
    const size = Math.min(max, pageSize);
    const slice = items.slice(start, start + size);
    return { slice, next: start + size < items.length ? String(start + size) : undefined };
  }

  const send: Send = async (command, sendOptions) => {
    await Promise.resolve(); // asynchronous, as a network call is
    const input = command.input;
    log.push({ command: command.constructor.name, input });
    // SNS
    if (command instanceof PublishCommand) return publish(input);
    if (command instanceof SubscribeCommand) {
      const subscriptions = topics.get(input.TopicArn);
      if (!subscriptions) throw notFound(`Topic ${input.TopicArn}`);
      const subscriptionArn = `${input.TopicArn}:${randomUUID()}`;
      subscriptions.push({ subscriptionArn, protocol: input.Protocol, endpoint: input.Endpoint, attributes: { ...input.Attributes } });
      return { SubscriptionArn: subscriptionArn };
    }
    if (command instanceof UnsubscribeCommand) {
      for (const subscriptions of topics.values()) {
        const index = subscriptions.findIndex((subscription) => subscription.subscriptionArn === input.SubscriptionArn);
        if (index >= 0) {
          subscriptions.splice(index, 1);
          return {};
        }
      }
      throw notFound(`Subscription ${input.SubscriptionArn}`);
    }
    if (command instanceof ListSubscriptionsByTopicCommand) {
      const subscriptions = topics.get(input.TopicArn);
      if (!subscriptions) throw notFound(`Topic ${input.TopicArn}`);
      const { slice, next } = page(subscriptions, input.NextToken);
      return {
        Subscriptions: slice.map((s) => ({
          SubscriptionArn: s.subscriptionArn,
          Protocol: s.protocol,
          Endpoint: s.endpoint,
          TopicArn: input.TopicArn,
          Owner: account,
        })),
        NextToken: next,
      };
    }
    // SQS
    if (command instanceof CreateQueueCommand) {
      return { QueueUrl: addQueue(input.QueueName, input.Attributes ?? {}, input.tags ?? {}).url };
    }
    if (command instanceof GetQueueAttributesCommand) {
      const queue = queueOf(input.QueueUrl);
      const all = { ...queue.attributes, QueueArn: queue.arn, ApproximateNumberOfMessages: String(queue.messages.length) };
      const names: string[] = input.AttributeNames ?? [];
      return { Attributes: Object.fromEntries(Object.entries(all).filter(([name]) => names.includes('All') || names.includes(name))) };
    }
    if (command instanceof SetQueueAttributesCommand) {
      Object.assign(queueOf(input.QueueUrl).attributes, input.Attributes);
      return {};
    }
    if (command instanceof TagQueueCommand) {
      Object.assign(queueOf(input.QueueUrl).tags, input.Tags);
      return {};
    }
    if (command instanceof ListQueueTagsCommand) return { Tags: { ...queueOf(input.QueueUrl).tags } };
    if (command instanceof ListQueuesCommand) {
      const urls = [...queues.values()].filter((queue) => queue.name.startsWith(input.QueueNamePrefix ?? '')).map((queue) => queue.url);
      const { slice, next } = page(urls, input.NextToken, input.MaxResults ?? 1000);
      return { QueueUrls: slice, NextToken: input.MaxResults === undefined ? undefined : next };
    }
    if (command instanceof ReceiveMessageCommand) return receive(input, sendOptions?.abortSignal);
    if (command instanceof DeleteMessageBatchCommand) {
      const queue = queueOf(input.QueueUrl);
      const Successful: { Id: string }[] = [];
      const Failed: { Id: string; Code: string; SenderFault: boolean }[] = [];
      for (const entry of input.Entries as { Id: string; ReceiptHandle: string }[]) {
        const index = queue.messages.findIndex((message) => message.receiptHandle === entry.ReceiptHandle);
        if (index >= 0) {
          queue.messages.splice(index, 1);
          Successful.push({ Id: entry.Id });
        } else Failed.push({ Id: entry.Id, Code: 'ReceiptHandleIsInvalid', SenderFault: true });
      }
      return { Successful, Failed };
    }
    if (command instanceof DeleteQueueCommand) {
      queueOf(input.QueueUrl);
      queues.delete(input.QueueUrl);
      wake();
      return {};
    }
    throw new Error(`aws broker: ${command.constructor.name} is not modelled`);
  };

  return {
    region,
    account,
    log,
    refused,
    createTopic(name) {
      const arn = `arn:aws:sns:${region}:${account}:${name}`;
      if (!topics.has(arn)) topics.set(arn, []);
      return arn;
    },
    attach(client) {
      (client as unknown as { send: Send }).send = send;
    },
    seedQueue(name, tags = {}) {
      const queue = addQueue(name, {}, tags);
      return { url: queue.url, arn: queue.arn };
    },
    queues: () => [...queues.values()],
    subscriptions: (topicArn) => [...(topics.get(topicArn) ?? [])],
  };
}
