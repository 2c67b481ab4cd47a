import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { DocumentSender } from './dynamo-client.js';
import { kindOfPk, parseTaskId, taskId } from '../tasks/keys.js';
import {
  CHECKPOINT_FORMAT,
  addCounts,
  checkResumable,
  zeroCounts,
  type BackfillCheckpoint,
  type BackfillCounts,
  type CheckpointStore,
} from './backfill-checkpoint.js';
import { DynamoTaskStore, staleIndexKeys } from './dynamo-task-store.js';
import { TokenBucket, systemClock, type Clock } from './token-bucket.js';

type Item = Record<string, unknown>;

/** An item whose index attributes disagree with its fields, and what the repair writes. */
export interface BackfillSample {
  id: string;
  status: string;
  set: Record<string, string | number>;
  remove: string[];
}

export interface BackfillProgress {
  /** The segment whose page was just processed (and checkpointed). */
  segment: number;
  segmentDone: boolean;
  segmentsDone: number;
  totalSegments: number;
  /** This run's counts so far, every segment. */
  counts: BackfillCounts;
}

export interface BackfillOptions {
  db: DocumentSender;
  tableName: string;
  /** Parallel scan segments (TotalSegments), each scanned by its own loop. @default 4 */
  segments?: number;
  /** Index repairs a second, over every segment. Infinity: no limit. @default 50 */
  writesPerSecond?: number;
  /** Items per Scan request (Limit); the checkpoint advances after each whole page. @default 100 */
  pageSize?: number;
  /** Scan and report what would be written; write nothing. @default false */
  dryRun?: boolean;
  /** Where to load and save the resumable state. @default none: every run scans the whole table */
  checkpoint?: CheckpointStore;
  /** Stops the run after the item in progress; the checkpoint is saved first. */
  signal?: AbortSignal;
  /** Called after every whole page of any segment, once it is checkpointed. */
  onProgress?: (progress: BackfillProgress) => void;
  /** Stale items to report (BackfillResult.samples). @default 5 */
  sampleSize?: number;
  /** Backoff after a throttled request: base · 2^n with jitter, capped. @default { baseMs: 50, maxMs: 5000 } */
  throttleBackoff?: { baseMs: number; maxMs: number };
  /** The rate limiter's and backoff's time. @default the system clock */
  clock?: Clock;
  /** Test seam: runs before every repair write, with the image it is pinned to (1: the scanned one, 2: the re-read one). */
  beforeRepair?: (seen: Item, attempt: 1 | 2) => Promise<void> | void;
}

export interface BackfillResult {
  /** This run's counts. */
  counts: BackfillCounts;
  /**
   * Every run's counts, from the checkpoint (equal to `counts` without one to resume). Items of a
   * page cut short by an interruption are read again on resume, so they count twice in `scanned`.
   */
  totals: BackfillCounts;
  samples: BackfillSample[];
  /** Every segment is done. */
  complete: boolean;
  /** Stopped by `signal` before the end. */
  aborted: boolean;
  /** Started from a saved checkpoint. */
  resumed: boolean;
  segmentsDone: number;
  totalSegments: number;
}

const THROTTLING_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);

const isThrottling = (error: unknown) => {
  const failure = error as { name?: string; $retryable?: { throttling?: boolean } } | null;
  return THROTTLING_ERRORS.has(failure?.name ?? '') || failure?.$retryable?.throttling === true;
};

const isAbort = (error: unknown, signal: AbortSignal) =>
  signal.aborted && ((error as Error | null)?.name === 'AbortError' || error === signal.reason);

/** Task items only: under a task partition, a key that parses as a task id, and a status. */
function classify(item: Item): 'task' | 'other' | 'unrecognized' {
  if (typeof item.pk !== 'string' || typeof item.sk !== 'string' || !kindOfPk(item.pk)) return 'other';
  if (typeof item.status !== 'string' || !parseTaskId(taskId(item.pk, item.sk))) return 'unrecognized';
  return 'task';
}

const isStale = ({ set, remove }: ReturnType<typeof staleIndexKeys>) => Object.keys(set).length > 0 || remove.length > 0;

/**
 * Writes the index attributes (list partition keys, `parentId`,
 * `subTaskIndex`) that items written by another writer (the original
 * @mbc-cqrs-serverless/task) lack or have stale, so `tasks` and `subTasks`
 * list them. A parallel scan, one loop per segment; every repair is
 * DynamoTaskStore.repairIndexKeys, pinned to the status, version and
 * updatedAt it was computed from, so a change made meanwhile is never
 * overwritten. Safe to run while both services write.
 *
 * An item that changed meanwhile is read again once (consistently): right
 * already (this service wrote it) or gone, nothing to do; still stale (the
 * original changed its status again), repaired from that image. A second
 * refusal means the item is being changed right now: it is counted
 * `unresolved` and left for the next run rather than chased.
 */
