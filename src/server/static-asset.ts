import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

/** A file served from memory: compressed once, sent compressed to clients that accept gzip. */
export interface StaticAsset {
  type: string;
  body: Buffer;
  gzipped: Buffer;
}

const gzipAsync = promisify(gzip);

export async function staticAsset(type: string, body: Buffer, level?: number): Promise<StaticAsset> {
  return { type, body, gzipped: await gzipAsync(body, level === undefined ? {} : { level }) };
}

/** Answers a GET or HEAD with the asset, gzipped when accepted; `headers` adds caching and the like. */
export function sendStaticAsset(req: IncomingMessage, res: ServerResponse, asset: StaticAsset, headers: OutgoingHttpHeaders): void {
  const gzipped = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const body = gzipped ? asset.gzipped : asset.body;
  res.writeHead(200, {
    'content-type': asset.type,
    'content-length': body.length,
    vary: 'accept-encoding',
    ...headers,
    ...(gzipped && { 'content-encoding': 'gzip' }),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** JSON for a `<script type="application/json">`: `<` escaped so no value can close the element. */
export const inertJson = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');
