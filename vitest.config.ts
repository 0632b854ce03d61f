import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'parsers/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    setupFiles: ['test/setup/yield-between-tests.ts'],
    pool: 'forks',
    // two files at a time: most of the slow files wait on real daemons, sockets and timers, not the CPU
    // (vitest's default on a 2-core machine is one)
    maxWorkers: 2,
    reporters: ['default'],
  },
});
