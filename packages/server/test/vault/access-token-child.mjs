// One process of the refresh race (race.test.ts): opens Deputy from the built package on the
// test's database, says "ready", waits for "go" on stdin, asks the vault for the person's access
// token once, and prints the outcome as one JSON line. Settings come as JSON in VAULT_CHILD_CONFIG.
import { createInterface } from 'node:readline'
import pino from 'pino'
import { resolveConfig } from '../../dist/config/load.js'
import { ConfigSchema } from '../../dist/config/schema.js'
import { openDeputy } from '../../dist/deputy.js'

const { config, userId, provider } = JSON.parse(process.env.VAULT_CHILD_CONFIG ?? '{}')
const opened = await openDeputy(resolveConfig(ConfigSchema.parse(config)), {
  logger: pino({ level: 'silent' }),
  migrate: false,
})
const lines = createInterface({ input: process.stdin })
process.stdout.write('ready\n')
for await (const line of lines) {
  if (line.trim() !== 'go') continue
  let outcome
  try {
    const token = await opened.deps.vault.accessToken(userId, provider)
    outcome = { ok: true, accessToken: token.accessToken, expiresAt: token.expiresAt }
  } catch (err) {
    outcome = { ok: false, code: err.code ?? 'unexpected', message: String(err.message) }
  }
  process.stdout.write(`${JSON.stringify(outcome)}\n`)
  break
}
lines.close()
await opened.close()
