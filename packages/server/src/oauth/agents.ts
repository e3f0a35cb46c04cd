import { type Context, Hono } from 'hono'
import type { Actor, AuditLog } from '../audit/types.js'
import type { AppEnv } from '../http/env.js'
import { signInHref } from '../identity/return-to.js'
import { readSession, type SessionDeps } from '../identity/sessions.js'
import { isDeputyError } from '../lib/errors.js'
import { hasNul } from '../lib/form.js'
import { safeEqual } from '../lib/random.js'
import { type AgentEntry, agentsPage } from '../ui/agents.js'
import { messagePage } from '../ui/message-page.js'
import type { Clients } from './clients.js'
import { scopeSentence } from './consent.js'
import type { GrantSummary, Grants } from './grants.js'
import type { Resources } from './resources.js'

/** What "your agents" reads and changes: the person's grants, the agents, the resources. */
export interface AgentsDeps extends SessionDeps {
  grants: Pick<Grants, 'listForUser' | 'revokeClientForUser'>
  clients: Pick<Clients, 'get'>
  resources: Pick<Resources, 'list'>
  audit: AuditLog
}

/** A grant on the wire (snake_case, as the rest of the HTTP API). */
function grantJson(g: GrantSummary) {
  return {
    id: g.id,
    client_id: g.clientId,
    client_name: g.clientName,
    resource: g.resource,
    scopes: g.scopes,
    created_at: g.createdAt,
    first_used_at: g.firstUsedAt,
    last_used_at: g.lastUsedAt,
    agreed_text: g.agreedText,
  }
}

function earliest(a: string | null, b: string | null): string | null {
  return a === null ? b : b === null ? a : a < b ? a : b
}

function latest(a: string | null, b: string | null): string | null {
  return a === null ? b : b === null ? a : a > b ? a : b
}

/**
 * Groups a person's grants by agent, then resource: the union of scopes since the oldest grant,
 * first and last use over all of them, and the sentences the person agreed to (each scope's
 * wording as first shown, which a resource rewording it later does not change).
 */
async function agentEntries(deps: AgentsDeps, grants: GrantSummary[]): Promise<AgentEntry[]> {
  const byClient = new Map<string, AgentEntry>()
  const resources = new Map((await deps.resources.list()).map((r) => [r.uri, r]))
  // listForUser is newest first; walking oldest first makes `since` the oldest grant's time.
  for (const g of [...grants].reverse()) {
    let agent = byClient.get(g.clientId)
    if (!agent) {
      agent = { clientId: g.clientId, clientName: g.clientName, resources: [] }
      byClient.set(g.clientId, agent)
    }
    const resource = resources.get(g.resource)
    let entry = agent.resources.find((r) => r.uri === g.resource)
    if (!entry) {
      entry = {
        uri: g.resource,
        name: resource?.name ?? g.resource,
        scopes: [],
        since: g.createdAt,
        firstUsedAt: null,
        lastUsedAt: null,
        agreed: [],
        agreedAt: null,
      }
      agent.resources.push(entry)
    }
    entry.firstUsedAt = earliest(entry.firstUsedAt, g.firstUsedAt)
    entry.lastUsedAt = latest(entry.lastUsedAt, g.lastUsedAt)
    for (const scope of g.scopes) {
      if (entry.scopes.some((s) => s.scope === scope)) continue
      const sentence = resource ? scopeSentence(resource, scope) : scope
      entry.scopes.push({ scope, sentence })
    }
    if (g.agreedText) {
      entry.agreedAt ??= g.createdAt
      for (const said of g.agreedText) {
        if (!entry.agreed.some((s) => s.scope === said.scope)) entry.agreed.push(said)
      }
    }
  }
  return [...byClient.values()].sort((a, b) => a.clientName.localeCompare(b.clientName))
}

/**
 * Ends everything a person gave one agent: its grants and their refresh tokens, and the
 * remembered consent, so the next authorization asks again. Returns how many grants ended.
 */
