import type { Config } from './config.js';
import { createContextFactory } from './context.js';
import { createDynamoClients } from './aws/dynamo-client.js';
import { DynamoTaskStore } from './aws/dynamo-task-store.js';
import { checkTaskTable, createTaskTable } from './aws/task-table.js';
import { mintToken } from './auth/mint-token.js';
import { createTokenVerifier } from './auth/verify-token.js';
import { loadDevSecret } from './embedded/dev-secret.js';
import { startDynalite, type EmbeddedDynamo } from './embedded/dynalite.js';
import { createLogger, type Logger } from './logger.js';
import { createServer } from './server/server.js';
import { silentPublisher, type TaskPublisher } from './tasks/publisher.js';
import { TaskService } from './tasks/task-service.js';
import { schema } from '../resolvers/index.js';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';

export interface AppOptions {
  logger?: Logger;
  publisher?: TaskPublisher;
}

export interface RunningApp {
  url: string;
  /** Embedded default without JWT settings: a token for tenant `demo`. */
  devToken?: string;
  tasks: TaskService;
  store: DynamoTaskStore;
  /** The DynamoDB endpoint in use, when not AWS's own. */
  dynamoEndpoint?: string;
  stop(): Promise<void>;
}

/** Composition root: config → DynamoDB → services → server. */
export async function startApp(config: Config, options: AppOptions = {}): Promise<RunningApp> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const { storage } = config;

  let embedded: EmbeddedDynamo | undefined;
  let endpoint: string | undefined;
  if (storage.mode === 'embedded') {
    embedded = await startDynalite(storage.dataDir);
    endpoint = embedded.endpoint;
  } else {
    endpoint = storage.endpoint;
  }
  const dynamo = createDynamoClients({
    endpoint,
    region: storage.mode === 'dynamodb' ? storage.region : undefined,
    local: embedded !== undefined,
  });

  try {
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

    const store = new DynamoTaskStore(dynamo.doc, storage.tableName);
    const tasks = new TaskService({
      store,
      publisher: options.publisher ?? silentPublisher,
      logger,
      retentionDays: config.retentionDays,
    });
    const server = createServer({
      schema,
      context: createContextFactory({ verifyToken, tasks, trustProxy: config.trustProxy }),
      logger,
      host: config.host,
      port: config.port,
      limits: config.limits,
      checkReady: async () => {
        await dynamo.client.send(new DescribeTableCommand({ TableName: storage.tableName }));
      },
      graphiql: config.graphiql && { headers: devToken ? { Authorization: `Bearer ${devToken}` } : undefined },
    });
    const running = await server.start();

    return {
      url: running.url,
      devToken,
      tasks,
      store,
      dynamoEndpoint: endpoint,
      async stop() {
        await running.stop();
        dynamo.client.destroy();
        await embedded?.close();
      },
    };
  } catch (error) {
    dynamo.client.destroy();
    await embedded?.close();
    throw error;
  }
}
