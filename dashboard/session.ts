import type { DashboardPageConfig } from './config.js';

/** Where the token in use came from: shown beside it, and decides what signing out does. */
export type TokenSource = 'link' | 'pasted' | 'development';

/** What a token says about its holder: read, not verified (the server verifies every request). */
export interface Identity {
  tenant: string;
  user: string;
  isAdmin: boolean;
  /** Epoch milliseconds, when the token says. */
  expiresAt?: number;
  /** A viewer token (createViewerToken): it may read and watch only these. */
  viewer?: { ids: string[]; parentId?: string };
}

export interface Session {
  token: string;
  source: TokenSource;
  identity: Identity;
}

const STORAGE_KEY = 'task-dashboard-token';
/** The protected header `typ` of viewer tokens (src/auth/viewer-token.ts). */
const VIEWER_TOKEN_TYPE = 'task-viewer+jwt';

/**
 * The token to start with: one carried by the link (`#token=…`, a fragment
 * so it never reaches a server log), then one kept for this tab, then the
 * embedded default's development token. A link's token is kept for the tab
 * and removed from the address bar, so it is not bookmarked or shared on.
 */
export function startSession(config: DashboardPageConfig, location: Location = window.location): Session | undefined {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const linked = fragment.get('token');
  if (linked) {
    fragment.delete('token');
    const rest = fragment.toString();
    history.replaceState(null, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
    const session = sessionOf(linked, 'link', config);
    if (session) {
      store(linked);
      return session;
    }
  }
  const kept = read();
  const session = kept ? sessionOf(kept, 'pasted', config) : undefined;
  if (session) return session;
  return config.devToken ? sessionOf(config.devToken, 'development', config) : undefined;
}

/** A pasted token, kept for this tab; undefined when it is not a JWT. */
export function signIn(token: string, config: DashboardPageConfig): Session | undefined {
  const value = token.trim().replace(/^Bearer\s+/i, '');
  const session = sessionOf(value, 'pasted', config);
  if (session) store(value);
  return session;
}

/** Forgets this tab's token; the development token, where there is one, takes over. */
export function signOut(config: DashboardPageConfig): Session | undefined {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage disabled: nothing was kept.
  }
  return config.devToken ? sessionOf(config.devToken, 'development', config) : undefined;
}

function sessionOf(token: string, source: TokenSource, config: DashboardPageConfig): Session | undefined {
  const identity = identityOf(token, config);
  return identity && { token, source, identity };
}

/** The claims of a JWT, decoded without verification, or undefined when it is not one. */
export function identityOf(token: string, config: DashboardPageConfig): Identity | undefined {
  const [header, payload] = token.split('.').slice(0, 2).map(decodePart);
  if (!header || !payload) return undefined;
  const expiresAt = typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
  if (
    String(header.typ ?? '')
      .toLowerCase()
      .replace(/^application\//, '') === VIEWER_TOKEN_TYPE
  ) {
    const scope = (payload.scope ?? {}) as { ids?: unknown; parentId?: unknown };
    const ids = Array.isArray(scope.ids) ? scope.ids.filter((id): id is string => typeof id === 'string') : [];
    const parentId = typeof scope.parentId === 'string' ? scope.parentId : undefined;
    return { tenant: String(payload.tenant ?? ''), user: String(payload.sub ?? ''), isAdmin: false, expiresAt, viewer: { ids, parentId } };
  }
  return {
    tenant: String(payload[config.claims.tenant] ?? ''),
    user: String(payload[config.claims.user] ?? ''),
    isAdmin: rolesOf(payload[config.claims.roles]).includes(config.adminRole),
    expiresAt,
  };
}

/** Roles as the server reads them: an array, JSON text or comma-separated text. */
function rolesOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== 'string') return [];
  try {
    const parsed: unknown = JSON.parse(value);
    if (Array.isArray(parsed)) return parsed.map(String);
  } catch {
    // Not JSON: comma-separated.
  }
  return value.split(',').map((role) => role.trim());
}

function decodePart(part: string | undefined): Record<string, unknown> | undefined {
  if (!part) return undefined;
  try {
    const binary = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const value: unknown = JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function read(): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

function store(token: string): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    // Storage disabled: the token lasts until the page is left.
  }
}
