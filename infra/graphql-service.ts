import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as ecsPatterns from 'aws-cdk-lib/aws-ecs-patterns';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';

/** The server's port inside the container. */
export const CONTAINER_PORT = 4000;

export interface GraphQLServiceProps {
  readonly vpc: ec2.IVpc;
  readonly image: ecs.ContainerImage;
  readonly table: dynamodb.ITable;
  readonly taskTopic: sns.ITopic;
  readonly alarmTopic: sns.ITopic;
  readonly stateMachine: sfn.IStateMachine;
  /** The state machine's executions (states:StopExecution). */
  readonly executionsArn: string;
  /** Environment shared with the workers (TASK_RETENTION_DAYS, SFN_MAX_CONCURRENCY, the caller's own). */
  readonly environment: Record<string, string>;
  readonly jwksUrl?: string;
  readonly jwtSecret?: secretsmanager.ISecret;
  readonly certificate?: acm.ICertificate;
  readonly bridgeQueuePrefix: string;
  readonly minCapacity: number;
  readonly maxCapacity: number;
  readonly targetCpuUtilizationPercent: number;
  readonly cpu: number;
  readonly memoryLimitMiB: number;
  readonly idleTimeout: Duration;
  readonly accessLogsBucket?: s3.IBucket;
  readonly logRetention: logs.RetentionDays;
}

export interface GraphQLService {
  readonly cluster: ecs.Cluster;
  readonly service: ecsPatterns.ApplicationLoadBalancedFargateService;
  readonly accessLogsBucket: s3.IBucket;
  /** `arn:…:sqs:<region>:<account>:<prefix>*`: the replicas' bridge queues. */
  readonly bridgeQueuesArn: string;
}

/**
 * The GraphQL server on ECS Fargate behind an ALB. Replicas are stateless:
 * each hears other replicas' changes through a queue of its own subscribed to
 * the task topic (SNS_BRIDGE=sqs, src/aws/sqs-bridge.ts), so the tasks run in
 * private subnets with nothing inbound but the load balancer.
 */
