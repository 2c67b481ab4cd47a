import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StartupError } from '../lifecycle.js';

const LOCK_FILE = 'server.pid';
/** Directories this process holds: its own pid in a lock file says nothing when a container reuses pids. */
const held = new Set<string>();

/**
 * Makes `dataDir` if absent and claims it for this process: the embedded
 * default is one process per data directory (its worker takes over the leases
 * of any other worker id, and LevelDB admits one opener). A claim left by a
 * process that is gone is taken over. Anything wrong is one line an operator
 * can act on. Returns the release.
 */
export async function claimDataDir(dataDir: string): Promise<() => Promise<void>> {
  const lock = join(dataDir, LOCK_FILE);
  if (held.has(lock)) throw new StartupError(`DATA_DIR ${dataDir} is in use by another server in this process`);
  try {
    await mkdir(dataDir, { recursive: true });
    for (;;) {
      try {
        const handle = await open(lock, 'wx');
        await handle.writeFile(String(process.pid));
        await handle.close();
        held.add(lock);
        return async () => {
          held.delete(lock);
          await rm(lock, { force: true });
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (owner && owner !== process.pid && isRunning(owner)) {
        // (Our own pid here was left by an earlier process that had it.)
        throw new StartupError(`DATA_DIR ${dataDir} is in use by another server (pid ${owner}); stop it, or set another DATA_DIR`);
      }
      await rm(lock, { force: true }); // left by a process that is gone
    }
  } catch (error) {
    if (error instanceof StartupError) throw error;
    throw new StartupError(`DATA_DIR ${dataDir} ${reasonOf(error as NodeJS.ErrnoException)}`);
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function reasonOf(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'EEXIST':
    case 'ENOTDIR':
      return 'is a file, not a directory';
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return 'is not writable';
    default:
      return `cannot be used (${error.code ?? error.message})`;
  }
}
