import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  DynamoDBClient,
  type AttributeValue,
  type BatchWriteItemOutput,
  type GetItemOutput,
  type PutItemOutput,
  type QueryOutput,
  type ScanOutput,
  type UpdateItemOutput,
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
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { DynamoWire } from './dynamo-wire.js';

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
  /** Table administration (create, describe), and the configuration the store's calls use. */
  client: DynamoDBClient;
  /** The store's item calls, over the client's connections (DynamoWire). */
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
 * lib-dynamodb's commands with its marshalling, sent as DynamoDB's JSON
 * protocol by DynamoWire rather than through the SDK's middleware stack. A
 * store PutItem costs this process 271-414 µs of CPU this way, against
 * 859 µs through a `cacheMiddleware` SDK client (npm run bench:write-path).
 * The commands the store and the backfill send: Get, Put, Update, Query,
 * Scan, BatchWrite.
 */
function createDocumentClient(wire: DynamoWire): DocumentSender {
  return { send: ((command: object) => sendDocumentCommand(wire, command)) as DocumentSender['send'] };
}

async function sendDocumentCommand(wire: DynamoWire, command: object): Promise<object> {
  if (command instanceof GetCommand) {
    const { Key, ...input } = command.input;
    const output = await wire.call<GetItemOutput>('GetItem', { ...input, Key: toAttributes(Key) });
    return { ...output, Item: fromAttributes(output.Item) };
  }
  if (command instanceof PutCommand) {
    const { Item, ExpressionAttributeValues, ...input } = command.input;
    const output = await wire.call<PutItemOutput>('PutItem', {
      ...input,
      Item: toAttributes(Item),
      ExpressionAttributeValues: toAttributes(ExpressionAttributeValues),
    });
    return { ...output, Attributes: fromAttributes(output.Attributes) };
  }
  if (command instanceof UpdateCommand) {
    const { Key, ExpressionAttributeValues, ...input } = command.input;
    const output = await wire.call<UpdateItemOutput>('UpdateItem', {
      ...input,
      Key: toAttributes(Key),
      ExpressionAttributeValues: toAttributes(ExpressionAttributeValues),
    });
    return { ...output, Attributes: fromAttributes(output.Attributes) };
  }
  if (command instanceof QueryCommand || command instanceof ScanCommand) {
    const { ExpressionAttributeValues, ExclusiveStartKey, ...input } = command.input;
    const output = await wire.call<QueryOutput & ScanOutput>(command instanceof QueryCommand ? 'Query' : 'Scan', {
      ...input,
      ExpressionAttributeValues: toAttributes(ExpressionAttributeValues),
      ExclusiveStartKey: toAttributes(ExclusiveStartKey),
    });
    return {
      ...output,
      Items: output.Items?.map((item) => fromAttributes(item)),
      LastEvaluatedKey: fromAttributes(output.LastEvaluatedKey),
    };
  }
  if (command instanceof BatchWriteCommand) {
    const { RequestItems, ...input } = command.input;
    const output = await wire.call<BatchWriteItemOutput>('BatchWriteItem', {
      ...input,
      RequestItems: mapRequests(RequestItems, toAttributes),
    });
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
  // One socket pool for both paths; the client's handler destroys it with the client.
  const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 50 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 50 }) };
  const client = new DynamoDBClient({
    endpoint: options.endpoint,
    region: options.region ?? (options.local ? 'local' : undefined),
    ...(options.local ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
    maxAttempts: 5,
    requestHandler: new NodeHttpHandler({ httpAgent: agents.http, httpsAgent: agents.https }),
  });
  return { client, doc: createDocumentClient(new DynamoWire(client, agents)) };
}
