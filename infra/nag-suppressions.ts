import { Stack, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as ecsPatterns from 'aws-cdk-lib/aws-ecs-patterns';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { IConstruct } from 'constructs';

/** What the acknowledged cdk-nag (AwsSolutions) findings are about. */
export interface AcknowledgedFindings {
  /** The construct holding everything below: findings shared by several roles are acknowledged here. */
  readonly root: IConstruct;
  readonly table: dynamodb.ITable;
  readonly executionsArn: string;
  readonly stateMachine: sfn.StateMachine;
  readonly subTaskRunner: lambda.IFunction;
  /** Stream mode only. */
  readonly streamPublisher?: lambda.IFunction;
  /** Stream mode only. */
  readonly streamDeadLetterQueue?: sqs.IQueue;
  readonly taskDefinition: ecs.TaskDefinition;
  readonly service: ecsPatterns.ApplicationLoadBalancedFargateService;
  readonly bridgeQueuesArn: string;
  /** Only when this construct created it. */
  readonly jwtSecret?: secretsmanager.ISecret;
  /** Only when this construct created it. */
  readonly accessLogsBucket?: s3.IBucket;
}

/**
 * Acknowledges, with the reason, each cdk-nag finding this construct creates
 * on purpose (cdk-nag v3: Validations.of(scope).acknowledge). Each one names
 * the exact finding (an IAM5 finding names its wildcard), never a whole rule,
 * so a new wildcard elsewhere is still reported.
 */
export function acknowledgeFindings(f: AcknowledgedFindings): void {
  const ack = (scope: IConstruct, id: string, reason: string) => Validations.of(scope).acknowledge({ id, reason });

  ack(
    f.root,
    wildcard(f.root, 'Resource', `${f.table.tableArn}/index/*`),
    "grantReadWriteData covers the table's indexes: every listing is a Query on one of them (src/aws/task-table-schema.ts ALL_INDEXES); this one table's only",
  );
  ack(
    f.root,
    wildcard(f.root, 'Action', 'kms:GenerateDataKey*'),
    "Publishing to a KMS-encrypted topic needs kms:GenerateDataKey* (topic.grantPublish), granted on the topics' one key only",
  );
  ack(
    f.root,
    wildcard(f.root, 'Resource', f.executionsArn),
    "StopExecution takes an execution ARN and executions are named per task at run time (executionName in src/worker/sub-task-executions.ts); scoped to this state machine's executions",
  );

  ack(
    f.stateMachine,
    wildcard(f.stateMachine, 'Resource', '*'),
    'Logging and tracing of the state machine: the CloudWatch Logs delivery actions (logs:CreateLogDelivery, …) and X-Ray writes (xray:PutTraceSegments, …) support no resource-level permissions',
  );
  ack(
    f.stateMachine,
    wildcard(f.stateMachine, 'Resource', `${f.subTaskRunner.functionArn}:*`),
    "grantInvoke on the sub-task runner also covers its versions and aliases (`<arn>:*`); it is this one function's",
  );

  const taskRole = f.taskDefinition.taskRole;
  ack(
    taskRole,
    wildcard(taskRole, 'Resource', '*'),
    "sqs:ListQueues only (the bridge's sweep of dead replicas' queues, by name prefix): it has no resource type and can only be granted on *",
  );
  ack(
    taskRole,
    wildcard(taskRole, 'Resource', f.bridgeQueuesArn),
    'Each replica creates, polls and deletes its own bridge queue, named <prefix><ULID> at run time; the grant is limited to that prefix',
  );
  const executionRole = f.taskDefinition.executionRole;
  if (executionRole) {
    ack(
      executionRole,
      wildcard(executionRole, 'Resource', '*'),
      'ecr:GetAuthorizationToken (pulling the server image) supports no resource-level permissions; the image pull itself is scoped to its repository',
    );
  }
  ack(
    f.taskDefinition,
    'AwsSolutions-ECS2',
    'The environment holds configuration only (resource names and ARNs, ports, limits); the one secret, JWT_SECRET, comes from Secrets Manager',
  );
  ack(
    f.service.loadBalancer,
    'AwsSolutions-EC23',
    'The public GraphQL API: its load balancer takes requests from anywhere on its listener port; the tasks behind it accept only the load balancer',
  );

  if (f.streamPublisher?.role) {
    const streamRole = f.streamPublisher.role;
    ack(
      streamRole,
      wildcard(streamRole, 'Resource', '*'),
      "dynamodb:ListStreams only (table.grantStreamRead, for the stream event source): it supports no resource-level permissions; the stream's reads (DescribeStream, GetShardIterator, GetRecords) are scoped to this table's stream",
    );
  }
  if (f.streamDeadLetterQueue) {
    ack(
      f.streamDeadLetterQueue,
      'AwsSolutions-SQS3',
      "This queue is a dead-letter queue itself: the stream event source's on-failure destination (metadata of the records given up on), watched by an alarm",
    );
  }
  if (f.jwtSecret) {
    ack(
      f.jwtSecret,
      'AwsSolutions-SMG4',
      'An HS256 signing key: rotating it invalidates every token in flight and the server verifies with one key only; rotate by hand (or set jwksUrl to use an identity provider)',
    );
  }
  if (f.accessLogsBucket) {
    ack(
      f.accessLogsBucket,
      'AwsSolutions-S1',
      "This bucket receives the load balancer's access logs; logging access to it would need yet another bucket, and only the log delivery service writes to it",
    );
  }
}

/** The finding id cdk-nag's IAM5 reports for a wildcard action or resource. */
function wildcard(scope: IConstruct, kind: 'Action' | 'Resource', value: string): string {
  return `AwsSolutions-IAM5[${kind}::${flattenReference(Stack.of(scope).resolve(value))}]`;
}

/**
 * A resolved CloudFormation value as cdk-nag flattens it into a finding id
 * (its utils/flatten-cfn-reference): `{ Ref: X }` → `<X>`, `{ Fn::GetAtt: [X, Y] }` →
 * `<X.Y>`, joins concatenated. The test fails if cdk-nag ever flattens otherwise.
 */
function flattenReference(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  const node = value as Record<string, unknown>;
  if (node['Fn::Join']) {
    const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
    return items.map(flattenReference).join(delimiter);
  }
  if (node['Fn::Sub']) return flattenReference(node['Fn::Sub']);
  if (node['Fn::GetAtt']) {
    const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
    return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
  }
  if (node['Fn::ImportValue']) return flattenReference(node['Fn::ImportValue']);
  if (node.Ref) return `<${flattenReference(node.Ref)}>`;
  return JSON.stringify(value);
}
