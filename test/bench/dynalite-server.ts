/**
 * DynamoDB's stand-in in a process of its own (in memory), as DynamoDB is
 * outside the service in production: write-path.ts charges its CPU apart
 * from the service's and the caller's.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startDynalite } from '../../src/embedded/dynalite.js';
import { serveIpc, signalReady, signalReadyError } from './lib/ipc.js';
import { processProbe } from './lib/probe.js';

try {
  const { endpoint } = await startDynalite();
  serveIpc(processProbe(monitorEventLoopDelay).handlers);
  signalReady({ endpoint });
} catch (error) {
  signalReadyError(error);
  setTimeout(() => process.exit(1), 100);
}
