import { StartupError } from '../lifecycle.js';
import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { ALL_INDEXES, TTL_ATTRIBUTE, tableDefinition } from './task-table-schema.js';

export class MissingTableError extends StartupError {
  override name = 'MissingTableError';
}

/** Creates the table and its indexes when absent and turns on TTL. Returns whether it created it. */
export async function createTaskTable(client: DynamoDBClient, tableName: string): Promise<boolean> {
  let created = false;
  try {
    await client.send(new CreateTableCommand(tableDefinition(tableName)));
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
  return created;
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
    throw new MissingTableError(
      `Table ${tableName} lacks the indexes ${missing.join(', ')}; see "Table and indexes" in the README`,
    );
  }
}
