import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

// The repository's vitest config collects packages/*; this one runs the example's own tests
// (`npm test -w @deputy/example-trading`) with the same settings.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
