/**
 * A reason the service cannot start that the operator can fix (a port in use,
 * an unusable data directory): printed as one line, without a stack.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** Steps that undo what was started, run once, in reverse order (a later part may depend on an earlier one). */
export class Cleanup {
  private steps: (() => unknown)[] = [];

  push(step: () => unknown): void {
    this.steps.push(step);
  }

  /** Runs every step once; running it again does nothing. */
  run = async (): Promise<void> => {
    for (const step of this.steps.splice(0).reverse()) await step();
  };
}

/** Work started in the background that shutdown (or a Lambda invocation's end) must wait for. */
export class BackgroundWork {
  private readonly pending = new Set<Promise<unknown>>();

  track(work: Promise<unknown>): void {
    const settled = work.then(
      () => {},
      () => {},
    );
    this.pending.add(settled);
    void settled.finally(() => this.pending.delete(settled));
  }

  /** Resolves when everything tracked so far, and anything it started meanwhile, has settled. */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }
}
