import { defineConfig } from 'vitest/config';

// Specs use real files, real child processes and real signals; 2-core machines are noisy, so
// timeouts are generous and they bound hangs, not speed (speed lives in bench/).
export default defineConfig({
  test: {
    include: ['spec/**/*.spec.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
