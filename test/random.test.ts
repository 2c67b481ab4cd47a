import { describe, expect, test } from 'vitest';
import { monotonicFactory } from 'ulid';
import { pooledRandom } from '../src/tasks/random.js';

describe('pooledRandom (task codes)', () => {
  test('draws across several pool refills stay in [0, 1), in steps of 1/256, and reach every byte value', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 3 * 4096 + 7; i++) {
      const value = pooledRandom();
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThan(1);
      seen.add(value * 256);
    }
    expect([...seen].every(Number.isInteger)).toBe(true);
    expect(seen.size).toBe(256);
  });

  test('ULIDs made with it are well formed, distinct and increasing within one millisecond', () => {
    const next = monotonicFactory(pooledRandom);
    const codes = Array.from({ length: 1000 }, () => next(1_700_000_000_000));
    expect(codes.every((code) => /^[0-9A-HJKMNP-TV-Z]{26}$/.test(code))).toBe(true);
    expect(new Set(codes).size).toBe(codes.length);
    expect([...codes].sort()).toEqual(codes);
  });
});
