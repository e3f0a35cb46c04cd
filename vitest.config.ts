import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: [
      'packages/*/test/**/*.test.ts',
      'packages/*/src/**/*.test.ts',
      'examples/*/test/**/*.test.ts',
    ],
    pool: 'forks',
    // Vitest's default is one worker fewer than the cores: one on CI's two. Most files wait on
    // sockets, child processes and Chromium rather than compute, so two files at a time use
    // both cores (every file has its own databases, ports and temporary folders).
    maxWorkers: 2,
    // A guard against a hang, not a timing assertion: files that run the CLI dozens of times
    // take longer while the other worker keeps the second core busy.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
  },
})
