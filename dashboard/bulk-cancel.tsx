import { useRef, useState } from 'preact/hooks';
import { ConfirmDialog } from './confirm.js';
import { useApi } from './context.js';
import { CANCEL_TASKS, type BulkCancelResult, type TaskFilter } from './documents.js';

/** The most cancelTasks takes per call; the page calls again while some remain. */
const BATCH = 100;

/** Cancels every unfinished task the list's filter matches, in batches, after asking. */
export function BulkCancel({ filter }: { filter: TaskFilter }) {
  const api = useApi();
  const [asking, setAsking] = useState<string>();
  const [running, setRunning] = useState(false);
  const [outcome, setOutcome] = useState<{ kind: 'ok' | 'error'; text: string }>();
  const stop = useRef(false);

  const run = async (createdBefore: string) => {
    setAsking(undefined);
    setRunning(true);
    stop.current = false;
    const total = { cancelled: 0, skipped: 0 };
    const variables = {
      filter: { kind: filter.kind, taskType: filter.taskType, status: filter.status, createdBefore, tenantCode: filter.tenantCode },
      first: BATCH,
    };
    const say = (kind: 'ok' | 'error', text: string) => setOutcome({ kind, text });
    try {
      let remaining = true;
      while (remaining && !stop.current) {
        const { data } = await api.request<{ cancelTasks: BulkCancelResult }>(CANCEL_TASKS, variables);
        total.cancelled += data.cancelTasks.cancelled;
        total.skipped += data.cancelTasks.skipped;
        remaining = data.cancelTasks.remaining;
        say('ok', `Cancelled ${total.cancelled}, skipped ${total.skipped} (already finished)${remaining ? '; continuing…' : '.'}`);
        if (data.cancelTasks.cancelled + data.cancelTasks.skipped === 0) break;
      }
      if (stop.current) say('ok', `Stopped: cancelled ${total.cancelled}, skipped ${total.skipped}; others may remain.`);
    } catch (error) {
      say('error', `Bulk cancel failed after ${total.cancelled} cancelled: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      setRunning(false);
    }
  };

  const criteria = [
    filter.kind === 'SFN_TASK' ? 'Step Functions task' : 'task',
    filter.taskType && `of type ${filter.taskType}`,
    filter.status && `in status ${filter.status}`,
    filter.tenantCode && `of tenant ${filter.tenantCode}`,
  ].filter(Boolean);

  return (
    <div class="bulk">
      {running ? (
        <button type="button" onClick={() => (stop.current = true)}>
          Stop cancelling
        </button>
      ) : (
        <button type="button" class="danger" onClick={() => setAsking(new Date().toISOString())}>
          Cancel matching…
        </button>
      )}
      <span class={`outcome ${outcome?.kind ?? ''}`} role="status" aria-live="polite">
        {outcome?.text}
      </span>
      {asking && (
        <ConfirmDialog
          title="Cancel every matching task?"
          confirmLabel="Cancel them"
          onConfirm={() => run(asking)}
          onCancel={() => setAsking(undefined)}
        >
          <p>
            Every unfinished top-level {criteria.join(' ')} created before {new Date(asking).toLocaleString()} ends as FAILED with error
            CANCELLED, {BATCH} at a time.
          </p>
          {filter.updatedSince && <p class="muted">The "Updated since" filter does not narrow this.</p>}
        </ConfirmDialog>
      )}
    </div>
  );
}
