import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Logger } from '../logger.js';
import { parseTaskId, type TaskKey } from '../tasks/keys.js';
import type { RunOutcome } from '../worker/task-runner.js';
import type { TaskExecuteMessage } from './sns-dispatch-queue.js';
import { stoppable } from './stoppable.js';

/** What runs a delivered task: TaskDispatcher (idempotent, so redeliveries change nothing twice). */
export interface TaskDispatch {
  dispatch(key: TaskKey): Promise<RunOutcome>;
}

/** SQS limits on a message's visibility timeout, in seconds. */
export const MAX_VISIBILITY_SECONDS = 43_200;
/** The longest long poll SQS allows. */
export const WAIT_TIME_SECONDS = 20;
/** The most messages one ReceiveMessage returns. */
const MAX_MESSAGES_PER_RECEIVE = 10;

/** A retry delay as an SQS visibility timeout: whole seconds, rounded up, within 0..43200. */
export const visibilitySecondsOf = (retryInMs: number): number =>
  Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.ceil((Number.isFinite(retryInMs) ? retryInMs : 0) / 1000)));

export type ParsedBody = { ok: true; message: TaskExecuteMessage } | { ok: false; reason: string };

/**
 * Reads an SQS message body as a `task-execute` message: an SNS envelope
 * (`{ Type: 'Notification', Message: '<json>' }`) or, with raw message
 * delivery on the subscription, the JSON itself.
 */
export function parseTaskExecuteBody(body: string | undefined): ParsedBody {
  let value: unknown;
  try {
    value = JSON.parse(body ?? '');
    if (isRecord(value) && value.Type === 'Notification' && typeof value.Message === 'string') {
      value = JSON.parse(value.Message);
    }
  } catch {
    return { ok: false, reason: 'the body is not JSON' };
  }
  if (!isRecord(value)) return { ok: false, reason: 'the body is not a JSON object' };
  if (value.action !== 'task-execute') return { ok: false, reason: `action is ${JSON.stringify(value.action)}, not "task-execute"` };
  const { pk, sk } = value;
  if (typeof pk !== 'string' || typeof sk !== 'string' || !parseTaskId(`${pk}#${sk}`)) {
    return { ok: false, reason: 'pk and sk do not name a task' };
  }
  return { ok: true, message: value as unknown as TaskExecuteMessage };
}

/** What to do with a delivered message once it was handled. */
export type Disposition =
  /** Delete it: the task reached an outcome (or the message can never be run). */
  | { action: 'delete'; malformed?: string }
  /** Keep it and let SQS deliver it again in `retryInMs` (visibility timeout). */
  | { action: 'retry'; retryInMs: number }
  /** Keep it: something unexpected failed; SQS delivers it again when its visibility times out. */
  | { action: 'keep'; error: unknown };

/**
 * The core shared by the SQS poller and the Lambda SQS handler: parse the
 * body, run the task, and say what becomes of the message.
 *
 * Malformed messages are deleted (logged with their body) rather than left to
 * the dead-letter queue: parsing is deterministic, so no redelivery can ever
 * succeed, and a subscription missing its `action` filter policy would
 * otherwise push every task status change through maxReceiveCount receives
 * into the DLQ, burying the poison messages it exists to keep.
 */
export async function handleTaskExecuteBody(
  body: string | undefined,
  dispatch: TaskDispatch,
  logger: Logger,
  messageId?: string,
): Promise<Disposition> {
  const parsed = parseTaskExecuteBody(body);
  if (!parsed.ok) {
    logger.error('deleting a queue message that is not a task-execute message', {
      messageId,
      reason: parsed.reason,
      body: body?.slice(0, 2048),
    });
    return { action: 'delete', malformed: parsed.reason };
  }
  const { pk, sk, id } = parsed.message;
  try {
    const outcome = await dispatch.dispatch({ pk, sk });
    return outcome.done ? { action: 'delete' } : { action: 'retry', retryInMs: outcome.retryInMs };
  } catch (error) {
    logger.error('running a queued task failed; the queue delivers it again', { messageId, id }, error);
    return { action: 'keep', error };
  }
}

export interface SqsWorkerOptions {
  client: SQSClient;
  queueUrl: string;
  dispatcher: TaskDispatch;
  logger: Logger;
  /** Messages handled at once; each receive asks for at most the free capacity (and at most 10). */
  concurrency: number;
  /**
   * The visibility timeout set on receipt and renewed while the task runs.
   * Short enough that a message a dead worker held comes back soon (the
   * task's lease then decides whether it can be taken over).
   */
  visibilityTimeoutSeconds: number;
  /** How often a running message's visibility is renewed; default a third of the timeout. */
  extendEveryMs?: number;
  /** Long-poll wait; default 20 s (the maximum). */
  waitTimeSeconds?: number;
  /** First pause after a failed receive, doubled up to 30 s. Default 1 s. */
  receiveErrorDelayMs?: number;
}

