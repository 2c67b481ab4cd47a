import { useEffect, useMemo, useState } from 'preact/hooks';
import { useApi } from './context.js';
import { LIST_SUB_TASKS, type Connection, type Task } from './documents.js';
import { errorText, subTaskCounts } from './format.js';
import { useWatch } from './live.js';
import { ProgressBar } from './progress.js';
import { StatusPill } from './status-pill.js';

const PAGE_SIZE = 20;
/** Failed sub-tasks shown before "Show more": a parent may have 10,000. */
const FAILED_SHOWN = 10;

/**
 * A Step Functions task's sub-tasks: the failed ones first, then every one
 * in input order, a page at a time. Both stay live; neither ever renders
 * more than a page's worth of rows at once.
 */
export function SubTasks({ parent, onOpen }: { parent: Task; onOpen: (id: string) => void }) {
  const failedCount = subTaskCounts(parent)?.failed ?? 0;
  return (
    <>
      {failedCount > 0 && <FailedSubTasks parent={parent} count={failedCount} onOpen={onOpen} />}
      <AllSubTasks parent={parent} onOpen={onOpen} />
    </>
  );
}

/** Failed sub-tasks, by index: a watch of the parent's family narrowed to FAILED starts with every one that failed already. */
function FailedSubTasks({ parent, count, onOpen }: { parent: Task; count: number; onOpen: (id: string) => void }) {
  const api = useApi();
  const [failed, setFailed] = useState<ReadonlyMap<string, Task>>(new Map());
  const [shown, setShown] = useState(FAILED_SHOWN);
  useWatch({ url: api.endpoint, token: api.session.token, filter: { parentId: parent.id, statuses: ['FAILED'] } }, (tasks) =>
    setFailed((current) => {
      const next = new Map(current);
      for (const task of tasks) if (task.parentId === parent.id) next.set(task.id, task);
      return next;
    }),
  );
  const sorted = useMemo(() => [...failed.values()].sort((a, b) => (a.subTaskIndex ?? 0) - (b.subTaskIndex ?? 0)), [failed]);
  return (
    <div class="sub-tasks failed-first">
      <h4>
        Failed <span class="count">{count}</span>
      </h4>
      <SubTaskRows tasks={sorted.slice(0, shown)} onOpen={onOpen} label="Failed sub-tasks" />
      {sorted.length > shown && (
        <button type="button" class="link" onClick={() => setShown(shown + FAILED_SHOWN * 2)}>
          Show more ({sorted.length - shown} not shown)
        </button>
      )}
    </div>
  );
}

interface Page {
  rows: Task[];
  hasNextPage: boolean;
  endCursor: string | null;
}

/** Every sub-task in input order, PAGE_SIZE at a time; the rows on screen are watched by id. */
function AllSubTasks({ parent, onOpen }: { parent: Task; onOpen: (id: string) => void }) {
  const api = useApi();
  // While the service writes a parent's sub-tasks it lists them in key order (#10 before #2), and in
  // input order from the write that also sets `attributes.subTasks` (the original package's parents
  // have it from the start). The two listings' cursors do not mix: that write reads again from page 1.
  const order = Array.isArray(parent.attributes.subTasks) ? 'settled' : 'writing';
  // The `after` cursors of the pages before this one, and this one's.
  const [paging, setPaging] = useState({ order, cursors: [undefined] as (string | undefined)[] });
  const cursors = paging.order === order ? paging.cursors : [undefined];
  const setCursors = (next: (string | undefined)[]) => setPaging({ order, cursors: next });
  const [page, setPage] = useState<Page>();
  const [error, setError] = useState<string>();
  const after = cursors[cursors.length - 1];

  useEffect(() => {
    let stale = false;
    setError(undefined);
    api.request<{ subTasks: Connection }>(LIST_SUB_TASKS, { parentId: parent.id, first: PAGE_SIZE, after }).then(
      ({ data }) => {
        if (stale) return;
        const { edges, pageInfo } = data.subTasks;
        setPage({ rows: edges.map((edge) => edge.node), ...pageInfo });
      },
      (failure: unknown) => !stale && setError(failure instanceof Error ? failure.message : String(failure)),
    );
    return () => {
      stale = true;
    };
  }, [parent.id, order, after, api.session.token]);

  const ids = page?.rows.map((row) => row.id) ?? [];
  useWatch(ids.length ? { url: api.endpoint, token: api.session.token, filter: { ids } } : undefined, (tasks) =>
    setPage((current) => {
      if (!current) return current;
      const latest = new Map(tasks.map((task) => [task.id, task]));
      const rows = current.rows.map((row) => {
        const task = latest.get(row.id);
        return task && task.version > row.version ? task : row;
      });
      return { ...current, rows };
    }),
  );

  const number = cursors.length;
  return (
    <div class="sub-tasks">
      <h4>All, in input order</h4>
      {error && <p class="error">{error}</p>}
      {page ? <SubTaskRows tasks={page.rows} onOpen={onOpen} label={`Sub-tasks, page ${number}`} /> : <p class="muted">Loading…</p>}
      <nav class="pager" aria-label="Sub-task pages">
        <button type="button" disabled={number === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous
        </button>
        <span>Page {number}</span>
        <button type="button" disabled={!page?.hasNextPage} onClick={() => page?.endCursor && setCursors([...cursors, page.endCursor])}>
          Next
        </button>
      </nav>
    </div>
  );
}

function SubTaskRows({ tasks, onOpen, label }: { tasks: Task[]; onOpen: (id: string) => void; label: string }) {
  if (!tasks.length) return <p class="muted">None yet.</p>;
  return (
    <ol class="sub-task-rows" aria-label={label}>
      {tasks.map((task) => (
        <li key={task.id} data-id={task.id}>
          <button type="button" class="row-button" onClick={() => onOpen(task.id)}>
            <span class="index">#{task.subTaskIndex}</span>
            <StatusPill status={task.status} />
            <ProgressBar task={task} compact />
            <span class="row-error" title={errorText(task)}>
              {errorText(task) ?? ''}
            </span>
          </button>
        </li>
      ))}
    </ol>
  );
}
