import './promise-with-resolvers.js';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import type { Logger } from '../logger.js';
import type { ExecutionInput, SubTaskEvent, SubTaskExecutions } from './sub-task-executions.js';

/**
 * The shipped state machine run in-process by aws-local-stepfunctions, its Task
 * states resolved to the local sub-task runner: the same definition as on AWS,
 * no hand-written orchestration.
 */
export class LocalExecutions implements SubTaskExecutions {
  private readonly machine: StateMachine;
  private readonly running = new Map<string, { abort: () => void; result: Promise<unknown> }>();

  constructor(
    definition: Record<string, unknown>,
    private readonly handle: (event: SubTaskEvent) => Promise<unknown>,
    private readonly logger: Logger,
  ) {
    this.machine = new StateMachine(definition as unknown as StateMachineDefinition, {
      validationOptions: { checkArn: false },
    });
  }

  async start(name: string, input: ExecutionInput): Promise<void> {
    if (this.running.has(name)) return;
    const task = (event: unknown) => this.handle(event as SubTaskEvent) as Promise<never>;
    const execution = this.machine.run(input as never, {
      overrides: { taskResourceLocalHandlers: { RunSubTask: task, SettleParent: task } },
      noThrowOnAbort: true,
    });
    const result = execution.result
      .catch((error: unknown) => this.logger.error('local execution failed', { name }, error))
      .finally(() => this.running.delete(name));
    this.running.set(name, { abort: execution.abort, result });
  }

  async stop(name: string): Promise<void> {
    const execution = this.running.get(name);
    if (!execution) return;
    execution.abort();
    await execution.result;
  }

  /** Whether an execution of this name runs in this process. */
  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  async close(): Promise<void> {
    await Promise.all([...this.running.keys()].map((name) => this.stop(name)));
  }
}