async function revokeAgent(
  deps: AgentsDeps,
  actor: Actor,
  clientId: string,
  requestId: string | null,
): Promise<number> {
  const ended = await deps.grants.revokeClientForUser(actor.id, clientId, actor)
  await deps.audit.append({
    type: 'consent.revoked',
    actor,
    target: { type: 'client', id: clientId },
    requestId,
    data: { grants: ended },
  })
  return ended
}

function jsonError(c: Context<AppEnv>, status: number, error: string, message: string): Response {
  return c.json({ error, message }, status as 400, { 'Cache-Control': 'no-store' })
}

/**
 * "Your agents" (issue 3 §6): the page and the JSON API with which a signed-in person sees which
 * agents hold grants for them and revokes any of them.
 */
export function createAgentsRoutes(deps: AgentsDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()

  app.get('/account/agents', async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session) return c.redirect(signInHref('/account/agents'), 303)
    const agents = await agentEntries(deps, await deps.grants.listForUser(session.user.id))
    const revoked = c.req.query('revoked')
    // Only a notice; a value no client id can be (a NUL) is not looked up.
    const revokedName =
      revoked && !hasNul(revoked) ? (await deps.clients.get(revoked))?.name : undefined
    return c.html(
      agentsPage({ agents, csrfToken: session.csrfToken, ...(revokedName ? { revokedName } : {}) }),
      200,
      { 'Cache-Control': 'no-store' },
    )
  })

  app.post('/account/agents/revoke', async (c) => {
    const page = (status: number, text: string) =>
      c.html(
        messagePage({
          title: 'Not revoked',
          text,
          link: { href: '/account/agents', label: 'Back to your agents' },
        }),
        status as 400,
        { 'Cache-Control': 'no-store' },
      )
    const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase()
    if (type !== 'application/x-www-form-urlencoded')
      return page(415, 'This address accepts only a submitted web form.')
    const session = await readSession(deps, c.req.raw)
    if (!session) return c.redirect(signInHref('/account/agents'), 303)
    const form = new URLSearchParams(await c.req.text())
    const sent = form.get('csrf_token')
    if (form.getAll('csrf_token').length !== 1 || !sent || !safeEqual(sent, session.csrfToken))
      return page(
        403,
        'This form has expired or did not come from Deputy. Reload the page and try again.',
      )
    const clientId = form.get('client_id')
    if (!clientId || form.getAll('client_id').length !== 1)
      return page(400, 'Choose which agent to revoke.')
    const actor: Actor = { type: 'user', id: session.user.id, label: session.user.email }
    try {
      await revokeAgent(deps, actor, clientId, c.get('requestId') ?? null)
    } catch (err) {
      if (isDeputyError(err) && err.code === 'ERR_NOT_FOUND')
        return page(404, 'That agent is not known to Deputy.')
      throw err
    }
    return c.redirect(`/account/agents?revoked=${encodeURIComponent(clientId)}`, 303)
  })

  app.get('/account/api/grants', async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session) return jsonError(c, 401, 'login_required', 'sign in to see your agents')
    const grants = await deps.grants.listForUser(session.user.id)
    return c.json({ grants: grants.map(grantJson) }, 200, { 'Cache-Control': 'no-store' })
  })

  app.delete('/account/api/grants/:clientId', async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session) return jsonError(c, 401, 'login_required', 'sign in to revoke an agent')
    // The session cookie travels by itself; the header proves the call came from our own pages.
    const presented = c.req.header('x-csrf-token')
    if (!presented || !safeEqual(presented, session.csrfToken))
      return jsonError(c, 403, 'csrf_token_invalid', 'send the X-CSRF-Token header of this session')
    const clientId = c.req.param('clientId')
    const actor: Actor = { type: 'user', id: session.user.id, label: session.user.email }
    try {
      const revoked = await revokeAgent(deps, actor, clientId, c.get('requestId') ?? null)
      return c.json({ client_id: clientId, revoked_grants: revoked }, 200, {
        'Cache-Control': 'no-store',
      })
    } catch (err) {
      if (isDeputyError(err) && err.code === 'ERR_NOT_FOUND')
        return jsonError(c, 404, 'not_found', `no agent ${clientId}`)
      throw err
    }
  })

  return app
}
