import { Lru } from '../lru.js';
import { isTerminal, type TaskStatus } from '../tasks/status.js';
import type { Task, TaskKind } from '../tasks/task.js';
import { ResumeTracker, type ResumePosition } from './resume-cursor.js';
import type { TaskEvent } from './task-event.js';

export interface TaskEventFilter {
  ids?: readonly string[] | null;
  parentId?: string | null;
  kind?: TaskKind | null;
  taskType?: string | null;
  statuses?: readonly TaskStatus[] | null;
  includeSubTasks?: boolean | null;
  tenantCode?: string | null;
}

/** Why an event is not sent: older than one already sent, or outside the status filter. */
export type Skip = 'stale' | 'filtered';

/**
 * One subscription's view of the event stream, shared by every transport:
 * which tasks it is about, which versions it already has (per task, versions
 * only go up), where it could resume, and whether it is finished (every named
 * task terminal).
 */
export class SubscriptionState {
  /** The tasks named by the filter, if any. */
  private readonly ids?: Set<string>;
  private readonly statuses?: Set<TaskStatus>;
  // Allocated on first use: most subscriptions sit idle.
  private deliveredVersions?: Lru<string, number>;
  private tracker?: ResumeTracker;
  /** Named tasks not yet terminal; undefined when the filter names none. */
  private readonly open?: Set<string>;
  /**
   * Only replays (named tasks' current states, changes since a position) can
   * race live events with older versions; live events alone come from the bus
   * in increasing versions per task, so nothing needs remembering for them.
   */
  private readonly tracksVersions: boolean;

  constructor(
    readonly filter: TaskEventFilter,
    readonly position?: ResumePosition,
  ) {
    this.ids = filter.ids ? new Set(filter.ids) : undefined;
    this.tracksVersions = Boolean(filter.ids || filter.parentId || position);
    this.statuses = filter.statuses?.length ? new Set(filter.statuses) : undefined;
    for (const [id, version] of position?.delivered ?? []) this.delivered.set(id, version);
    this.open = filter.ids ? new Set(filter.ids) : undefined;
  }

  private get delivered(): Lru<string, number> {
    return (this.deliveredVersions ??= new Lru<string, number>(10_000));
  }

  private get resume(): ResumeTracker {
    return (this.tracker ??= new ResumeTracker());
  }

  /** Which tasks the filter is about, statuses aside (a status filter must not hide a task's completion). */
  inScope(task: Task): boolean {
    const { filter, ids } = this;
    if (ids && !ids.has(task.id)) return false;
    if (filter.parentId && task.id !== filter.parentId && task.parentId !== filter.parentId) return false;
    // Sub-tasks come only when asked for: by id, by parent, or with includeSubTasks.
    if (!ids && !filter.parentId && task.parentId && !filter.includeSubTasks) return false;
    if (filter.kind && task.kind !== filter.kind) return false;
    if (filter.taskType && task.type !== filter.taskType) return false;
    return true;
  }

  /** Whether a task read from the table belongs in the initial states. */
  wantsInitial(task: Task): boolean {
    return this.inScope(task) && !(this.position && task.updatedAt < this.position.from);
  }

  /** Takes an event in: undefined means send it, otherwise why not. */
  accept(event: TaskEvent): Skip | undefined {
    const { task } = event;
    if (this.tracksVersions) {
      const last = this.delivered.get(task.id);
      if (last !== undefined && task.version <= last) return 'stale';
      this.delivered.set(task.id, task.version);
    }
    if (this.open && isTerminal(task.status)) this.open.delete(task.id);
    if (this.statuses && !this.statuses.has(task.status)) return 'filtered';
    this.resume.record(task.id, task.version, task.updatedAt);
    return undefined;
  }

  cursor(): string {
    return this.resume.cursor();
  }

  /** After the initial states: named tasks that were not found (absent or foreign) have nothing to wait for. */
  initialStatesDone(): void {
    if (!this.open) return;
    for (const id of [...this.open]) if (this.delivered.get(id) === undefined) this.open.delete(id);
  }

  /** A subscription by ids is finished when every named task is terminal. */
  get finished(): boolean {
    return this.open !== undefined && this.open.size === 0;
  }
}
