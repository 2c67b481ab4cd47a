/**
 * A Map that forgets its least recently set entries past `capacity`, and
 * optionally entries older than `ttlMs` (dropped as newer ones are set, so
 * memory follows the recent rate, not the total). Used where "seen recently" must stay
 * bounded: SNS message ids, delivered versions per task.
 */
export class Lru<K, V> {
  private readonly entries = new Map<K, { value: V; at: number }>();

  constructor(
    private readonly capacity: number,
    private readonly ttlMs = Infinity,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.now() - entry.at > this.ttlMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  set(key: K, value: V): void {
    const now = this.now();
    this.entries.delete(key);
    this.entries.set(key, { value, at: now });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as K);
    // Entries are in the order they were set: expired ones are at the front.
    for (const [oldest, entry] of this.entries) {
      if (now - entry.at <= this.ttlMs) break;
      this.entries.delete(oldest);
    }
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