export async function backfillIndexKeys(options: BackfillOptions): Promise<BackfillResult> {
  const {
    db,
    tableName,
    segments: totalSegments = 4,
    writesPerSecond = 50,
    pageSize = 100,
    dryRun = false,
    sampleSize = 5,
    throttleBackoff = { baseMs: 50, maxMs: 5000 },
    clock = systemClock,
  } = options;
  if (!Number.isInteger(totalSegments) || totalSegments < 1 || totalSegments > 1_000_000) {
    throw new RangeError(`segments must be an integer from 1 to 1000000, got ${totalSegments}`);
  }
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
  if (!(writesPerSecond > 0)) throw new RangeError(`writesPerSecond must be positive, got ${writesPerSecond}`);

  const store = new DynamoTaskStore(db, tableName);
  const limiter = Number.isFinite(writesPerSecond) ? new TokenBucket(writesPerSecond, undefined, clock) : undefined;
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const now = () => new Date().toISOString();
  const saved = await options.checkpoint?.load();
  if (saved) checkResumable(saved, { table: tableName, totalSegments, dryRun }, options.checkpoint!.description);
  const checkpoint: BackfillCheckpoint = saved ?? {
    format: CHECKPOINT_FORMAT,
    table: tableName,
    totalSegments,
    dryRun,
    startedAt: now(),
    updatedAt: now(),
    segments: Array.from({ length: totalSegments }, () => ({ done: false, counts: zeroCounts() })),
  };
  // Counts as loaded, per segment: every save records them plus what this run has done so far.
  const base = checkpoint.segments.map((segment) => addCounts(zeroCounts(), segment.counts ?? zeroCounts()));
  const run = checkpoint.segments.map(() => zeroCounts());
  const samples: BackfillSample[] = [];

  // One save at a time, in call order, each of the state when it was called.
  let saving: Promise<void> = Promise.resolve();
  const save = () => {
    checkpoint.updatedAt = now();
    checkpoint.segments.forEach((segment, i) => {
      segment.counts = addCounts(addCounts(zeroCounts(), base[i]!), run[i]!);
    });
    const snapshot = structuredClone(checkpoint);
    // A failed save is reported to its caller; the next one is still attempted.
    const next = saving.catch(() => {}).then(() => options.checkpoint?.save(snapshot));
    saving = next;
    return next;
  };
  if (!saved) await save();

  /** Sends, retrying throttling with backoff for as long as it takes (or until stopped). */
  async function send<T>(segment: number, request: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request();
      } catch (error) {
        if (!isThrottling(error)) throw error;
        run[segment]!.throttled++;
        const ceiling = Math.min(throttleBackoff.maxMs, throttleBackoff.baseMs * 2 ** Math.min(attempt, 20));
        await clock.sleep(ceiling / 2 + (Math.random() * ceiling) / 2, stop.signal);
      }
    }
  }

  async function repair(segment: number, seen: Item, attempt: 1 | 2): Promise<boolean> {
    await limiter?.take(stop.signal);
    await options.beforeRepair?.(seen, attempt);
    return (await send(segment, () => store.repairIndexKeys(seen))) !== undefined;
  }

  async function processItem(segment: number, item: Item): Promise<void> {
    const counts = run[segment]!;
    const kind = classify(item);
    if (kind === 'other') return void counts.others++;
    if (kind === 'unrecognized') return void counts.unrecognized++;
    counts.tasks++;
    const stale = staleIndexKeys(item);
    if (!isStale(stale)) return;
    counts.stale++;
    if (samples.length < sampleSize) {
      samples.push({ id: taskId(String(item.pk), String(item.sk)), status: String(item.status), ...stale });
    }
    if (dryRun) return;
    if (await repair(segment, item, 1)) return void counts.repaired++;

    counts.changedMeanwhile++;
    const { Item: current } = await send(segment, () =>
      db.send(new GetCommand({ TableName: tableName, Key: { pk: item.pk, sk: item.sk }, ConsistentRead: true })),
    );
    if (!current || classify(current) !== 'task' || !isStale(staleIndexKeys(current))) {
      return void counts.settledMeanwhile++;
    }
    if (await repair(segment, current, 2)) {
      counts.repaired++;
      counts.repairedOnReread++;
    } else {
      counts.unresolved++;
    }
  }

  const segmentsDone = () => checkpoint.segments.filter((segment) => segment.done).length;
  const runTotals = () => run.reduce(addCounts, zeroCounts());

  async function scanSegment(segment: number): Promise<void> {
    const state = checkpoint.segments[segment]!;
    while (!state.done && !stop.signal.aborted) {
      const page = await send(segment, () =>
        db.send(
          new ScanCommand({
            TableName: tableName,
            Segment: segment,
            TotalSegments: totalSegments,
            Limit: pageSize,
            ExclusiveStartKey: state.lastEvaluatedKey,
          }),
        ),
      );
      const counts = run[segment]!;
      counts.pages++;
      for (const item of page.Items ?? []) {
        // A page cut short is not checkpointed: a resumed run reads it again (repairs are idempotent).
        if (stop.signal.aborted) return;
        counts.scanned++;
        await processItem(segment, item);
      }
      state.lastEvaluatedKey = page.LastEvaluatedKey;
      state.done = page.LastEvaluatedKey === undefined;
      await save();
      options.onProgress?.({
        segment,
        segmentDone: state.done,
        segmentsDone: segmentsDone(),
        totalSegments,
        counts: runTotals(),
      });
    }
  }

  const outcomes = await Promise.allSettled(
    checkpoint.segments.map(async (_, segment) => {
      try {
        await scanSegment(segment);
      } catch (error) {
        if (isAbort(error, stop.signal)) return;
        // One segment failing stops the others at their next item; each keeps its last whole page.
        stop.abort(error);
        throw error;
      }
    }),
  );
  options.signal?.removeEventListener('abort', onAbort);
  await save();
  const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failure) throw failure.reason;

  return {
    counts: runTotals(),
    totals: checkpoint.segments.reduce((sum, segment) => addCounts(sum, segment.counts), zeroCounts()),
    samples,
    complete: segmentsDone() === totalSegments,
    aborted: options.signal?.aborted === true && segmentsDone() < totalSegments,
    resumed: saved !== undefined,
    segmentsDone: segmentsDone(),
    totalSegments,
  };
}
