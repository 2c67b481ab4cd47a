/**
 * The service as a library:
 *
 *   import { createServer } from 'task-graphql';
 *   const server = createServer({ handlers: { REPORT: async (task, ctx) => … } });
 *   const { url } = await server.start();
 *
 * Configuration comes from the environment (see the README) unless `config` is given.
 */
import { startApp, type AppOptions, type RunningApp } from './app.js';
import { loadConfig, type Config } from './config.js';

export interface CreateServerOptions extends AppOptions {
  /** Parsed configuration; default: loadConfig(env ?? process.env). */
  config?: Config;
  env?: Record<string, string | undefined>;
}

export function createServer(options: CreateServerOptions = {}) {
  let running: RunningApp | undefined;
  return {
    async start(): Promise<RunningApp> {
      if (running) return running;
      running = await startApp(options.config ?? loadConfig(options.env ?? process.env), options);
      return running;
    },
    async stop(): Promise<void> {
      const app = running;
      running = undefined;
      await app?.stop();
    },
  };
}

export { loadConfig, type Config } from './config.js';
export { NonRetryableError, type HandlerContext, type HandlerMap, type HandlerSpec, type TaskHandler } from './worker/handlers.js';
export { exampleHandlers, exampleSubTaskHandlers } from './worker/example-handlers.js';
export type { Task, TaskAttributes, TaskKind } from './tasks/task.js';
export type { TaskStatus } from './tasks/status.js';
export type { RunningApp } from './app.js';
export {
  TASK_STATUS_EVENT_SELECTION,
  watchTasks,
  watchTasksDocument,
  WatchTasksError,
  type TaskEventFilter,
  type TaskStatusEvent,
  type TaskWatch,
  type WatchedTask,
  type WatchTasksOptions,
} from './client/index.js';
