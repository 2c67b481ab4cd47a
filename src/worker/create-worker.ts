import { randomUUID } from 'node:crypto';
import type { WorkerConfig } from '../config.js';
import type { TaskEventBus } from '../live/task-event-bus.js';
import type { Logger } from '../logger.js';
import type { TaskPublisher } from '../tasks/publisher.js';
import type { TaskService } from '../tasks/task-service.js';
import type { TaskStore } from '../tasks/task-store.js';
import type { HandlerRegistry } from './handlers.js';
import { LocalExecutions } from './local-executions.js';
import { LocalTaskQueue } from './local-queue.js';
import { StepFunctionTasks } from './step-function-tasks.js';
import { loadStateMachineDefinition, type SubTaskExecutions } from './sub-task-executions.js';
import { TaskDispatcher, type DispatchQueue } from './task-dispatcher.js';
import { TaskRunner } from './task-runner.js';

export interface WorkerDependencies {
  config: WorkerConfig;
  tasks: TaskService;
  store: TaskStore;
  bus: TaskEventBus;
  /** Where parent counter changes are published (the notifier). */
  publisher: TaskPublisher;
  registry: HandlerRegistry;
  logger: Logger;
  /** AWS: task-execute over SNS. Absent: the in-process queue. */
  queue?: DispatchQueue;
  /** AWS: Step Functions. Absent: the shipped definition under the local interpreter. */
  executions?: SubTaskExecutions;
}

/** The worker side: runner, Step Functions tasks, queue and executions, wired. */
export function createWorker(deps: WorkerDependencies) {
  const { config, tasks, store, bus, registry, logger } = deps;
  const local = deps.queue === undefined;
  const settings = {
    workerId: randomUUID(),
    leaseMs: config.leaseMs,
    progressIntervalMs: config.progressIntervalMs,
    // One process per embedded data directory: a lease of another worker id was left by a dead process.
    singleProcess: local,
  };
  const runner = new TaskRunner({ tasks, store, registry, logger, settings });

  let stepFunctions!: StepFunctionTasks;
  const executions = deps.executions ?? new LocalExecutions(loadStateMachineDefinition(), (event) => stepFunctions.handle(event), logger);
  stepFunctions = new StepFunctionTasks({
    tasks,
    store,
    registry,
    executions,
    publisher: deps.publisher,
    logger,
    settings,
    maxConcurrency: config.stepFunctionsConcurrency,
    coalesceMs: config.parentEventWindowMs,
    redeliver: (parent, delayMs) => queue.enqueue(parent, delayMs),
  });

  let dispatcher!: TaskDispatcher;
  const localQueue = local ? new LocalTaskQueue((key) => dispatcher.dispatch(key), config.concurrency, logger) : undefined;
  const queue: DispatchQueue = deps.queue ?? {
    enqueue: async (task, delayMs) => localQueue!.enqueue(task, delayMs),
    stop: () => localQueue!.stop(config.shutdownGraceMs, () => runner.abortAll()),
  };
  dispatcher = new TaskDispatcher({ tasks, store, queue, runner, stepFunctions, logger });
  const unobserve = bus.observeAll((event) => dispatcher.observe(event.task));

  return {
    dispatcher,
    stepFunctions,
    runner,
    /** Where Step Functions executions run: AWS's, or the local interpreter. */
    executions,
    /** Task types this process runs (as tasks or as Step Functions sub-tasks). */
    get types(): string[] {
      const { tasks: taskTypes, subTasks } = registry.types;
      return [...new Set([...taskTypes, ...subTasks])];
    },
    /** Embedded default: pick up what a previous process left unfinished. */
    async start(): Promise<void> {
      if (!local) return;
      const recovered = await dispatcher.recover();
      if (recovered > 0) logger.info('picked up unfinished tasks', { count: recovered });
    },
    async stop(): Promise<void> {
      await dispatcher.drain();
      unobserve();
      await queue.stop?.();
      await executions.close?.();
      await stepFunctions.flush();
    },
  };
}

export type Worker = ReturnType<typeof createWorker>;
