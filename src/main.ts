import { startApp } from './app.js';
import { loadConfig } from './config.js';
import { StartupError } from './lifecycle.js';
import { loadHandlersModule } from './worker/load-handlers.js';

/** `npm start`: run until SIGTERM or SIGINT, then stop gracefully. */
async function main(): Promise<void> {
  const config = loadConfig();
  const handlers = config.worker.handlersModule ? await loadHandlersModule(config.worker.handlersModule) : {};
  const app = await startApp(config, handlers);
  const where =
    config.storage.mode === 'embedded'
      ? `embedded DynamoDB (dynalite), data in ${config.storage.dataDir ?? 'memory'}`
      : `DynamoDB table ${config.storage.tableName}${config.storage.endpoint ? ` at ${config.storage.endpoint}` : ''}`;
  const lines = [`Task API on ${app.url} (${where})`];
  if (config.dashboard) lines.push(`Dashboard on ${app.url.replace(/\/graphql$/, '/dashboard')}`);
  const types = app.worker.types;
  if (!config.worker.enabled) lines.push('Task execution is off (TASK_EXECUTION=false): tasks stay CREATED for your backends.');
  else if (types.length > 0) lines.push(`Handlers for task types: ${types.join(', ')}; other types stay QUEUED for your backends.`);
  if (app.devToken) {
    lines.push(
      '',
      `Development token for tenant "demo" (valid 30 days), already set in GraphiQL${config.dashboard ? ' and the dashboard' : ''}. For curl, send:`,
      `Authorization: Bearer ${app.devToken}`,
      '',
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: stopping\n`);
    app.stop().then(
      () => process.exit(0),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof StartupError) {
    console.error(`Cannot start: ${error.message}`);
  } else {
    console.error(error);
  }
  process.exit(1);
});
