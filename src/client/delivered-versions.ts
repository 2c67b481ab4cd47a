/**
 * The newest version delivered per task, for the most recently changed
 * `limit` tasks: a replay after a resume may repeat what was delivered.
 * A Map keeps insertion order, so re-inserting on every change makes the
 * first key the least recently changed task, the one to forget.
 */
export class DeliveredVersions {
  private readonly versions = new Map<string, number>();

  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError('limit must be at least 1');
  }

  /** Records `version` of `id`; false when it, or a later version, was delivered already. */
  admit(id: string, version: number): boolean {
    const known = this.versions.get(id);
    if (known !== undefined && version <= known) return false;
    this.versions.delete(id);
    this.versions.set(id, version);
    if (this.versions.size > this.limit) this.versions.delete(this.versions.keys().next().value!);
    return true;
  }

  get size(): number {
    return this.versions.size;
  }
}
