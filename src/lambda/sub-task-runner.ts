import type { StepFunctionTasks } from '../worker/step-function-tasks.js';
import type { SubTaskEvent } from '../worker/sub-task-executions.js';

/** The event is not one the state machine sends; retrying it cannot help. */
export class InvalidSubTaskEventError extends Error {
  override name = 'InvalidSubTaskEvent';
}

/** Checks what a Task state of statemachine/sub-tasks.asl.json sends. */
export function parseSubTaskEvent(event: unknown): SubTaskEvent {
  const value = event as Record<string, unknown> | null;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidSubTaskEventError('the event is not an object');
  }
  const { action, parentId, index } = value;
  if (typeof parentId !== 'string' || parentId === '') throw new InvalidSubTaskEventError('parentId must be a task id');
  if (action === 'settle-parent') return { action, parentId };
  if (action === 'run-sub-task') {
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0) {
      throw new InvalidSubTaskEventError('index must be an integer >= 0');
    }
    return { action, parentId, index };
  }
  throw new InvalidSubTaskEventError(`action must be "run-sub-task" or "settle-parent", got ${JSON.stringify(action)}`);
}

/**
 * The Lambda handler behind the state machine's Task states (RunSubTask in
 * the Map, then SettleParent). Errors propagate with their name as the Lambda
 * error type, which the state machine's Retry matches: `SubTaskBusy` (a live
 * worker holds the sub-task) is retried later; `InvalidSubTaskEvent` is not.
 */
export function createSubTaskRunnerHandler(stepFunctions: Pick<StepFunctionTasks, 'handle' | 'flush'>) {
  return async (event: SubTaskEvent): Promise<unknown> => {
    try {
      return await stepFunctions.handle(parseSubTaskEvent(event));
    } finally {
      // Counter changes wait for a window to be batched; a frozen container would hold them back.
      await stepFunctions.flush();
    }
  };
}
