import { execute, type ExecutionArgs, type ExecutionResult } from 'graphql';

/**
 * graphql-js subscribe's mapping of a source event stream to execution
 * results, as one object instead of its eight closures: every WebSocket
 * subscriber holds one for the subscription's life (the engine's
 * subscriptions yield nothing through it, their sinks get the events).
 */
export class ExecutedStream implements AsyncIterableIterator<ExecutionResult> {
  constructor(
    private readonly source: AsyncIterator<unknown>,
    /** Each event is executed with these, the event as root value. */
    private readonly args: ExecutionArgs,
  ) {}

  async next(): Promise<IteratorResult<ExecutionResult>> {
    return this.executed(await this.source.next());
  }

  async return(): Promise<IteratorResult<ExecutionResult>> {
    return this.source.return ? this.executed(await this.source.return()) : { value: undefined, done: true };
  }

  async throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
    if (this.source.throw) return this.executed(await this.source.throw(error));
    await this.returnIgnoringErrors();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private async executed(result: IteratorResult<unknown>): Promise<IteratorResult<ExecutionResult>> {
    if (result.done) return result;
    try {
      return { value: await execute({ ...this.args, rootValue: result.value }), done: false };
    } catch (error) {
      await this.returnIgnoringErrors();
      throw error;
    }
  }

  /** Closes the source after a failed execution, keeping that failure rather than one of closing. */
  private async returnIgnoringErrors(): Promise<void> {
    try {
      await this.source.return?.();
    } catch {
      // The execution's error is the one to report.
    }
  }
}
