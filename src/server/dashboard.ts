import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { packageRoot } from '../package-root.js';
import { DASHBOARD_PATH, type DashboardPageConfig } from './dashboard-page-config.js';
import { inertJson, sendStaticAsset, staticAsset, type StaticAsset } from './static-asset.js';

/**
 * The dashboard (dashboard/, bundled by scripts/build-dashboard.ts into
 * dist/dashboard) served at DASHBOARD_PATH from this process, never a CDN.
 * The files are read once and gzipped once; the hashed assets are cached for
 * good, the page itself is never cached (it names the current assets and
 * carries this server's settings). A missing build answers 503 with what to
 * run, and is looked for again on the next request.
 */
export interface DashboardOptions {
  /** The built files. @default `<package root>/dist/dashboard` */
  dir?: string;
  /** Inlined in the page as JSON. */
  page: DashboardPageConfig;
}

/** Serves the dashboard's paths; false for any other path. */
export type DashboardHandler = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean>;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** esbuild's `[name]-[hash]` names: a file under one never changes, so it is cached for a year. */
const HASHED = /-[A-Z0-9]{8}\.[a-z.]+$/;

/**
 * Only this origin: scripts and styles are files of the bundle (the page's
 * settings are inert JSON), and the API is on the same host (ws: included).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const NOT_BUILT = 'The dashboard is not built: run `npm run build` (it bundles dashboard/ into dist/dashboard).\n';

export function createDashboard(options: DashboardOptions): DashboardHandler {
  const dir = options.dir ?? join(packageRoot(import.meta.url), 'dist', 'dashboard');
  let loading: Promise<Map<string, StaticAsset> | undefined> | undefined;

  const files = (): Promise<Map<string, StaticAsset> | undefined> => {
    loading ??= load(dir, options.page).catch(() => undefined);
    // Not built yet (or unreadable): look again next time, so a build made meanwhile is picked up.
    void loading.then((loaded) => {
      if (!loaded) loading = undefined;
    });
    return loading;
  };

  return async (req, res, path) => {
    if (path !== DASHBOARD_PATH && !path.startsWith(`${DASHBOARD_PATH}/`)) return false;
    const loaded = await files();
    if (!loaded) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(NOT_BUILT);
      return true;
    }
    const name = path.slice(DASHBOARD_PATH.length + 1) || 'index.html';
    const file = loaded.get(name);
    if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
      return true;
    }
    sendStaticAsset(req, res, file, {
      'cache-control': HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
      ...(name === 'index.html' && {
        'content-security-policy': CONTENT_SECURITY_POLICY,
        'referrer-policy': 'no-referrer',
      }),
    });
    return true;
  };
}

/** Every built file, by name; undefined when there is no build. */
async function load(dir: string, page: DashboardPageConfig): Promise<Map<string, StaticAsset> | undefined> {
  const names = (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isFile()).map((e) => e.name);
  if (!names.includes('index.html')) return undefined;
  const files = new Map<string, StaticAsset>();
  for (const name of names) {
    let body = await readFile(join(dir, name));
    if (name === 'index.html') body = Buffer.from(body.toString('utf8').replace('%CONFIG%', () => inertJson(page)));
    files.set(name, await staticAsset(TYPES[extname(name)] ?? 'application/octet-stream', body, 9));
  }
  return files;
}
