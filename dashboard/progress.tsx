import type { Task } from './documents.js';
import { json, progressOf, subTaskCounts } from './format.js';

/** A bar when `attributes.progress` has numbers, its text otherwise, nothing without it. */
export function ProgressBar({ task, compact = false }: { task: Pick<Task, 'attributes' | 'name'>; compact?: boolean }) {
  const progress = progressOf(task);
  if (!progress) {
    const raw = task.attributes.progress;
    if (raw === undefined || raw === null || compact) return null;
    return <span class="progress-text">{typeof raw === 'string' ? raw : json(raw, 200)}</span>;
  }
  const percent = Math.round((progress.current / progress.total) * 100);
  return (
    <span class={compact ? 'progress compact' : 'progress'}>
      <progress value={progress.current} max={progress.total} aria-label={`Progress of ${task.name}`} />
      <span class="progress-label">
        {progress.current}/{progress.total}
        {compact ? '' : ` (${percent}%)`}
      </span>
    </span>
  );
}

const SEGMENTS = [
  ['succeeded', 'Succeeded'],
  ['failed', 'Failed'],
  ['running', 'Running'],
  ['pending', 'Pending'],
] as const;

/** A Step Functions task's sub-tasks by outcome, as one stacked bar with a legend. */
export function CountsBar({ task }: { task: Pick<Task, 'attributes'> }) {
  const counts = subTaskCounts(task);
  if (!counts) return null;
  return (
    <figure class="counts">
      <div class="counts-bar" role="img" aria-label={SEGMENTS.map(([key, label]) => `${label} ${counts[key]}`).join(', ')}>
        {SEGMENTS.map(([key]) => (counts[key] ? <span key={key} class={`segment ${key}`} style={{ flexGrow: counts[key] }} /> : null))}
      </div>
      <figcaption>
        {SEGMENTS.map(([key, label]) => (
          <span key={key} class={`legend ${key}`}>
            {label} <strong>{counts[key]}</strong>
          </span>
        ))}
        <span class="legend total">
          of <strong>{counts.total}</strong>
        </span>
      </figcaption>
    </figure>
  );
}
