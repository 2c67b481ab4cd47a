/**
 * The example app: one stack holding TaskGraphQLService.
 *
 *   npm run synth                          (or: cd infra && npx cdk synth)
 *   npx cdk deploy -c jwksUrl=https://…     (from infra/, with AWS credentials)
 *
 * Settings come from context (`-c key=value`, or "context" in infra/cdk.json),
 * falling back to the environment the CDK CLI sets. Synth needs no AWS
 * account: without CDK_DEFAULT_ACCOUNT the stack is account-agnostic. It does
 * need a region (the ALB's access-log delivery principal is per region).
 *
 * cdk-nag's AwsSolutions pack runs on every synth: an unacknowledged finding fails it.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { repoPath } from './paths.js';
import { TasksStack } from './tasks-stack.js';

// The CLI sets CDK_OUTDIR; run directly (`tsx infra/app.ts`), the assembly goes to infra/cdk.out.
const app = new App({ outdir: process.env.CDK_OUTDIR ?? repoPath('infra/cdk.out') });
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

const text = (key: string): string | undefined => {
  const value: unknown = app.node.tryGetContext(key);
  return value === undefined || value === '' ? undefined : String(value);
};
const count = (key: string): number | undefined => {
  const value = text(key);
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`context ${key} must be a whole number, got "${value}"`);
  return parsed;
};

const existingTableArn = text('existingTableArn');
const notifications = text('notifications');
if (notifications !== undefined && notifications !== 'service' && notifications !== 'stream') {
  throw new Error(`context notifications must be service or stream, got "${notifications}"`);
}
new TasksStack(app, text('stackName') ?? 'TaskGraphQL', {
  env: {
    account: text('account') ?? process.env.CDK_DEFAULT_ACCOUNT,
    region: text('region') ?? process.env.CDK_DEFAULT_REGION ?? 'eu-west-1',
  },
  description: 'Tasks: a GraphQL service for asynchronous tasks (DynamoDB, SNS, SQS, Lambda, Step Functions, Fargate)',
  certificateArn: text('certificateArn'),
  service: {
    existingTable: existingTableArn ? { tableArn: existingTableArn, tableStreamArn: text('existingTableStreamArn') } : undefined,
    // stream: the table stream's handler publishes every change (see "Stream mode" in the README).
    notifications,
    jwksUrl: text('jwksUrl'),
    minCapacity: count('minCapacity'),
    maxCapacity: count('maxCapacity'),
    retentionDays: count('retentionDays'),
    bridgeQueuePrefix: text('bridgeQueuePrefix'),
    // The ECHO and SLEEP examples make a fresh deployment usable end to end; turn off with -c exampleHandlers=false.
    environment: { EXAMPLE_HANDLERS: text('exampleHandlers') ?? 'true' },
  },
});

app.synth();
