import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { schema } from '../resolvers/index.js';
import { mintToken } from './auth/mint-token.js';
import { createTokenVerifier } from './auth/verify-token.js';
import { createDynamoClients } from './aws/dynamo-client.js';
import { DynamoTaskStore } from './aws/dynamo-task-store.js';
import { subscribeSelf } from './aws/sns-self-subscription.js';
import { SnsTopic } from './aws/sns-topic.js';
import { checkTaskTable, createTaskTable } from './aws/task-table.js';
import type { Config } from './config.js';
import { createContextFactory } from './context.js';
import { loadDevSecret } from './embedded/dev-secret.js';
import { startDynalite, type EmbeddedDynamo } from './embedded/dynalite.js';
import { LiveTasks } from './live/live-tasks.js';
import { createMetrics, type Metrics } from './live/metrics.js';
import { Notifier } from './live/notifier.js';
import { createSnsEndpoint, type SnsEndpointOptions } from './live/sns-endpoint.js';
import { TaskEventBus } from './live/task-event-bus.js';
import { createLogger, type Logger } from './logger.js';
import { createServer, json } from './server/server.js';
import { TaskService } from './tasks/task-service.js';
import { PublisherChain } from './tasks/publisher.js';
import { AwsExecutions } from './aws/sfn-executions.js';
import { SnsExecutionQueue } from './aws/sns-execution-queue.js';
import { createWorker, type Worker } from './worker/create-worker.js';
import { exampleHandlers, exampleSubTaskHandlers } from './worker/example-handlers.js';
import { HandlerRegistry, type HandlerMap } from './worker/handlers.js';

export interface AppOptions {
  logger?: Logger;
  /** Task handlers by task type (merged over the examples when those are on). */
  handlers?: HandlerMap;
  /** Sub-task handlers for Step Functions tasks, by task type. */
  subTaskHandlers?: HandlerMap;
  /** A Step Functions client to use instead of a new one (tests wrap it with aws-sdk-client-mock). */
  sfn?: SFNClient;
  /** An SNS client to use instead of a new one (tests wrap it with aws-sdk-client-mock). */
  sns?: SNSClient;
  /** Test seams of the SNS endpoint: a stand-in SNS host to trust, its fetch. */
  snsEndpoint?: Pick<SnsEndpointOptions, 'isTrustedSnsUrl' | 'fetch'>;
}

export interface RunningApp {
  url: string;
  /** Embedded default without JWT settings: a token for tenant `demo`. */
  devToken?: string;
  tasks: TaskService;
  store: DynamoTaskStore;
  bus: TaskEventBus;
  metrics: Metrics;
  worker: Worker;
  /** The DynamoDB endpoint in use, when not AWS's own. */
  dynamoEndpoint?: string;
  stop(): Promise<void>;
}

/** Composition root: config → DynamoDB and SNS → services → server. */
export async function startApp(config: Config, options: AppOptions = {}): Promise<RunningApp> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const { storage } = config;
  const cleanup: (() => unknown)[] = [];
  const runCleanup = async () => {
    for (const step of cleanup.reverse()) await step();
  };

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

    const devSecret =
      storage.mode === 'embedded' && !config.auth.secret && !config.auth.jwksUrl
        ? await loadDevSecret(storage.dataDir)
        : undefined;
    const verifyToken = createTokenVerifier({ ...config.auth, secret: config.auth.secret ?? devSecret });
    const devToken = devSecret
      ? await mintToken({ secret: devSecret, tenantCode: 'demo', userId: 'dev', expiresIn: '30d', claims: config.auth.claims })
      : undefined;

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
    const notifier = new Notifier({
      table: storage.tableName,
      bus,
      topic: notifierTopic,
      alarmTopic: topicOf(snsConfig.alarmTopicArn),
      logger,
    });
    cleanup.push(() => notifier.flush());

    const publishers = new PublisherChain([notifier]);
    const tasks = new TaskService({ store, publisher: publishers, logger, retentionDays: config.retentionDays });
    const live = new LiveTasks({ bus, tasks, metrics, logger, limits: config.live });

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
      queue: notifierTopic ? new SnsExecutionQueue(notifierTopic) : undefined,
      executions: sfnClient ? new AwsExecutions(sfnClient, workerConfig.stateMachineArn!, logger) : undefined,
    });
    if (workerConfig.enabled) publishers.add(worker.execution.onCreated);
    cleanup.push(() => worker.stop());

    const routes: Record<string, Parameters<typeof createServer>[0]['routes'][string]> = {
      '/healthz': (_req, res) => json(res, 200, { status: 'ok' }),
      '/readyz': async (_req, res) => {
        try {
          await dynamo.client.send(new DescribeTableCommand({ TableName: storage.tableName }));
          json(res, 200, { status: 'ready' });
        } catch (error) {
          logger.warn('readiness check failed', error);
          json(res, 503, { status: 'unavailable' });
        }
      },
      '/metrics': (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.render());
      },
    };
    if (snsConfig.topicArn) {
      routes['/sns'] = createSnsEndpoint({
        topicArn: snsConfig.topicArn,
        region: snsConfig.region ?? '',
        deliver: (message) => {
          bus.dispatch(message).catch((error) => logger.error('dispatching an SNS notification failed', error));
        },
        logger,
        onRejected: (reason) => metrics.notificationsRejected.inc({ reason }),
        ...options.snsEndpoint,
      });
    }

    const server = createServer({
      schema,
      context: createContextFactory({ verifyToken, tasks, live, execution: worker.execution, trustProxy: config.trustProxy }),
      verifyToken,
      live,
      logger,
      host: config.host,
      port: config.port,
      limits: config.limits,
      keepAliveMs: config.live.keepAliveMs,
      routes,
      graphiql: config.graphiql && { headers: devToken ? { Authorization: `Bearer ${devToken}` } : undefined },
    });
    const running = await server.start();
    cleanup.push(() => running.stop());
    if (workerConfig.enabled) await worker.start();

    if (snsClient && snsConfig.topicArn && snsConfig.publicUrl) {
      const unsubscribe = await subscribeSelf(snsClient, snsConfig.topicArn, snsConfig.publicUrl);
      cleanup.push(() =>
        unsubscribe().catch((error) => logger.warn('unsubscribing from SNS failed; SNS will drop the endpoint', error)),
      );
    }

    return {
      url: running.url,
      devToken,
      tasks,
      store,
      bus,
      metrics,
      worker,
      dynamoEndpoint: endpoint,
      stop: runCleanup,
    };
  } catch (error) {
    await runCleanup();
    throw error;
  }
}
