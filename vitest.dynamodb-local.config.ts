import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The global setup's own SDK client runs in this process, outside the workers' `env`.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/**
 * `npm run test:dynamodb-local`: the suites that exercise storage, run
 * against AWS's DynamoDB Local instead of dynalite. test/helpers/dynamodb-local.ts
 * starts one for the run; startTestApp gives every app its own table on it.
 *
 * Left out, each for something only the embedded default has:
 *   crash-sweep, lifecycle, embedded — restart servers on one DATA_DIR (dynalite's LevelDB files);
 *   sns-bridge, aws-worker — expect the embedded table name `tasks` in messages, or run dynalite beside the app;
 *   auth, live, live-transport, sns-endpoint, event-queue, schema — touch storage only through what the suites above cover.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      'test/task-operations.test.ts',
      'test/listing.test.ts',
      'test/limits.test.ts',
      'test/concurrency.test.ts',
      'test/transitions.test.ts',
      'test/step-functions.test.ts',
      'test/hostile-input.test.ts',
      'test/tenancy.test.ts',
      'test/execution.test.ts',
      'test/fuzz.test.ts',
      'test/backfill.test.ts',
      'test/bookkeeping.test.ts',
      'test/dynamodb-local*.test.ts',
    ],
    globalSetup: ['test/helpers/dynamodb-local.ts'],
    // In DynamoDB mode the apps' clients take the default credential chain and region.
    env: { ...base.test?.env, AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'local' },
  },
});
