import { createDynamoClients } from '../src/aws/dynamo-client.js';
import { createTaskTable } from '../src/aws/task-table.js';

/** npm run create-table: creates TASKS_TABLE with its indexes and TTL on DynamoDB (or DYNAMODB_ENDPOINT). */
const tableName = process.env.TASKS_TABLE;
if (!tableName) {
  console.error('Set TASKS_TABLE (and AWS_REGION, or DYNAMODB_ENDPOINT)');
  process.exit(1);
}
const { client } = createDynamoClients({ endpoint: process.env.DYNAMODB_ENDPOINT, region: process.env.AWS_REGION });
const created = await createTaskTable(client, tableName);
console.log(created ? `created table ${tableName}` : `table ${tableName} already exists`);
client.destroy();
