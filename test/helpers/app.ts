import { randomUUID } from 'node:crypto';
import { DeleteTableCommand, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll } from 'vitest';
import { createTaskTable } from '../../src/aws/task-table.js';
import { startApp, type AppOptions, type RunningApp } from '../../src/app.js';
import { mintToken } from '../../src/auth/mint-token.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long';

export interface GraphQLResponse<T = Record<string, any>> {
  status: number;
  data?: T | null;
  errors?: { message: string; extensions?: Record<string, any>; path?: string[] }[];
}

export interface TestApp extends RunningApp {
  /** POSTs a GraphQL operation over real HTTP. */
  gql<T = Record<string, any>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string | null,
    headers?: Record<string, string>,
  ): Promise<GraphQLResponse<T>>;
  token(tenantCode: string, options?: { userId?: string; admin?: boolean; expiresIn?: string }): Promise<string>;
  /** Every item in the table, whatever its key, read over the DynamoDB protocol: a write anywhere changes it. */
  itemCount(): Promise<number>;
}

/**
 * Set (by vitest.dynamodb-local.config.ts) to an external DynamoDB endpoint
 * (DynamoDB Local) that every app without storage settings of its own uses
 * instead of in-memory dynalite, each on a new table.
 */
const EXTERNAL_DYNAMODB = 'TEST_DYNAMODB_ENDPOINT';

/**
 * A real server on an ephemeral loopback port over in-memory dynalite, or
 * over a new table on TEST_DYNAMODB_ENDPOINT when that is set.
 * Stopped after the file's tests.
 */
export async function startTestApp(env: Record<string, string> = {}, options: AppOptions = {}): Promise<TestApp> {
  const external = process.env[EXTERNAL_DYNAMODB];
  const onExternal = external && !env.DYNAMODB_ENDPOINT && !env.TASKS_TABLE && !env.DATA_DIR ? external : undefined;
  let storageEnv: Record<string, string> = { DATA_DIR: ':memory:' };
  if (onExternal) {
    const tableName = `tasks-${randomUUID()}`;
    const client = localClient(onExternal);
    try {
      await createTaskTable(client, tableName);
    } finally {
      client.destroy();
    }
    // The embedded default registers the example handlers; DynamoDB mode asks for them.
    storageEnv = { DYNAMODB_ENDPOINT: onExternal, TASKS_TABLE: tableName, EXAMPLE_HANDLERS: 'true' };
  }
  const config = loadConfig({
    JWT_SECRET: TEST_SECRET,
    ...storageEnv,
    HOST: '127.0.0.1',
    PORT: '0',
    // API tests drive every transition themselves; execution tests turn it on.
    TASK_EXECUTION: 'false',
    ...env,
  });
  const app = await startApp(config, { logger: createLogger((env.LOG_LEVEL as never) ?? 'silent'), ...options });
  const dynamo = localClient(app.dynamoEndpoint);
  afterAll(async () => {
    await app.stop();
    if (onExternal) await dynamo.send(new DeleteTableCommand({ TableName: config.storage.tableName })).catch(() => {});
    dynamo.destroy();
  });
  const defaultToken = await mintToken({ secret: TEST_SECRET, tenantCode: 'tenant-a', userId: 'user-a' });

  return {
    ...app,
    async gql(query, variables, token = defaultToken, headers = {}) {
      const response = await fetch(app.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...headers,
        },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await response.json()) as GraphQLResponse<any>;
      return { status: response.status, data: body.data, errors: body.errors };
    },
    async itemCount() {
      let count = 0;
      let startKey: Record<string, any> | undefined;
      do {
        const page = await dynamo.send(new ScanCommand({ TableName: app.store.tableName, Select: 'COUNT', ExclusiveStartKey: startKey }));
        count += page.Count ?? 0;
        startKey = page.LastEvaluatedKey;
      } while (startKey);
      return count;
    },
    token: (tenantCode, { userId = `user-of-${tenantCode}`, admin = false, expiresIn = '1h' } = {}) =>
      mintToken({ secret: TEST_SECRET, tenantCode, userId, admin, expiresIn }),
  };
}

/** A client of a local endpoint (dynalite, DynamoDB Local): any credentials do. */
const localClient = (endpoint?: string) =>
  new DynamoDBClient({ endpoint, region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });

/** The `extensions.code` of the first error, for terse assertions. */
export const errorCode = (response: GraphQLResponse) => response.errors?.[0]?.extensions?.code;

export const TASK_FIELDS = `id pk sk code kind type name tenantCode status input attributes version attempt parentId subTaskIndex createdAt updatedAt createdBy updatedBy`;

export const CREATE_TASK = `mutation($input: CreateTaskInput!) { createTask(input: $input) { ${TASK_FIELDS} } }`;
export const CREATE_SFN_TASK = `mutation($input: CreateTaskInput!) { createStepFunctionTask(input: $input) { ${TASK_FIELDS} } }`;
export const UPDATE_STATUS = `mutation($input: UpdateStatusInput!) { updateStatus(input: $input) { ${TASK_FIELDS} } }`;
export const GET_TASK = `query($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`;
export const LIST_TASKS = `query($filter: TaskFilter, $first: Int, $after: String) {
  tasks(filter: $filter, first: $first, after: $after) { edges { cursor node { ${TASK_FIELDS} } } pageInfo { hasNextPage endCursor } }
}`;
export const LIST_SUB_TASKS = `query($parentId: ID!, $first: Int, $after: String) {
  subTasks(parentId: $parentId, first: $first, after: $after) { edges { cursor node { ${TASK_FIELDS} } } pageInfo { hasNextPage endCursor } }
}`;
