import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface DynamoClients {
  client: DynamoDBClient;
  doc: DynamoDBDocumentClient;
}

/**
 * One client per process. A local endpoint (dynalite, DynamoDB Local) gets
 * placeholder credentials; AWS takes the default provider chain.
 */
export function createDynamoClients(options: { endpoint?: string; region?: string; local?: boolean }): DynamoClients {
  const client = new DynamoDBClient({
    endpoint: options.endpoint,
    region: options.region ?? (options.local ? 'local' : undefined),
    ...(options.local ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
    maxAttempts: 5,
  });
  const doc = DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
  });
  return { client, doc };
}
