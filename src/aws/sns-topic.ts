import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { Logger } from '../logger.js';

export interface SnsTopicOptions {
  client: SNSClient;
  topicArn: string;
  logger: Logger;
  /** Our retries after the SDK's own, for outages longer than its backoff. */
  attempts?: number;
  baseDelayMs?: number;
  onFailure?: () => void;
}

/**
 * Publishes JSON messages with `action` and `tenantCode` as message attributes,
 * so subscription filter policies can route on them. A failed publish is
 * retried with exponential backoff and jitter, then logged; it never throws.
 */
export class SnsTopic {
  constructor(private readonly options: SnsTopicOptions) {}

  get arn(): string {
    return this.options.topicArn;
  }

  /** `extraAttributes` add SNS message attributes (e.g. taskType) for filter policies. */
  async publish(message: { action: string; tenantCode: string }, extraAttributes: Record<string, string> = {}): Promise<void> {
    const { client, topicArn, logger, attempts = 4, baseDelayMs = 200 } = this.options;
    const command = new PublishCommand({
      TopicArn: topicArn,
      Message: JSON.stringify(message),
      MessageAttributes: {
        action: { DataType: 'String', StringValue: message.action },
        tenantCode: { DataType: 'String', StringValue: message.tenantCode },
        ...Object.fromEntries(Object.entries(extraAttributes).map(([name, value]) => [name, { DataType: 'String', StringValue: value }])),
      },
    });
    for (let attempt = 1; ; attempt++) {
      try {
        await client.send(command);
        return;
      } catch (error) {
        if (attempt >= attempts) {
          this.options.onFailure?.();
          logger.error(
            'publishing to SNS failed; the change is stored and subscribers recover it on resume',
            {
              topicArn,
              action: message.action,
              attempts,
            },
            error,
          );
          return;
        }
        const delay = baseDelayMs * 2 ** (attempt - 1);
        await new Promise((resolve) => setTimeout(resolve, delay / 2 + Math.random() * delay));
      }
    }
  }
}
