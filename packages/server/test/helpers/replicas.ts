import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { sha256 } from '../../src/lib/random.js'
import type { TestDeputy } from './deputy.js'

/** The repository's root, for the built CLI. */
export const ROOT = resolve(import.meta.dirname, '../../../..')
/** The `deputy` command as a user runs it (the compiled package). */
export const BIN = join(ROOT, 'packages/server/bin/deputy.js')

/** A `deputy start` process of a test. */
export interface Replica {
  child: ChildProcess
  /** Its base URL on 127.0.0.1. */
  url: string
  /** Settles with the exit code when the process ends. */
  exit: Promise<number | null>
  /** Everything it wrote to stderr so far. */
  stderr(): string
  /** Everything it wrote to stdout (its JSON log) so far. */
  stdout(): string
  /** Ends it with SIGTERM (if it still runs) and waits for it to exit. */
  stop(): Promise<void>
}

/** Builds packages/server so spawned processes run the current source (tsc emits despite type errors). */
export function buildServer(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  try {
    execFileSync(process.execPath, [tsc, '-b', 'packages/server'], { cwd: ROOT, stdio: 'pipe' })
  } catch (err) {
    if (!String((err as { stdout?: Buffer }).stdout ?? '').includes('error TS')) throw err
  }
}

/**
 * Runs `deputy start --port 0` in `dir` with `env` (none of this process's DEPUTY_* settings)
 * until it says where it runs.
 */
export async function startReplica(
  dir: string,
  env: Record<string, string>,
  args: string[] = [],
): Promise<Replica> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('DEPUTY_') && k !== 'PORT'),
  )
  const child = spawn(process.execPath, [BIN, 'start', '--port', '0', ...args], {
    cwd: dir,
    env: { ...clean, DEPUTY_DATA_DIR: join(dir, 'data'), DEPUTY_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  let stdout = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8')
  })
  const exit = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8')
  })
  const url = await new Promise<string>((ready, fail) => {
    child.stderr?.on('data', () => {
      // The banner names the issuer and, in brackets, where it really listens.
      const found = /Deputy is running at \S+ \(listening on (http:\/\/[^,\s]+)/.exec(stderr)?.[1]
      if (found) ready(found.replace('localhost', '127.0.0.1'))
    })
    void exit.then((code) => fail(new Error(`deputy start exited with ${code}: ${stderr}`)))
  })
  return {
    child,
    url,
    exit,
    stderr: () => stderr,
    stdout: () => stdout,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exit
    },
  }
}

/** The shop the replica tests seed: one resource, and the code flow's fixed values. */
export const SHOP = {
  resource: 'https://shop.example/mcp',
  redirect: 'http://127.0.0.1:3000/callback',
  verifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
} as const

/** Client credentials sent with HTTP Basic. */
export interface Credentials {
  id: string
  secret: string
}

/** A code for `userId` and the public `clientId`, issued as /authorize would, to redeem anywhere. */
export async function issueShopCode(
  deps: TestDeputy['deps'],
  who: { userId: string; clientId: string },
): Promise<{ code: string; grantId: string }> {
  const scopes = ['shop:read']
  const grant = await deps.grants.create({ ...who, resource: SHOP.resource, scopes })
  const code = await deps.authorizationCodes.issue({
    ...who,
    grantId: grant.id,
    redirectUri: SHOP.redirect,
    codeChallenge: sha256(SHOP.verifier),
    resource: SHOP.resource,
    scopes,
    nonce: null,
    authTime: Date.now(),
  })
  return { code, grantId: grant.id }
}

/** POSTs a form to `path` of a running process, with Basic credentials when `who` is given. */
export function postFormTo(
  on: Replica,
  path: string,
  params: Record<string, string>,
  who?: Credentials,
): Promise<Response> {
  return fetch(`${on.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(who && { authorization: `Basic ${btoa(`${who.id}:${who.secret}`)}` }),
    },
    body: new URLSearchParams(params),
  })
}
