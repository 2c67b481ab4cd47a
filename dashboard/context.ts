import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { ApiResult } from './api.js';
import type { Session } from './session.js';

/** What every part of the page needs to reach the API as the signed-in holder. */
export interface Api {
  session: Session;
  /** The GraphQL endpoint, for HTTP and (as ws://) WebSocket. */
  endpoint: string;
  request<T>(query: string, variables?: Record<string, unknown>): Promise<ApiResult<T>>;
  /** The token was refused (expired or revoked): back to signing in. */
  onUnauthenticated(message: string): void;
}

export const ApiContext = createContext<Api | undefined>(undefined);

export function useApi(): Api {
  const api = useContext(ApiContext);
  if (!api) throw new Error('useApi outside ApiContext');
  return api;
}
