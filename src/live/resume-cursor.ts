import { badInput } from '../errors.js';

/**
 * Where a subscriber can resume: replay tasks changed at or after `from`,
 * except the versions it already has. Events can arrive slightly out of
 * updatedAt order across tasks, so the position trails the newest delivered
 * change by a short window and remembers what was delivered inside it.
 */
export interface ResumePosition {
  from: string;
  delivered: Map<string, number>;
}

const WINDOW_MS = 2_000;
const MAX_REMEMBERED = 32;

export class ResumeTracker {
  /** Delivered changes, newest last; pruned to the window when a cursor is made. */
  private recent: { id: string; version: number; at: string }[] = [];

  /** Records a delivered change: cheap, as it runs for every subscriber of every event. */
  record(id: string, version: number, updatedAt: string): void {
    this.recent.push({ id, version, at: updatedAt });
    if (this.recent.length > 4 * MAX_REMEMBERED) this.prune();
  }

  /** The cursor to resume after everything recorded so far. */
  cursor(): string {
    this.prune();
    const body = { f: this.recent[0]?.at ?? new Date(0).toISOString(), s: this.recent.map((entry) => [entry.id, entry.version]) };
    return Buffer.from(JSON.stringify(body)).toString('base64url');
  }

  /** Keeps the latest entry per task inside the window behind the newest change, at most MAX_REMEMBERED. */
  private prune(): void {
    const latest = new Map<string, { id: string; version: number; at: string }>();
    for (const entry of this.recent) {
      const known = latest.get(entry.id);
      if (!known || entry.version > known.version) latest.set(entry.id, entry);
    }
    const entries = [...latest.values()].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    const newest = entries.at(-1);
    if (!newest) return;
    const horizon = new Date(Date.parse(newest.at) - WINDOW_MS).toISOString();
    this.recent = entries.filter((entry) => entry.at >= horizon).slice(-MAX_REMEMBERED);
  }
}

/** `since` is a cursor from a previous event, or an ISO timestamp. */
export function parseSince(since: string): ResumePosition {
  const time = Date.parse(since);
  if (/^\d{4}-\d{2}-\d{2}T/.test(since) && !Number.isNaN(time)) {
    return { from: new Date(time).toISOString(), delivered: new Map() };
  }
  try {
    const body = JSON.parse(Buffer.from(since, 'base64url').toString('utf8')) as { f?: unknown; s?: unknown };
    if (typeof body.f !== 'string' || Number.isNaN(Date.parse(body.f)) || !Array.isArray(body.s)) throw new Error();
    const delivered = new Map<string, number>();
    for (const entry of body.s) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') throw new Error();
      delivered.set(entry[0], entry[1]);
    }
    return { from: body.f, delivered };
  } catch {
    throw badInput('since must be a cursor from a previous event or an ISO 8601 timestamp', { field: 'since' });
  }
}
