import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { repoPath } from '../infra/paths.js';
import { TasksStack, type TasksStackProps } from '../infra/tasks-stack.js';
import { ALL_INDEXES, TTL_ATTRIBUTE } from '../src/aws/task-table-schema.js';
import { loadConfig } from '../src/config.js';
import { loadLambdaConfig } from '../src/lambda/bootstrap.js';
import { createStreamHandlerFromEnv } from '../src/lambda/stream-handler.js';
import { loadStateMachineDefinition } from '../src/worker/sub-task-executions.js';

/**
 * The CDK app in infra/: what it creates, how it is wired, what it may do
 * (IAM), and that cdk-nag's AwsSolutions checks pass. Each variant is
 * synthesized once (the Lambda bundle is built by the local esbuild; the
 * server image is only hashed, no Docker).
 */

const REGION = 'eu-west-1';
const EXISTING_TABLE_ARN = 'arn:aws:dynamodb:eu-west-1:111122223333:table/mbc-tasks';
const EXISTING_STREAM_ARN = `${EXISTING_TABLE_ARN}/stream/2026-01-01T00:00:00.000`;
const outdirs: string[] = [];

interface Synthesized {
  stack: TasksStack;
  template: Template;
}

function synth(props: TasksStackProps = {}, { bundle = true } = {}): Synthesized & { outdir: string } {
  const outdir = mkdtempSync(join(tmpdir(), 'infra-test-'));
  outdirs.push(outdir);
  const app = new App({
    outdir,
    // `npm run synth` runs CDK's CloudFormation schema validation; here it would only double the time.
    builtinCloudFormationValidation: false,
    context: {
      // No CDKMetadata resource: it carries the CDK version, which would churn the snapshot.
      'aws:cdk:version-reporting': false,
      // Without bundling, a function's code is a placeholder: for variants that test wiring only.
      ...(bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
    },
  });
  const stack = new TasksStack(app, 'Tasks', { env: { region: REGION }, ...props });
  return { stack, template: Template.fromStack(stack), outdir };
}

afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

type Resources = Record<string, { Type: string; Properties?: Record<string, any>; DeletionPolicy?: string }>;
type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

const only = <T>(record: Record<string, T>): [string, T] => {
  const entries = Object.entries(record);
  expect(entries).toHaveLength(1);
  return entries[0]!;
};
const statementsOf = (template: Template): { policy: string; statement: Statement }[] =>
  Object.entries(template.findResources('AWS::IAM::Policy') as Resources).flatMap(([policy, resource]) =>
    (resource.Properties!.PolicyDocument.Statement as Statement[]).map((statement) => ({ policy, statement })),
  );
const actionsOf = (statement: Statement): string[] => [statement.Action].flat();
const resourcesOf = (statement: Statement): unknown[] => [statement.Resource].flat();
const grantsOf = (statements: Statement[]) =>
  statements.flatMap((statement) =>
    actionsOf(statement).flatMap((action) => resourcesOf(statement).map((resource) => ({ action, resource: JSON.stringify(resource) }))),
  );

/** Actions that cannot be scoped to a resource (AWS service authorization reference). */
const UNSCOPABLE = new Set([
  'sqs:ListQueues',
  'ecr:GetAuthorizationToken',
  'dynamodb:ListStreams',
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
]);
/** Every statement allows; "*" only for UNSCOPABLE actions; no service-wide action wildcard. */
function expectScoped(statements: { policy: string; statement: Statement }[]): void {
  for (const { policy, statement } of statements) {
    expect(statement.Effect, policy).toBe('Allow');
    if (resourcesOf(statement).includes('*')) {
      expect(
        actionsOf(statement).filter((action) => !UNSCOPABLE.has(action)),
        policy,
      ).toEqual([]);
    }
    for (const action of actionsOf(statement)) expect(action, policy).not.toMatch(/^[a-z0-9-]+:\*$|^\*$/);
  }
}

/** The acknowledgments under `scope` as `<path below the construct>: <rule>[Action|Resource]`, sorted. */
function acknowledgedFindings(scope: IConstruct): string[] {
  const acknowledged = acknowledgments(scope).filter(({ id }) => id.includes('AwsSolutions-'));
  for (const { id, reason } of acknowledged) expect(reason.length, id).toBeGreaterThan(40);
  return acknowledged
    .map(
      ({ path, id }) =>
        `${path.replace(/^Tasks\/Tasks\/?/, '') || '.'}: ${id.replace(/^Annotation::/, '').replace(/\[(\w+)::.*\]$/, '[$1]')}`,
    )
    .sort();
}

/** Stand-ins for the values CloudFormation fills in, by variable, to run the service's own config parsing. */
const SAMPLE_VALUES: Record<string, string> = {
  TASKS_TABLE: 'tasks',
  SNS_TOPIC_ARN: `arn:aws:sns:${REGION}:123456789012:task-topic`,
  SNS_ALARM_TOPIC_ARN: `arn:aws:sns:${REGION}:123456789012:alarm-topic`,
  SFN_TASK_ARN: `arn:aws:states:${REGION}:123456789012:stateMachine:sub-tasks`,
  TASK_QUEUE_URL: `https://sqs.${REGION}.amazonaws.com/123456789012/task-queue`,
};
function sampleEnvironment(variables: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(variables).map(([name, value]) => {
      if (typeof value === 'string') return [name, value];
      expect(SAMPLE_VALUES, `a sample value for ${name}`).toHaveProperty(name);
      return [name, SAMPLE_VALUES[name]!];
    }),
  );
}

