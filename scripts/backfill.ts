import { parseArgs } from 'node:util';
import { backfillIndexKeys, type BackfillResult } from '../src/aws/backfill.js';
import { CheckpointMismatchError, fileCheckpoint, type BackfillCounts } from '../src/aws/backfill-checkpoint.js';
import { createDynamoClients } from '../src/aws/dynamo-client.js';
import { MissingTableError, checkTaskTable } from '../src/aws/task-table.js';

const USAGE = `Usage: npm run backfill -- [--dry-run] [--segments N] [--rate N] [--page-size N] [--checkpoint FILE]

Writes the index attributes (list keys, parentId, subTaskIndex) that items
written by @mbc-cqrs-serverless/task lack or have stale, so that \`tasks\` and
\`subTasks\` list them. Every write is conditional on the item's status,
version and updatedAt as scanned: a change made meanwhile is never
overwritten. Safe to run while this service and the original package write.

Options:
  --dry-run          scan and report what would be written; write nothing
  --segments N       parallel scan segments, each its own loop (default 4, at most 1000)
  --rate N           index writes per second over all segments (default 50)
  --page-size N      items per Scan request; progress is checkpointed per page (default 100)
  --checkpoint FILE  resume from FILE and save progress to it after every page;
                     it must come from a run with the same table, segments and --dry-run
  --samples N        stale items to print (default 5)
  -h, --help         this text

Environment (as for the service):
  TASKS_TABLE        the table (required)
  DYNAMODB_ENDPOINT  DynamoDB Local, dynalite, ... (default: AWS)
  AWS_REGION         region on AWS; credentials from the default provider chain

Ctrl-C stops after the item in progress and saves the checkpoint; run the same
command again to continue. Exit codes: 0 done, 1 failed, 2 bad usage,
3 done but some items kept changing (run again), 130 interrupted.`;

