import { ChangeMessageVisibilityCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { handleTaskExecuteBody, visibilitySecondsOf, type TaskDispatch } from '../aws/sqs-worker.js';
import { createLogger, type Logger } from '../logger.js';

/** The part of an SQS event record this handler reads. */
export interface SqsRecord {
  messageId: string;
  body: string;
  receiptHandle: string;
  /** `arn:aws:sqs:<region>:<account>:<queue>`; locates the queue for a retry delay. */
  eventSourceARN?: string;
}

export interface SqsEvent {
  Records: SqsRecord[];
}

/** A partial batch response: the records Lambda must leave on the queue (all others are deleted). */
export interface SqsBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

export interface SqsHandlerOptions {
  logger?: Logger;
  /**
   * With a client, a record to retry later gets its visibility timeout set to
   * the task's retry delay (ChangeMessageVisibility with the record's receipt
   * handle), so the backoff is honoured. Without one, it comes back when the
   * queue's visibility timeout expires.
   */
  sqs?: SQSClient;
  /** The queue's URL; default: derived from each record's eventSourceARN. */
  queueUrl?: string;
}

/**
 * The Lambda handler for an SQS event source on the task-execute queue: the
 * same core as the SQS poller (src/aws/sqs-worker.ts), one batch at a time,
 * its records run concurrently.
 *
 * It answers with a partial batch response: a record whose task must run
 * again (`{ done: false }`) or whose run failed unexpectedly is reported in
 * `batchItemFailures` and stays on the queue (its redrive policy moves it to
 * the dead-letter queue after maxReceiveCount receives); every other record,
 * including a malformed one, is deleted. The event source mapping must be
 * created with `FunctionResponseTypes: ["ReportBatchItemFailures"]`, or Lambda
 * ignores the response and deletes or retries the whole batch together.
 *
 * Set the queue's visibility timeout to at least six times the function's
 * timeout (AWS's advice): Lambda does not renew visibility while the handler runs.
 */
export function createSqsHandler(dispatch: TaskDispatch, options: SqsHandlerOptions = {}) {
  const logger = options.logger ?? createLogger('info');
  return async (event: SqsEvent): Promise<SqsBatchResponse> => {
    const records = Array.isArray(event?.Records) ? event.Records : [];
    const failed = await Promise.all(
      records.map(async (record): Promise<string | undefined> => {
        const disposition = await handleTaskExecuteBody(record.body, dispatch, logger, record.messageId);
        if (disposition.action === 'delete') return undefined;
        if (disposition.action === 'retry' && options.sqs) {
          const queueUrl = options.queueUrl ?? queueUrlOfArn(record.eventSourceARN);
          if (queueUrl) {
            await options.sqs
              .send(
                new ChangeMessageVisibilityCommand({
                  QueueUrl: queueUrl,
                  ReceiptHandle: record.receiptHandle,
                  VisibilityTimeout: visibilitySecondsOf(disposition.retryInMs),
                }),
              )
              .catch((error) =>
                logger.warn(
                  'delaying a queue message failed; it returns after the visibility timeout',
                  {
                    messageId: record.messageId,
                  },
                  error,
                ),
              );
          }
        }
        return record.messageId;
      }),
    );
    return { batchItemFailures: failed.filter((id) => id !== undefined).map((itemIdentifier) => ({ itemIdentifier })) };
  };
}

/** `arn:aws:sqs:<region>:<account>:<name>` → `https://sqs.<region>.amazonaws.com/<account>/<name>`. */
export function queueUrlOfArn(arn: string | undefined): string | undefined {
  const match = /^arn:aws[a-z-]*:sqs:([a-z0-9-]+):(\d{12}):(.+)$/.exec(arn ?? '');
  return match ? `https://sqs.${match[1]}.amazonaws.com/${match[2]}/${match[3]}` : undefined;
}
