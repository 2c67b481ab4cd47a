/**
 * The baseline: a bare `ws` server holding the same number of sockets and
 * broadcasting the same framed message string, triggered the same way (an
 * HTTP POST whose body is the exact frame to send). Sockets join a group from
 * their URL (`/?g=3`); POST /broadcast?g=3 sends to that group only, and
 * without `g` to every socket. It answers graphql-transport-ws
 * `connection_init` with `connection_ack` so the load client's code path is
 * the same as against the service; everything else it receives is ignored.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket } from 'ws';
import { serveIpc, signalReady, signalReadyError } from './lib/ipc.js';
import { processProbe } from './lib/probe.js';

const groups = new Map<string, Set<WebSocket>>();
const all = new Set<WebSocket>();
let sent = 0;

const http = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://bare');
  if (req.method === 'GET' && url.pathname === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    return;
  }
  if (req.method !== 'POST' || url.pathname !== '/broadcast') {
    res.writeHead(404).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const frame = Buffer.concat(chunks).toString('utf8');
    const group = url.searchParams.get('g');
    const targets = group === null ? all : (groups.get(group) ?? new Set<WebSocket>());
    let count = 0;
    for (const socket of targets) {
      if (socket.readyState !== 1) continue;
      socket.send(frame);
      count++;
    }
    sent += count;
    res.writeHead(200, { 'content-type': 'application/json' }).end(`{"sent":${count}}`);
  });
});

const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
wss.on('connection', (socket, req) => {
  const group = new URL(req.url ?? '/', 'http://bare').searchParams.get('g') ?? '0';
  let set = groups.get(group);
  if (!set) groups.set(group, (set = new Set()));
  set.add(socket);
  all.add(socket);
  socket.on('message', (data: Buffer) => {
    if (data.includes('connection_init')) socket.send('{"type":"connection_ack"}');
  });
  socket.on('close', () => {
    set.delete(socket);
    all.delete(socket);
  });
  socket.on('error', () => {});
});

http.listen(0, '127.0.0.1', () => {
  const { port } = http.address() as AddressInfo;
  const probe = processProbe(monitorEventLoopDelay);
  serveIpc({
    ...probe.handlers,
    live: () => ({ connections: all.size, subscriptions: all.size, eventsDelivered: sent }),
    stop: () => {
      setTimeout(() => process.exit(0), 10).unref();
      return true;
    },
  });
  signalReady({ url: `http://127.0.0.1:${port}`, pid: process.pid });
});
http.on('error', (error) => {
  signalReadyError(error);
  setTimeout(() => process.exit(1), 100);
});
