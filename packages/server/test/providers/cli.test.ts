import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { type CliResult, deputyCli, deputyCliAsync, json, oneLineError } from '../cli/run.js'
import { type FakeGitHub, startFakeGitHub } from '../helpers/upstream-github.js'
import { startUpstreamProvider, type UpstreamProvider } from '../helpers/upstream-provider.js'

// Each command is a fresh process opening the database: slow on a busy machine, not a timing check.
describe('deputy providers (issue 12 §1)', { timeout: 240_000 }, () => {
  let dir: string
  const masterKey = generateMasterKey()
  let env: Record<string, string>
  let db: string
  let run: (args: string[], input?: string) => Promise<CliResult>
  let upstream: UpstreamProvider
  let github: FakeGitHub

  beforeAll(async () => {
    upstream = await startUpstreamProvider()
    github = await startFakeGitHub()
    dir = mkdtempSync(join(tmpdir(), 'deputy-cli-providers-'))
    db = join(dir, 'deputy.db')
    env = { DEPUTY_MASTER_KEY: masterKey, DEPUTY_DANGEROUSLY_ALLOW_HTTP_LOOPBACK_PROVIDERS: 'true' }
    // Asynchronous: this process serves the providers the CLI discovers.
    run = (args, input) => deputyCliAsync(['--db', db, ...args], { cwd: dir, env, input })
    expect(deputyCli(['--db', db, 'migrate'], { cwd: dir, env }).status).toBe(0)
    // A confidential client to allow below.
    expect(
      deputyCli(
        [
          '--db',
          db,
          'clients',
          'add',
          '--name',
          'Agent',
          '--redirect-uri',
          'http://localhost:9/cb',
        ],
        { cwd: dir, env },
      ).status,
    ).toBe(0)
    const pub = ['--db', db, 'clients', 'add', '--name', 'Desk', '--public']
    expect(
      deputyCli([...pub, '--redirect-uri', 'http://localhost:9/cb'], { cwd: dir, env }).status,
    ).toBe(0)
  })
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true })
    await upstream?.close()
    await github?.close()
  })

  it('add (secret on stdin, discovered) | list | show | disable | enable | remove; the secret is never printed', async () => {
    const added = json<Record<string, unknown>>(
      await run(
        [
          '--json',
          'providers',
          'add',
          'corp',
          '--type',
          'oidc',
          '--issuer',
          upstream.issuer,
          '--client-id',
          upstream.clientId,
          '--client-secret-stdin',
          '--use',
          'sign-in',
          '--default-role',
          'staff',
        ],
        `${upstream.clientSecret}\n`,
      ),
    )
    expect(added).toMatchObject({
      name: 'corp',
      type: 'oidc',
      has_client_secret: true,
      issuer: upstream.issuer,
      uses: ['sign-in'],
      default_roles: ['staff'],
      status: 'active',
    })
    expect((added.endpoints as Record<string, string>).token_endpoint).toContain(upstream.issuer)

    const gh = await run([
      'providers',
      'add',
      'github',
      '--type',
      'github',
      '--client-id',
      github.clientId,
      '--authorization-endpoint',
      github.endpoints.authorization_endpoint,
      '--token-endpoint',
      github.endpoints.token_endpoint,
      '--user-api',
      github.endpoints.user_api as string,
      '--scope',
      'read:user',
      '--scope',
      'repo',
    ])
    expect(gh.stdout).toBe('added github (github, sign-in and connect, active)\n')

    const list = await run(['providers', 'list'])
    expect(list.stdout).toMatch(/corp\s+oidc\s+active\s+sign-in/)
    expect(list.stdout).toMatch(/github\s+github\s+active/)
    const show = await run(['providers', 'show', 'corp'])
    expect(show.stdout).toMatch(/client secret:\s+set \(sealed\)/)
    const shown = json<Record<string, unknown>>(
      await run(['--json', 'providers', 'show', 'github']),
    )
    expect(shown.scopes).toEqual(['read:user', 'repo'])
    expect(shown.has_client_secret).toBe(false)

    expect((await run(['providers', 'disable', 'corp'])).stdout).toMatch(
      /^disabled corp .*disabled\)/,
    )
    expect((await run(['providers', 'enable', 'corp'])).stdout).toMatch(/^enabled corp .*active\)/)

    for (const output of [list.stdout, show.stdout, JSON.stringify(added), JSON.stringify(shown)])
      expect(output).not.toContain(upstream.clientSecret)

    expect((await run(['providers', 'remove', 'github'])).stdout).toBe('removed github\n')
    expect(json<unknown[]>(await run(['--json', 'providers', 'list']))).toHaveLength(1)
  })

  it('allow-client and disallow-client name the confidential clients that may exchange', async () => {
    const clients = json<{ client_id: string; name: string }[]>(
      await run(['--json', 'clients', 'list']),
    )
    const clientId = clients.find((c) => c.name === 'Agent')?.client_id as string
    const publicId = clients.find((c) => c.name === 'Desk')?.client_id as string
    oneLineError(
      await run(['providers', 'allow-client', 'corp', publicId]),
      /is a public client: only confidential clients/,
    )
    const allowed = json<{ allowed_clients: string[] }>(
      await run(['--json', 'providers', 'allow-client', 'corp', clientId]),
    )
    expect(allowed.allowed_clients).toEqual([clientId])
    oneLineError(await run(['providers', 'allow-client', 'corp', 'nope']), /no client nope/)
    const after = json<{ allowed_clients: string[] }>(
      await run(['--json', 'providers', 'disallow-client', 'corp', clientId]),
    )
    expect(after.allowed_clients).toEqual([])
  })

  it('mistakes are one clear line', async () => {
    oneLineError(
      await run(['providers', 'add', 'x', '--type', 'nope', '--client-id', 'a']),
      /--type must be one of github, slack, google, microsoft, oidc, oauth2/,
    )
    oneLineError(
      await run(['providers', 'add', 'Bad Name', '--type', 'github', '--client-id', 'a']),
      /name must be/,
    )
    oneLineError(await run(['providers', 'show', 'nope']), /no provider named nope/)
    oneLineError(await run(['providers', 'disable', 'nope']), /no provider named nope/)
    oneLineError(
      await run(['providers', 'add', 'y', '--type', 'oidc', '--client-id', 'a']),
      /needs --issuer/,
    )
    oneLineError(
      await run([
        'providers',
        'add',
        'z',
        '--type',
        'oidc',
        '--client-id',
        'a',
        '--issuer',
        `${upstream.issuer}/nowhere`,
      ]),
      /discovery at .* failed/,
    )
    oneLineError(
      await run([
        'providers',
        'add',
        'w',
        '--type',
        'github',
        '--client-id',
        'a',
        '--use',
        'login',
      ]),
      /--use must be/,
    )
  })
})
