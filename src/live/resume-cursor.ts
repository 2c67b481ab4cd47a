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
  /** Delivered changes inside the window, oldest first. */
  private recent: { id: string; version: number; at: string }[] = [];


  /** Records a delivered change and returns the cursor to resume after it. */
  delivered(id: string, version: number, updatedAt: string): string {
    this.recent = this.recent.filter((entry) => entry.id !== id);
    this.recent.push({ id, version, at: updatedAt });
    this.recent.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    const newest = this.recent.at(-1)!.at;
    const horizon = new Date(Date.parse(newest) - WINDOW_MS).toISOString();
    this.recent = this.recent.filter((entry) => entry.at >= horizon).slice(-MAX_REMEMBERED);
    const body = { f: this.recent[0]!.at, s: this.recent.map((entry) => [entry.id, entry.version]) };
    return Buffer.from(JSON.stringify(body)).toString('base64url');
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
