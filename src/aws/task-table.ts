import { StartupError } from '../lifecycle.js';
import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceNotFoundException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { ALL_INDEXES, TASK_STREAM, TTL_ATTRIBUTE, tableDefinition } from './task-table-schema.js';

export class MissingTableError extends StartupError {
  override name = 'MissingTableError';
}

/**
 * Creates the table and its indexes when absent and turns on TTL (and, with
 * `stream`, the stream of new and old images). Returns whether it created it.
 */
export async function createTaskTable(client: DynamoDBClient, tableName: string, options: { stream?: boolean } = {}): Promise<boolean> {
  let created = false;
  try {
    await client.send(new CreateTableCommand(tableDefinition(tableName, options)));
    created = true;
  } catch (error) {
    if ((error as { name?: string }).name !== 'ResourceInUseException') throw error;
  }
  await waitUntilTableExists({ client, maxWaitTime: 300, minDelay: 1 }, { TableName: tableName });
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      }),
    );
  } catch (error) {
    const name = (error as { name?: string }).name;
    // dynalite has no TTL; on AWS a second enable is refused as already set.
    if (name !== 'UnknownOperationException' && !(name === 'ValidationException' && !created)) throw error;
  }
  if (options.stream && !created) await enableTaskTableStream(client, tableName);
  return created;
}

/**
 * Turns on the stream of an existing table (NEW_AND_OLD_IMAGES); a stream of
 * another view type is an error (DynamoDB cannot change it in place). Returns its ARN.
 */
export async function enableTaskTableStream(client: DynamoDBClient, tableName: string): Promise<string> {
  const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
  const current = Table?.StreamSpecification;
  if (current?.StreamEnabled) {
    if (current.StreamViewType !== TASK_STREAM.StreamViewType) {
      throw new Error(`Table ${tableName} has a ${current.StreamViewType} stream; the notification Lambda needs NEW_AND_OLD_IMAGES`);
    }
    return Table!.LatestStreamArn!;
  }
  const { TableDescription } = await client.send(new UpdateTableCommand({ TableName: tableName, StreamSpecification: TASK_STREAM }));
  await waitUntilTableExists({ client, maxWaitTime: 300, minDelay: 1 }, { TableName: tableName });
  return TableDescription!.LatestStreamArn!;
}

/** Fails with a message saying what to run when the table or one of its indexes is missing. */
export async function checkTaskTable(client: DynamoDBClient, tableName: string): Promise<void> {
  let indexes: string[];
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    indexes = (Table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName ?? '');
  } catch (error) {
    if (error instanceof ResourceNotFoundException || (error as { name?: string }).name === 'ResourceNotFoundException') {
      throw new MissingTableError(`Table ${tableName} does not exist. Create it with: TASKS_TABLE=${tableName} npm run create-table`);
    }
    throw error;
  }
  const missing = ALL_INDEXES.map((index) => index.name).filter((name) => !indexes.includes(name));
  if (missing.length > 0) {
    throw new MissingTableError(`Table ${tableName} lacks the indexes ${missing.join(', ')}; see "Table and indexes" in the README`);
  }
}
