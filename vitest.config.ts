import { defineConfig } from 'vitest/config';

// One runner for unit tests (packages/*/test) and end-to-end tests (test/).
// Tests spawn real processes, mount real FUSE file systems and talk to real
// servers, so they get generous timeouts and run files in parallel forks.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
