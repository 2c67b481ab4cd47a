import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The input of one execution of the shipped state machine: indexes, never inputs. */
export interface ExecutionInput {
  parentId: string;
  indexes: number[];
  maxConcurrency: number;
}

/** What the state machine's Task states send to the sub-task runner. */
export type SubTaskEvent = { action: 'run-sub-task'; parentId: string; index: number } | { action: 'settle-parent'; parentId: string };

/** Starts and stops executions of the state machine: AWS Step Functions, or the local interpreter. */
export interface SubTaskExecutions {
  /** Idempotent: starting a name that is already running does not start a second execution. */
  start(name: string, input: ExecutionInput): Promise<void>;
  stop(name: string, cause: string): Promise<void>;
  close?(): Promise<void>;
}

/**
 * The execution name of a Step Functions task, derived from its key so a
 * retried start names the same execution (at most 80 characters of [A-Za-z0-9_-]).
 */
export function executionName(parentId: string): string {
  const code = parentId.split('#')[3] ?? '';
  return `${code}-${createHash('sha256').update(parentId).digest('hex').slice(0, 32)}`;
}

/**
 * The definition's substitution variables (`${Name}` in the ASL file), filled
 * by CloudFormation (definitionSubstitutions in infra/) on AWS.
 */
export const STATE_MACHINE_SUBSTITUTIONS = {
  /** The Lambda function of the Task states RunSubTask and SettleParent. */
  subTaskRunnerArn: 'SubTaskRunnerArn',
} as const;

/**
 * What the local interpreter gets instead: it never calls the ARN (its Task
 * states run local handlers, keyed by state name), but validates its shape.
 */
const LOCAL_SUBSTITUTIONS: Readonly<Record<string, string>> = {
  [STATE_MACHINE_SUBSTITUTIONS.subTaskRunnerArn]: 'arn:aws:lambda:us-east-1:123456789012:function:task-sub-task-runner',
};

/**
 * The shipped Amazon States Language definition, from the source tree (tsx,
 * vitest) or the build (dist/src/worker), with its `${Name}` variables replaced.
 */
export function loadStateMachineDefinition(substitutions: Readonly<Record<string, string>> = LOCAL_SUBSTITUTIONS): Record<string, unknown> {
  const layouts = ['../../statemachine/sub-tasks.asl.json', '../../../statemachine/sub-tasks.asl.json'];
  for (const path of layouts) {
    let text: string;
    try {
      text = readFileSync(new URL(path, import.meta.url), 'utf8');
    } catch {
      continue; // the other layout
    }
    // Substituted in the text, like CloudFormation does; JSON-escaped so a value cannot break the document.
    const substituted = text.replace(/\$\{(\w+)\}/g, (variable, name: string) => {
      const value = substitutions[name];
      if (value === undefined) throw new Error(`statemachine/sub-tasks.asl.json: no value for ${variable}`);
      return JSON.stringify(value).slice(1, -1);
    });
    return JSON.parse(substituted) as Record<string, unknown>;
  }
  throw new Error('statemachine/sub-tasks.asl.json is missing');
}
