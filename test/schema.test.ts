import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { printedSchema } from '../scripts/print-schema.js';

test('schema.graphql is the SDL printed from the Pothos schema (run `npm run schema` after changing resolvers)', () => {
  const committed = readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8');
  expect(committed).toBe(printedSchema());
});
