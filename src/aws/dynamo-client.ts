import {
  BatchWriteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand as QueryItemsCommand,
  ScanCommand as ScanItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type BatchWriteCommandOutput,
  type GetCommandOutput,
  type PutCommandOutput,
  type QueryCommandOutput,
  type ScanCommandOutput,
  type UpdateCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { marshall, unmarshall, type marshallOptions, type unmarshallOptions } from '@aws-sdk/util-dynamodb';

/** Sends lib-dynamodb's commands: createDocumentClient's, or lib-dynamodb's own DynamoDBDocumentClient in tests. */
export interface DocumentSender {
  send(command: GetCommand): Promise<GetCommandOutput>;
  send(command: PutCommand): Promise<PutCommandOutput>;
  send(command: UpdateCommand): Promise<UpdateCommandOutput>;
  send(command: QueryCommand): Promise<QueryCommandOutput>;
  send(command: ScanCommand): Promise<ScanCommandOutput>;
  send(command: BatchWriteCommand): Promise<BatchWriteCommandOutput>;
}

export interface DynamoClients {
  client: DynamoDBClient;
  doc: DocumentSender;
}

const MARSHALL: marshallOptions = {
  // JSON numbers past 2^53 lost their precision when the request was parsed:
  // store them as given and read them back as plain numbers (not BigInt, which JSON cannot carry).
  // An object with its own `constructor` key (JSON allows it) is still a map, not a class instance.
  removeUndefinedValues: true,
  convertEmptyValues: false,
  allowImpreciseNumbers: true,
  convertClassInstanceToMap: true,
};
const UNMARSHALL: unmarshallOptions = { wrapNumbers: (value: string) => Number(value) };

type Item = Record<string, unknown>;
type Attributes = Record<string, AttributeValue>;
const toAttributes = (item: Item | undefined): Attributes | undefined => (item ? (marshall(item, MARSHALL) as Attributes) : undefined);
const fromAttributes = (item: Attributes | undefined): Item | undefined => (item ? unmarshall(item, UNMARSHALL) : undefined);

/**
 * lib-dynamodb's commands with its marshalling, sent by a base client made
 * with `cacheMiddleware`: its middleware stack is resolved once per command
 * class. DynamoDBDocumentClient resolves two stacks per request (its own and
 * the inner command's) and cannot cache them (each handler closes over its
 * command): a third of each call's SDK CPU (a PutItem: 650-700 µs, here
 * 450-480 µs). The commands the store and the backfill send: Get, Put,
 * Update, Query, Scan, BatchWrite.
 */
export function createDocumentClient(client: DynamoDBClient): DocumentSender {
  return { send: ((command: object) => sendDocumentCommand(client, command)) as DocumentSender['send'] };
}

async function sendDocumentCommand(client: DynamoDBClient, command: object): Promise<object> {
  if (command instanceof GetCommand) {
    const { Key, ...input } = command.input;
    const output = await client.send(new GetItemCommand({ ...input, Key: toAttributes(Key) }));
    return { ...output, Item: fromAttributes(output.Item) };
  }
  if (command instanceof PutCommand) {
    const { Item, ExpressionAttributeValues, ...input } = command.input;
    const output = await client.send(
      new PutItemCommand({ ...input, Item: toAttributes(Item), ExpressionAttributeValues: toAttributes(ExpressionAttributeValues) }),
    );
    return { ...output, Attributes: fromAttributes(output.Attributes) };
  }
  if (command instanceof UpdateCommand) {
    const { Key, ExpressionAttributeValues, ...input } = command.input;
    const output = await client.send(
      new UpdateItemCommand({ ...input, Key: toAttributes(Key), ExpressionAttributeValues: toAttributes(ExpressionAttributeValues) }),
    );
    return { ...output, Attributes: fromAttributes(output.Attributes) };
  }
  if (command instanceof QueryCommand || command instanceof ScanCommand) {
    const { ExpressionAttributeValues, ExclusiveStartKey, ...input } = command.input;
    const values = {
      ExpressionAttributeValues: toAttributes(ExpressionAttributeValues),
      ExclusiveStartKey: toAttributes(ExclusiveStartKey),
    };
    const output = await client.send(
      command instanceof QueryCommand
        ? new QueryItemsCommand({ ...(input as QueryCommand['input']), ...values })
        : new ScanItemsCommand({ ...(input as ScanCommand['input']), ...values }),
    );
    return {
      ...output,
      Items: output.Items?.map((item) => fromAttributes(item)),
      LastEvaluatedKey: fromAttributes(output.LastEvaluatedKey),
    };
  }
  if (command instanceof BatchWriteCommand) {
    const { RequestItems, ...input } = command.input;
    const output = await client.send(new BatchWriteItemCommand({ ...input, RequestItems: mapRequests(RequestItems, toAttributes) }));
    return { ...output, UnprocessedItems: mapRequests(output.UnprocessedItems as never, fromAttributes) };
  }
  throw new Error(`createDocumentClient does not send ${command.constructor.name}`);
}

/** BatchWrite's request lists with every item and key converted. */
function mapRequests<From, To>(
  requests: Record<string, { PutRequest?: { Item?: From }; DeleteRequest?: { Key?: From } }[]> | undefined,
  convert: (value: From | undefined) => To | undefined,
): Record<string, WriteRequest[]> | undefined {
  if (!requests) return undefined;
  return Object.fromEntries(
    Object.entries(requests).map(([table, list]) => [
      table,
      list.map((request) => ({
        ...(request.PutRequest ? { PutRequest: { ...request.PutRequest, Item: convert(request.PutRequest.Item) } } : {}),
        ...(request.DeleteRequest ? { DeleteRequest: { ...request.DeleteRequest, Key: convert(request.DeleteRequest.Key) } } : {}),
      })) as WriteRequest[],
    ]),
  );
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
    cacheMiddleware: true,
  });
  return { client, doc: createDocumentClient(client) };
}
