import { createRequire } from 'node:module';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { claimDataDir } from './data-dir.js';

export interface EmbeddedDynamo {
  endpoint: string;
  close(): Promise<void>;
}

/**
 * DynamoDB's wire protocol served in-process on a loopback port, so the
 * embedded default runs the same client code as production. Data lives in
 * LevelDB under `dataDir`, or in memory when it is undefined.
 */
export async function startDynalite(dataDir?: string): Promise<EmbeddedDynamo> {
  closeDynaliteIterators();
  const release = dataDir ? await claimDataDir(dataDir) : undefined;
  const server = dynalite({ path: dataDir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const gate = gateRequests(server);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: async () => {
      await gate.drain(CLOSE_WAIT_MS);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await release?.();
    },
  };
}

/** How long closing waits for the requests dynalite is serving. */
const CLOSE_WAIT_MS = 5_000;

/**
 * dynalite closes its database once its HTTP connections are gone, but an
 * action outlives its connection (a client destroyed at shutdown, a request
 * still in a socket buffer): its next step then finds the database closed,
 * and dynalite throws that error out of its request handler, an uncaught
 * exception. So requests go through this gate: once closing, new ones are
 * answered 503 without reaching the database, and closing waits for those
 * under way to answer (`res.end`, which dynalite calls however the client
 * went; a request cut off before its body arrived never starts an action).
 */
function gateRequests(server: Server) {
  const handlers = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  let closing = false;
  let active = 0;
  let onIdle: (() => void) | undefined;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (closing) {
      res.writeHead(503, { connection: 'close' }).end();
      return;
    }
    active++;
    let answered = false;
    const answer = () => {
      if (answered) return;
      answered = true;
      if (--active === 0) onIdle?.();
    };
    const end = res.end;
    res.end = function (this: ServerResponse, ...args: Parameters<ServerResponse['end']>) {
      res.end = end;
      answer();
      return end.apply(this, args);
    } as ServerResponse['end'];
    req.once('close', () => {
      if (!req.complete) answer();
    });
    for (const handler of handlers) handler(req, res);
  });
  return {
    /** Refuses new requests and waits (at most `timeoutMs`) for those under way. */
    drain(timeoutMs: number): Promise<void> {
      closing = true;
      if (active === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    },
  };
}

interface IteratorClass {
  prototype: { close(): Promise<void>; return?: (value?: unknown) => Promise<IteratorResult<unknown>> };
}

let iteratorsPatched = false;

/**
 * Works around a leak in dynalite 4: every Query and Scan reads through a
 * stream over `db.values()` / `db.keys()` whose destroy calls `iterator.return()`
 * to release the iterator, but abstract-level 3 iterators (classic-level's
 * LevelDB ones and memory-level's) only have `close()`. No iterator was ever
 * closed: each stayed attached to the database, and a LevelDB iterator pins
 * the memtable, SST tables and blocks it was opened on (about 100 KB of native
 * memory each under our load, outside the V8 heap), so RSS grew with every listing.
 * Giving the iterator classes the `return()` dynalite expects closes them when
 * the stream ends or is cut short by Limit. Additive only: nothing in
 * abstract-level calls `return()` itself.
 */
function closeDynaliteIterators(): void {
  if (iteratorsPatched) return;
  iteratorsPatched = true;
  // The copies dynalite loads: its own `level` (classic-level) and `memory-level`, wherever npm placed them.
  const fromDynalite = createRequire(createRequire(import.meta.url).resolve('dynalite'));
  const abstractLevels = new Set<string>();
  for (const chain of [['level', 'classic-level'], ['memory-level']]) {
    try {
      let from = fromDynalite;
      for (const name of chain) from = createRequire(from.resolve(name));
      abstractLevels.add(from.resolve('abstract-level'));
    } catch {
      // A dynalite without this backend: nothing of it to patch.
    }
  }
  for (const path of abstractLevels) {
    const module = fromDynalite(path) as Record<string, IteratorClass | undefined>;
    for (const name of ['AbstractIterator', 'AbstractKeyIterator', 'AbstractValueIterator']) {
      const proto = module[name]?.prototype;
      if (!proto || typeof proto.return === 'function') continue;
      Object.defineProperty(proto, 'return', {
        configurable: true,
        writable: true,
        value(this: { close(): Promise<void> }, value?: unknown): Promise<IteratorResult<unknown>> {
          return this.close().then(() => ({ done: true, value }));
        },
      });
    }
  }
}
