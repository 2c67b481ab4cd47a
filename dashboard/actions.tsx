import { useState } from 'preact/hooks';
import { ApiError } from './api.js';
import { ConfirmDialog } from './confirm.js';
import { useApi } from './context.js';
import { CANCEL_TASK, isTerminal, RERUN_TASK, type Task } from './documents.js';
import { subTaskCounts } from './format.js';

type Outcome = { kind: 'ok' | 'error'; text: string; openId?: string };

/** Cancel or re-run one task: each asks first, then says what happened. */
export function TaskActions({ task, onOpen }: { task: Task; onOpen: (id: string) => void }) {
  const api = useApi();
  const [asking, setAsking] = useState<'cancel' | 'rerun'>();
  const [onlyFailed, setOnlyFailed] = useState(false);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome>();
  const failed = subTaskCounts(task)?.failed ?? 0;
  const canRerun = isTerminal(task.status) && !task.parentId;

  const run = async (action: 'cancel' | 'rerun') => {
    setAsking(undefined);
    setBusy(true);
    setOutcome(undefined);
    try {
      if (action === 'cancel') {
        const { data } = await api.request<{ cancelTask: Task }>(CANCEL_TASK, { id: task.id });
        setOutcome({ kind: 'ok', text: `Cancelled: the task is ${data.cancelTask.status} (version ${data.cancelTask.version}).` });
      } else {
        const variables = { id: task.id, onlyFailed: task.kind === 'SFN_TASK' && onlyFailed ? true : undefined };
        const { data } = await api.request<{ rerunTask: Task }>(RERUN_TASK, variables);
        setOutcome({ kind: 'ok', text: `Re-run started as task …${data.rerunTask.code.slice(-8)}.`, openId: data.rerunTask.id });
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') api.onUnauthenticated(message);
      setOutcome({ kind: 'error', text: `${action === 'cancel' ? 'Cancel' : 'Re-run'} failed: ${message}` });
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="actions" aria-label="Actions">
      <div class="buttons">
        {!isTerminal(task.status) && (
          <button type="button" class="danger" disabled={busy} onClick={() => setAsking('cancel')}>
            Cancel task…
          </button>
        )}
        {canRerun && (
          <button
            type="button"
            disabled={busy}
            onClick={() => {
              setOnlyFailed(failed > 0);
              setAsking('rerun');
            }}
          >
            Re-run…
          </button>
        )}
      </div>
      <p class={`outcome ${outcome?.kind ?? ''}`} role="status" aria-live="polite">
        {outcome?.text}{' '}
        {outcome?.openId && (
          <button type="button" class="link" onClick={() => onOpen(outcome.openId!)}>
            Open it
          </button>
        )}
      </p>
      {asking === 'cancel' && (
        <ConfirmDialog
          title="Cancel this task?"
          confirmLabel="Cancel task"
          onConfirm={() => run('cancel')}
          onCancel={() => setAsking(undefined)}
        >
          <p>
            <strong>{task.name}</strong> ({task.status}) will end as FAILED with error CANCELLED
            {task.kind === 'SFN_TASK' ? ', with its unfinished sub-tasks' : ''}. A running handler is told to stop.
          </p>
        </ConfirmDialog>
      )}
      {asking === 'rerun' && (
        <ConfirmDialog title="Re-run this task?" confirmLabel="Re-run" onConfirm={() => run('rerun')} onCancel={() => setAsking(undefined)}>
          <p>
            A new task of type <strong>{task.type}</strong> is created with the same input; this one stays as it is.
          </p>
          {task.kind === 'SFN_TASK' && failed > 0 && (
            <label class="check">
              <input type="checkbox" checked={onlyFailed} onChange={(event) => setOnlyFailed(event.currentTarget.checked)} />
              Only the {failed} failed sub-task{failed === 1 ? '' : 's'}
            </label>
          )}
        </ConfirmDialog>
      )}
    </section>
  );
}
