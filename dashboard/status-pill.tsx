import type { TaskStatus } from './documents.js';

/** A status as text with a colour; the text alone carries the meaning. */
export const StatusPill = ({ status }: { status: TaskStatus }) => (
  <span class={`pill ${status.toLowerCase()}`} data-status={status}>
    {status}
  </span>
);
