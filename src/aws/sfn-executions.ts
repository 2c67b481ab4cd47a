import {
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  StartExecutionCommand,
  StopExecutionCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import type { Logger } from '../logger.js';
import type { ExecutionInput, SubTaskExecutions } from '../worker/sub-task-executions.js';

/** The execution ARN of a named execution of a state machine. */
export const executionArn = (stateMachineArn: string, name: string) =>
  `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;

/**
 * AWS Step Functions executions of the shipped state machine (SFN_TASK_ARN).
 * Starting is idempotent by name: a retried start of a running execution with
 * the same input is accepted by Step Functions, and an "already exists" for a
 * finished one means there is nothing to start.
 */
export class AwsExecutions implements SubTaskExecutions {
  constructor(
    private readonly sfn: SFNClient,
    private readonly stateMachineArn: string,
    private readonly logger: Logger,
  ) {}

  async start(name: string, input: ExecutionInput): Promise<void> {
    try {
      await this.sfn.send(new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name, input: JSON.stringify(input) }));
    } catch (error) {
      if (!(error instanceof ExecutionAlreadyExists || (error as Error).name === 'ExecutionAlreadyExists')) throw error;
      this.logger.info('execution already exists', { name });
    }
  }

  async stop(name: string, cause: string): Promise<void> {
    try {
      await this.sfn.send(
        new StopExecutionCommand({ executionArn: executionArn(this.stateMachineArn, name), cause, error: 'TaskCancelled' }),
      );
    } catch (error) {
      if (!(error instanceof ExecutionDoesNotExist || (error as Error).name === 'ExecutionDoesNotExist')) throw error;
    }
  }
}
