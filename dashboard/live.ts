import { useEffect, useRef, useState } from 'preact/hooks';
import { watchTasks, type TaskEventFilter, type TaskStatusEvent } from '../src/client/index.js';
import type { Task } from './documents.js';

/** What the connection badge shows. `done`: a watch of named tasks ended because all are finished. */
export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'offline' | 'done';

export interface WatchSpec {
  /** ws:// or http:// URL of the GraphQL endpoint. */
  url: string;
  token: string;
  filter: TaskEventFilter;
  /** Resume point: a cursor or an ISO timestamp; undefined for live changes only. */
  since?: string;
}

/** Changes are handed over in batches: a burst of events is one render, not hundreds. */
const BATCH_MS = 50;

/**
 * Watches task changes with the package's client (`watchTasks`), which
 * resumes with `since` after every reconnection. `spec` undefined watches
 * nothing; a new spec (compared by value) starts a new watch. `onTasks`
 * receives the latest state of each changed task, newest version only.
 */
export function useWatch(spec: WatchSpec | undefined, onTasks: (tasks: Task[]) => void): { state: LiveState; error?: string } {
  const [status, setStatus] = useState<{ state: LiveState; error?: string }>({ state: 'connecting' });
  const deliver = useRef(onTasks);
  deliver.current = onTasks;
  const key = spec && JSON.stringify(spec);

  useEffect(() => {
    if (!spec) return;
    setStatus({ state: navigator.onLine ? 'connecting' : 'offline' });
    let batch = new Map<string, Task>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      const tasks = [...batch.values()];
      batch = new Map();
      if (tasks.length) deliver.current(tasks);
    };
    const watch = watchTasks<TaskStatusEvent>({
      url: new URL(spec.url, location.href).href,
      token: spec.token,
      filter: spec.filter,
      since: spec.since,
      // A dashboard waits for the service as long as it is open; the badge says so.
      retryAttempts: Number.POSITIVE_INFINITY,
      retryWait: (retries) =>
        new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** retries) * (0.5 + Math.random() / 2))),
      onEvent: (event) => {
        const held = batch.get(event.task.id);
        if (!held || held.version < event.task.version) batch.set(event.task.id, event.task);
        timer ??= setTimeout(flush, BATCH_MS);
      },
      onConnectionChange: (state) => setStatus({ state: state === 'connected' ? 'live' : navigator.onLine ? 'reconnecting' : 'offline' }),
      onError: (error) => setStatus({ state: 'offline', error: error.message }),
      onComplete: () => setStatus({ state: 'done' }),
    });
    return () => {
      watch.dispose();
      clearTimeout(timer);
    };
  }, [key]);

  return spec ? status : { state: 'done' };
}
