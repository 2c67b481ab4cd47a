import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { createDynamoClients, type DynamoClients } from './aws/dynamo-client.js';
import { DynamoTaskStore } from './aws/dynamo-task-store.js';
import { AwsExecutions } from './aws/sfn-executions.js';
import { SnsDispatchQueue } from './aws/sns-dispatch-queue.js';
import { SnsTopic } from './aws/sns-topic.js';
import { checkTaskTable, createTaskTable } from './aws/task-table.js';
import type { Config } from './config.js';
import { startDynalite, type EmbeddedDynamo } from './embedded/dynalite.js';
import { createMetrics, type Metrics } from './live/metrics.js';
import { Notifier } from './live/notifier.js';
import { TaskEventBus } from './live/task-event-bus.js';
import { Cleanup } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { PublisherChain } from './tasks/publisher.js';
import { TaskService } from './tasks/task-service.js';
import { createWorker, type Worker } from './worker/create-worker.js';
import { exampleHandlers, exampleSubTaskHandlers } from './worker/example-handlers.js';
import { HandlerRegistry, type HandlerMap } from './worker/handlers.js';

export interface ServiceOptions {
  logger?: Logger;
  /** Task handlers by task type (merged over the examples when those are on). */
  handlers?: HandlerMap;
  /** Sub-task handlers for Step Functions tasks, by task type. */
  subTaskHandlers?: HandlerMap;
  /** A Step Functions client to use instead of a new one (tests wrap it with aws-sdk-client-mock). */
  sfn?: SFNClient;
  /** An SNS client to use instead of a new one (tests wrap it with aws-sdk-client-mock). */
  sns?: SNSClient;
}

/** Everything but HTTP: storage, change notification, the task service and the worker. */
export interface Services {
  logger: Logger;
  dynamo: DynamoClients;
  /** The DynamoDB endpoint in use, when not AWS's own. */
  endpoint?: string;
  metrics: Metrics;
  store: DynamoTaskStore;
  bus: TaskEventBus;
  notifier: Notifier;
  tasks: TaskService;
  worker: Worker;
  /** Present when SNS_TOPIC_ARN or SNS_ALARM_TOPIC_ARN is set. */
  snsClient?: SNSClient;
  /**
   * Sends what is still pending: coalesced parent counter events and
   * background SNS publishes. A Lambda handler awaits it before returning,
   * since a frozen container would hold them back.
   */
  flush(): Promise<void>;
  /** Stops the worker and releases clients, in the reverse order of creation. */
  stop(): Promise<void>;
}

/**
 * The non-HTTP half of the composition root, shared by the server (app.ts)
 * and the Lambda handlers (lambda/bootstrap.ts): config → DynamoDB and SNS →
 * store, event bus, notifier, task service, worker. It does not start the
 * worker's recovery (`worker.start()`); the caller decides.
 */
export async function createServices(config: Config, options: ServiceOptions = {}): Promise<Services> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const { storage } = config;
  const cleanup = new Cleanup();

  try {
    let endpoint = storage.mode === 'dynamodb' ? storage.endpoint : undefined;
    let embedded: EmbeddedDynamo | undefined;
    if (storage.mode === 'embedded') {
      embedded = await startDynalite(storage.dataDir);
      cleanup.push(() => embedded!.close());
      endpoint = embedded.endpoint;
    }
    const dynamo = createDynamoClients({
      endpoint,
      region: storage.mode === 'dynamodb' ? storage.region : undefined,
      local: embedded !== undefined,
    });
    cleanup.push(() => dynamo.client.destroy());
    if (embedded) await createTaskTable(dynamo.client, storage.tableName);
    else await checkTaskTable(dynamo.client, storage.tableName);

    const metrics = createMetrics();
    const store = new DynamoTaskStore(dynamo.doc, storage.tableName);
    const bus = new TaskEventBus({ logger, metrics, readTask: (notification) => store.get(notification) });

    const { sns: snsConfig } = config;
    const snsClient =
      snsConfig.topicArn || snsConfig.alarmTopicArn ? (options.sns ?? new SNSClient({ region: snsConfig.region })) : undefined;
    if (snsClient && !options.sns) cleanup.push(() => snsClient.destroy());
    const topicOf = (topicArn?: string) =>
      snsClient && topicArn
        ? new SnsTopic({ client: snsClient, topicArn, logger, onFailure: () => metrics.publishFailures.inc() })
        : undefined;
    const notifierTopic = topicOf(snsConfig.topicArn);
    // In stream mode the table's stream handler publishes every change (ours and other writers'):
    // this process only dispatches its own changes to its own subscribers, at once.
    const byStream = snsConfig.notifications === 'stream';
    const notifier = new Notifier({
      table: storage.tableName,
      bus,
      topic: byStream ? undefined : notifierTopic,
      alarmTopic: byStream ? undefined : topicOf(snsConfig.alarmTopicArn),
      logger,
    });
    cleanup.push(() => notifier.flush());

    const publishers = new PublisherChain([notifier]);
    const tasks = new TaskService({ store, publisher: publishers, logger, retentionDays: config.retentionDays });

    const { worker: workerConfig } = config;
    const sfnClient = workerConfig.stateMachineArn ? (options.sfn ?? new SFNClient({ region: snsConfig.region })) : undefined;
    if (sfnClient && !options.sfn) cleanup.push(() => sfnClient.destroy());
    const worker = createWorker({
      config: workerConfig,
      tasks,
      store,
      bus,
      publisher: notifier,
      registry: new HandlerRegistry(
        { ...(workerConfig.exampleHandlers ? exampleHandlers : {}), ...options.handlers },
        { ...(workerConfig.exampleHandlers ? exampleSubTaskHandlers : {}), ...options.subTaskHandlers },
      ),
      logger,
      queue: notifierTopic ? new SnsDispatchQueue(notifierTopic) : undefined,
      executions: sfnClient ? new AwsExecutions(sfnClient, workerConfig.stateMachineArn!, logger) : undefined,
    });
    if (workerConfig.enabled) publishers.add(worker.dispatcher.onCreated);
    cleanup.push(() => worker.stop());

    return {
      logger,
      dynamo,
      endpoint,
      metrics,
      store,
      bus,
      notifier,
      tasks,
      worker,
      snsClient,
      async flush() {
        await worker.stepFunctions.flush();
        await notifier.flush();
      },
      stop: cleanup.run,
    };
  } catch (error) {
    await cleanup.run();
    throw error;
  }
}
