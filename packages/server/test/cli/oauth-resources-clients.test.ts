import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { type CliResult, deputyCli, json, lines, oneLineError } from './run.js'

describe('deputy resources and clients (§0, §5)', () => {
  let dir: string
  const masterKey = generateMasterKey()
  let run: (args: string[]) => CliResult

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-cli-oauth-'))
    const db = join(dir, 'deputy.db')
    run = (args) =>
      deputyCli(['--db', db, ...args], { cwd: dir, env: { DEPUTY_MASTER_KEY: masterKey } })
    expect(run(['migrate']).status).toBe(0)
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('resources add|list|remove, as the README shows', () => {
    const added = json<Record<string, unknown>>(
      run([
        '--json',
        'resources',
        'add',
        'http://localhost:3001/mcp',
        '--name',
        'Shop',
        '--scope',
        'shop:order=Order shirts for you',
        '--scope',
        'shop:read=See your past orders',
        '--claims',
        'name,email,roles,permissions,favorite_song',
        '--default',
      ]),
    )
    expect(added).toEqual({
      uri: 'http://localhost:3001/mcp',
      name: 'Shop',
      scopes: { 'shop:order': 'Order shirts for you', 'shop:read': 'See your past orders' },
      claims_template: ['name', 'email', 'roles', 'permissions', 'favorite_song'],
      is_default: true,
    })
    const human = run(['resources', 'list'])
    expect(human.status).toBe(0)
    expect(human.stdout).toMatch(/http:\/\/localhost:3001\/mcp\s+Shop\s+shop:order,shop:read/)
    expect(json<unknown[]>(run(['--json', 'resources', 'list']))).toHaveLength(1)

    expect(run(['resources', 'remove', 'http://localhost:3001/mcp']).stdout).toBe(
      'removed http://localhost:3001/mcp\n',
    )
    expect(json<unknown[]>(run(['--json', 'resources', 'list']))).toEqual([])
  })

  it('resources: mistakes are one clear line', () => {
    oneLineError(
      run(['resources', 'add', 'https://a.example/mcp', '--scope', 'shop:order']),
      /--scope "shop:order" must be "name=sentence for the consent page"/,
    )
    oneLineError(run(['resources', 'add', 'mcp', '--scope', 'a=b']), /resource must be an absolute/)
    // A claim Deputy sets in every token itself would be copied from the person for nothing.
    oneLineError(
      run(['resources', 'add', 'https://a.example/mcp', '--claims', 'email,sub']),
      /claim "sub" is set by Deputy in every token and cannot be copied/,
    )
    oneLineError(
      run(['resources', 'remove', 'https://nope.example/mcp']),
      /no resource https:\/\/nope/,
    )
  })

  it('clients add --public --json prints the client id and no secret', () => {
    const created = json<Record<string, unknown>>(
      run([
        '--json',
        'clients',
        'add',
        '--name',
        'My agent',
        '--redirect-uri',
        'http://127.0.0.1:3000/callback',
        '--public',
      ]),
    )
    expect(created.client_id).toMatch(/^client_/)
    expect(created.token_endpoint_auth_method).toBe('none')
    expect(created).not.toHaveProperty('client_secret')
  })

  it('clients add without --public prints the secret once; list never shows it', () => {
    const result = run([
      'clients',
      'add',
      '--name',
      'Web agent',
      '--redirect-uri',
      'https://agent.example/cb',
      '--redirect-uri',
      'https://agent.example/cb2',
    ])
    expect(result.status).toBe(0)
    const [idLine, secretLine] = lines(result.stdout)
    expect(idLine).toMatch(/^client_id: client_/)
    expect(secretLine).toMatch(/^client_secret: \S{40,}$/)
    const secret = secretLine?.split(': ')[1] as string
    const listed = run(['--json', 'clients', 'list'])
    expect(listed.stdout).not.toContain(secret)
    const clients = json<{ client_id: string; redirect_uris: string[] }[]>(listed)
    const id = idLine?.split(': ')[1]
    expect(clients.find((c) => c.client_id === id)?.redirect_uris).toEqual([
      'https://agent.example/cb',
      'https://agent.example/cb2',
    ])
  })

  it('clients add for client_credentials with private_key_jwt and allowed scopes', () => {
    // The allowed scope must be one a resource offers (issue 10 §7).
    run(['resources', 'add', 'http://localhost:3003/shop', '--scope', 'shop:read=See the shop'])
    const jwks = join(dir, 'jwks.json')
    writeFileSync(
      jwks,
      JSON.stringify({
        keys: [
          {
            kty: 'EC',
            crv: 'P-256',
            x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
            y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
          },
        ],
      }),
    )
    const created = json<Record<string, unknown>>(
      run([
        '--json',
        'clients',
        'add',
        '--name',
        'Worker',
        '--grant-type',
        'client_credentials',
        '--auth-method',
        'private_key_jwt',
        '--jwks',
        jwks,
        '--scope',
        'shop:read',
      ]),
    )
    expect(created).toMatchObject({
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      allowed_scopes: ['shop:read'],
      has_jwks: true,
    })
    expect(created).not.toHaveProperty('client_secret')
  })

  it("clients allow-host|hosts|disallow-host: machine tokens for metadata-document clients are the operator's to give", () => {
    run(['resources', 'add', 'http://localhost:3002/api', '--scope', 'api:read=Read the API'])
    const allowed = json<Record<string, unknown>>(
      run([
        '--json',
        'clients',
        'allow-host',
        'tools.example.com',
        '--resource',
        'http://localhost:3002/api',
        '--scope',
        'api:read',
      ]),
    )
    expect(allowed).toMatchObject({
      host: 'tools.example.com',
      resource: 'http://localhost:3002/api',
      scopes: ['api:read'],
    })
    expect(json<unknown[]>(run(['--json', 'clients', 'hosts']))).toEqual([allowed])
    expect(run(['clients', 'hosts']).stdout).toMatch(
      /tools\.example\.com\s+http:\/\/localhost:3002\/api\s+api:read/,
    )
    oneLineError(
      run([
        'clients',
        'allow-host',
        'https://tools.example.com/x',
        '--resource',
        'http://localhost:3002/api',
        '--scope',
        'api:read',
      ]),
      /host must be a lower-case host name/,
    )
    oneLineError(
      run([
        'clients',
        'allow-host',
        'tools.example.com',
        '--resource',
        'http://localhost:3002/api',
        '--scope',
        'api:write',
      ]),
      /does not offer the scope api:write/,
    )
    oneLineError(
      run([
        'clients',
        'allow-host',
        'tools.example.com',
        '--resource',
        'http://localhost:3002/api',
      ]),
      /grant at least one scope/,
    )
    expect(run(['clients', 'disallow-host', 'tools.example.com']).stdout).toBe(
      'tools.example.com may no longer get client_credentials tokens\n',
    )
    expect(json<unknown[]>(run(['--json', 'clients', 'hosts']))).toEqual([])
    oneLineError(run(['clients', 'disallow-host', 'tools.example.com']), /is not allowed/)
  })

  it('clients add --resource binds a machine client to the resources its tokens may be for', () => {
    run(['resources', 'add', 'http://localhost:3003/api', '--scope', 'api:write=Change things'])
    const created = json<Record<string, unknown>>(
      run([
        '--json',
        'clients',
        'add',
        '--name',
        'Bound worker',
        '--grant-type',
        'client_credentials',
        '--scope',
        'api:write',
        '--resource',
        'http://localhost:3003/api',
      ]),
    )
    expect(created).toMatchObject({ allowed_resources: ['http://localhost:3003/api'] })
    oneLineError(
      run([
        'clients',
        'add',
        '--name',
        'x',
        '--grant-type',
        'client_credentials',
        '--scope',
        'a',
        '--resource',
        'http://localhost:1/none',
      ]),
      /no resource http:\/\/localhost:1\/none is registered/,
    )
    oneLineError(
      run(['clients', 'add', '--name', 'x', '--grant-type', 'client_credentials']),
      /at least one allowed scope/,
    )
  })

  it('clients add for CIBA in ping mode, and the mistakes of its flags in one line', () => {
    const created = json<Record<string, unknown>>(
      run([
        '--json',
        'clients',
        'add',
        '--name',
        'Approver',
        '--grant-type',
        'urn:openid:params:grant-type:ciba',
        '--backchannel-token-delivery-mode',
        'ping',
        '--backchannel-client-notification-endpoint',
        'https://agent.example/ciba',
      ]),
    )
    expect(created).toMatchObject({
      grant_types: ['urn:openid:params:grant-type:ciba'],
      backchannel_token_delivery_mode: 'ping',
      backchannel_client_notification_endpoint: 'https://agent.example/ciba',
    })
    oneLineError(
      run([
        'clients',
        'add',
        '--name',
        'x',
        '--grant-type',
        'urn:openid:params:grant-type:ciba',
        '--backchannel-token-delivery-mode',
        'ping',
      ]),
      /ping mode needs a backchannel client notification endpoint/,
    )
    oneLineError(
      run([
        'clients',
        'add',
        '--name',
        'x',
        '--grant-type',
        'urn:openid:params:grant-type:ciba',
        '--backchannel-token-delivery-mode',
        'push',
      ]),
      /--backchannel-token-delivery-mode must be one of poll, ping/,
    )
    oneLineError(
      run([
        'clients',
        'add',
        '--name',
        'x',
        '--public',
        '--grant-type',
        'urn:openid:params:grant-type:ciba',
      ]),
      /CIBA needs a confidential client/,
    )
  })

  it('clients disable and delete', () => {
    const { client_id } = json<{ client_id: string }>(
      run(['--json', 'clients', 'add', '--name', 'Temp', '--redirect-uri', 'https://t.example/cb']),
    )
    expect(run(['clients', 'disable', client_id]).stdout).toBe(`${client_id} is now disabled\n`)
    const listed = json<{ client_id: string; status: string }[]>(run(['--json', 'clients', 'list']))
    expect(listed.find((c) => c.client_id === client_id)?.status).toBe('disabled')
    expect(run(['clients', 'delete', client_id]).stdout).toBe(`deleted ${client_id}\n`)
    const after = json<{ client_id: string }[]>(run(['--json', 'clients', 'list']))
    expect(after.map((c) => c.client_id)).not.toContain(client_id)
  })

  it('clients enable undoes disable', () => {
    const { client_id } = json<{ client_id: string }>(
      run(['--json', 'clients', 'add', '--name', 'Back', '--redirect-uri', 'https://b.example/cb']),
    )
    run(['clients', 'disable', client_id])
    expect(run(['clients', 'enable', client_id]).stdout).toBe(`${client_id} is now enabled\n`)
    const listed = json<{ client_id: string; status: string }[]>(run(['--json', 'clients', 'list']))
    expect(listed.find((c) => c.client_id === client_id)?.status).toBe('active')
  })

  it('clients: mistakes are one clear line', () => {
    oneLineError(
      run(['clients', 'add', '--name', 'x', '--redirect-uri', 'javascript:alert(1)']),
      /forbidden scheme javascript:/,
    )
    oneLineError(
      run(['clients', 'add', '--name', 'x', '--redirect-uri', 'http://agent.example/cb']),
      /http only on a loopback host/,
    )
    oneLineError(
      run(['clients', 'add', '--name', 'x', '--grant-type', 'password']),
      /^deputy: --grant-type must be one of authorization_code, refresh_token, client_credentials, urn:openid:params:grant-type:ciba, urn:ietf:params:oauth:grant-type:token-exchange, urn:ietf:params:oauth:grant-type:jwt-bearer$/m,
    )
    oneLineError(
      run(['clients', 'add', '--name', 'x', '--jwks', join(dir, 'missing.json')]),
      /--jwks .*cannot read the file/,
    )
    oneLineError(run(['clients', 'disable', 'client_nope']), /no client client_nope/)
    oneLineError(run(['clients', 'delete', 'client_nope']), /no client client_nope/)
  })
})
