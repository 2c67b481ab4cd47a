/**
 * What the server tells the dashboard page (dashboard/), inlined in its HTML
 * as JSON. A file of its own, free of Node imports, so the browser code can
 * share the type.
 */
export interface DashboardPageConfig {
  /** Where GraphQL is served, over HTTP and WebSocket. */
  graphqlPath: string;
  /** The embedded default's development token, used until another is given; absent elsewhere. */
  devToken?: string;
  /** Claim names, to show who a token names and offer tenant switching to admins (JWT_*_CLAIM). */
  claims: { user: string; tenant: string; roles: string };
  /** The role that may act on any tenant (JWT_ADMIN_ROLE). */
  adminRole: string;
}

/** Where the dashboard is served: the page, and its assets below it. */
export const DASHBOARD_PATH = '/dashboard';
