import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The input of one execution of the shipped state machine: indexes, never inputs. */
export interface ExecutionInput {
  parentId: string;
  indexes: number[];
  maxConcurrency: number;
}

/** What the state machine's Task states send to the sub-task runner. */
export type SubTaskEvent =
  | { action: 'run-sub-task'; parentId: string; index: number }
  | { action: 'settle-parent'; parentId: string };

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

/** The shipped Amazon States Language definition, from the source tree (tsx, vitest) or the build (dist/src/worker). */
export function loadStateMachineDefinition(): Record<string, unknown> {
  const layouts = ['../../statemachine/sub-tasks.asl.json', '../../../statemachine/sub-tasks.asl.json'];
  for (const path of layouts) {
    let text: string;
    try {
      text = readFileSync(new URL(path, import.meta.url), 'utf8');
    } catch {
      continue; // the other layout
    }
    return JSON.parse(text) as Record<string, unknown>;
  }
  throw new Error('statemachine/sub-tasks.asl.json is missing');
}
