import { defineConfig } from 'vitest/config';

// Black-box suites share one real PostgreSQL per file and spawn server processes: run files
// one at a time, with generous per-test budgets (no test asserts wall-clock time).
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
