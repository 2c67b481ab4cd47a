import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
// The service's own index specs: the table here and `npm run create-table` cannot drift apart.
import { ALL_INDEXES, TTL_ATTRIBUTE } from '../src/aws/task-table-schema.js';

/** A table that already exists, e.g. one written by @mbc-cqrs-serverless/task. */
export interface ExistingTaskTable {
  /** The table's ARN. */
  readonly tableArn: string;
  /**
   * Its stream's ARN (NEW_AND_OLD_IMAGES), read by the stream handler in
   * stream mode (`notifications: 'stream'`, which requires it).
   * @default no stream
   */
  readonly tableStreamArn?: string;
}

/**
 * The task table as src/aws/task-table-schema.ts defines it: `pk`/`sk`, every
 * list index, TTL on `expiresAt`. Retained on stack deletion and protected
 * against deletion: it is the system of record.
 */
export function createTaskTable(scope: Construct, id: string): dynamodb.Table {
  const table = new dynamodb.Table(scope, id, {
    partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    timeToLiveAttribute: TTL_ATTRIBUTE,
    stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    deletionProtection: true,
    removalPolicy: RemovalPolicy.RETAIN,
  });
  for (const index of ALL_INDEXES) {
    table.addGlobalSecondaryIndex({
      indexName: index.name,
      partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: {
        name: index.sortKey,
        type: index.sortKeyType === 'N' ? dynamodb.AttributeType.NUMBER : dynamodb.AttributeType.STRING,
      },
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }
  return table;
}

/**
 * Adopts an existing table. It must already have the indexes (the server
 * refuses to start without them; see "Table and indexes" in the README); they
 * are named here so grants cover them.
 */
export function adoptTaskTable(scope: Construct, id: string, existing: ExistingTaskTable): dynamodb.ITable {
  return dynamodb.Table.fromTableAttributes(scope, id, {
    tableArn: existing.tableArn,
    tableStreamArn: existing.tableStreamArn,
    globalIndexes: ALL_INDEXES.map((index) => index.name),
  });
}
