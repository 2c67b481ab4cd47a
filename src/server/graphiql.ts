import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GraphiQLOptions } from 'graphql-yoga';
import { inertJson, sendStaticAsset, staticAsset, type StaticAsset } from './static-asset.js';

/**
 * GraphiQL served from this process, never from a CDN: yoga's default page
 * loads every script and stylesheet from unpkg.com, so offline, behind a
 * strict CSP or in an air-gapped network it stays blank.
 *
 * The bundle is yoga's own (`@graphql-yoga/render-graphiql`: GraphiQL, Monaco
 * and their workers, no network references). Its page inlines all ~9 MB on
 * every GET; here the page is small and links the pieces as files under
 * GRAPHIQL_ASSETS_PATH, content-hashed and cached, gzipped when accepted.
 *
 * Tokens: when the server pre-fills none (any configured JWT_SECRET or
 * JWKS_URL), a bar above the editor takes one, keeps it in sessionStorage
 * (this tab only, gone when it closes) and sends it with every request,
 * schema introspection included.
 */
export const GRAPHIQL_ASSETS_PATH = '/graphiql/';

interface Assets {
  /** Content hash: part of every asset URL, so they can be cached for good. */
  version: string;
  files: Map<string, StaticAsset>;
}

let loading: Promise<Assets> | undefined;

/** Loaded on first use: the bundle is ~9 MB of source, not worth parsing in a process that never serves it. */
function assets(): Promise<Assets> {
  loading ??= (async () => {
    const bundle = await import('@graphql-yoga/render-graphiql/graphiql');
    const sources: [string, string, string][] = [
      ['graphiql.js', 'text/javascript', bundle.js],
      ['graphiql.css', 'text/css', bundle.css],
      ['editor.worker.js', 'text/javascript', bundle.editorWorkerService],
      ['json.worker.js', 'text/javascript', bundle.jsonWorker],
      ['graphql.worker.js', 'text/javascript', bundle.graphqlWorker],
      ['boot.js', 'text/javascript', BOOT_SCRIPT],
    ];
    const hash = createHash('sha256');
    for (const [, , text] of sources) hash.update(text);
    const files = new Map<string, StaticAsset>();
    for (const [name, type, text] of sources) files.set(name, await staticAsset(`${type}; charset=utf-8`, Buffer.from(text)));
    const icon = /^data:([^;,]+);base64,(.*)$/s.exec(bundle.favicon);
    if (icon) files.set('favicon.ico', await staticAsset(icon[1]!, Buffer.from(icon[2]!, 'base64')));
    return { version: hash.digest('hex').slice(0, 12), files };
  })();
  loading.catch(() => (loading = undefined));
  return loading;
}

/** yoga's `renderGraphiQL`: the page, linking the assets by their versioned URLs. */
export async function renderGraphiQL(options: GraphiQLOptions = {}): Promise<string> {
  const { version } = await assets();
  const base = `${GRAPHIQL_ASSETS_PATH}${version}/`;
  const title = escapeHtml(options.title ?? 'GraphiQL');
  // Inert data for boot.js.
  const data = inertJson({ options, assets: base });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · GraphiQL</title>
<link rel="icon" href="${base}favicon.ico">
<link rel="stylesheet" href="${base}graphiql.css">
<style>
html, body { height: 100%; margin: 0; }
body { display: flex; flex-direction: column; font: 14px system-ui, sans-serif; }
#root { flex: 1; min-height: 0; }
#token-bar { display: flex; gap: 8px; align-items: center; padding: 6px 12px; border-bottom: 1px solid #d0d4dc; background: #f6f7f9; }
#token-bar[hidden] { display: none; }
#token-bar input { flex: 1; max-width: 36em; font: inherit; padding: 3px 6px; }
#token-bar button { font: inherit; padding: 3px 10px; }
#token-status { color: #555; }
</style>
</head>
<body>
<noscript>GraphiQL needs JavaScript.</noscript>
<form id="token-bar" hidden>
<label for="token-input">Bearer token</label>
<input id="token-input" type="password" autocomplete="off" placeholder="eyJhbGciOi… (npm run token -- --tenant …)">
<button type="submit">Use token</button>
<button type="button" id="token-forget" hidden>Forget</button>
<span id="token-status" role="status"></span>
</form>
<div id="root"></div>
<script type="application/json" id="graphiql-data">${data}</script>
<script src="${base}boot.js"></script>
<script src="${base}graphiql.js"></script>
</body>
</html>
`;
}

/** Serves GRAPHIQL_ASSETS_PATH<version>/<file>; false when the path is not one of them. */
export async function serveGraphiQLAsset(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  if (!path.startsWith(GRAPHIQL_ASSETS_PATH)) return false;
  const [version, name, ...rest] = path.slice(GRAPHIQL_ASSETS_PATH.length).split('/');
  let loaded: Assets;
  try {
    loaded = await assets();
  } catch {
    res.writeHead(500, { 'content-type': 'text/plain' }).end('GraphiQL assets failed to load');
    return true;
  }
  const asset = rest.length === 0 && version === loaded.version ? loaded.files.get(name ?? '') : undefined;
  if (!asset || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found');
    return true;
  }
  sendStaticAsset(req, res, asset, { 'cache-control': 'public, max-age=31536000, immutable' });
  return true;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Runs before the bundle: Monaco's worker URLs, the token bar, then GraphiQL
 * once the bundle has loaded. A file rather than inline script (no CSP has
 * been tested against the page, though).
 */
const BOOT_SCRIPT = `(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('graphiql-data').textContent);
  var options = data.options;
  var KEY = 'graphiql-token:' + location.pathname;
  var workers = { editorWorkerService: 'editor.worker.js', json: 'json.worker.js', graphql: 'graphql.worker.js' };
  self.MonacoEnvironment = {
    globalAPI: false,
    getWorkerUrl: function (_moduleId, label) { return data.assets + (workers[label] || workers.editorWorkerService); },
  };

  // A pre-filled headers editor (the embedded default's development token) needs no bar.
  if (!options.headers) {
    var bar = document.getElementById('token-bar');
    var input = document.getElementById('token-input');
    var forget = document.getElementById('token-forget');
    var status = document.getElementById('token-status');
    var token = null;
    try { token = sessionStorage.getItem(KEY); } catch (e) { /* storage disabled: the headers editor still works */ }
    bar.hidden = false;
    if (token) {
      options.additionalHeaders = Object.assign({}, options.additionalHeaders, { Authorization: 'Bearer ' + token });
      status.textContent = 'Token set for this tab; sent with every request.';
      forget.hidden = false;
    } else {
      status.textContent = 'Requests, the schema included, need a token.';
    }
    bar.addEventListener('submit', function (event) {
      event.preventDefault();
      var value = input.value.trim().replace(/^Bearer\\s+/i, '');
      if (!value) return;
      try { sessionStorage.setItem(KEY, value); } catch (e) { status.textContent = 'sessionStorage is unavailable.'; return; }
      location.reload(); // GraphiQL fetches the schema once, at start: start again with the token.
    });
    forget.addEventListener('click', function () {
      try { sessionStorage.removeItem(KEY); } catch (e) { /* nothing stored */ }
      location.reload();
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    YogaGraphiQL.renderYogaGraphiQL(document.getElementById('root'), options);
  });
})();
`;