/** Every acknowledgment recorded under `scope`, with its reason. */
function acknowledgments(scope: IConstruct): { path: string; id: string; reason: string }[] {
  return scope.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, unknown>).map(([id, reason]) => ({
          path: construct.node.path,
          id,
          reason: typeof reason === 'string' ? reason : JSON.stringify(reason),
        })),
      ),
  );
}

describe('the task service stack', () => {
  let stack: TasksStack;
  let template: Template;
  let resources: Resources;
  const logicalIdOf = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as never);

  beforeAll(() => {
    ({ stack, template } = synth());
    resources = template.toJSON().Resources as Resources;
  });

  test('the table: pk/sk, every index of src/aws/task-table-schema.ts, TTL, stream, PITR, deletion protection, on demand', () => {
    const [, table] = only(template.findResources('AWS::DynamoDB::Table') as Resources);
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.Properties).toMatchObject({
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
    });
    expect(TTL_ATTRIBUTE).toBe('expiresAt');
    const indexes = table.Properties!.GlobalSecondaryIndexes as { IndexName: string }[];
    expect(indexes.map((index) => index.IndexName).sort()).toEqual(ALL_INDEXES.map((index) => index.name).sort());
    for (const index of ALL_INDEXES) {
      expect(indexes).toContainEqual({
        IndexName: index.name,
        KeySchema: [
          { AttributeName: index.partitionKey, KeyType: 'HASH' },
          { AttributeName: index.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      });
      expect(table.Properties!.AttributeDefinitions).toContainEqual({ AttributeName: index.sortKey, AttributeType: index.sortKeyType });
    }
    expect(table.Properties!.AttributeDefinitions).toContainEqual({ AttributeName: 'subTaskIndex', AttributeType: 'N' });
  });

  test('two topics, encrypted with a rotated key CloudWatch may use, SSL only', () => {
    const topics = template.findResources('AWS::SNS::Topic') as Resources;
    expect(Object.keys(topics)).toEqual([logicalIdOf(stack.service.taskTopic), logicalIdOf(stack.service.alarmTopic)]);
    const keyId = logicalIdOf(stack.service.topicKey);
    for (const topic of Object.values(topics)) {
      expect(topic.Properties).toMatchObject({ KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    }
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
    template.resourcePropertiesCountIs(
      'AWS::SNS::TopicPolicy',
      {
        PolicyDocument: {
          Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
        },
      },
      2,
    );
  });

  test('the task queue: task-execute messages only, raw, a dead-letter queue after 10 receives, SSL only', () => {
    const queueId = logicalIdOf(stack.service.taskQueue);
    const dlqId = logicalIdOf(stack.service.deadLetterQueue);
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 10 },
      // Six times the worker's 5-minute timeout.
      VisibilityTimeout: 1800,
      SqsManagedSseEnabled: true,
    });
    template.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 14 * 24 * 3600, SqsManagedSseEnabled: true });
    const [, subscription] = only(template.findResources('AWS::SNS::Subscription') as Resources);
    expect(subscription.Properties).toEqual({
      Protocol: 'sqs',
      TopicArn: { Ref: logicalIdOf(stack.service.taskTopic) },
      Endpoint: { 'Fn::GetAtt': [queueId, 'Arn'] },
      RawMessageDelivery: true,
      FilterPolicy: { action: ['task-execute'] },
    });
    template.resourcePropertiesCountIs(
      'AWS::SQS::QueuePolicy',
      {
        PolicyDocument: {
          Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
        },
      },
      2,
    );
    // Only the task topic may send to the task queue.
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'sqs:SendMessage',
            Principal: { Service: 'sns.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': { Ref: logicalIdOf(stack.service.taskTopic) } } },
          }),
        ]),
      },
    });
  });

  test('the Lambda workers: Node 24 bundles of src/lambda/bootstrap.ts whose environment loadLambdaConfig accepts', () => {
    const workerId = logicalIdOf(stack.service.taskWorker);
    const runnerId = logicalIdOf(stack.service.subTaskRunner);
    const functions = template.findResources('AWS::Lambda::Function') as Resources;
    expect(Object.keys(functions).sort()).toEqual([runnerId, workerId].sort());
    const worker = functions[workerId]!.Properties!;
    const runner = functions[runnerId]!.Properties!;
    expect(worker).toMatchObject({ Handler: 'index.sqsHandler', Runtime: 'nodejs24.x', Timeout: 300 });
    expect(runner).toMatchObject({ Handler: 'index.subTaskRunner', Runtime: 'nodejs24.x', Timeout: 300 });
    // Both functions are one bundle.
    expect(worker.Code).toEqual(runner.Code);

    const stateMachineName = template.toJSON().Resources[logicalIdOf(stack.service.stateMachine)].Properties.StateMachineName;
    for (const fn of [worker, runner]) {
      const variables = fn.Environment.Variables as Record<string, unknown>;
      expect(variables).toMatchObject({
        TASKS_TABLE: { Ref: logicalIdOf(stack.service.table) },
        SNS_TOPIC_ARN: { Ref: logicalIdOf(stack.service.taskTopic) },
        SNS_ALARM_TOPIC_ARN: { Ref: logicalIdOf(stack.service.alarmTopic) },
        SNS_BRIDGE: 'off',
      });
      // Built from the name, not a reference (the runner and the state machine name each other).
      expect(JSON.stringify(variables.SFN_TASK_ARN)).toContain(`:stateMachine:${stateMachineName}`);
      const config = loadLambdaConfig(sampleEnvironment(variables));
      expect(config.storage).toMatchObject({ mode: 'dynamodb', tableName: 'tasks' });
      expect(config.worker.stepFunctionsConcurrency).toBe(2);
    }
    expect(worker.Environment.Variables.TASK_QUEUE_URL).toEqual({ Ref: logicalIdOf(stack.service.taskQueue) });
    expect(loadLambdaConfig(sampleEnvironment(worker.Environment.Variables)).worker.queueUrl).toBe(SAMPLE_VALUES.TASK_QUEUE_URL);

    const [, mapping] = only(template.findResources('AWS::Lambda::EventSourceMapping') as Resources);
    expect(mapping.Properties).toMatchObject({
      FunctionName: { Ref: workerId },
      EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(stack.service.taskQueue), 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 10,
    });
    // Their own roles, no AWSLambdaBasicExecutionRole (logs:* on every log group): each writes its own log group.
    for (const fn of [worker, runner]) {
      const role = resources[fn.Role['Fn::GetAtt'][0]]!;
      expect(role.Properties!.ManagedPolicyArns).toBeUndefined();
      expect(fn.LoggingConfig.LogGroup).toBeDefined();
    }
  });

  test('notifications default to the service: no stream handler, no stream event source, no NOTIFICATIONS', () => {
    expect(stack.service.streamPublisher).toBeUndefined();
    expect(stack.service.streamDeadLetterQueue).toBeUndefined();
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping') as Resources);
    expect(mappings.map((mapping) => mapping.Properties!.StartingPosition)).toEqual([undefined]);
    template.resourceCountIs('AWS::SQS::Queue', 2);
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function') as Resources)) {
      expect(fn.Properties!.Environment.Variables).not.toHaveProperty('NOTIFICATIONS');
      expect(loadLambdaConfig(sampleEnvironment(fn.Properties!.Environment.Variables)).sns.notifications).toBe('service');
    }
    const [, taskDefinition] = only(template.findResources('AWS::ECS::TaskDefinition') as Resources);
    expect((taskDefinition.Properties!.ContainerDefinitions[0].Environment as { Name: string }[]).map((e) => e.Name)).not.toContain(
      'NOTIFICATIONS',
    );
  });

  test('the state machine: the shipped definition with the runner substituted for ${SubTaskRunnerArn}', () => {
    const machine = resources[logicalIdOf(stack.service.stateMachine)]!.Properties!;
    const shipped = readFileSync(repoPath('statemachine/sub-tasks.asl.json'), 'utf8');
    expect(machine.DefinitionString).toBe(shipped);
    expect(shipped).toContain('"Resource": "${SubTaskRunnerArn}"');
    expect(JSON.stringify(machine)).not.toContain('123456789012');
    expect(machine.DefinitionSubstitutions).toEqual({
      SubTaskRunnerArn: { 'Fn::GetAtt': [logicalIdOf(stack.service.subTaskRunner), 'Arn'] },
    });
    expect(machine).toMatchObject({
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false },
      TracingConfiguration: { Enabled: true },
    });
    // Every Task state of the definition names the substituted runner.
    const tasks = [...shipped.matchAll(/"Resource": "([^"]+)"/g)].map((match) => match[1]);
    expect(tasks).toEqual(['${SubTaskRunnerArn}', '${SubTaskRunnerArn}']);
    // The local interpreter loads the same file with a stand-in ARN (its Task states run in-process).
    expect(JSON.stringify(loadStateMachineDefinition())).not.toContain('${');
    expect(JSON.stringify(loadStateMachineDefinition({ SubTaskRunnerArn: 'arn:aws:lambda:eu-west-1:1:function:f' }))).toContain(
      '"Resource":"arn:aws:lambda:eu-west-1:1:function:f"',
    );
    expect(() => loadStateMachineDefinition({})).toThrow(/no value for \$\{SubTaskRunnerArn\}/);
  });

  test('the GraphQL server: Fargate behind an ALB that outlasts the WebSocket keep-alive, ready on /readyz, scaling on CPU', () => {
    template.hasResourceProperties('AWS::ECS::Service', { LaunchType: 'FARGATE', DesiredCount: 2 });
    template.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
    const [, loadBalancer] = only(template.findResources('AWS::ElasticLoadBalancingV2::LoadBalancer') as Resources);
    const attributes = Object.fromEntries(
      (loadBalancer.Properties!.LoadBalancerAttributes as { Key: string; Value: unknown }[]).map((a) => [a.Key, a.Value]),
    );
    expect(Number(attributes['idle_timeout.timeout_seconds'])).toBeGreaterThan(12);
    expect(attributes['idle_timeout.timeout_seconds']).toBe('120');
    expect(attributes['access_logs.s3.enabled']).toBe('true');
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      HealthCheckPath: '/readyz',
      Port: 80,
      TargetType: 'ip',
      TargetGroupAttributes: Match.arrayWith([{ Key: 'deregistration_delay.timeout_seconds', Value: '30' }]),
    });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 2, MaxCapacity: 10 });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: {
        PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
        TargetValue: 60,
      },
    });

    const [, taskDefinition] = only(template.findResources('AWS::ECS::TaskDefinition') as Resources);
    const [container] = taskDefinition.Properties!.ContainerDefinitions as Record<string, any>[];
    expect(container!.PortMappings).toEqual([{ ContainerPort: 4000, Protocol: 'tcp' }]);
    expect(container!.Secrets).toEqual([{ Name: 'JWT_SECRET', ValueFrom: { Ref: logicalIdOf(stack.service.jwtSecret!) } }]);
    const variables = Object.fromEntries((container!.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]));
    expect(variables).toMatchObject({
      HOST: '0.0.0.0',
      PORT: '4000',
      AWS_REGION: REGION,
      TASKS_TABLE: { Ref: logicalIdOf(stack.service.table) },
      SNS_TOPIC_ARN: { Ref: logicalIdOf(stack.service.taskTopic) },
      SNS_ALARM_TOPIC_ARN: { Ref: logicalIdOf(stack.service.alarmTopic) },
      SFN_TASK_ARN: { Ref: logicalIdOf(stack.service.stateMachine) },
      SNS_BRIDGE: 'sqs',
      BRIDGE_QUEUE_PREFIX: 'task-bridge-',
      TRUST_PROXY: 'true',
    });
    expect(variables).not.toHaveProperty('TASK_QUEUE_URL'); // the Lambda worker runs tasks
    const config = loadConfig({ ...sampleEnvironment(variables), JWT_SECRET: 's'.repeat(32) });
    expect(config).toMatchObject({ host: '0.0.0.0', port: 4000, trustProxy: true, storage: { mode: 'dynamodb', tableName: 'tasks' } });
    expect(config.sns).toMatchObject({ bridge: 'sqs', bridgeQueuePrefix: 'task-bridge-' });
  });

  test('alarms on the dead-letter queue, worker errors, failed executions and 5xx, all to the alarm topic', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm') as Resources).map((a) => a.Properties!);
    expect(alarms).toHaveLength(5);
    for (const alarm of alarms) {
      expect(alarm.AlarmActions).toEqual([{ Ref: logicalIdOf(stack.service.alarmTopic) }]);
      expect(alarm.TreatMissingData).toBe('notBreaching');
    }
    expect(alarms).toContainEqual(
      expect.objectContaining({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalIdOf(stack.service.deadLetterQueue), 'QueueName'] } }],
        Statistic: 'Maximum',
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
      }),
    );
    for (const fn of [stack.service.taskWorker, stack.service.subTaskRunner]) {
      expect(alarms).toContainEqual(
        expect.objectContaining({
          Namespace: 'AWS/Lambda',
          MetricName: 'Errors',
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalIdOf(fn) } }],
          Threshold: 0,
        }),
      );
    }
    expect(alarms).toContainEqual(
      expect.objectContaining({
        Namespace: 'AWS/States',
        MetricName: 'ExecutionsFailed',
        Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: logicalIdOf(stack.service.stateMachine) } }],
      }),
    );
    const http = alarms.find((alarm) => alarm.Metrics)!;
    expect(http.Threshold).toBe(5);
    expect(JSON.stringify(http.Metrics)).toContain('HTTPCode_ELB_5XX_Count');
    expect(JSON.stringify(http.Metrics)).toContain('HTTPCode_Target_5XX_Count');
  });

  test('IAM: every grant is scoped; "*" only where the action has no resource type', () => {
    const statements = statementsOf(template);
    expectScoped(statements);
    // No stream reads without stream mode (grantReadWriteData's GetRecords is on the table ARN, which names no stream).
    expect(statements.flatMap(({ statement }) => actionsOf(statement)).filter((action) => /^dynamodb:\w*Streams?$/.test(action))).toEqual(
      [],
    );
    expect(JSON.stringify(statements)).not.toContain('StreamArn');

    const roleOf = (policy: string) => (resources[policy]!.Properties!.Roles as { Ref: string }[])[0]!.Ref;
    const grants = (role: IConstruct) =>
      grantsOf(statements.filter(({ policy }) => roleOf(policy) === logicalIdOf(role)).map(({ statement }) => statement));
    const tableArn = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(stack.service.table), 'Arn'] });
    const serverRole = stack.service.service.taskDefinition.taskRole;
    const workerRole = stack.service.taskWorker.role!;
    const runnerRole = stack.service.subTaskRunner.role!;

    for (const role of [serverRole, workerRole, runnerRole]) {
      const granted = grants(role);
      for (const action of [
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:Query',
        'dynamodb:BatchWriteItem',
        'dynamodb:DescribeTable',
      ]) {
        expect(granted).toContainEqual({ action, resource: tableArn });
      }
      expect(granted).toContainEqual({ action: 'sns:Publish', resource: JSON.stringify({ Ref: logicalIdOf(stack.service.taskTopic) }) });
      expect(granted).toContainEqual({ action: 'sns:Publish', resource: JSON.stringify({ Ref: logicalIdOf(stack.service.alarmTopic) }) });
      const stop = granted.find((grant) => grant.action === 'states:StopExecution');
      expect(stop?.resource).toMatch(/:execution:[^"]+-sub-tasks:\*"\]\]\}$/);
    }
    const stateMachine = JSON.stringify({ Ref: logicalIdOf(stack.service.stateMachine) });
    expect(grants(workerRole)).toContainEqual({ action: 'states:StartExecution', resource: stateMachine });
    expect(grants(runnerRole).map((grant) => grant.action)).not.toContain('states:StartExecution');
    expect(grants(serverRole).map((grant) => grant.action)).not.toContain('states:StartExecution');
    expect(grants(workerRole)).toContainEqual({
      action: 'sqs:ReceiveMessage',
      resource: JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(stack.service.taskQueue), 'Arn'] }),
    });
    expect(grants(stack.service.stateMachine.role)).toContainEqual({
      action: 'lambda:InvokeFunction',
      resource: JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(stack.service.subTaskRunner), 'Arn'] }),
    });

    // The SQS bridge: the replica's own queues, by prefix; its subscription to the task topic.
    const bridgeQueues = JSON.stringify({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:sqs:${REGION}:`, { Ref: 'AWS::AccountId' }, ':task-bridge-*']],
    });
    const serverGrants = grants(serverRole);
    for (const action of [
      'sqs:CreateQueue',
      'sqs:DeleteQueue',
      'sqs:ReceiveMessage',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:SetQueueAttributes',
      'sqs:TagQueue',
      'sqs:ListQueueTags',
    ]) {
      expect(serverGrants).toContainEqual({ action, resource: bridgeQueues });
    }
    expect(serverGrants).toContainEqual({ action: 'sqs:ListQueues', resource: '"*"' });
    for (const action of ['sns:Subscribe', 'sns:Unsubscribe', 'sns:ListSubscriptionsByTopic']) {
      expect(serverGrants).toContainEqual({ action, resource: JSON.stringify({ Ref: logicalIdOf(stack.service.taskTopic) }) });
    }
    // Nothing on SQS beyond the bridge's prefix and ListQueues.
    expect(serverGrants.filter((grant) => grant.action.startsWith('sqs:') && grant.resource !== bridgeQueues)).toEqual([
      { action: 'sqs:ListQueues', resource: '"*"' },
    ]);
  });

  test('cdk-nag AwsSolutions: no unacknowledged error or warning, and every acknowledgment says why', () => {
    const { violations } = new AwsSolutionsChecks().validateScope(stack);
    expect(
      violations.map((violation) => `${violation.ruleName} at ${violation.violatingResources.map((r) => r.constructPath).join(', ')}`),
    ).toEqual([]);

    // CDK acknowledges some of its own CloudFormation-Validate findings; these are ours.
    // A new acknowledgment is a decision: this list changes with it.
    expect(acknowledgedFindings(stack)).toEqual([
      '.: AwsSolutions-IAM5[Action]', // kms:GenerateDataKey* of topic publishers
      '.: AwsSolutions-IAM5[Resource]', // the table's indexes
      '.: AwsSolutions-IAM5[Resource]', // the state machine's executions
      'AccessLogs: AwsSolutions-S1',
      'JwtSecret: AwsSolutions-SMG4',
      'Server/LB: AwsSolutions-EC23',
      'Server/TaskDef/ExecutionRole: AwsSolutions-IAM5[Resource]', // ecr:GetAuthorizationToken
      'Server/TaskDef/TaskRole: AwsSolutions-IAM5[Resource]', // sqs:ListQueues
      'Server/TaskDef/TaskRole: AwsSolutions-IAM5[Resource]', // the bridge queues' prefix
      'Server/TaskDef: AwsSolutions-ECS2',
      'SubTasks: AwsSolutions-IAM5[Resource]', // logs delivery and X-Ray
      'SubTasks: AwsSolutions-IAM5[Resource]', // the runner's versions
    ]);
    // The checks really check: a bare queue (no DLQ, no SSL policy) is reported.
    const bare = new Stack(new App(), 'Bare');
    new sqs.Queue(bare, 'Queue');
    expect(new AwsSolutionsChecks().validateScope(bare).violations.map((v) => v.ruleName)).toEqual(
      expect.arrayContaining(['AwsSolutions-SQS3', 'AwsSolutions-SQS4']),
    );
  });

  test('snapshot (asset hashes normalized)', () => {
    const normalized = JSON.parse(JSON.stringify(template.toJSON()).replace(/[0-9a-f]{64}/g, '<asset-hash>'));
    expect(normalized).toMatchSnapshot();
  });
});

describe('with an existing table', () => {
  let stack: TasksStack;
  let template: Template;

  beforeAll(() => {
    ({ stack, template } = synth({
      service: { existingTable: { tableArn: EXISTING_TABLE_ARN, tableStreamArn: EXISTING_STREAM_ARN } },
    }));
  });

  test('creates no table; grants name the given table and its indexes; the services use its name', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 0);
    expect(stack.service.table.tableStreamArn).toBe(EXISTING_STREAM_ARN);
    const dynamo = statementsOf(template).filter(({ statement }) => actionsOf(statement).some((action) => action.startsWith('dynamodb:')));
    expect(dynamo.length).toBeGreaterThan(0);
    for (const { statement } of dynamo) {
      expect(resourcesOf(statement)).toEqual([EXISTING_TABLE_ARN, `${EXISTING_TABLE_ARN}/index/*`]);
    }
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function') as Resources)) {
      expect(fn.Properties!.Environment.Variables.TASKS_TABLE).toBe('mbc-tasks');
    }
    const [, taskDefinition] = only(template.findResources('AWS::ECS::TaskDefinition') as Resources);
    expect(taskDefinition.Properties!.ContainerDefinitions[0].Environment).toContainEqual({ Name: 'TASKS_TABLE', Value: 'mbc-tasks' });
  });

  test('cdk-nag AwsSolutions: no unacknowledged finding', () => {
    const { violations } = new AwsSolutionsChecks().validateScope(stack);
    expect(violations.map((violation) => violation.ruleName)).toEqual([]);
  });
});

describe('stream mode (notifications: stream)', () => {
  let stack: TasksStack;
  let template: Template;
  let resources: Resources;
  let outdir: string;
  const logicalIdOf = (construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as never);

  beforeAll(() => {
    ({ stack, template, outdir } = synth({ service: { notifications: 'stream' } }));
    resources = template.toJSON().Resources as Resources;
  });

  test('the stream handler: a Node 24 bundle of src/lambda/stream-handler.ts whose environment the handler accepts', () => {
    const publisher = resources[logicalIdOf(stack.service.streamPublisher!)]!.Properties!;
    expect(publisher).toMatchObject({ Handler: 'index.streamHandler', Runtime: 'nodejs24.x', Architectures: ['arm64'] });
    expect(publisher.Code).not.toEqual(resources[logicalIdOf(stack.service.taskWorker)]!.Properties!.Code);
    // The bundle exports the handler Lambda calls.
    const bundle = readFileSync(join(outdir, `asset.${String(publisher.Code.S3Key).replace(/\.zip$/, '')}`, 'index.mjs'), 'utf8');
    expect(bundle).toMatch(/export\s*\{[^}]*\bas streamHandler\b|export\s*\{[^}]*\bstreamHandler\b/);

    const variables = publisher.Environment.Variables as Record<string, unknown>;
    expect(variables).toMatchObject({
      TASKS_TABLE: { Ref: logicalIdOf(stack.service.table) },
      SNS_TOPIC_ARN: { Ref: logicalIdOf(stack.service.taskTopic) },
      SNS_ALARM_TOPIC_ARN: { Ref: logicalIdOf(stack.service.alarmTopic) },
      NOTIFICATIONS: 'stream',
    });
    // AWS_REGION is set by the Lambda runtime.
    expect(() => createStreamHandlerFromEnv({ ...sampleEnvironment(variables), AWS_REGION: REGION })).not.toThrow();
  });

  test('its event source: the table stream from TRIM_HORIZON, partial batch responses, bisect, bounded retries, a dead-letter queue', () => {
    const publisherId = logicalIdOf(stack.service.streamPublisher!);
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping') as Resources).filter(
      (mapping) => mapping.Properties!.FunctionName.Ref === publisherId,
    );
    expect(mappings).toHaveLength(1);
    expect(mappings[0]!.Properties).toEqual({
      FunctionName: { Ref: publisherId },
      EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(stack.service.table), 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalIdOf(stack.service.streamDeadLetterQueue!), 'Arn'] } } },
    });
    template.hasResourceProperties('AWS::DynamoDB::Table', { StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' } });
    const dlq = resources[logicalIdOf(stack.service.streamDeadLetterQueue!)]!.Properties!;
    expect(dlq).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
  });

  test('NOTIFICATIONS=stream on the server and both workers, which still parse their configuration', () => {
    for (const fn of [stack.service.taskWorker, stack.service.subTaskRunner]) {
      const variables = resources[logicalIdOf(fn)]!.Properties!.Environment.Variables as Record<string, unknown>;
      expect(variables.NOTIFICATIONS).toBe('stream');
      expect(loadLambdaConfig(sampleEnvironment(variables)).sns.notifications).toBe('stream');
    }
    const [, taskDefinition] = only(template.findResources('AWS::ECS::TaskDefinition') as Resources);
    const variables = Object.fromEntries(
      (taskDefinition.Properties!.ContainerDefinitions[0].Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]),
    );
    expect(variables.NOTIFICATIONS).toBe('stream');
    expect(loadConfig({ ...sampleEnvironment(variables), JWT_SECRET: 's'.repeat(32) }).sns.notifications).toBe('stream');
  });

  test("the stream handler's grants: the table and indexes, its stream, both topics, its dead-letter queue; nothing else", () => {
    const statements = statementsOf(template);
    expectScoped(statements);
    const role = stack.service.streamPublisher!.role!;
    const own = statements.filter(({ policy }) => resources[policy]!.Properties!.Roles[0].Ref === logicalIdOf(role));
    const granted = grantsOf(own.map(({ statement }) => statement));
    const ref = (construct: IConstruct) => JSON.stringify({ Ref: logicalIdOf(construct) });
    const tableArn = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(stack.service.table), 'Arn'] });
    const streamArn = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(stack.service.table), 'StreamArn'] });
    const dlqArn = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(stack.service.streamDeadLetterQueue!), 'Arn'] });
    // grantReadWriteData: the list-key repair reads and conditionally updates tasks.
    for (const action of ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 'dynamodb:PutItem']) {
      expect(granted).toContainEqual({ action, resource: tableArn });
    }
    for (const action of ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator']) {
      expect(granted).toContainEqual({ action, resource: streamArn });
    }
    expect(granted).toContainEqual({ action: 'dynamodb:ListStreams', resource: '"*"' });
    expect(granted).toContainEqual({ action: 'sns:Publish', resource: ref(stack.service.taskTopic) });
    expect(granted).toContainEqual({ action: 'sns:Publish', resource: ref(stack.service.alarmTopic) });
    expect(granted).toContainEqual({ action: 'sqs:SendMessage', resource: dlqArn });
    // Every grant is on one of these, or is a write to its own log group.
    const allowed = new Set([tableArn, streamArn, dlqArn, ref(stack.service.taskTopic), ref(stack.service.alarmTopic), '"*"']);
    const others = granted.filter(
      ({ resource }) => !allowed.has(resource) && !resource.includes(`${logicalIdOf(stack.service.table)}","Arn"]},"/index/*"`),
    );
    for (const { action, resource } of others) {
      expect(action, resource).toMatch(/^logs:|^kms:/);
    }
    expect(granted.filter(({ resource }) => resource === '"*"').map(({ action }) => action)).toEqual(['dynamodb:ListStreams']);
    expect(granted.map(({ action }) => action).filter((action) => /^(states|lambda|sqs:Receive)/.test(action))).toEqual([]);
  });

  test('alarms: the stream dead-letter queue and the stream handler errors, to the alarm topic', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm') as Resources).map((a) => a.Properties!);
    expect(alarms).toHaveLength(7);
    expect(alarms).toContainEqual(
      expect.objectContaining({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalIdOf(stack.service.streamDeadLetterQueue!), 'QueueName'] } }],
        Threshold: 0,
        AlarmActions: [{ Ref: logicalIdOf(stack.service.alarmTopic) }],
      }),
    );
    expect(alarms).toContainEqual(
      expect.objectContaining({
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalIdOf(stack.service.streamPublisher!) } }],
        AlarmActions: [{ Ref: logicalIdOf(stack.service.alarmTopic) }],
      }),
    );
  });

  test('cdk-nag AwsSolutions: no unacknowledged finding; two more acknowledgments, each with its reason', () => {
    const { violations } = new AwsSolutionsChecks().validateScope(stack);
    expect(
      violations.map((violation) => `${violation.ruleName} at ${violation.violatingResources.map((r) => r.constructPath).join(', ')}`),
    ).toEqual([]);
    const acknowledged = acknowledgedFindings(stack);
    expect(acknowledged).toContain('StreamPublisherRole: AwsSolutions-IAM5[Resource]'); // dynamodb:ListStreams
    expect(acknowledged).toContain('StreamDeadLetterQueue: AwsSolutions-SQS3'); // a dead-letter queue itself
    expect(acknowledged).toHaveLength(14);
  });
});

describe('stream mode with an existing table', () => {
  test('reads the given stream; the grants name it; cdk-nag passes', () => {
    const { stack, template } = synth(
      { service: { notifications: 'stream', existingTable: { tableArn: EXISTING_TABLE_ARN, tableStreamArn: EXISTING_STREAM_ARN } } },
      { bundle: false },
    );
    const publisherId = stack.getLogicalId(stack.service.streamPublisher!.node.defaultChild as never);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: publisherId },
      EventSourceArn: EXISTING_STREAM_ARN,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    const reads = statementsOf(template).filter(({ statement }) => actionsOf(statement).includes('dynamodb:DescribeStream'));
    expect(reads.map(({ statement }) => resourcesOf(statement))).toEqual([[EXISTING_STREAM_ARN]]);
    expect(new AwsSolutionsChecks().validateScope(stack).violations.map((violation) => violation.ruleName)).toEqual([]);
  });

  test('without its stream ARN, synth fails and says what to set', () => {
    expect(() =>
      synth({ service: { notifications: 'stream', existingTable: { tableArn: EXISTING_TABLE_ARN } } }, { bundle: false }),
    ).toThrow(/notifications: 'stream'.*existingTable\.tableStreamArn/);
  });

  test('NOTIFICATIONS in environment must agree with the notifications prop', () => {
    expect(() => synth({ service: { environment: { NOTIFICATIONS: 'stream' } } }, { bundle: false })).toThrow(/set the notifications prop/);
  });
});
