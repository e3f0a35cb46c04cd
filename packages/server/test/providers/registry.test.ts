import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tailAudit } from '../../src/audit/query.js'
import { ConfigSchema } from '../../src/config/schema.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { ProviderError } from '../../src/providers/types.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { type FakeGitHub, startFakeGitHub } from '../helpers/upstream-github.js'
import { startUpstreamProvider, type UpstreamProvider } from '../helpers/upstream-provider.js'

const operator = { type: 'user' as const, id: 'operator' }

/** Every provider row and audit record as stored, to look for a secret in. */
async function databaseText(deputy: TestDeputy): Promise<string> {
  const rows = await deputy.deps.db.selectFrom('providers').selectAll().execute()
  const audit = await deputy.deps.db.selectFrom('audit_events').selectAll().execute()
  for (const row of rows) expect(row.client_secret_sealed ?? '').not.toBe('')
  return JSON.stringify([rows, audit])
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`providers registry (${dialect.name})`, () => {
    let deputy: TestDeputy
    let upstream: UpstreamProvider
    let github: FakeGitHub

    beforeAll(async () => {
      upstream = await startUpstreamProvider()
      github = await startFakeGitHub()
      deputy = await startTestDeputy({
        database: await dialect.create(),
        config: { dangerouslyAllowHttpLoopbackProviders: true },
      })
    })
    afterAll(async () => {
      await deputy?.dispose()
      await upstream?.close()
      await github?.close()
    })

    it('adds, lists, gets, updates, disables, enables and removes, each audited without the secret', async () => {
      const providers = deputy.deps.providers
      const added = await providers.add(
        upstream.providerInput({
          name: 'corp-sso',
          defaultRoles: ['staff'],
          allowedClients: ['agent-1'],
        }),
        operator,
      )
      expect(added).toMatchObject({
        name: 'corp-sso',
        type: 'oidc',
        displayName: 'OpenID provider',
        hasClientSecret: true,
        issuer: upstream.issuer,
        uses: ['sign-in', 'connect'],
        scopes: ['openid', 'email', 'profile'],
        defaultRoles: ['staff'],
        allowedClients: ['agent-1'],
        status: 'active',
      })
      expect(JSON.stringify(added)).not.toContain(upstream.clientSecret)
      await providers.add(github.providerInput({ name: 'github' }), operator)
      expect((await providers.list()).map((p) => p.name)).toEqual(['corp-sso', 'github'])
      expect(await providers.get('nope')).toBeNull()

      const updated = await providers.update(
        'corp-sso',
        { displayName: 'Corp', scopes: ['openid', 'email'], clientSecret: 'rotated-secret-value' },
        operator,
      )
      expect(updated.displayName).toBe('Corp')
      expect(updated.scopes).toEqual(['openid', 'email'])
      expect((await providers.setStatus('corp-sso', 'disabled', operator)).status).toBe('disabled')
      expect((await providers.get('corp-sso'))?.status).toBe('disabled')
      expect((await providers.setStatus('corp-sso', 'active', operator)).status).toBe('active')

      const text = await databaseText(deputy)
      expect(text).not.toContain(upstream.clientSecret)
      expect(text).not.toContain('rotated-secret-value')
      expect(text).not.toContain(github.clientSecret)

      await providers.remove('corp-sso', operator)
      expect(await providers.get('corp-sso')).toBeNull()
      await expect(providers.remove('corp-sso', operator)).rejects.toMatchObject({
        code: 'ERR_NOT_FOUND',
      })

      const events = (await tailAudit(deputy.deps.store, { limit: 20 }))
        .filter((e) => e.type.startsWith('provider.'))
        .map((e) => e.type)
      expect(events).toEqual([
        'provider.added',
        'provider.added',
        'provider.updated',
        'provider.disabled',
        'provider.enabled',
        'provider.removed',
      ])
    })

    it('refuses a bad name, a duplicate, an unknown type, and oauth2 sign-in without userinfo', async () => {
      const providers = deputy.deps.providers
      for (const name of ['Corp', '-x', 'a'.repeat(41), 'a_b', ''])
        await expect(
          providers.add({ name, type: 'github', clientId: 'x' }, operator),
        ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
      await providers.add(github.providerInput({ name: 'gh2' }), operator)
      await expect(
        providers.add(github.providerInput({ name: 'gh2' }), operator),
      ).rejects.toMatchObject({ code: 'ERR_CONFLICT' })
      await expect(
        providers.add({ name: 'x', type: 'nope' as 'github', clientId: 'x' }, operator),
      ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
      const endpoints = {
        authorization_endpoint: 'https://as.example/authorize',
        token_endpoint: 'https://as.example/token',
      }
      await expect(
        providers.add(
          { name: 'plain', type: 'oauth2', clientId: 'x', uses: ['sign-in'], endpoints },
          operator,
        ),
      ).rejects.toThrow(/cannot sign people in/)
      // Without a userinfo endpoint an oauth2 provider is for connecting only, by default.
      const plain = await providers.add(
        { name: 'plain', type: 'oauth2', clientId: 'x', endpoints },
        operator,
      )
      expect(plain.uses).toEqual(['connect'])
      expect(plain.hasClientSecret).toBe(false)
      await expect(
        providers.profile(plain, {
          accessToken: 't',
          refreshToken: null,
          expiresAt: null,
          scopes: [],
          idToken: null,
        }),
      ).rejects.toBeInstanceOf(ProviderError)
      await expect(
        providers.add({ name: 'noissuer', type: 'oidc', clientId: 'x' }, operator),
      ).rejects.toThrow(/needs --issuer/)
    })

    it('operator overrides win over discovery', async () => {
      const p = await deputy.deps.providers.add(
        upstream.providerInput({
          name: 'overridden',
          endpoints: { userinfo_endpoint: 'https://userinfo.example/me' },
        }),
        operator,
      )
      expect(p.endpoints.userinfo_endpoint).toBe('https://userinfo.example/me')
      expect(p.endpoints.token_endpoint.startsWith(upstream.issuer)).toBe(true)
    })
  })
}

describe('providers: discovery is checked and every request is SSRF-guarded', () => {
  let loose: TestDeputy
  let strict: TestDeputy
  let upstream: UpstreamProvider
  let impostor: Server
  let impostorUrl: string

  beforeAll(async () => {
    upstream = await startUpstreamProvider()
    // Serves the real provider's discovery document under another issuer URL.
    impostor = createServer(async (_req, res) => {
      const doc = await fetch(`${upstream.issuer}/.well-known/openid-configuration`)
      res.setHeader('content-type', 'application/json')
      res.end(await doc.text())
    })
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve))
    impostorUrl = `http://127.0.0.1:${(impostor.address() as AddressInfo).port}`
    loose = await startTestDeputy({ config: { dangerouslyAllowHttpLoopbackProviders: true } })
    strict = await startTestDeputy()
  })
  afterAll(async () => {
    await loose?.dispose()
    await strict?.dispose()
    await upstream?.close()
    await new Promise((resolve) => impostor?.close(resolve))
  })

  it('OpenID Connect Discovery §4.3: a discovered issuer that is not the configured one is refused', async () => {
    await expect(
      loose.deps.providers.add(upstream.providerInput({ issuer: impostorUrl }), operator),
    ).rejects.toThrow(/issuer/)
    expect(await loose.deps.providers.list()).toEqual([])
  })

  it('without the development setting, a provider on http or on a private address is refused', async () => {
    await expect(strict.deps.providers.add(upstream.providerInput(), operator)).rejects.toThrow(
      /must be https/,
    )
    for (const host of ['10.0.0.1', '169.254.169.254', '[::1]', '192.168.1.1'])
      await expect(
        strict.deps.providers.add(
          { name: 'x', type: 'oidc', clientId: 'x', issuer: `https://${host}/` },
          operator,
        ),
      ).rejects.toThrow(/public address/)
    await expect(
      strict.deps.providers.add(
        {
          name: 'x',
          type: 'github',
          clientId: 'x',
          endpoints: { token_endpoint: 'https://10.1.2.3/token' },
        },
        operator,
      ),
    ).rejects.toThrow(/public address/)
  })

  it('a name that resolves to a loopback address is refused when fetched', async () => {
    const p = await strict.deps.providers.add(
      {
        name: 'sneaky',
        type: 'github',
        clientId: 'x',
        endpoints: { token_endpoint: `https://localhost:${new URL(upstream.issuer).port}/token` },
      },
      operator,
    )
    const err = await strict.deps.providers.refresh(p, 'r').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ProviderError)
    expect((err as ProviderError).code).toBe('unreachable')
    expect((err as ProviderError).message).toMatch(/not a public address/)
    expect((err as ProviderError).transient).toBe(false)
  })

  it('production mode refuses dangerouslyAllowHttpLoopbackProviders', () => {
    const result = ConfigSchema.safeParse({
      mode: 'production',
      masterKey: generateMasterKey(),
      issuer: 'https://deputy.example',
      dangerouslyAllowHttpLoopbackProviders: true,
    })
    expect(result.success).toBe(false)
    expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(
      'dangerouslyAllowHttpLoopbackProviders',
    )
  })
})
