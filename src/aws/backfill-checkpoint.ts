import { readFile, rename, writeFile } from 'node:fs/promises';

/**
 * What one backfill run counted (or, in a checkpoint, one segment over every run: the items of a page
 * cut short are read again when the run resumes, and counted again in `scanned`).
 */
export interface BackfillCounts {
  /** Scan pages read. */
  pages: number;
  /** Items read by the scan. */
  scanned: number;
  /** Task items among them (TASK#… / SFN_TASK#… keys that parse as task ids). */
  tasks: number;
  /** Other items (idempotency records, anything else in the table): never written. */
  others: number;
  /** Items under a task partition whose key does not parse as a task id, or without a status: never written. */
  unrecognized: number;
  /** Tasks whose index attributes disagreed with their fields when scanned (in a dry run: what would be written). */
  stale: number;
  /** Index repairs written (always 0 in a dry run). */
  repaired: number;
  /** Repairs refused because the item changed between the scan and the write. */
  changedMeanwhile: number;
  /** …of which the consistent re-read found right (a write by this service) or deleted: nothing to do. */
  settledMeanwhile: number;
  /** …of which the repair from the re-read image was written (also counted in `repaired`). */
  repairedOnReread: number;
  /** …of which the item changed again before the second repair: left as it is for the next run (or the stream handler). */
  unresolved: number;
  /** Requests DynamoDB throttled, retried after a backoff. */
  throttled: number;
}

export const zeroCounts = (): BackfillCounts => ({
  pages: 0,
  scanned: 0,
  tasks: 0,
  others: 0,
  unrecognized: 0,
  stale: 0,
  repaired: 0,
  changedMeanwhile: 0,
  settledMeanwhile: 0,
  repairedOnReread: 0,
  unresolved: 0,
  throttled: 0,
});

export function addCounts(into: BackfillCounts, from: BackfillCounts): BackfillCounts {
  for (const name of Object.keys(into) as (keyof BackfillCounts)[]) into[name] += from[name];
  return into;
}

export interface SegmentCheckpoint {
  /** The scan resumes after this key; absent before the segment's first whole page. */
  lastEvaluatedKey?: Record<string, unknown>;
  /** Every page of the segment has been processed. */
  done: boolean;
  /** What this segment's runs have counted, all of them. */
  counts: BackfillCounts;
}

/**
 * The resumable state of one backfill, saved after every whole page of any
 * segment. It belongs to one table, one segment count and one mode: a run
 * with another refuses it (a dry run's pages were not written, so a real run
 * must not skip them).
 */
export interface BackfillCheckpoint {
  format: typeof CHECKPOINT_FORMAT;
  table: string;
  totalSegments: number;
  dryRun: boolean;
  startedAt: string;
  updatedAt: string;
  segments: SegmentCheckpoint[];
}

export const CHECKPOINT_FORMAT = 'task-backfill/1';

/** Where a checkpoint lives. `load` returns undefined when there is none yet. */
export interface CheckpointStore {
  load(): Promise<BackfillCheckpoint | undefined>;
  save(checkpoint: BackfillCheckpoint): Promise<void>;
  /** Named in messages (a file path). */
  readonly description: string;
}

/** A checkpoint in memory: tests, and runs without a file. */
export function memoryCheckpoint(initial?: BackfillCheckpoint): CheckpointStore & { current?: BackfillCheckpoint } {
  const store = {
    current: initial && structuredClone(initial),
    description: 'memory',
    load: async () => store.current && structuredClone(store.current),
    save: async (checkpoint: BackfillCheckpoint) => {
      store.current = structuredClone(checkpoint);
    },
  };
  return store;
}

/** A checkpoint in a small JSON file, replaced atomically (written beside it, then renamed). */
export function fileCheckpoint(path: string): CheckpointStore {
  return {
    description: path,
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      try {
        return JSON.parse(text) as BackfillCheckpoint;
      } catch {
        throw new CheckpointMismatchError(`Checkpoint ${path} is not valid JSON; delete it to start over`);
      }
    },
    async save(checkpoint) {
      const temporary = `${path}.${process.pid}.tmp`;
      await writeFile(temporary, `${JSON.stringify(checkpoint, null, 2)}\n`);
      await rename(temporary, path);
    },
  };
}

/** A checkpoint that belongs to another backfill: nothing was scanned. */
export class CheckpointMismatchError extends Error {
  override name = 'CheckpointMismatchError';
}

/** Checks that `checkpoint` was written by a backfill of this table, segment count and mode; throws saying why not. */
export function checkResumable(
  checkpoint: BackfillCheckpoint,
  expected: { table: string; totalSegments: number; dryRun: boolean },
  where: string,
): void {
  const fix = `resume with the same settings, or use another --checkpoint (or delete ${where}) to start over`;
  if (checkpoint.format !== CHECKPOINT_FORMAT || !Array.isArray(checkpoint.segments)) {
    throw new CheckpointMismatchError(`Checkpoint ${where} is not a ${CHECKPOINT_FORMAT} checkpoint; ${fix}`);
  }
  if (checkpoint.table !== expected.table) {
    throw new CheckpointMismatchError(`Checkpoint ${where} is for table ${checkpoint.table}, not ${expected.table}; ${fix}`);
  }
  if (checkpoint.totalSegments !== expected.totalSegments || checkpoint.segments.length !== expected.totalSegments) {
    throw new CheckpointMismatchError(
      `Checkpoint ${where} was written with ${checkpoint.totalSegments} segments, not ${expected.totalSegments} ` +
        `(a segment's position means nothing under another count); ${fix}`,
    );
  }
  if (checkpoint.dryRun !== expected.dryRun) {
    throw new CheckpointMismatchError(
      checkpoint.dryRun
        ? `Checkpoint ${where} was written by a dry run, which wrote nothing: a real run must not skip its pages; ${fix}`
        : `Checkpoint ${where} was written by a real run, not a dry run; ${fix}`,
    );
  }
}