export function createGraphQLService(scope: Construct, props: GraphQLServiceProps): GraphQLService {
  const stack = Stack.of(scope);
  const cluster = new ecs.Cluster(scope, 'Cluster', {
    vpc: props.vpc,
    containerInsightsV2: ecs.ContainerInsights.ENABLED,
  });
  const logGroup = new logs.LogGroup(scope, 'ServerLogs', { retention: props.logRetention });

  const environment: Record<string, string> = {
    ...props.environment,
    HOST: '0.0.0.0',
    PORT: String(CONTAINER_PORT),
    AWS_REGION: stack.region,
    TASKS_TABLE: props.table.tableName,
    SNS_TOPIC_ARN: props.taskTopic.topicArn,
    SNS_ALARM_TOPIC_ARN: props.alarmTopic.topicArn,
    // Only to stop executions (cancelTask); the Lambda worker starts them.
    SFN_TASK_ARN: props.stateMachine.stateMachineArn,
    SNS_BRIDGE: 'sqs',
    BRIDGE_QUEUE_PREFIX: props.bridgeQueuePrefix,
    // Client addresses (createdIp, updatedIp) come from the ALB's X-Forwarded-For.
    TRUST_PROXY: 'true',
    ...(props.jwksUrl ? { JWKS_URL: props.jwksUrl } : {}),
  };
  const secrets: Record<string, ecs.Secret> = props.jwtSecret ? { JWT_SECRET: ecs.Secret.fromSecretsManager(props.jwtSecret) } : {};

  const service = new ecsPatterns.ApplicationLoadBalancedFargateService(scope, 'Server', {
    cluster,
    cpu: props.cpu,
    memoryLimitMiB: props.memoryLimitMiB,
    desiredCount: props.minCapacity,
    minHealthyPercent: 100,
    circuitBreaker: { rollback: true },
    healthCheckGracePeriod: Duration.seconds(60),
    publicLoadBalancer: true,
    // Above WS_KEEPALIVE_MS (12 s), so an idle WebSocket is kept by its pings, never cut by the ALB.
    idleTimeout: props.idleTimeout,
    ...(props.certificate
      ? {
          certificate: props.certificate,
          protocol: elbv2.ApplicationProtocol.HTTPS,
          redirectHTTP: true,
          sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
        }
      : { protocol: elbv2.ApplicationProtocol.HTTP }),
    taskImageOptions: {
      image: props.image,
      containerPort: CONTAINER_PORT,
      environment,
      secrets,
      logDriver: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'server' }),
    },
  });
  service.targetGroup.configureHealthCheck({
    path: '/readyz',
    healthyHttpCodes: '200',
    interval: Duration.seconds(15),
    timeout: Duration.seconds(5),
    healthyThresholdCount: 2,
    unhealthyThresholdCount: 3,
  });
  // A replica's shutdown closes its WebSockets within SHUTDOWN_GRACE_MS (10 s); the default 300 s drain only delays deploys.
  service.targetGroup.setAttribute('deregistration_delay.timeout_seconds', '30');
  service.loadBalancer.setAttribute('routing.http.drop_invalid_header_fields.enabled', 'true');

  const accessLogsBucket =
    props.accessLogsBucket ??
    new s3.Bucket(scope, 'AccessLogs', {
      // ALB access logs support SSE-S3 only.
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      lifecycleRules: [{ expiration: Duration.days(90) }],
    });
  service.loadBalancer.logAccessLogs(accessLogsBucket, 'alb');

  service.service
    .autoScaleTaskCount({ minCapacity: props.minCapacity, maxCapacity: props.maxCapacity })
    .scaleOnCpuUtilization('CpuScaling', {
      targetUtilizationPercent: props.targetCpuUtilizationPercent,
      // Scaling in closes WebSockets (clients reconnect and resume): do it slowly.
      scaleInCooldown: Duration.minutes(5),
      scaleOutCooldown: Duration.minutes(1),
    });

  const role = service.taskDefinition.taskRole;
  props.table.grantReadWriteData(role);
  props.taskTopic.grantPublish(role);
  props.alarmTopic.grantPublish(role);
  iam.Grant.addToPrincipal({ grantee: role, actions: ['states:StopExecution'], resourceArns: [props.executionsArn] });
  const bridgeQueuesArn = stack.formatArn({
    service: 'sqs',
    resource: `${props.bridgeQueuePrefix}*`,
    arnFormat: ArnFormat.NO_RESOURCE_NAME,
  });
  grantBridge(role, props.taskTopic, bridgeQueuesArn);

  return { cluster, service, accessLogsBucket, bridgeQueuesArn };
}

/**
 * What the SQS bridge does: each replica creates a queue named
 * `<prefix><ULID>`, sets its policy, subscribes it to the task topic, tags it
 * (heartbeat), long-polls it, deletes it on shutdown, and sweeps queues of
 * dead replicas (list by prefix, read their tags, unsubscribe, delete).
 */
function grantBridge(role: iam.IGrantable, taskTopic: sns.ITopic, bridgeQueues: string): void {
  iam.Grant.addToPrincipal({
    grantee: role,
    actions: [
      'sqs:CreateQueue',
      'sqs:DeleteQueue',
      'sqs:ReceiveMessage',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:SetQueueAttributes',
      'sqs:TagQueue',
      'sqs:ListQueueTags',
    ],
    resourceArns: [bridgeQueues],
  });
  // ListQueues has no resource type: it can only be granted on "*" (the sweep filters by prefix).
  iam.Grant.addToPrincipal({ grantee: role, actions: ['sqs:ListQueues'], resourceArns: ['*'] });
  iam.Grant.addToPrincipal({
    grantee: role,
    actions: ['sns:Subscribe', 'sns:Unsubscribe', 'sns:ListSubscriptionsByTopic'],
    resourceArns: [taskTopic.topicArn],
  });
}
