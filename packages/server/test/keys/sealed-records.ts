import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { expect } from 'vitest'
import { webhookSecretContext } from '../../src/approvals/channels/webhook.js'
import type { DeputyDeps } from '../../src/deputy.js'
import { createSealer, sealedKid } from '../../src/keys/envelope.js'
import {
  generateMasterKey,
  type MasterKey,
  parseMasterKey,
  writeKeyFileOnce,
} from '../../src/keys/master-key.js'
import { SEALED_COLUMNS } from '../../src/keys/sealed-columns.js'
import type { TestDatabase } from '../helpers/databases.js'
import { createWorld, RESOURCE, type World } from '../oauth/token-helpers.js'

/** Secrets a test writes and later looks for; each is distinctive enough to grep for. */
export const SECRETS = {
  providerClientSecret: 'provider-client-secret-7f3c9a1e',
  flowVerifier: 'pkce-verifier-0b5d2e8c44',
  accessToken: 'gho_access-token-2a9f4b7d61',
  refreshToken: 'ghr_refresh-token-5c8e1f3a92',
  webhookSecret: 'whsec_webhook-secret-9d4a7c2b13',
  notificationToken: 'ping-notification-token-6e1b3f8a',
} as const

/** A Deputy whose master key is in a key file (which rotation rewrites), with its first key. */
export async function worldWithKeyFile(
  database: TestDatabase,
): Promise<World & { keyFile: string; firstKey: string }> {
  // PostgreSQL suites have no SQLite folder; the key file then gets a private one of its own.
  const dir = database.url.startsWith('postgres')
    ? mkdtempSync(join(tmpdir(), 'deputy-key-'))
    : dirname(database.url)
  const keyFile = join(dir, 'master.key')
  const firstKey = generateMasterKey()
  writeKeyFileOnce(keyFile, firstKey)
  const world = await createWorld({
    database,
    config: { masterKey: undefined, masterKeyFile: keyFile },
  })
  return { ...world, keyFile, firstKey }
}

/** Ids of what seedEverySealedTable wrote. */
export interface Seeded {
  approvalId: string
  connectionId: string
}

/**
 * Writes at least one record into every sealed column (the associated data spelled out as
 * store/schema.ts documents it, not taken from the registry, so a registry that drifts fails): through the module where there is one
 * (signing keys, CIBA ping requests), directly with the sealer where issue 12's modules are not
 * built yet (providers, provider_flows, connections) or the write is an HTML form (webhooks).
 */
export async function seedEverySealedTable(world: World, tag = 'a'): Promise<Seeded> {
  const { deps } = world.deputy
  const now = world.clock.now().getTime()
  await deps.signingKeys.active()
  await deps.signingKeys.rotate()
  const created = await deps.approvals.create(
    {
      clientId: world.agent.client.clientId,
      userId: world.alice.id,
      resource: RESOURCE,
      scopes: ['tools:read'],
      authorizationDetails: [],
      bindingMessage: null,
      expiresInSeconds: 600,
      deliveryMode: 'ping',
      notificationToken: `${SECRETS.notificationToken}-${tag}`,
    },
    { intervalSeconds: 5, maxPending: 100 },
  )
  if (!created) throw new Error('approval not created')
  await deps.db
    .insertInto('notification_preferences')
    .values({
      user_id: world.alice.id,
      channel: 'webhook',
      settings: JSON.stringify({
        url: 'https://hooks.example.com/deputy',
        secret_sealed: deps.sealer.seal(
          SECRETS.webhookSecret,
          webhookSecretContext(world.alice.id),
        ),
      }),
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.doNothing())
    .execute()
  const provider = `github-${tag}`
  await deps.db
    .insertInto('providers')
    .values({
      name: provider,
      type: 'github',
      display_name: 'GitHub',
      client_id: 'Iv1.client',
      client_secret_sealed: deps.sealer.seal(
        SECRETS.providerClientSecret,
        `providers:${provider}:client_secret`,
      ),
      issuer: null,
      endpoints: '{}',
      uses: '["connect"]',
      scopes: '[]',
      default_roles: '[]',
      allowed_clients: '[]',
      status: 'active',
      created_at: now,
      updated_at: now,
    })
    .execute()
  const stateHash = `state-hash-${tag}`
  await deps.db
    .insertInto('provider_flows')
    .values({
      state_hash: stateHash,
      kind: 'connect',
      provider,
      secrets_sealed: deps.sealer.seal(
        JSON.stringify({ codeVerifier: SECRETS.flowVerifier, nonce: 'n' }),
        `provider_flows:${stateHash}`,
      ),
      user_id: world.alice.id,
      client_id: null,
      scopes: '[]',
      return_to: null,
      created_at: now,
      expires_at: now + 600_000,
    })
    .execute()
  const connectionId = `conn-${tag}`
  const aad = (field: string) =>
    `connections:${connectionId}:${world.alice.id}:${provider}:${field}`
  await deps.db
    .insertInto('connections')
    .values({
      id: connectionId,
      user_id: world.alice.id,
      provider,
      status: 'active',
      account_subject: '42',
      account_label: 'alice',
      scopes: '[]',
      access_token_sealed: deps.sealer.seal(SECRETS.accessToken, aad('access_token')),
      access_token_expires_at: now + 3600_000,
      refresh_token_sealed: deps.sealer.seal(SECRETS.refreshToken, aad('refresh_token')),
      token_version: 0,
      refresh_failures: 0,
      refresh_not_before: null,
      last_error: null,
      last_used_at: null,
      created_at: now,
      updated_at: now,
    })
    .execute()
  return { approvalId: created.request.id, connectionId }
}

/** Every sealed value in the database, with the associated data the registry builds for it. */
export async function everySealedValue(
  deps: Pick<DeputyDeps, 'db'>,
): Promise<{ where: string; sealed: string; aad: string }[]> {
  const found: { where: string; sealed: string; aad: string }[] = []
  for (const entry of SEALED_COLUMNS) {
    // biome-ignore lint/suspicious/noExplicitAny: the registry names tables at run time
    const rows = (await (deps.db as any).selectFrom(entry.table).selectAll().execute()) as Record<
      string,
      unknown
    >[]
    for (const row of rows) {
      if (entry.only && Object.entries(entry.only).some(([k, v]) => row[k] !== v)) continue
      let value = row[entry.column]
      if (value === null || value === undefined) continue
      if (entry.jsonField)
        value = (JSON.parse(String(value)) as Record<string, unknown>)[entry.jsonField]
      if (value === null || value === undefined) continue
      found.push({
        where: `${entry.table}.${entry.jsonField ?? entry.column}`,
        sealed: String(value),
        aad: entry.associatedData(row),
      })
    }
  }
  return found
}

/** Asserts every sealed record names `key` and opens with it alone; returns the columns seen. */
export async function expectAllOpenWith(
  deps: Pick<DeputyDeps, 'db'>,
  key: string | MasterKey,
): Promise<Set<string>> {
  const master = typeof key === 'string' ? parseMasterKey(key, 'test') : key
  const alone = createSealer(master)
  const values = await everySealedValue(deps)
  for (const v of values) {
    expect(sealedKid(v.sealed), v.where).toBe(master.kid)
    expect(() => alone.open(v.sealed, v.aad), v.where).not.toThrow()
  }
  return new Set(values.map((v) => v.where))
}

/** Every `table.column` of the registry: what a seeded database must all hold. */
export const ALL_SEALED = new Set(
  SEALED_COLUMNS.map((c) => `${c.table}.${c.jsonField ?? c.column}`),
)
