import { beforeAll, describe, expect, it } from 'vitest'
import {
  type AuditFailure,
  jwtVerifier,
  protectMcpServer,
  type ToolCallEvent,
} from '../src/index.js'
import {
  connect,
  makeKey,
  mintToken,
  startAuthorizationServer,
  startMcpServer,
  type TestKey,
  text,
} from './helpers.js'

// No action without its audit record: the kit records a call as decided before its handler runs
// (and a refusal before it is answered), then the outcome; when the decision cannot be recorded
// the handler does not run, unless the server says `auditFailure: 'continue'`.

let key: TestKey
let issuer: string
let jwksUri: string

/** What happened, in order: records the hook accepted and the handler's side effect. */
const log: string[] = []
/** The record type the hook fails on, if any. */
let failOn: string | undefined
/** Holds the hook on a `tool.refused` record until released. */
let holdRefusals: Promise<void> | undefined
let refusalHeld: () => void = () => {}

async function hook(event: ToolCallEvent): Promise<void> {
  if (event.type === failOn) throw new Error(`cannot write ${event.type}`)
  if (event.type === 'tool.refused' && holdRefusals !== undefined) {
    refusalHeld()
    await holdRefusals
  }
  log.push(`${event.type} ${event.tool}`)
}

async function start(auditFailure: AuditFailure | undefined) {
  const errors: Error[] = []
  const { resource } = await startMcpServer((resource) => {
    const kit = protectMcpServer({
      resource,
      authorizationServers: [issuer],
      verifier: jwtVerifier({ issuer, jwksUri, audience: resource }),
      server: { name: 'audit-order', version: '1.0.0' },
      audit: hook,
      ...(auditFailure !== undefined && { auditFailure }),
      onError: (error) => errors.push(error),
    })
    kit.tool('act', {}, { description: 'Has a side effect' }, () => {
      log.push('handler ran')
      return { content: [{ type: 'text', text: 'acted' }] }
    })
    kit.tool('admin_only', { roles: ['admin'] }, {}, () => {
      log.push('admin handler ran')
      return { content: [{ type: 'text', text: 'admin' }] }
    })
    return kit
  })
  const client = async (sub = 'ada') =>
    connect(resource, await mintToken(key, { iss: issuer, aud: resource, sub }), '2026-07-28')
  return { client, errors }
}

let refusing: Awaited<ReturnType<typeof start>>
let continuing: Awaited<ReturnType<typeof start>>

beforeAll(async () => {
  const as = await startAuthorizationServer()
  key = await makeKey('k1')
  as.state.keys = [key]
  issuer = as.issuer
  jwksUri = as.jwksUri
  refusing = await start(undefined)
  continuing = await start('continue')
})

function reset(): void {
  log.length = 0
  failOn = undefined
  holdRefusals = undefined
  refusing.errors.length = 0
  continuing.errors.length = 0
}

describe('the kit records a tool call before it acts on it', () => {
  it('records the decision before the handler runs and the outcome after', async () => {
    reset()
    const client = await refusing.client()
    expect(text(await client.callTool({ name: 'act', arguments: {} }))).toBe('acted')
    expect(log).toEqual(['tool.allowed act', 'handler ran', 'tool.called act'])
  })

  it('a hook that throws on the decision record: the handler never runs and the caller gets a refusal', async () => {
    reset()
    failOn = 'tool.allowed'
    const client = await refusing.client()
    const result = await client.callTool({ name: 'act', arguments: {} })
    expect(result.isError).toBe(true)
    expect(text(result)).toBe('This call to act was not run: it could not be recorded.')
    expect(log).toEqual([])
    expect(refusing.errors.map((error) => error.message)).toEqual(['cannot write tool.allowed'])
  })

  it('with auditFailure continue the handler runs and onError is told', async () => {
    reset()
    failOn = 'tool.allowed'
    const client = await continuing.client()
    expect(text(await client.callTool({ name: 'act', arguments: {} }))).toBe('acted')
    expect(log).toEqual(['handler ran', 'tool.called act'])
    expect(continuing.errors.map((error) => error.message)).toEqual(['cannot write tool.allowed'])
  })

  it('a refusal is recorded before it is answered, and stands when its record fails', async () => {
    reset()
    let release: () => void = () => {}
    holdRefusals = new Promise<void>((resolve) => {
      release = resolve
    })
    const held = new Promise<void>((resolve) => {
      refusalHeld = resolve
    })
    const client = await refusing.client()
    const answered = client.callTool({ name: 'admin_only', arguments: {} }).then((result) => {
      log.push('refusal answered')
      return result
    })
    await held
    // Another whole exchange completes while the refusal's record is held: its answer waits.
    await (await refusing.client('grace')).listTools()
    log.push('other exchange answered')
    release()
    const refused = await answered
    expect(refused.isError).toBe(true)
    expect(log).toEqual(['other exchange answered', 'tool.refused admin_only', 'refusal answered'])

    reset()
    failOn = 'tool.refused'
    const again = await client.callTool({ name: 'admin_only', arguments: {} })
    expect(again.isError).toBe(true)
    expect(text(again)).toBe('You do not have a role that may call admin_only.')
    expect(log).toEqual([])
    expect(refusing.errors.map((error) => error.message)).toEqual(['cannot write tool.refused'])
  })

  it('links a call’s decision and outcome by one callId', async () => {
    const events: ToolCallEvent[] = []
    const { resource } = await startMcpServer((resource) => {
      const kit = protectMcpServer({
        resource,
        authorizationServers: [issuer],
        verifier: jwtVerifier({ issuer, jwksUri, audience: resource }),
        server: { name: 'audit-ids', version: '1.0.0' },
        audit: (event) => {
          events.push(event)
        },
      })
      kit.tool('act', {}, {}, () => ({ content: [{ type: 'text', text: 'acted' }] }))
      return kit
    })
    const client = await connect(
      resource,
      await mintToken(key, { iss: issuer, aud: resource, sub: 'ids' }),
      '2025-11-25',
    )
    await client.callTool({ name: 'act', arguments: {} })
    await client.callTool({ name: 'act', arguments: {} })
    expect(events.map((event) => [event.type, event.outcome])).toEqual([
      ['tool.allowed', undefined],
      ['tool.called', 'success'],
      ['tool.allowed', undefined],
      ['tool.called', 'success'],
    ])
    const [a, b, c, d] = events.map((event) => event.callId)
    expect(a).toBe(b)
    expect(c).toBe(d)
    expect(a).not.toBe(c)
  })
})