function usageError(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      'dry-run': { type: 'boolean', default: false },
      segments: { type: 'string', default: '4' },
      rate: { type: 'string', default: '50' },
      'page-size': { type: 'string', default: '100' },
      checkpoint: { type: 'string' },
      samples: { type: 'string', default: '5' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  usageError((error as Error).message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

function integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = String(values[name]);
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) usageError(`--${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return value;
}
function positive(name: string): number {
  const raw = String(values[name]);
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value <= 0) usageError(`--${name} must be a positive number, got "${raw}"`);
  return value;
}

const segments = integer('segments', 1, 1000);
const rate = positive('rate');
const pageSize = integer('page-size', 1);
const sampleSize = integer('samples', 0);
const dryRun = values['dry-run'] === true;
const checkpointPath = values.checkpoint as string | undefined;

const tableName = process.env.TASKS_TABLE?.trim();
if (!tableName) usageError('Set TASKS_TABLE (and AWS_REGION, or DYNAMODB_ENDPOINT)');
const endpoint = process.env.DYNAMODB_ENDPOINT?.trim() || undefined;
const { client, doc } = createDynamoClients({
  endpoint,
  region: process.env.AWS_REGION,
  // A local endpoint takes any credentials: placeholders unless some are configured.
  local: endpoint !== undefined && !process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE,
});

const stop = new AbortController();
process.on('SIGINT', () => {
  if (stop.signal.aborted) process.exit(130);
  console.log('stopping after the items in progress; saving the checkpoint (Ctrl-C again to quit at once)');
  stop.abort();
});
process.on('SIGTERM', () => stop.abort());

const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;
const line = (counts: BackfillCounts) =>
  [
    `scanned ${counts.scanned}`,
    `tasks ${counts.tasks}`,
    `stale ${counts.stale}`,
    dryRun ? undefined : `repaired ${counts.repaired}`,
    counts.changedMeanwhile ? `changed meanwhile ${counts.changedMeanwhile}` : undefined,
    counts.throttled ? `throttled ${counts.throttled}` : undefined,
  ]
    .filter(Boolean)
    .join(' · ');

function summary(result: BackfillResult): string {
  const { counts, totals } = result;
  const lines = [
    `${result.complete ? 'done' : 'stopped'} in ${elapsed()}: ${result.segmentsDone}/${result.totalSegments} segments done`,
    `  this run: ${counts.pages} pages, ${counts.scanned} items scanned: ${counts.tasks} tasks, ` +
      `${counts.others + counts.unrecognized} other items (left alone` +
      (counts.unrecognized ? `; ${counts.unrecognized} of them under a task partition without a task id or status` : '') +
      ')',
    dryRun
      ? `  dry run: ${counts.stale} tasks would get their index attributes written; nothing was written`
      : `  ${counts.stale} tasks had stale or missing index attributes; ${counts.repaired} repaired`,
  ];
  if (counts.changedMeanwhile) {
    lines.push(
      `  ${counts.changedMeanwhile} changed between scan and write (never overwritten): ` +
        `${counts.settledMeanwhile} already right or deleted, ${counts.repairedOnReread} repaired from a fresh read, ` +
        `${counts.unresolved} changed again (left for the next run)`,
    );
  }
  if (counts.throttled) lines.push(`  ${counts.throttled} throttled requests retried`);
  if (result.resumed || !result.complete) {
    lines.push(
      `  every run so far (checkpoint): scanned ${totals.scanned} (an interrupted page is read again), ` +
        `stale ${totals.stale}, repaired ${totals.repaired}`,
    );
  }
  return lines.join('\n');
}

let exitCode = 0;
try {
  await checkTaskTable(client, tableName);
  const checkpoint = checkpointPath ? fileCheckpoint(checkpointPath) : undefined;
  console.log(
    `backfill of table ${tableName}${endpoint ? ` at ${endpoint}` : ''}${dryRun ? ' (dry run: nothing is written)' : ''}: ` +
      `${segments} segments, ${rate} writes/s, pages of ${pageSize}` +
      (checkpointPath ? `, checkpoint ${checkpointPath}` : ', no checkpoint (an interrupted run starts over)'),
  );
  let lastPrinted = 0;
  const result = await backfillIndexKeys({
    db: doc,
    tableName,
    segments,
    writesPerSecond: rate,
    pageSize,
    dryRun,
    checkpoint,
    sampleSize,
    signal: stop.signal,
    onProgress: (progress) => {
      const now = performance.now();
      if (!progress.segmentDone && now - lastPrinted < 1000) return;
      lastPrinted = now;
      console.log(`[${elapsed().padStart(7)}] segments ${progress.segmentsDone}/${progress.totalSegments} done · ${line(progress.counts)}`);
    },
  });
  if (result.resumed && result.counts.pages === 0 && result.complete) {
    console.log(`checkpoint ${checkpointPath} says every segment is done: nothing to scan. Delete it (or name another) to scan again.`);
  }
  for (const sample of result.samples) {
    console.log(
      `  ${dryRun ? 'would write' : 'wrote'} ${sample.id} (${sample.status}): ${JSON.stringify({ set: sample.set, remove: sample.remove })}`,
    );
  }
  console.log(summary(result));
  if (result.aborted) {
    console.log(checkpointPath ? `interrupted; run the same command again to continue from ${checkpointPath}` : 'interrupted');
    exitCode = 130;
  } else if (result.counts.unresolved > 0) {
    console.log(
      `${result.counts.unresolved} items kept changing during the run: run it again (without the finished checkpoint) to repair them`,
    );
    exitCode = 3;
  }
} catch (error) {
  if (error instanceof CheckpointMismatchError || error instanceof MissingTableError) {
    console.error(error.message);
  } else {
    console.error('backfill failed:', error);
    if (checkpointPath) console.error(`each segment's last whole page is saved in ${checkpointPath}: run again to continue`);
  }
  exitCode = 1;
} finally {
  client.destroy();
}
process.exit(exitCode);
