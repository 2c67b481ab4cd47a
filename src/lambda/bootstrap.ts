/**
 * The Lambda entry points, built from the environment once per container:
 *
 *   sqsHandler     — event source mapping on the task-execute queue (TASK_QUEUE_URL's queue),
 *                    created with FunctionResponseTypes ["ReportBatchItemFailures"];
 *   subTaskRunner  — the function the state machine's Task states invoke
 *                    (statemachine/sub-tasks.asl.json, Resource of RunSubTask and SettleParent).
 *
 * Both share the server's composition (src/services.ts) and configuration
 * (src/config.ts): TASKS_TABLE (+ AWS_REGION), SNS_TOPIC_ARN, SFN_TASK_ARN,
 * HANDLERS_MODULE, TASK_LEASE_MS, … Handlers come from HANDLERS_MODULE.
 */
import { randomBytes } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { createServices, type ServiceOptions, type Services } from '../services.js';
import type { SubTaskEvent } from '../worker/sub-task-executions.js';
import { loadHandlersModule } from '../worker/load-handlers.js';
import { createSqsHandler, type SqsBatchResponse, type SqsEvent } from './sqs-handler.js';
import { createSubTaskRunnerHandler } from './sub-task-runner.js';

type Env = Record<string, string | undefined>;

/**
 * The configuration of the Lambda handlers. They verify no tokens, but
 * loadConfig insists on JWT settings with DynamoDB, so an unused random
 * secret stands in when neither JWT_SECRET nor JWKS_URL is set.
 */
export function loadLambdaConfig(env: Env = process.env): Readonly<Config> {
  const config = loadConfig(env.JWT_SECRET || env.JWKS_URL ? env : { ...env, JWT_SECRET: randomBytes(32).toString('hex') });
  if (config.storage.mode !== 'dynamodb') throw new ConfigError('The Lambda handlers need TASKS_TABLE (DynamoDB)');
  // Without them the worker would run as the single embedded process: local queue, local state machine.
  if (!config.sns.topicArn) throw new ConfigError('The Lambda handlers need SNS_TOPIC_ARN');
  if (!config.worker.stateMachineArn) throw new ConfigError('The Lambda handlers need SFN_TASK_ARN');
  return config;
}

export interface LambdaHandlers {
  services: Services;
  sqsHandler(event: SqsEvent): Promise<SqsBatchResponse>;
  subTaskRunner(event: SubTaskEvent): Promise<unknown>;
}

export interface LambdaOptions extends ServiceOptions {
  /** Sets the retry delay on records to retry (default: a new client). */
  sqs?: SQSClient;
}

/** Builds the services and both handlers; each invocation sends pending notifications before it returns. */
export async function createLambdaHandlers(env: Env = process.env, options: LambdaOptions = {}): Promise<LambdaHandlers> {
  const config = loadLambdaConfig(env);
  const loaded = config.worker.handlersModule ? await loadHandlersModule(config.worker.handlersModule) : undefined;
  const services = await createServices(config, {
    ...options,
    handlers: { ...loaded?.handlers, ...options.handlers },
    subTaskHandlers: { ...loaded?.subTaskHandlers, ...options.subTaskHandlers },
  });
  const sqs = options.sqs ?? new SQSClient({ region: config.sns.region });
  const handleSqs = createSqsHandler(services.worker.dispatcher, {
    logger: services.logger,
    sqs,
    queueUrl: config.worker.queueUrl,
  });
  const handleSubTask = createSubTaskRunnerHandler(services.worker.stepFunctions);
  const flushed =
    <E, R>(handler: (event: E) => Promise<R>) =>
    async (event: E): Promise<R> => {
      try {
        return await handler(event);
      } finally {
        await services.flush().catch((error) => services.logger.warn('sending pending notifications failed', error));
      }
    };
  return { services, sqsHandler: flushed(handleSqs), subTaskRunner: flushed(handleSubTask) };
}

let handlers: Promise<LambdaHandlers> | undefined;

/** Once per container; a failed start is tried again by the next invocation. */
function lambdaHandlers(): Promise<LambdaHandlers> {
  handlers ??= createLambdaHandlers().catch((error: unknown) => {
    handlers = undefined;
    throw error;
  });
  return handlers;
}

/** Handler of the SQS event source mapping (ReportBatchItemFailures on). */
export const sqsHandler = async (event: SqsEvent): Promise<SqsBatchResponse> => (await lambdaHandlers()).sqsHandler(event);

/** Handler of the state machine's Task states. */
export const subTaskRunner = async (event: SubTaskEvent): Promise<unknown> => (await lambdaHandlers()).subTaskRunner(event);
