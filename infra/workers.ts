import { readFileSync } from 'node:fs';
import { ArnFormat, type Duration, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { STATE_MACHINE_SUBSTITUTIONS } from '../src/worker/sub-task-executions.js';
import { repoPath } from './paths.js';

export interface WorkersProps {
  readonly table: dynamodb.ITable;
  readonly taskTopic: sns.ITopic;
  readonly alarmTopic: sns.ITopic;
  readonly taskQueue: sqs.IQueue;
  /** The module bundled into both functions; exports `sqsHandler` and `subTaskRunner`. */
  readonly entry: string;
  /** Environment shared with the server (TASK_RETENTION_DAYS, SFN_MAX_CONCURRENCY, the caller's own). */
  readonly environment: Record<string, string>;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly batchSize: number;
  readonly stateMachineName: string;
  readonly logRetention: logs.RetentionDays;
}

export interface Workers {
  readonly taskWorker: nodejs.NodejsFunction;
  readonly subTaskRunner: nodejs.NodejsFunction;
  readonly stateMachine: sfn.StateMachine;
  readonly stateMachineLogGroup: logs.LogGroup;
  /** `arn:…:execution:<name>:*`: what states:StopExecution is granted on (executions are named per task). */
  readonly executionsArn: string;
}

/**
 * The Lambda workers and the sub-task state machine:
 *
 *   taskWorker     SQS event source on the task queue (ReportBatchItemFailures); starts executions
 *   subTaskRunner  the Task states of statemachine/sub-tasks.asl.json (RunSubTask, SettleParent)
 *
 * Both are one esbuild bundle of `entry` (src/lambda/bootstrap.ts by default),
 * built at synth by the esbuild in node_modules: no Docker, no network. The
 * bundle carries the AWS SDK versions of the lockfile (the runtime's
 * preinstalled copy may be older) and leaves out dynalite (infra/lambda/no-dynalite.ts).
 */
export function createWorkers(scope: Construct, props: WorkersProps): Workers {
  const stack = Stack.of(scope);
  // The runner needs the state machine's ARN and the state machine the runner's: a
  // reference each way is a cycle, so the runner gets the ARN built from the fixed name.
  const stateMachineArn = stack.formatArn({
    service: 'states',
    resource: 'stateMachine',
    resourceName: props.stateMachineName,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  const executionsArn = stack.formatArn({
    service: 'states',
    resource: 'execution',
    resourceName: `${props.stateMachineName}:*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });

  const environment = {
    ...props.environment,
    TASKS_TABLE: props.table.tableName,
    SNS_TOPIC_ARN: props.taskTopic.topicArn,
    SNS_ALARM_TOPIC_ARN: props.alarmTopic.topicArn,
    SFN_TASK_ARN: stateMachineArn,
    // Functions serve no subscribers: nothing to bridge.
    SNS_BRIDGE: 'off',
    NODE_OPTIONS: '--enable-source-maps',
  };
  const worker = (id: string, handler: string, description: string, extra: Record<string, string> = {}) =>
    createBundledFunction(scope, id, {
      entry: props.entry,
      handler,
      description,
      environment: { ...environment, ...extra },
      timeout: props.timeout,
      memorySize: props.memorySize,
      logRetention: props.logRetention,
      table: props.table,
      topics: [props.taskTopic, props.alarmTopic],
    });

  const taskWorker = worker('TaskWorker', 'sqsHandler', 'Runs queued tasks (task-execute messages)', {
    // Where a retry's backoff is set as the message's visibility.
    TASK_QUEUE_URL: props.taskQueue.queueUrl,
  });
  taskWorker.addEventSource(new SqsEventSource(props.taskQueue, { batchSize: props.batchSize, reportBatchItemFailures: true }));
  const subTaskRunner = worker('SubTaskRunner', 'subTaskRunner', 'Runs one sub-task, or settles the parent, for the state machine');
  // Cancellation sweeps and FAIL_FAST stop executions, by the ARN built from their name.
  for (const grantee of [taskWorker, subTaskRunner]) {
    iam.Grant.addToPrincipal({ grantee, actions: ['states:StopExecution'], resourceArns: [executionsArn] });
  }

  const stateMachineLogGroup = new logs.LogGroup(scope, 'SubTasksLogs', { retention: props.logRetention });
  const stateMachine = new sfn.StateMachine(scope, 'SubTasks', {
    stateMachineName: props.stateMachineName,
    definitionBody: sfn.DefinitionBody.fromString(readFileSync(repoPath('statemachine/sub-tasks.asl.json'), 'utf8')),
    definitionSubstitutions: { [STATE_MACHINE_SUBSTITUTIONS.subTaskRunnerArn]: subTaskRunner.functionArn },
    // Inputs are { parentId, indexes }; results may carry task data, so execution data stays out of the logs.
    logs: { destination: stateMachineLogGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    tracingEnabled: true,
  });
  subTaskRunner.grantInvoke(stateMachine);
  stateMachine.grantStartExecution(taskWorker);

  return { taskWorker, subTaskRunner, stateMachine, stateMachineLogGroup, executionsArn };
}

export interface BundledFunctionProps {
  /** The module bundled (an absolute path). */
  readonly entry: string;
  /** The export of `entry` Lambda calls. */
  readonly handler: string;
  readonly description: string;
  readonly environment: Record<string, string>;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly logRetention: logs.RetentionDays;
  /** Read and written by the function (grantReadWriteData: the table and its indexes). */
  readonly table: dynamodb.ITable;
  /** Published to by the function. */
  readonly topics: readonly sns.ITopic[];
}

/**
 * A Node 24 (arm64) function: an ESM esbuild bundle of `entry`, built at synth
 * by the esbuild in node_modules, with its own log group and a role that may
 * write that group only, read and write the table, and publish to the topics.
 */
export function createBundledFunction(scope: Construct, id: string, props: BundledFunctionProps): nodejs.NodejsFunction {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, { retention: props.logRetention });
  // Its own role: write to its own log group only, instead of AWSLambdaBasicExecutionRole's logs:* on every group.
  const role = new iam.Role(scope, `${id}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
  logGroup.grantWrite(role);
  const fn = new nodejs.NodejsFunction(scope, id, {
    description: props.description,
    entry: props.entry,
    handler: props.handler,
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    timeout: props.timeout,
    memorySize: props.memorySize,
    role,
    logGroup,
    environment: props.environment,
    bundling: {
      format: nodejs.OutputFormat.ESM,
      target: 'node24',
      minify: true,
      // Class and function names stay readable in logs and stack traces.
      keepNames: true,
      sourceMap: true,
      externalModules: [],
      // CommonJS dependencies inside an ES module bundle call require().
      banner:
        "import { createRequire as topLevelCreateRequire } from 'node:module'; const require = topLevelCreateRequire(import.meta.url);",
      esbuildArgs: { '--alias:dynalite': repoPath('infra/lambda/no-dynalite.ts') },
    },
  });
  props.table.grantReadWriteData(fn);
  for (const topic of props.topics) topic.grantPublish(fn);
  return fn;
}
