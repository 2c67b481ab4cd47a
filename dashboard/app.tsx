import type { ComponentChildren } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { gql } from './api.js';
import { ConnectionBadge } from './badge.js';
import type { DashboardPageConfig } from './config.js';
import { ApiContext, type Api } from './context.js';
import type { TaskFilter } from './documents.js';
import { Filters } from './filters.js';
import { shortTime } from './format.js';
import type { LiveState } from './live.js';
import { signIn, signOut, startSession, type Session } from './session.js';
import { SignIn } from './sign-in.js';
import { TaskDetail } from './task-detail.js';
import { TaskList } from './task-list.js';
import { ViewerList } from './viewer-list.js';

/** The open task lives in the address (`#task=<id>`), so Back closes it and a link opens it. */
const selectedFromHash = () => new URLSearchParams(location.hash.slice(1)).get('task') ?? undefined;

export function App({ config }: { config: DashboardPageConfig }) {
  const [session, setSession] = useState<Session | undefined>(() => startSession(config));
  const [notice, setNotice] = useState<string>();
  const [changingToken, setChangingToken] = useState(false);
  const [selectedId, setSelectedId] = useState(() => selectedFromHash() ?? defaultSelection(session));
  const [filter, setFilter] = useState<TaskFilter>({ kind: 'TASK' });
  const [live, setLive] = useState<{ state: LiveState; error?: string }>({ state: 'connecting' });

  useEffect(() => {
    const onHash = () => setSelectedId(selectedFromHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  const api = useMemo<Api | undefined>(
    () =>
      session && {
        session,
        endpoint: config.graphqlPath,
        request: (query, variables) => gql(config.graphqlPath, session.token, query, variables),
        onUnauthenticated: (message) => {
          setNotice(`The token was refused: ${message}`);
          setSession(signOut({ ...config, devToken: undefined }));
        },
      },
    [session],
  );

  const useToken = (token: string) => {
    const next = signIn(token, config);
    if (!next) return 'That is not a JWT: paste the whole token.';
    setSession(next);
    setNotice(undefined);
    setChangingToken(false);
    setSelectedId(defaultSelection(next));
    return undefined;
  };
  const useDevelopmentToken = config.devToken
    ? () => {
        setSession(signOut(config));
        setNotice(undefined);
        setChangingToken(false);
      }
    : undefined;

  if (!api || changingToken) {
    return (
      <>
        <Header />
        <SignIn
          notice={notice}
          onToken={useToken}
          onDevelopmentToken={useDevelopmentToken}
          onBack={api ? () => setChangingToken(false) : undefined}
        />
      </>
    );
  }

  const { identity } = api.session;
  const open = (id: string) => {
    location.hash = `task=${encodeURIComponent(id)}`;
  };
  const close = () => {
    history.pushState(null, '', location.pathname + location.search);
    setSelectedId(undefined);
  };
  const onLiveState = (state: LiveState, error?: string) => setLive({ state, error });
  return (
    <ApiContext.Provider value={api}>
      <Header>
        <ConnectionBadge state={live.state} error={live.error} />
        <span class="who">
          {identity.viewer ? 'Viewer link' : identity.user || 'Signed in'} · tenant <strong>{filter.tenantCode ?? identity.tenant}</strong>
          {identity.isAdmin ? ' · admin' : ''}
          {api.session.source === 'development' ? ' · development token' : ''}
          {identity.expiresAt ? ` · until ${shortTime(new Date(identity.expiresAt).toISOString())}` : ''}
        </span>
        <button type="button" onClick={() => setChangingToken(true)}>
          Change token
        </button>
      </Header>
      <main class={selectedId ? 'layout with-detail' : 'layout'}>
        <div class="list-column">
          {identity.viewer ? (
            <ViewerList scope={identity.viewer} selectedId={selectedId} onLiveState={onLiveState} />
          ) : (
            <>
              <Filters filter={filter} onChange={setFilter} canSwitchTenant={identity.isAdmin} />
              <TaskList filter={filter} selectedId={selectedId} onLiveState={onLiveState} />
            </>
          )}
        </div>
        {selectedId && <TaskDetail key={selectedId} id={selectedId} onOpen={open} onClose={close} />}
      </main>
    </ApiContext.Provider>
  );
}

function Header({ children }: { children?: ComponentChildren }) {
  return (
    <header class="top">
      <h1>Tasks</h1>
      {children}
    </header>
  );
}

/** A viewer link about one task (or one Step Functions task) opens on it. */
function defaultSelection(session: Session | undefined): string | undefined {
  const viewer = session?.identity.viewer;
  if (!viewer) return undefined;
  if (viewer.parentId) return viewer.parentId;
  return viewer.ids.length === 1 ? viewer.ids[0] : undefined;
}
