import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { TaskActions } from './actions.js';
import { ApiError } from './api.js';
import { useApi } from './context.js';
import { GET_TASK, type FullTask, type Task } from './documents.js';
import { errorText, json, longTime } from './format.js';
import { useWatch } from './live.js';
import { CountsBar, ProgressBar } from './progress.js';
import { StatusPill } from './status-pill.js';
import { SubTasks } from './sub-tasks.js';

/** One task: what it was given, where it stands, what it produced; kept live while open. */
export function TaskDetail({ id, onOpen, onClose }: { id: string; onOpen: (id: string) => void; onClose: () => void }) {
  const api = useApi();
  const [task, setTask] = useState<FullTask | null>();
  const [error, setError] = useState<string>();
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    let stale = false;
    setTask(undefined);
    setError(undefined);
    api.request<{ task: FullTask | null }>(GET_TASK, { id }).then(
      ({ data }) => !stale && setTask(data.task),
      (failure: unknown) => {
        if (stale) return;
        if (failure instanceof ApiError && failure.code === 'UNAUTHENTICATED') api.onUnauthenticated(failure.message);
        setError(failure instanceof Error ? failure.message : String(failure));
      },
    );
    return () => {
      stale = true;
    };
  }, [id, api.session.token]);

  // Moves focus here when a task is opened, so keyboard and screen-reader users land on it.
  useEffect(() => heading.current?.focus(), [id, task === undefined]);

  // The current state first (a watch by ids starts with it), then every change; `input` never changes.
  useWatch({ url: api.endpoint, token: api.session.token, filter: { ids: [id] } }, (tasks: Task[]) =>
    setTask((current) => {
      const latest = tasks.find((t) => t.id === id);
      return current && latest && latest.version > current.version ? { ...latest, input: current.input } : current;
    }),
  );

  if (error)
    return (
      <Panel heading={heading} title="Task" onClose={onClose}>
        <p class="error">{error}</p>
      </Panel>
    );
  if (task === undefined)
    return (
      <Panel heading={heading} title="Task" onClose={onClose}>
        <p class="muted">Loading…</p>
      </Panel>
    );
  if (task === null)
    return (
      <Panel heading={heading} title="Task" onClose={onClose}>
        <p class="error">No such task in this tenant.</p>
      </Panel>
    );

  const failure = errorText(task);
  const result = task.attributes.result;
  const { result: _result, error: _error, progress: _progress, subTasks: _subTasks, ...attributes } = task.attributes;
  return (
    <Panel heading={heading} title={task.name} onClose={onClose}>
      <div class="detail-status">
        <StatusPill status={task.status} />
        <ProgressBar task={task} />
      </div>
      <dl class="facts">
        <dt>Id</dt>
        <dd class="mono">{task.id}</dd>
        <dt>Kind · type</dt>
        <dd>
          {task.kind === 'SFN_TASK' ? 'Step Functions' : 'Task'} · {task.type}
        </dd>
        <dt>Version</dt>
        <dd data-field="version">{task.version}</dd>
        <dt>Attempt</dt>
        <dd data-field="attempt">{task.attempt ?? '—'}</dd>
        <dt>Created</dt>
        <dd>
          <time dateTime={task.createdAt}>{longTime(task.createdAt)}</time>
          {task.createdBy ? ` by ${task.createdBy}` : ''}
        </dd>
        <dt>Updated</dt>
        <dd>
          <time dateTime={task.updatedAt}>{longTime(task.updatedAt)}</time>
          {task.updatedBy ? ` by ${task.updatedBy}` : ''}
        </dd>
        {task.rerunOf && (
          <>
            <dt>Re-run of</dt>
            <dd>
              <button type="button" class="link mono" onClick={() => onOpen(task.rerunOf!)}>
                …{task.rerunOf.slice(-8)}
              </button>
            </dd>
          </>
        )}
        {task.parentId && (
          <>
            <dt>Sub-task of</dt>
            <dd>
              <button type="button" class="link mono" onClick={() => onOpen(task.parentId!)}>
                …{task.parentId.slice(-8)}
              </button>{' '}
              (#{task.subTaskIndex})
            </dd>
          </>
        )}
      </dl>
      {!api.session.identity.viewer && <TaskActions task={task} onOpen={onOpen} />}
      {failure && (
        <section aria-label="Error">
          <h3>Error</h3>
          <pre class="error-box">{json(task.attributes.error)}</pre>
        </section>
      )}
      {result !== undefined && (
        <section aria-label="Result">
          <h3>Result</h3>
          <pre>{json(result)}</pre>
        </section>
      )}
      {task.kind === 'SFN_TASK' && (
        <section aria-label="Sub-tasks">
          <h3>Sub-tasks</h3>
          <CountsBar task={task} />
          <SubTasks parent={task} onOpen={onOpen} />
        </section>
      )}
      <details>
        <summary>Input</summary>
        <pre>{json(task.input)}</pre>
      </details>
      {Object.keys(attributes).length > 0 && (
        <details>
          <summary>Attributes</summary>
          <pre>{json(attributes)}</pre>
        </details>
      )}
    </Panel>
  );
}

function Panel(props: {
  heading: { current: HTMLHeadingElement | null };
  title: string;
  onClose: () => void;
  children: ComponentChildren;
}) {
  return (
    <article class="detail" aria-labelledby="detail-title">
      <header class="detail-header">
        <h2 id="detail-title" tabIndex={-1} ref={props.heading}>
          {props.title}
        </h2>
        <button type="button" class="icon" onClick={props.onClose} aria-label="Close task">
          ×
        </button>
      </header>
      {props.children}
    </article>
  );
}
