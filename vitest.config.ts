import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  // graphql ships ESM and CJS builds; pin one so Pothos, yoga and our code share its classes.
  resolve: { alias: { graphql: require.resolve('graphql') } },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Vitest's default in a run is one worker less than the cores: one worker on a 2-core machine.
    // Most files wait on servers and timers, so one worker per core keeps both busy.
    maxWorkers: availableParallelism(),
    // Files share a worker's module cache: importing the SDK, yoga and the schema once per worker
    // instead of once per file cut the suite's CPU time by a third. Files keep no global state (mocks are
    // per client instance, stubbed env is restored), so sharing changes no result.
    isolate: false,
    // The SDK's notice that its 2027 releases need Node 22 says nothing about our tests.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