export interface SqsWorker {
  /** Ends the poll loop (aborting the receive in flight) and waits for the messages being handled. */
  stop(): Promise<void>;
}

/**
 * A long-polling consumer of the task-execute queue (TASK_QUEUE_URL): each
 * message runs its task through TaskDispatcher; done → DeleteMessage; a retry
 * → ChangeMessageVisibility to the delay, so SQS delivers it again then (and
 * its redrive policy moves a message received too often to the dead-letter
 * queue); an unexpected error leaves the message to come back when its
 * visibility times out. While a task runs its message's visibility is renewed.
 */
export function startSqsWorker(options: SqsWorkerOptions): SqsWorker {
  const { client, queueUrl, dispatcher, logger } = options;
  const concurrency = Math.max(1, Math.floor(options.concurrency));
  const visibilitySeconds = Math.min(MAX_VISIBILITY_SECONDS, Math.max(1, Math.ceil(options.visibilityTimeoutSeconds)));
  const extendEveryMs = Math.max(50, options.extendEveryMs ?? Math.floor((visibilitySeconds * 1000) / 3));
  const waitTimeSeconds = options.waitTimeSeconds ?? WAIT_TIME_SECONDS;
  const baseErrorDelayMs = options.receiveErrorDelayMs ?? 1000;

  const controller = new AbortController();
  const { signal } = controller;
  const active = new Set<Promise<void>>();

  const setVisibility = (receiptHandle: string, seconds: number) =>
    client.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }));

  async function handle(message: Message): Promise<void> {
    const receiptHandle = message.ReceiptHandle;
    if (!receiptHandle) return;
    // Renewals are chained so the last one lands before the final delete or visibility change.
    let renewals: Promise<unknown> = Promise.resolve();
    const renewer = setInterval(() => {
      renewals = renewals.then(() =>
        setVisibility(receiptHandle, visibilitySeconds).catch((error) =>
          logger.warn('extending a queue message visibility failed', { messageId: message.MessageId }, error),
        ),
      );
    }, extendEveryMs);
    let disposition: Disposition;
    try {
      disposition = await handleTaskExecuteBody(message.Body, dispatcher, logger, message.MessageId);
    } finally {
      clearInterval(renewer);
      await renewals;
    }
    try {
      if (disposition.action === 'delete') {
        await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }));
      } else if (disposition.action === 'retry') {
        await setVisibility(receiptHandle, visibilitySecondsOf(disposition.retryInMs));
      }
    } catch (error) {
      // The message comes back when its visibility times out; running it again is harmless.
      logger.warn(
        `${disposition.action === 'delete' ? 'deleting' : 'delaying'} a queue message failed`,
        {
          messageId: message.MessageId,
        },
        error,
      );
    }
  }

  function dispatch(message: Message): void {
    const work = handle(message)
      .catch((error) => logger.error('handling a queue message failed', { messageId: message.MessageId }, error))
      .finally(() => active.delete(work));
    active.add(work);
  }

  const { orStop, pause } = stoppable(signal);

  async function poll(): Promise<void> {
    let errorDelayMs = baseErrorDelayMs;
    while (!signal.aborted) {
      if (active.size >= concurrency) {
        await orStop(Promise.race(active));
        continue;
      }
      let messages: Message[];
      try {
        const sending = client.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(MAX_MESSAGES_PER_RECEIVE, concurrency - active.size),
            WaitTimeSeconds: waitTimeSeconds,
            VisibilityTimeout: visibilitySeconds,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
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
        logger.error('receiving from the task queue failed; retrying', { queueUrl, retryInMs: errorDelayMs }, error);
        await pause(errorDelayMs);
        errorDelayMs = Math.min(30_000, errorDelayMs * 2);
        continue;
      }
      // Received before stop() ended the wait: handled (stop() waits for them). A receive cut short
      // by stop() may still have taken messages; they come back when their visibility times out.
      for (const message of messages) dispatch(message);
    }
  }

  const loop = poll().catch((error) => logger.error('the task queue poll loop stopped', error));
  logger.info('working from the task queue', { queueUrl, concurrency, visibilitySeconds });

  return {
    async stop(): Promise<void> {
      controller.abort();
      await loop;
      while (active.size > 0) await Promise.all(active);
    },
  };
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
