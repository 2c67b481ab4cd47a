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
    // JSON numbers past 2^53 lost their precision when the request was parsed:
    // store them as given and read them back as plain numbers (not BigInt, which JSON cannot carry).
    // An object with its own `constructor` key (JSON allows it) is still a map, not a class instance.
    marshallOptions: {
      removeUndefinedValues: true,
      convertEmptyValues: false,
      allowImpreciseNumbers: true,
      convertClassInstanceToMap: true,
    },
    unmarshallOptions: { wrapNumbers: (value: string) => Number(value) },
  });
  return { client, doc };
}
