import type { CreateTableCommandInput, GlobalSecondaryIndex } from '@aws-sdk/client-dynamodb';

/**
 * The task table: the original package's `pk`/`sk` keys plus sparse secondary
 * indexes, each named after the access pattern it serves. Index key attributes
 * are written on top-level tasks only, so listings never read sub-tasks, and a
 * filtered listing reads only matching items (full pages, no FilterExpression).
 *
 * Partition attributes (values shown for tenant `demo`, type `ECHO`):
 *   listKey           TASK#demo                  every top-level task of a kind and tenant
 *   listTypeKey       TASK#demo#ECHO             ... of one task type
 *   listStatusKey     TASK#demo#QUEUED           ... in one status
 *   listTypeStatusKey TASK#demo#ECHO#QUEUED      ... of one type in one status
 * Each is indexed twice: sorted by `code` (a ULID: creation order) and by
 * `listUpdatedAt` (for `updatedSince`): `updatedAt` in UTC, because the
 * original package writes local-time offsets (`+09:00`), which do not sort as
 * text. Sub-tasks are indexed by `parentId` and their numeric `subTaskIndex`,
 * because the `sk` suffix sorts as a string.
 */
export interface IndexSpec {
  name: string;
  /** The table's own key rather than a secondary index. */
  isTable?: true;
  partitionKey: string;
  sortKey: string;
  sortKeyType: 'S' | 'N';
}

export type ListFacet = 'tenant' | 'type' | 'status' | 'typeStatus';
export type ListOrder = 'created' | 'updated';

const PARTITION_ATTRIBUTE: Record<ListFacet, string> = {
  tenant: 'listKey',
  type: 'listTypeKey',
  status: 'listStatusKey',
  typeStatus: 'listTypeStatusKey',
};
const FACET_NAME: Record<ListFacet, string> = {
  tenant: 'byTenant',
  type: 'byType',
  status: 'byStatus',
  typeStatus: 'byTypeAndStatus',
};
const ORDER_KEY: Record<ListOrder, { suffix: string; attribute: string }> = {
  created: { suffix: 'Created', attribute: 'code' },
  updated: { suffix: 'Updated', attribute: 'listUpdatedAt' },
};

export function listIndex(facet: ListFacet, order: ListOrder): IndexSpec {
  return {
    name: `${FACET_NAME[facet]}${ORDER_KEY[order].suffix}`,
    partitionKey: PARTITION_ATTRIBUTE[facet],
    sortKey: ORDER_KEY[order].attribute,
    sortKeyType: 'S',
  };
}

export const LIST_PARTITION_ATTRIBUTES = PARTITION_ATTRIBUTE;
/** The sort attribute of the by-last-change indexes. */
export const LIST_UPDATED_ATTRIBUTE = ORDER_KEY.updated.attribute;
/** What only top-level tasks carry: sub-tasks stay out of the list indexes. */
export const LIST_ATTRIBUTES: readonly string[] = [...Object.values(PARTITION_ATTRIBUTE), LIST_UPDATED_ATTRIBUTE];

export const SUB_TASK_INDEX: IndexSpec = {
  name: 'subTasksByParent',
  partitionKey: 'parentId',
  sortKey: 'subTaskIndex',
  sortKeyType: 'N',
};

/** The table's key, queried by `sk` prefix for the sub-tasks of a parent the original package wrote. */
export const TABLE_KEY: IndexSpec = { name: 'table', isTable: true, partitionKey: 'pk', sortKey: 'sk', sortKeyType: 'S' };

/** Every attribute the service derives for its indexes: a change to nothing else is an index repair. */
export const INDEX_ATTRIBUTES: readonly string[] = [...LIST_ATTRIBUTES, SUB_TASK_INDEX.partitionKey, SUB_TASK_INDEX.sortKey];

export const ALL_INDEXES: readonly IndexSpec[] = [
  ...(Object.keys(PARTITION_ATTRIBUTE) as ListFacet[]).flatMap((facet) =>
    (Object.keys(ORDER_KEY) as ListOrder[]).map((order) => listIndex(facet, order)),
  ),
  SUB_TASK_INDEX,
];

/** DynamoDB TTL attribute: terminal tasks (with retention) and idempotency records. */
export const TTL_ATTRIBUTE = 'expiresAt';

/**
 * The stream the notification Lambda (src/lambda/stream-handler.ts) reads:
 * both images, so it can tell a change's previous status and a repair's echo.
 */
export const TASK_STREAM = { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' } as const;

export function tableDefinition(tableName: string, options: { stream?: boolean } = {}): CreateTableCommandInput {
  const attributeTypes = new Map<string, 'S' | 'N'>([
    ['pk', 'S'],
    ['sk', 'S'],
  ]);
  for (const index of ALL_INDEXES) {
    attributeTypes.set(index.partitionKey, 'S');
    attributeTypes.set(index.sortKey, index.sortKeyType);
  }
  const globalSecondaryIndexes: GlobalSecondaryIndex[] = ALL_INDEXES.map((index) => ({
    IndexName: index.name,
    KeySchema: [
      { AttributeName: index.partitionKey, KeyType: 'HASH' },
      { AttributeName: index.sortKey, KeyType: 'RANGE' },
    ],
    Projection: { ProjectionType: 'ALL' },
  }));
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...attributeTypes].map(([AttributeName, AttributeType]) => ({
      AttributeName,
      AttributeType,
    })),
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: globalSecondaryIndexes,
    ...(options.stream ? { StreamSpecification: TASK_STREAM } : {}),
  };
}
