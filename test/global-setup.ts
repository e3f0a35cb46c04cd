import { existsSync } from 'node:fs'

/** Says plainly, before the run, which suites will be skipped on this machine and why. */
export default function setup(): void {
  const notes: string[] = []
  if (!process.env.DEPUTY_TEST_POSTGRES_URL) {
    notes.push(
      'PostgreSQL suites SKIPPED: DEPUTY_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test). Only SQLite is tested.',
    )
  }
  const chromium = process.env.DEPUTY_TEST_CHROMIUM ?? '/usr/bin/chromium'
  if (!existsSync(chromium)) {
    notes.push(`Browser tests SKIPPED: no Chromium at ${chromium} (apt-get install -y chromium).`)
  }
  for (const note of notes) process.stdout.write(`\n*** ${note}\n`)
}
