import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * ulid's PRNG: a uniform float in [0, 1) from the system CSPRNG, one byte at
 * a time as ulid's own, but drawn from a pool refilled 4 KB at once. ulid's
 * default makes one getRandomValues call per character: 16 per new task code,
 * which was 5% of createTask's CPU.
 */
export function pooledRandom(): number {
  if (offset === POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  return pool[offset++]! / 256;
}
