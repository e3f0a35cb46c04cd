import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, generateKeyPair } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminApiKeys } from '../../src/admin/api-keys.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'
import { type CliResult, deputyCli, json, oneLineError } from './run.js'

// Issue 13 §2, §4: the trust store as an operator keeps it, from the CLI and the admin API.

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

describe('deputy trusted-issuers', () => {
  let dir: string
  let run: (args: string[]) => CliResult
  let clientId: string
  let jwksFile: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-cli-trust-'))
    const db = join(dir, 'deputy.db')
    const masterKey = generateMasterKey()
    run = (args) =>
      deputyCli(['--db', db, ...args], { cwd: dir, env: { DEPUTY_MASTER_KEY: masterKey } })
    expect(run(['migrate']).status).toBe(0)
    const { publicKey } = await generateKeyPair('ES256')
    jwksFile = join(dir, 'cluster-jwks.json')
    writeFileSync(
      jwksFile,
      JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1' }] }),
    )
    clientId = json<{ client_id: string }>(
      run(['--json', 'clients', 'add', '--name', 'Indexer', '--grant-type', JWT_BEARER]),
    ).client_id
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  // Each run of the CLI is a process: few of them, spread over the tests.
  it('add: a Kubernetes cluster with its keys from a JWKS file', () => {
    const added = json<Record<string, unknown>>(
      run([
        '--json',
        'trusted-issuers',
        'add',
        'prod-cluster',
        '--kind',
        'workload',
        '--issuer',
        'https://kubernetes.default.svc.cluster.local',
        '--jwks-file',
        jwksFile,
        '--alg',
        'ES256',
      ]),
    )
    expect(added).toMatchObject({
      name: 'prod-cluster',
      kind: 'workload',
      jwks_keys: 1,
      jwks_uri: null,
      algorithms: ['ES256'],
      max_lifetime_seconds: 3600,
      rules: [],
    })
  })

  it('map a service account to a client; show names the rule', () => {
    const mapped = run([
      'trusted-issuers',
      'map',
      'prod-cluster',
      clientId,
      '--claim',
      'sub=system:serviceaccount:shop:indexer',
    ])
    expect(mapped.stdout).toBe(
      `mapped sub=system:serviceaccount:shop:indexer -> ${clientId} at prod-cluster\n`,
    )
    const shown = run(['trusted-issuers', 'show', 'prod-cluster']).stdout
    expect(shown).toMatch(/keys:\s+1 stored \(from a file\)/)
    expect(shown).toMatch(
      new RegExp(`rule:\\s+sub=system:serviceaccount:shop:indexer -> ${clientId}`),
    )
  })

  it('mistakes are one clear line', () => {
    oneLineError(
      run([
        'trusted-issuers',
        'add',
        'x',
        '--kind',
        'workload',
        '--issuer',
        'https://x.example',
        '--jwks-file',
        jwksFile,
        '--alg',
        'HS256',
      ]),
      /algorithms/,
    )
    oneLineError(
      run(['trusted-issuers', 'map', 'prod-cluster', clientId, '--claim', 'sub']),
      /use name=value/,
    )
  })

  it('remove, and list shows none', () => {
    expect(run(['trusted-issuers', 'remove', 'prod-cluster']).stdout).toBe('removed prod-cluster\n')
    expect(json<unknown[]>(run(['--json', 'trusted-issuers', 'list']))).toEqual([])
  })
})

describe('admin API /trusted-issuers', () => {
  let deputy: TestDeputy
  let key: string

  beforeAll(async () => {
    deputy = await startTestDeputy()
    key = (await createAdminApiKeys(deputy.deps).create('ci', { type: 'system', id: 'test' })).key
  })
  afterAll(() => deputy?.dispose())

  const call = (method: string, path: string, body?: unknown, auth = `Bearer ${key}`) =>
    deputy.app.request(`/admin/api${path}`, {
      method,
      headers: {
        authorization: auth,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })

  it('adds GitHub Actions with a JWKS URL, maps repository and ref to a client, audits each change', async () => {
    expect((await call('GET', '/trusted-issuers', undefined, 'Bearer dpk_wrong')).status).toBe(401)
    const { client } = await deputy.deps.clients.register(
      { name: 'Release', grantTypes: [JWT_BEARER] },
      { type: 'system', id: 'test' },
    )
    const added = await call('POST', '/trusted-issuers', {
      name: 'github-actions',
      kind: 'workload',
      issuer: 'https://token.actions.githubusercontent.com',
      jwks_uri: 'https://token.actions.githubusercontent.com/.well-known/jwks',
      algorithms: ['RS256'],
      audience: 'https://deputy.acme.example',
    })
    expect(added.status).toBe(201)
    const mapped = await call('POST', '/trusted-issuers/github-actions/rules', {
      client: client.clientId,
      claims: { repository: 'acme/shop', ref: 'refs/heads/main' },
    })
    expect(await mapped.json()).toMatchObject({
      rules: [
        { client: client.clientId, claims: { repository: 'acme/shop', ref: 'refs/heads/main' } },
      ],
    })
    expect(
      (
        await call('POST', '/trusted-issuers', {
          name: 'again',
          kind: 'workload',
          issuer: 'https://token.actions.githubusercontent.com',
          jwks_uri: 'https://a.example/k',
        })
      ).status,
    ).toBe(409)
    expect(
      (
        await call('POST', '/trusted-issuers', {
          name: 'x',
          kind: 'workload',
          issuer: 'i',
          jwks_uri: 'https://a.example/k',
          stray: 1,
        })
      ).status,
    ).toBe(400)
    expect((await call('GET', '/trusted-issuers/nope')).status).toBe(404)
    expect(
      (await call('DELETE', `/trusted-issuers/github-actions/rules/${client.clientId}`)).status,
    ).toBe(200)
    expect((await call('DELETE', '/trusted-issuers/github-actions')).status).toBe(204)
    const types = (
      await deputy.deps.db
        .selectFrom('audit_events')
        .select('type')
        .where('type', 'like', 'trusted-issuer.%')
        .orderBy('seq')
        .execute()
    ).map((r) => r.type)
    expect(types).toEqual([
      'trusted-issuer.added',
      'trusted-issuer.mapped',
      'trusted-issuer.unmapped',
      'trusted-issuer.removed',
    ])
  })
})
