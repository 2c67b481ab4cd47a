import type { LiveState } from './live.js';

const LABELS: Record<LiveState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  done: 'All finished',
};

/** The live connection's state; announced politely when it changes. */
export function ConnectionBadge({ state, error }: { state: LiveState; error?: string }) {
  return (
    <span class={`badge ${state}`} role="status" aria-live="polite" data-state={state} title={error}>
      <span class="dot" aria-hidden="true" />
      {LABELS[state]}
    </span>
  );
}
