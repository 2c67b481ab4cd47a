/**
 * The service under test, in its own process: startApp from src/ with the
 * environment the runner passes, plus an IPC channel for what a black-box
 * client cannot see (CPU time, event-loop delay, RSS after GC, the dynalite
 * endpoint, live-connection gauges). Nothing in src/ is changed.
 */
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SNSClient } from '@aws-sdk/client-sns';
import { startApp, type AppOptions } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger, type LogLevel } from '../../src/logger.js';
import { serveIpc, signalReady, signalReadyError } from './lib/ipc.js';
import { processProbe } from './lib/probe.js';

async function main() {
  const config = loadConfig(process.env);
  const options: AppOptions = {
    logger: createLogger((process.env.LOG_LEVEL as LogLevel | undefined) ?? 'warn'),
    // Step Functions sub-task throughput: a handler that does nothing.
    subTaskHandlers: { NOOP: () => null },
  };
  if (config.sns.topicArn) {
    // Publishing goes nowhere (there is no AWS here): the client answers at once.
    const sns = new SNSClient({ region: config.sns.region ?? 'eu-west-1' });
    sns.send = (async () => ({ MessageId: randomUUID() })) as never;
    options.sns = sns;
    const origin = process.env.BENCH_SNS_HOST_ORIGIN;
    if (origin) options.snsEndpoint = { isTrustedSnsUrl: (url: URL) => url.origin === origin };
  }
  const app = await startApp(config, options);
  const probe = processProbe(monitorEventLoopDelay);
  const gauge = (name: 'connections' | 'subscriptions' | 'eventsDelivered') => {
    const series = (app.metrics as unknown as Record<string, { get(): number } | undefined>)[name];
    return series ? series.get() : undefined;
  };

  serveIpc({
    ...probe.handlers,
    info: () => ({
      url: app.url,
      dynamoEndpoint: app.dynamoEndpoint,
      tableName: config.storage.tableName,
      pid: process.pid,
    }),
    live: () => ({
      connections: gauge('connections'),
      subscriptions: gauge('subscriptions'),
      eventsDelivered: gauge('eventsDelivered'),
    }),
    stop: async () => {
      // A graceful stop of thousands of sockets is not what is measured; leave quickly.
      setTimeout(() => process.exit(0), 10).unref();
      return true;
    },
  });
  signalReady({ url: app.url, dynamoEndpoint: app.dynamoEndpoint, tableName: config.storage.tableName, pid: process.pid });
}

main().catch((error) => {
  signalReadyError(error);
  setTimeout(() => process.exit(1), 100);
});
