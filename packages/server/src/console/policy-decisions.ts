import type { Context, Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import type { SessionDeps } from '../identity/sessions.js'
import type { Users } from '../identity/users.js'
import { DeputyError, isDeputyError } from '../lib/errors.js'
import { hasNul } from '../lib/form.js'
import { jsonTextProblem } from '../lib/json-input.js'
import type { Clients } from '../oauth/clients.js'
import { authorizationRequest, type DecisionQuery, personSub } from '../policy/decision-query.js'
import type { Policies, PolicyEngine } from '../policy/types.js'
import {
  type Choice,
  type ExplainAsked,
  explainPage,
  simulatePage,
} from '../ui/console/policy-decisions.js'
import { consoleView, html } from './gate.js'

/** What the simulation and explain pages use: the decision point the admin API's routes use. */
export interface PolicyDecisionsConsoleDeps extends SessionDeps {
  policies: Pick<Policies, 'actions'>
  policy: Pick<PolicyEngine, 'simulate' | 'explain' | 'loadedVersion'>
  users: Pick<Users, 'list' | 'findById' | 'findByEmail'>
  clients: Pick<Clients, 'list'>
}

/** The longest value a question's field may hold (a URL, an email, a JSON document). */
const MAX_FIELD = 8000
const MAX_SCOPES = 100

/**
 * "What may agent X do for person Y" and "explain a decision" (issue 15 §1), over the engine's
 * own `simulate` and `explain` as the admin API's /policy/simulate and /policy/explain call them.
 * Both ask and change nothing, so they are GET forms: the answer can be reloaded and linked.
 */
export function registerPolicyDecisionPages(
  app: Hono<AppEnv>,
  deps: PolicyDecisionsConsoleDeps,
): void {
  const pickers = async () => {
    const [people, clients] = await Promise.all([deps.users.list(), deps.clients.list()])
    return {
      people: people.map((u): Choice => ({ value: u.id, label: `${u.name} (${u.email})` })),
      clients: clients.map((c): Choice => ({ value: c.clientId, label: c.name })),
    }
  }

  app.get(
    '/admin/policy/simulate',
    consoleView(deps, async (c) => {
      const asked = {
        person: field(c, 'person'),
        client: field(c, 'client'),
        resource: field(c, 'resource'),
      }
      const actions = await deps.policies.actions()
      const servers = [
        ...new Set(actions.flatMap((a) => (a.resource === null ? [] : [a.resource]))),
      ]
        .sort()
        .map((uri): Choice => ({ value: uri, label: uri }))
      const page = { ...(await pickers()), servers, asked }
      if (asked.person === '') return html(c, simulatePage(page))
      const problem = badField(asked)
      if (problem) return html(c, simulatePage({ ...page, problem }), 400)
      const rows = await deps.policy.simulate({
        sub: await personSub(deps, asked.person),
        ...(asked.client === '' ? {} : { clientId: asked.client }),
      })
      return html(
        c,
        simulatePage({
          ...page,
          rows: rows
            .filter((row) => asked.resource === '' || row.resource === asked.resource)
            .map((row) => ({ ...row, errors: [] })),
          setVersion: deps.policy.loadedVersion(),
        }),
      )
    }),
  )

  app.get(
    '/admin/policy/explain',
    consoleView(deps, async (c) => {
      const asked: ExplainAsked = {
        person: field(c, 'person'),
        client: field(c, 'client'),
        action: field(c, 'action'),
        resource: field(c, 'resource'),
        scopes: field(c, 'scopes'),
        arguments: field(c, 'arguments'),
        state: field(c, 'state'),
        approved: c.req.query('approved') === '1',
      }
      const actions = (await deps.policies.actions()).map(
        (a): Choice => ({ value: a.id, label: a.id }),
      )
      const page = { ...(await pickers()), actions, asked }
      if (asked.person === '' && asked.action === '') return html(c, explainPage(page))
      try {
        const problem = badField(asked)
        if (problem) throw new DeputyError('ERR_INVALID_INPUT', problem)
        const request = await authorizationRequest(deps, explainQuery(asked))
        const decision = await deps.policy.explain(request)
        return html(c, explainPage({ ...page, decision: { ...decision } }))
      } catch (err) {
        if (!isDeputyError(err) || err.status >= 500) throw err
        return html(c, explainPage({ ...page, problem: sentence(err.message) }), err.status)
      }
    }),
  )
}

/** A query parameter as typed, trimmed (absent is empty). */
function field(c: Context<AppEnv>, name: string): string {
  return (c.req.query(name) ?? '').trim()
}

/** Why a field cannot be asked about, before anything is looked up. */
function badField(asked: object): string | undefined {
  for (const [name, value] of Object.entries(asked)) {
    if (typeof value !== 'string') continue
    if (hasNul(value)) return `The ${name} contains a NUL character.`
    if (value.length > MAX_FIELD) return `The ${name} is longer than ${MAX_FIELD} characters.`
  }
  return undefined
}

/** The explain form as the admin API's decision body (decision-query.ts builds the request). */
function explainQuery(asked: ExplainAsked): DecisionQuery {
  if (asked.person === '') throw new DeputyError('ERR_INVALID_INPUT', 'choose a person')
  if (asked.action === '') throw new DeputyError('ERR_INVALID_INPUT', 'choose an action')
  const scopes = asked.scopes === '' ? [] : asked.scopes.split(/\s+/)
  if (scopes.length > MAX_SCOPES)
    throw new DeputyError('ERR_INVALID_INPUT', `give at most ${MAX_SCOPES} scopes`)
  const args = asked.arguments === '' ? undefined : json('arguments', asked.arguments)
  const state = asked.state === '' ? undefined : json('state', asked.state)
  if (state !== undefined && (typeof state !== 'object' || state === null || Array.isArray(state)))
    throw new DeputyError('ERR_INVALID_INPUT', 'the state must be a JSON object')
  return {
    person: asked.person,
    ...(asked.client === '' ? {} : { clientId: asked.client }),
    action: asked.action,
    ...(asked.resource === '' ? {} : { resource: asked.resource }),
    scopes,
    ...(args === undefined ? {} : { arguments: args }),
    ...(state === undefined ? {} : { state: state as Record<string, unknown> }),
    approved: asked.approved,
  }
}

function json(name: string, text: string): unknown {
  const problem = jsonTextProblem(text)
  if (problem) throw new DeputyError('ERR_INVALID_INPUT', `the ${name} ${problem}`)
  try {
    return JSON.parse(text)
  } catch {
    throw new DeputyError('ERR_INVALID_INPUT', `the ${name} must be JSON, e.g. {"item": "shirt"}`)
  }
}

function sentence(text: string): string {
  const s = `${text.charAt(0).toUpperCase()}${text.slice(1)}`
  return /[.!?]$/.test(s) ? s : `${s}.`
}
