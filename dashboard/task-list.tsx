import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';
import { BulkCancel } from './bulk-cancel.js';
import { useApi } from './context.js';
import { isTerminal, LIST_TASKS, type Connection, type Task, type TaskFilter } from './documents.js';
import { shortId, shortTime } from './format.js';
import { emptyList, loadingPage, pageLoaded, taskChanged, type ListState, type PageContext } from './list-state.js';
import { useWatch, type LiveState } from './live.js';
import { ProgressBar } from './progress.js';
import { StatusPill } from './status-pill.js';

const PAGE_SIZE = 25;
/** A page grows by live insertions up to this; past it new tasks are only counted. */
const MAX_ROWS = 100;
/** A watch resumes from a little before the page was read, by the server's clock (its Date header has whole seconds). */
const RESUME_SLACK_MS = 2_000;

/**
 * Top-level tasks, a page at a time (the API's cursors; nothing more is
 * ever loaded), kept live by one watch of the filter's kind, type and tenant.
 */
export function TaskList(props: { filter: TaskFilter; selectedId?: string; onLiveState: (state: LiveState, error?: string) => void }) {
  const api = useApi();
  const { filter } = props;
  const [pageInfo, setPageInfo] = useState({ hasNextPage: false, endCursor: null as string | null });
  const [list, setList] = useState<ListState>(emptyList);
  const [error, setError] = useState<string>();
  const [reloads, setReloads] = useState(0);
  // Statuses and dates are applied here; the watch is by what the server filters on.
  const watchKey = JSON.stringify([filter.kind, filter.taskType, filter.tenantCode, api.session.token]);
  const [since, setSince] = useState<{ key: string; at: string }>();
  const filterKey = JSON.stringify(filter);
  // The `after` cursors of the pages before this one and of this one; a new filter starts from the first page.
  const [paging, setPaging] = useState({ key: filterKey, cursors: [undefined] as (string | undefined)[] });
  const cursors = paging.key === filterKey ? paging.cursors : [undefined];
  const setCursors = (next: (string | undefined)[]) => setPaging({ key: filterKey, cursors: next });
  const after = cursors[cursors.length - 1];
  const context = useRef<PageContext | undefined>(undefined);
  context.current = { filter, first: cursors.length === 1, hasNextPage: pageInfo.hasNextPage, maxRows: MAX_ROWS };

  useEffect(() => {
    let stale = false;
    setList(loadingPage);
    setError(undefined);
    const variables = { filter: { ...filter, order: 'DESC' }, first: PAGE_SIZE, after };
    api.request<{ tasks: Connection }>(LIST_TASKS, variables).then(
      ({ data, serverTime }) => {
        if (stale) return;
        const info = data.tasks.pageInfo;
        setPageInfo(info);
        const rows = data.tasks.edges.map((edge) => edge.node);
        setList((current) => pageLoaded(rows, current.held, { ...context.current!, hasNextPage: info.hasNextPage }));
        setSince((current) =>
          current?.key === watchKey ? current : { key: watchKey, at: new Date(serverTime.getTime() - RESUME_SLACK_MS).toISOString() },
        );
      },
      (failure: unknown) => {
        if (stale) return;
        if (failure instanceof ApiError && failure.code === 'UNAUTHENTICATED') api.onUnauthenticated(failure.message);
        setError(failure instanceof Error ? failure.message : String(failure));
        setList((current) => ({ ...current, loading: false }));
      },
    );
    return () => {
      stale = true;
    };
  }, [filterKey, after, reloads, api.session.token]);

  // Started once the first page is here, from just before it was read: nothing falls between the two.
  const spec =
    since?.key === watchKey
      ? {
          url: api.endpoint,
          token: api.session.token,
          filter: { kind: filter.kind, taskType: filter.taskType, tenantCode: filter.tenantCode },
          since: since.at,
        }
      : undefined;
  const live = useWatch(spec, (tasks) =>
    setList((current) => tasks.reduce((state, task) => taskChanged(state, task, context.current!), current)),
  );
  const { onLiveState } = props;
  useEffect(() => onLiveState(spec ? live.state : 'connecting', live.error), [live.state, live.error, !spec]);

  const number = cursors.length;
  const unseen = list.unseen.size;
  const canBulkCancel = !filter.status || !isTerminal(filter.status);
  return (
    <section class="list" aria-labelledby="list-title" aria-busy={list.loading}>
      <div class="list-header">
        <h2 id="list-title">{filter.kind === 'SFN_TASK' ? 'Step Functions tasks' : 'Tasks'}</h2>
        <button type="button" onClick={() => setReloads(reloads + 1)} disabled={list.loading}>
          Refresh
        </button>
        {canBulkCancel && <BulkCancel filter={filter} />}
      </div>
      {unseen > 0 && (
        <button type="button" class="new-hint" onClick={() => (number === 1 ? setReloads(reloads + 1) : setCursors([undefined]))}>
          {unseen} new — show
        </button>
      )}
      {error && <p class="error">{error}</p>}
      {!list.loading && !error && list.rows.length === 0 && <p class="muted">No tasks match.</p>}
      <ol class="task-rows" aria-label={`Tasks, page ${number}`}>
        {list.rows.map((task) => (
          <TaskRow key={task.id} task={task} selected={task.id === props.selectedId} />
        ))}
      </ol>
      <nav class="pager" aria-label="Task pages">
        <button type="button" disabled={number === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous
        </button>
        <span>Page {number}</span>
        <button
          type="button"
          disabled={!pageInfo.hasNextPage || list.loading}
          onClick={() => pageInfo.endCursor && setCursors([...cursors, pageInfo.endCursor])}
        >
          Next
        </button>
      </nav>
    </section>
  );
}

/** One task as a link to its detail (`#task=<id>`): the address can be shared, and Back closes it. */
export function TaskRow({ task, selected }: { task: Task; selected: boolean }) {
  return (
    <li class="task-row" data-id={task.id} data-status={task.status}>
      <a href={`#task=${encodeURIComponent(task.id)}`} aria-current={selected ? 'true' : undefined}>
        <span class="row-name">
          <span class="name">{task.name}</span>
          <span class="mono muted">…{shortId(task)}</span>
        </span>
        <span class="row-type">{task.type}</span>
        <StatusPill status={task.status} />
        <span class="row-progress">
          <ProgressBar task={task} compact />
        </span>
        <time class="row-time" dateTime={task.updatedAt}>
          {shortTime(task.updatedAt)}
        </time>
      </a>
    </li>
  );
}
