import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import type { GraphQLError } from 'graphql';
import { SQSClient } from '@aws-sdk/client-sqs';
import { schema } from '../resolvers/index.js';
import { mintToken } from './auth/mint-token.js';
import { createTokenVerifier } from './auth/verify-token.js';
import { createViewerTokenIssuer } from './auth/viewer-token.js';
import type { DynamoTaskStore } from './aws/dynamo-task-store.js';
import { subscribeSelf } from './aws/sns-self-subscription.js';
import { startSqsBridge } from './aws/sqs-bridge.js';
import { startSqsWorker } from './aws/sqs-worker.js';
import type { Config } from './config.js';
import { Cleanup } from './lifecycle.js';
import { createContextFactory } from './context.js';
import { loadDevSecret } from './embedded/dev-secret.js';
import { LiveTasks } from './live/live-tasks.js';
import type { Metrics } from './live/metrics.js';
import { createSnsEndpoint, type SnsEndpointOptions } from './live/sns-endpoint.js';
import type { TaskEventBus } from './live/task-event-bus.js';
import { createDashboard } from './server/dashboard.js';
import { createMaskError } from './server/mask-error.js';
import { createGraphQLServer, GRAPHQL_PATH, json } from './server/server.js';
import { createServices, type ServiceOptions } from './services.js';
import type { Clock } from './timers.js';
import type { TaskService } from './tasks/task-service.js';
import type { Worker } from './worker/create-worker.js';

export interface AppOptions extends ServiceOptions {
  /**
   * An SQS client to use instead of a new one, for TASK_QUEUE_URL and for the
   * SNS_BRIDGE=sqs queue (tests wrap it with aws-sdk-client-mock).
   */
  sqs?: SQSClient;
  /** Test seams of the SNS endpoint: a stand-in SNS host to trust, its fetch. */
  snsEndpoint?: Pick<SnsEndpointOptions, 'isTrustedSnsUrl' | 'fetch'>;
  /** Where the built dashboard is, instead of dist/dashboard (tests build their own). */
  dashboardDir?: string;
  /** The live path's timers (token expiry); tests pass a fake one. @default the system clock */
  clock?: Clock;
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

/** Composition root: config → services (storage, SNS, task service, worker; services.ts) → server. */
export async function startApp(config: Config, options: AppOptions = {}): Promise<RunningApp> {
  const { storage, sns: snsConfig, worker: workerConfig } = config;
  const cleanup = new Cleanup();

  try {
    const services = await createServices(config, options);
    cleanup.push(() => services.stop());
    const { logger, dynamo, metrics, store, bus, tasks, worker, snsClient, endpoint } = services;

    const devSecret =
      storage.mode === 'embedded' && !config.auth.secret && !config.auth.jwksUrl ? await loadDevSecret(storage.dataDir) : undefined;
    const viewerSecret = config.auth.viewerSecret ?? devSecret;
    const verifyToken = createTokenVerifier({ ...config.auth, secret: config.auth.secret ?? devSecret, viewerSecret });
    const viewerTokens = viewerSecret ? createViewerTokenIssuer(viewerSecret) : undefined;
    const devToken = devSecret
      ? await mintToken({ secret: devSecret, tenantCode: 'demo', userId: 'dev', expiresIn: '30d', claims: config.auth.claims })
      : undefined;

    const maskError = createMaskError(logger);
    const live = new LiveTasks({
      bus,
      tasks,
      metrics,
      logger,
      limits: config.live,
      maskError: (error) => maskError(error, 'Unexpected error.', false) as GraphQLError,
      clock: options.clock,
    });

    const routes: Record<string, Parameters<typeof createGraphQLServer>[0]['routes'][string]> = {
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
        maxMessageAgeMs: snsConfig.maxMessageAgeMs,
        ...options.snsEndpoint,
      });
    }

    const server = createGraphQLServer({
      schema,
      context: createContextFactory({
        verifyToken,
        tasks,
        live,
        cancellation: worker.dispatcher,
        viewerTokens,
        trustProxy: config.trustProxy,
      }),
      verifyToken,
      live,
      logger,
      maskError,
      host: config.host,
      port: config.port,
      limits: config.limits,
      keepAliveMs: config.live.keepAliveMs,
      trustProxy: config.trustProxy,
      routes,
      graphiql: config.graphiql && { headers: devToken ? { Authorization: `Bearer ${devToken}` } : undefined },
      dashboard: config.dashboard
        ? createDashboard({
            dir: options.dashboardDir,
            page: { graphqlPath: GRAPHQL_PATH, devToken, claims: config.auth.claims, adminRole: config.auth.adminRole },
          })
        : undefined,
      shutdownGraceMs: workerConfig.shutdownGraceMs,
    });
    const running = await server.start();
    cleanup.push(() => running.stop());
    if (workerConfig.enabled) await worker.start();

    // One client for the task queue and the bridge queue: same service, region and credentials.
    let sqsClient = options.sqs;
    const sqs = (): SQSClient => {
      if (!sqsClient) {
        const client = new SQSClient({ region: snsConfig.region ?? regionOfQueueUrl(workerConfig.queueUrl ?? '') });
        cleanup.push(() => client.destroy()); // after whatever uses it has stopped
        sqsClient = client;
      }
      return sqsClient;
    };

    if (workerConfig.enabled && workerConfig.queueUrl) {
      const sqsWorker = startSqsWorker({
        client: sqs(),
        queueUrl: workerConfig.queueUrl,
        dispatcher: worker.dispatcher,
        logger,
        concurrency: workerConfig.concurrency,
        // A message a dead worker held comes back after about one lease; the lease decides the takeover.
        visibilityTimeoutSeconds: Math.ceil(workerConfig.leaseMs / 1000),
      });
      // Stopped before the server: messages being handled finish while subscribers still listen.
      cleanup.push(() => sqsWorker.stop());
    }

    if (snsClient && snsConfig.topicArn && snsConfig.bridge === 'http' && snsConfig.publicUrl) {
      const unsubscribe = await subscribeSelf(snsClient, snsConfig.topicArn, snsConfig.publicUrl);
      cleanup.push(() => unsubscribe().catch((error) => logger.warn('unsubscribing from SNS failed; SNS will drop the endpoint', error)));
    }

    if (snsClient && snsConfig.topicArn && snsConfig.bridge === 'sqs') {
      const bridge = await startSqsBridge({
        sns: snsClient,
        sqs: sqs(),
        topicArn: snsConfig.topicArn,
        queuePrefix: snsConfig.bridgeQueuePrefix,
        deliver: (message) => bus.dispatch(message),
        onRejected: (reason) => metrics.notificationsRejected.inc({ reason }),
        logger,
      });
      // Stopped before the server: unsubscribed and deleted while the process can still reach AWS.
      cleanup.push(() => bridge.stop());
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
      stop: cleanup.run,
    };
  } catch (error) {
    await cleanup.run();
    throw error;
  }
}

/** `https://sqs.<region>.amazonaws.com/<account>/<name>` → region. */
function regionOfQueueUrl(url: string): string | undefined {
  return /^https?:\/\/sqs[.-]([a-z0-9-]+)\.amazonaws\.com/.exec(url)?.[1];
}
