import { Duration, IgnoreMode, Names } from 'aws-cdk-lib';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as ecsPatterns from 'aws-cdk-lib/aws-ecs-patterns';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { createAlarms } from './alarms.js';
import { createGraphQLService } from './graphql-service.js';
import { createMessaging } from './messaging.js';
import { acknowledgeFindings } from './nag-suppressions.js';
import { REPO_ROOT, repoPath } from './paths.js';
import { createStreamPublisher } from './stream-publisher.js';
import { adoptTaskTable, createTaskTable, type ExistingTaskTable } from './task-table.js';
import { createWorkers } from './workers.js';

export type { ExistingTaskTable } from './task-table.js';

export interface TaskGraphQLServiceProps {
  /**
   * Use this table instead of creating one, e.g. the table of an
   * @mbc-cqrs-serverless/task deployment. It must have the service's indexes
   * (see "Table and indexes" in the README) and TTL on `expiresAt`.
   * @default a new table: pk/sk, every index, TTL, stream, PITR, deletion protection
   */
  readonly existingTable?: ExistingTaskTable;
  /**
   * Who publishes task changes to the topics (NOTIFICATIONS). `service`: the
   * server and the workers, each for its own writes. `stream`: a Lambda on the
   * table's stream (src/lambda/stream-handler.ts), which also hears other
   * writers (the original package, migrations, console edits) and repairs
   * list-index attributes they leave stale; the server and the workers get
   * NOTIFICATIONS=stream and publish no changes themselves. An adopted table
   * then needs `existingTable.tableStreamArn` (a stream with new and old images).
   * @default 'service'
   */
  readonly notifications?: 'service' | 'stream';
  /**
   * The VPC of the Fargate service.
   * @default a new VPC: 2 AZs, 1 NAT gateway, flow logs to CloudWatch
   */
  readonly vpc?: ec2.IVpc;
  /**
   * The server's image.
   * @default built from infra/Dockerfile with the repository as context (needs Docker at deploy, not at synth)
   */
  readonly image?: ecs.ContainerImage;
  /**
   * Verify RS256/ES256 tokens against this JWKS (JWKS_URL), e.g. a Cognito user pool's.
   * @default none: tokens are HS256 with `jwtSecret`
   */
  readonly jwksUrl?: string;
  /**
   * The HS256 secret (JWT_SECRET, at least 32 characters), when `jwksUrl` is not set.
   * @default a generated Secrets Manager secret (without `jwksUrl`)
   */
  readonly jwtSecret?: secretsmanager.ISecret;
  /**
   * The ALB's certificate: HTTPS on 443 and HTTP redirected to it.
   * @default none: plain HTTP on port 80 (tokens travel in clear; put TLS in front)
   */
  readonly certificate?: acm.ICertificate;
  /**
   * Name prefix of the queue each replica creates for its SQS bridge (BRIDGE_QUEUE_PREFIX); the task role may manage only these.
   * @default 'task-bridge-'
   */
  readonly bridgeQueuePrefix?: string;
  /**
   * Fewest server replicas (also the initial count).
   * @default 2
   */
  readonly minCapacity?: number;
  /**
   * Most server replicas.
   * @default 10
   */
  readonly maxCapacity?: number;
  /**
   * Average CPU the scaling policy keeps the replicas at.
   * @default 60
   */
  readonly targetCpuUtilizationPercent?: number;
  /**
   * Fargate CPU units per replica.
   * @default 512
   */
  readonly cpu?: number;
  /**
   * Fargate memory per replica, MiB.
   * @default 1024
   */
  readonly memoryLimitMiB?: number;
  /**
   * The ALB's idle timeout; keep it above WS_KEEPALIVE_MS (12 s) so pings hold idle WebSockets open.
   * @default Duration.seconds(120)
   */
  readonly idleTimeout?: Duration;
  /**
   * 5xx answers per five minutes (ALB and server together) that raise the alarm.
   * @default 5
   */
  readonly http5xxAlarmThreshold?: number;
  /**
   * TASK_RETENTION_DAYS: terminal tasks expire (DynamoDB TTL) this many days out.
   * @default unset: tasks are kept
   */
  readonly retentionDays?: number;
  /**
   * SFN_MAX_CONCURRENCY: sub-tasks run at once per Step Functions task.
   * @default 2
   */
  readonly subTaskConcurrency?: number;
  /**
   * More environment for the server and the Lambda workers (LOG_LEVEL, JWT_ISSUER, GRAPHIQL, HANDLERS_MODULE, …).
   * Settings this construct wires (table, topics, state machine, queue) win.
   * @default {}
   */
  readonly environment?: Record<string, string>;
  /**
   * The module bundled into both Lambda workers; it must export `sqsHandler`
   * and `subTaskRunner`. The default registers handlers from HANDLERS_MODULE,
   * which a bundle cannot contain: to run your own task types on Lambda, point
   * this at a module that builds them with `createLambdaHandlers(process.env,
   * { handlers, subTaskHandlers })` from src/lambda/bootstrap.ts.
   * @default src/lambda/bootstrap.ts
   */
  readonly lambdaEntry?: string;
  /**
   * Timeout of each Lambda worker (the task queue's visibility is six times it).
   * @default Duration.minutes(5)
   */
  readonly workerTimeout?: Duration;
  /**
   * Memory of each Lambda worker, MB.
   * @default 1024
   */
  readonly workerMemorySize?: number;
  /**
   * Task-execute messages per worker invocation (run concurrently).
   * @default 10
   */
  readonly workerBatchSize?: number;
  /**
   * Receives of a task-execute message before it goes to the dead-letter
   * queue; every retry and every "leased elsewhere" redelivery is one, so keep
   * it well above your largest `maxAttempts`.
   * @default 10
   */
  readonly maxReceiveCount?: number;
  /**
   * The state machine's name; fixed, because the sub-task runner's SFN_TASK_ARN is built from it.
   * @default derived from this construct's path (unique in the account and region per stack)
   */
  readonly stateMachineName?: string;
  /**
   * Where the ALB writes access logs.
   * @default a new bucket (SSE-S3, SSL only, 90-day expiry)
   */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * Retention of every log group this construct creates.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The task service on AWS: the DynamoDB table, the task and alarm topics, the
 * task queue and its dead-letter queue, the Lambda workers, the sub-task state
 * machine, the GraphQL server on Fargate behind an ALB, and alarms; in stream
 * mode, the stream handler and its dead-letter queue. Every
 * component gets only the permissions its code uses.
 *
 * The stack needs a region (ALB access logs are delivered by a per-region
 * principal); the account may stay unresolved. The cdk-nag (AwsSolutions)
 * findings it creates on purpose are acknowledged with their reasons
 * (infra/nag-suppressions.ts).
 */
export class TaskGraphQLService extends Construct {
  readonly table: dynamodb.ITable;
  readonly topicKey: kms.IKey;
  readonly taskTopic: sns.ITopic;
  readonly alarmTopic: sns.ITopic;
  readonly taskQueue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  readonly taskWorker: nodejs.NodejsFunction;
  readonly subTaskRunner: nodejs.NodejsFunction;
  /** The stream handler, with `notifications: 'stream'` only. */
  readonly streamPublisher?: nodejs.NodejsFunction;
  /** The stream event source's on-failure destination, with `notifications: 'stream'` only. */
  readonly streamDeadLetterQueue?: sqs.IQueue;
  readonly stateMachine: sfn.StateMachine;
  readonly vpc: ec2.IVpc;
  readonly cluster: ecs.Cluster;
  readonly service: ecsPatterns.ApplicationLoadBalancedFargateService;
  readonly accessLogsBucket: s3.IBucket;
  /** The HS256 secret, unless `jwksUrl` is set. */
  readonly jwtSecret?: secretsmanager.ISecret;
  readonly alarms: readonly cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: TaskGraphQLServiceProps = {}) {
    super(scope, id);
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const workerTimeout = props.workerTimeout ?? Duration.minutes(5);
    const notifications = props.notifications ?? 'service';
    const requested = props.environment?.NOTIFICATIONS;
    if (requested !== undefined && requested.toLowerCase() !== notifications) {
      // NOTIFICATIONS=stream without the stream handler would publish nothing; the other way, everything twice.
      throw new Error(
        `environment.NOTIFICATIONS is "${requested}" but notifications is '${notifications}': set the notifications prop instead`,
      );
    }
    const environment: Record<string, string> = {
      ...props.environment,
      SFN_MAX_CONCURRENCY: String(props.subTaskConcurrency ?? 2),
      ...(props.retentionDays === undefined ? {} : { TASK_RETENTION_DAYS: String(props.retentionDays) }),
      ...(notifications === 'stream' ? { NOTIFICATIONS: 'stream' } : {}),
    };

    this.table = props.existingTable ? adoptTaskTable(this, 'Table', props.existingTable) : createTaskTable(this, 'Table');
    if (notifications === 'stream' && !this.table.tableStreamArn) {
      throw new Error(
        "notifications: 'stream' reads the table's stream: set existingTable.tableStreamArn (a stream with NEW_AND_OLD_IMAGES) or let the construct create the table",
      );
    }

    const messaging = createMessaging(this, {
      maxReceiveCount: props.maxReceiveCount ?? 10,
      // AWS's advice for a Lambda event source: six times the function's timeout.
      visibilityTimeout: Duration.seconds(workerTimeout.toSeconds() * 6),
    });
    this.topicKey = messaging.topicKey;
    this.taskTopic = messaging.taskTopic;
    this.alarmTopic = messaging.alarmTopic;
    this.taskQueue = messaging.taskQueue;
    this.deadLetterQueue = messaging.deadLetterQueue;

    const workers = createWorkers(this, {
      table: this.table,
      taskTopic: this.taskTopic,
      alarmTopic: this.alarmTopic,
      taskQueue: this.taskQueue,
      entry: props.lambdaEntry ?? repoPath('src/lambda/bootstrap.ts'),
      environment,
      timeout: workerTimeout,
      memorySize: props.workerMemorySize ?? 1024,
      batchSize: props.workerBatchSize ?? 10,
      stateMachineName: props.stateMachineName ?? `${Names.uniqueResourceName(this, { maxLength: 70, separator: '-' })}-sub-tasks`,
      logRetention,
    });
    this.taskWorker = workers.taskWorker;
    this.subTaskRunner = workers.subTaskRunner;
    this.stateMachine = workers.stateMachine;

    if (notifications === 'stream') {
      const stream = createStreamPublisher(this, {
        table: this.table,
        taskTopic: this.taskTopic,
        alarmTopic: this.alarmTopic,
        environment,
        logRetention,
      });
      this.streamPublisher = stream.streamPublisher;
      this.streamDeadLetterQueue = stream.streamDeadLetterQueue;
    }

    this.vpc = props.vpc ?? defaultVpc(this, logRetention);
    this.jwtSecret =
      props.jwtSecret ??
      (props.jwksUrl
        ? undefined
        : new secretsmanager.Secret(this, 'JwtSecret', {
            description: 'HS256 secret of the task GraphQL service (JWT_SECRET)',
            generateSecretString: { passwordLength: 64, excludePunctuation: true },
          }));
    const server = createGraphQLService(this, {
      vpc: this.vpc,
      image: props.image ?? repositoryImage(),
      table: this.table,
      taskTopic: this.taskTopic,
      alarmTopic: this.alarmTopic,
      stateMachine: this.stateMachine,
      executionsArn: workers.executionsArn,
      environment,
      jwksUrl: props.jwksUrl,
      jwtSecret: this.jwtSecret,
      certificate: props.certificate,
      bridgeQueuePrefix: props.bridgeQueuePrefix ?? 'task-bridge-',
      minCapacity: props.minCapacity ?? 2,
      maxCapacity: props.maxCapacity ?? 10,
      targetCpuUtilizationPercent: props.targetCpuUtilizationPercent ?? 60,
      cpu: props.cpu ?? 512,
      memoryLimitMiB: props.memoryLimitMiB ?? 1024,
      idleTimeout: props.idleTimeout ?? Duration.seconds(120),
      accessLogsBucket: props.accessLogsBucket,
      logRetention,
    });
    this.cluster = server.cluster;
    this.service = server.service;
    this.accessLogsBucket = server.accessLogsBucket;

    this.alarms = createAlarms(this, {
      alarmTopic: this.alarmTopic,
      deadLetterQueue: this.deadLetterQueue,
      functions: [this.taskWorker, this.subTaskRunner, ...(this.streamPublisher ? [this.streamPublisher] : [])],
      streamDeadLetterQueue: this.streamDeadLetterQueue,
      stateMachine: this.stateMachine,
      loadBalancer: this.service.loadBalancer,
      http5xxThreshold: props.http5xxAlarmThreshold ?? 5,
    });

    acknowledgeFindings({
      root: this,
      table: this.table,
      executionsArn: workers.executionsArn,
      stateMachine: this.stateMachine,
      subTaskRunner: this.subTaskRunner,
      streamPublisher: this.streamPublisher,
      streamDeadLetterQueue: this.streamDeadLetterQueue,
      taskDefinition: this.service.taskDefinition,
      service: this.service,
      bridgeQueuesArn: server.bridgeQueuesArn,
      jwtSecret: props.jwtSecret ? undefined : this.jwtSecret,
      accessLogsBucket: props.accessLogsBucket ? undefined : this.accessLogsBucket,
    });
  }
}

function defaultVpc(scope: Construct, logRetention: logs.RetentionDays): ec2.Vpc {
  const flowLogs = new logs.LogGroup(scope, 'VpcFlowLogs', { retention: logRetention });
  return new ec2.Vpc(scope, 'Vpc', {
    maxAzs: 2,
    natGateways: 1,
    flowLogs: { all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) } },
  });
}

/** The server image from infra/Dockerfile; the context is the repository minus everything the build does not read. */
function repositoryImage(): ecs.ContainerImage {
  return ecs.ContainerImage.fromAsset(REPO_ROOT, {
    file: 'infra/Dockerfile',
    platform: Platform.LINUX_AMD64,
    ignoreMode: IgnoreMode.DOCKER,
    exclude: [
      '*',
      '!package.json',
      '!package-lock.json',
      '!tsconfig.json',
      '!tsconfig.build.json',
      '!schema.graphql',
      '!src',
      '!resolvers',
      '!scripts',
      '!types',
      '!dashboard',
      '!statemachine',
      '!infra/Dockerfile',
    ],
  });
}
