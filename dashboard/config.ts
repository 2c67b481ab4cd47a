import type { DashboardPageConfig } from '../src/server/dashboard-page-config.js';

export type { DashboardPageConfig };

const DEFAULTS: DashboardPageConfig = {
  graphqlPath: '/graphql',
  claims: { user: 'sub', tenant: 'custom:tenant', roles: 'custom:roles' },
  adminRole: 'system_admin',
};

/** The configuration the server inlined in the page; the defaults when the page was opened without it. */
export function readPageConfig(doc: Document = document): DashboardPageConfig {
  try {
    const text = doc.getElementById('dashboard-config')?.textContent ?? '';
    const given = JSON.parse(text) as Partial<DashboardPageConfig>;
    return { ...DEFAULTS, ...given, claims: { ...DEFAULTS.claims, ...given.claims } };
  } catch {
    return DEFAULTS;
  }
}
