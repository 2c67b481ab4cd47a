import { useEffect, useMemo, useState } from 'preact/hooks';
import { useApi } from './context.js';
import type { Task } from './documents.js';
import { useWatch, type LiveState } from './live.js';
import { TaskRow } from './task-list.js';

/** Tasks one watch may name (taskStatusChanged's `ids`). */
const MAX_IDS = 100;
const PAGE_SIZE = 25;

/**
 * What a viewer token may see: the tasks it names and its Step Functions
 * task, never a listing. A watch by ids starts with their current states, so
 * it alone fills the list and keeps it live.
 */
export function ViewerList(props: {
  scope: { ids: string[]; parentId?: string };
  selectedId?: string;
  onLiveState: (state: LiveState, error?: string) => void;
}) {
  const api = useApi();
  const ids = useMemo(
    () => [...new Set([...(props.scope.parentId ? [props.scope.parentId] : []), ...props.scope.ids])].slice(0, MAX_IDS),
    [props.scope],
  );
  const [tasks, setTasks] = useState<ReadonlyMap<string, Task>>(new Map());
  const [page, setPage] = useState(0);
  const live = useWatch({ url: api.endpoint, token: api.session.token, filter: { ids } }, (changed) =>
    setTasks((current) => {
      const next = new Map(current);
      for (const task of changed) if ((next.get(task.id)?.version ?? -1) < task.version) next.set(task.id, task);
      return next;
    }),
  );
  const { onLiveState } = props;
  useEffect(() => onLiveState(live.state, live.error), [live.state, live.error]);

  const rows = useMemo(() => [...tasks.values()].sort((a, b) => (a.code < b.code ? 1 : -1)), [tasks]);
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  return (
    <section class="list" aria-labelledby="list-title">
      <div class="list-header">
        <h2 id="list-title">Shared with you</h2>
      </div>
      {rows.length === 0 && <p class="muted">{live.state === 'connecting' ? 'Loading…' : 'None of these tasks can be found.'}</p>}
      <ol class="task-rows" aria-label={`Tasks, page ${page + 1}`}>
        {rows.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).map((task) => (
          <TaskRow key={task.id} task={task} selected={task.id === props.selectedId} />
        ))}
      </ol>
      {pages > 1 && (
        <nav class="pager" aria-label="Task pages">
          <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>
            Previous
          </button>
          <span>
            Page {page + 1} of {pages}
          </span>
          <button type="button" disabled={page + 1 >= pages} onClick={() => setPage(page + 1)}>
            Next
          </button>
        </nav>
      )}
    </section>
  );
}
