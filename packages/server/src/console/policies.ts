import type { Context, Hono } from 'hono'
import type { AppEnv } from '../http/env.js'
import type { SessionDeps } from '../identity/sessions.js'
import type { Users } from '../identity/users.js'
import { DeputyError, isDeputyError } from '../lib/errors.js'
import { lineDiff } from '../lib/line-diff.js'
import { problemToWire } from '../policy/admin-wire.js'
import type { Policies, PolicyEngine, PolicyProblem, PolicyVersion } from '../policy/types.js'
import {
  MAX_POLICY_TEXT,
  type PolicyView,
  type ProblemView,
  policiesPage,
  policyHistoryPage,
  policyHref,
  policyPage,
  policyVersionPage,
  removePolicyPage,
  type VersionView,
} from '../ui/console/policies.js'
import { type ConsoleUser, consoleAction, consoleJson, consoleView, done, html } from './gate.js'
import { type PolicyDecisionsConsoleDeps, registerPolicyDecisionPages } from './policy-decisions.js'

/** What the policy pages read and change: the same policy store and engine as the admin API. */
export interface PoliciesConsoleDeps extends SessionDeps, PolicyDecisionsConsoleDeps {
  policies: Pick<
    Policies,
    | 'validate'
    | 'put'
    | 'remove'
    | 'list'
    | 'get'
    | 'history'
    | 'latestVersions'
    | 'setVersion'
    | 'actions'
  >
  policy: Pick<PolicyEngine, 'refresh' | 'simulate' | 'explain' | 'loadedVersion'>
  users: Pick<Users, 'list' | 'findById' | 'findByEmail'>
}

const NOTICES: Record<string, string> = {
  saved: 'Saved as a new version: it decides from now on.',
  unchanged: 'Nothing to save: the text is the version in force.',
  removed: 'Policy removed: it decides nothing any more. Its history stays.',
}

/** A problem as the pages and the editor script show it. */
function problemView(p: PolicyProblem): ProblemView {
  return {
    ...(p.policyId === undefined ? {} : { policyId: p.policyId }),
    line: p.line,
    column: p.column,
    message: p.message,
    ...(p.help === undefined ? {} : { help: p.help }),
  }
}

/** The problems of a refused write (`ERR_POLICY_INVALID`), or undefined for any other error. */
function refusedProblems(err: unknown): ProblemView[] | undefined {
  if (!isDeputyError(err) || err.code !== 'ERR_POLICY_INVALID') return undefined
  return ((err.problems ?? []) as PolicyProblem[]).map(problemView)
}

/**
 * A text from the form, bounded as the admin API bounds it. Browsers send a textarea's line
 * breaks as CRLF (HTML's form submission); the text is stored with the LF it was typed with, so
 * saving an unchanged text makes no new version and diffs compare line by line.
 */
function policyText(sent: string | undefined): string {
  const text = (sent ?? '').replace(/\r\n?/g, '\n')
  if (text.trim() === '')
    throw new DeputyError('ERR_INVALID_INPUT', 'the policy text must not be empty')
  if (text.length > MAX_POLICY_TEXT)
    throw new DeputyError('ERR_INVALID_INPUT', `the policy text is longer than ${MAX_POLICY_TEXT}`)
  return text
}

/**
 * Policies (issue 15 §1): the list, a policy's text in an editor (validated as one types and on
 * save), new policies, removal, and each policy's versions with line diffs; and the simulation
 * and explain pages (policy-decisions.ts). Every change calls the policy store's own `put` and
 * `remove`, as the admin API does.
 */
export function registerPolicyPages(app: Hono<AppEnv>, deps: PoliciesConsoleDeps): void {
  registerPolicyDecisionPages(app, deps)
  const { policies } = deps
  const notice = (c: Context<AppEnv>) => NOTICES[c.req.query('done') ?? '']
  const idOf = (c: Context<AppEnv>) => c.req.param('id') ?? ''

  /** `user:<id>` as that person's email; other actors (`system:cli`) as recorded. */
  const names = async (createdBy: readonly string[]): Promise<Map<string, string>> => {
    const named = new Map<string, string>()
    for (const who of new Set(createdBy)) {
      const user = who.startsWith('user:') ? await deps.users.findById(who.slice(5)) : undefined
      named.set(who, user?.email ?? who)
    }
    return named
  }

  async function policyView(id: string): Promise<PolicyView | undefined> {
    const versions = await policies.history(id)
    const latest = versions.at(-1)
    if (!latest) return undefined
    const who = (await names([latest.createdBy])).get(latest.createdBy) ?? latest.createdBy
    const current = latest.text === null ? undefined : await policies.get(id)
    const lastText = [...versions].reverse().find((v) => v.text !== null)?.text ?? ''
    return {
      id,
      version: latest.version,
      setVersion: latest.setVersion,
      removed: latest.text === null,
      effect: current?.effect ?? null,
      description: current?.description ?? null,
      text: latest.text ?? lastText,
      changedAt: latest.createdAt,
      changedBy: who,
    }
  }

  async function listPage(c: Context<AppEnv>, admin: ConsoleUser, draft?: Draft, status = 200) {
    const latest = await policies.latestVersions()
    const described = new Map((await policies.list()).map((p) => [p.id, p.description]))
    return html(
      c,
      policiesPage({
        policies: latest.map((v) => ({
          id: v.id,
          version: v.version,
          changedAt: v.createdAt,
          removed: v.text === null,
          description: described.get(v.id) ?? null,
        })),
        setVersion: await policies.setVersion(),
        csrfToken: admin.session.csrfToken,
        notice: notice(c),
        ...(draft === undefined ? {} : { draft }),
      }),
      status,
    )
  }
  app.get(
    '/admin/policies',
    consoleView(deps, async (c, admin) => listPage(c, admin)),
  )

  // A new policy (or several statements at once, each with its @id).
  app.post(
    '/admin/policies',
    consoleAction(
      deps,
      () => '/admin/policies',
      async (c, admin, form) => {
        const text = policyText(form.get('text'))
        const id = form.get('id')?.trim()
        try {
          const stored = await policies.put(text, admin.actor, id ? { id } : {})
          await deps.policy.refresh()
          const [first] = stored
          return done(
            c,
            stored.length === 1 && first ? policyHref(first.id, '?done=saved') : '/admin/policies',
          )
        } catch (err) {
          const problems = refusedProblems(err)
          if (!problems) throw err
          return listPage(c, admin, { text, id: id ?? '', problems }, 400)
        }
      },
    ),
  )

  // Validation as one types: the editor script posts the text here and lists what comes back.
  app.post(
    '/admin/policy/validate',
    consoleJson(deps, async (c, _admin, body) => {
      const { text, id } = (body ?? {}) as { text?: unknown; id?: unknown }
      if (typeof text !== 'string' || text.length > MAX_POLICY_TEXT || !isOptionalString(id))
        return c.json(
          {
            error: 'invalid_request',
            message: `send {"text": "<at most ${MAX_POLICY_TEXT} characters>", "id"?: "<id>"}`,
          },
          400,
          { 'Cache-Control': 'no-store' },
        )
      const result = await policies.validate(text, id ? { id } : {})
      return c.json(
        result.ok
          ? { valid: true, problems: [] }
          : { valid: false, problems: result.problems.map(problemToWire) },
        200,
        { 'Cache-Control': 'no-store' },
      )
    }),
  )

  app.get(
    '/admin/policies/:id',
    consoleView(deps, async (c, admin) => {
      const policy = await policyView(idOf(c))
      if (!policy) return c.notFound()
      return html(c, policyPage({ policy, csrfToken: admin.session.csrfToken, notice: notice(c) }))
    }),
  )

  const back = (c: Context<AppEnv>) => policyHref(idOf(c))

  app.post(
    '/admin/policies/:id',
    consoleAction(deps, back, async (c, admin, form) => {
      const policy = await policyView(idOf(c))
      if (!policy) throw new DeputyError('ERR_NOT_FOUND', 'no policy with that id')
      const text = policyText(form.get('text'))
      try {
        const stored = await policies.put(text, admin.actor, { id: policy.id })
        await deps.policy.refresh()
        const changed = stored.some((p) => p.version !== policy.version || policy.removed)
        return done(c, policyHref(policy.id, `?done=${changed ? 'saved' : 'unchanged'}`))
      } catch (err) {
        const problems = refusedProblems(err)
        if (!problems) throw err
        return html(
          c,
          policyPage({ policy, csrfToken: admin.session.csrfToken, draft: { text, problems } }),
          400,
        )
      }
    }),
  )

  // Removing asks first: this page holds the only form that removes.
  app.get(
    '/admin/policies/:id/remove',
    consoleView(deps, async (c, admin) => {
      const policy = await policies.get(idOf(c))
      if (!policy) return c.notFound()
      return html(c, removePolicyPage({ id: policy.id, csrfToken: admin.session.csrfToken }))
    }),
  )

  app.post(
    '/admin/policies/:id/remove',
    consoleAction(deps, back, async (c, admin, form) => {
      if (form.get('confirm') !== 'remove')
        throw new DeputyError('ERR_INVALID_INPUT', 'confirm the removal on the page that asks')
      await policies.remove(idOf(c), admin.actor)
      await deps.policy.refresh()
      return done(c, policyHref(idOf(c), '?done=removed'))
    }),
  )

  async function versionViews(versions: readonly PolicyVersion[]): Promise<VersionView[]> {
    const named = await names(versions.map((v) => v.createdBy))
    return versions.map((v) => ({
      version: v.version,
      setVersion: v.setVersion,
      removed: v.text === null,
      createdAt: v.createdAt,
      createdBy: named.get(v.createdBy) ?? v.createdBy,
    }))
  }

  app.get(
    '/admin/policies/:id/history',
    consoleView(deps, async (c) => {
      const versions = await policies.history(idOf(c))
      const [first] = versions
      if (!first) return c.notFound()
      return html(c, policyHistoryPage({ id: first.id, versions: await versionViews(versions) }))
    }),
  )

  app.get(
    '/admin/policies/:id/versions/:version',
    consoleView(deps, async (c) => {
      const versions = await policies.history(idOf(c))
      const asked = c.req.param('version') ?? ''
      const index = /^[1-9]\d{0,8}$/.test(asked)
        ? versions.findIndex((v) => v.version === Number(asked))
        : -1
      const shown = versions[index]
      if (!shown) return c.notFound()
      const before = versions[index - 1]
      const [view] = await versionViews([shown])
      return html(
        c,
        policyVersionPage({
          id: shown.id,
          version: view as VersionView,
          text: shown.text,
          diff: lineDiff(before?.text ?? '', shown.text ?? ''),
          previous: before?.version ?? null,
          next: versions[index + 1]?.version ?? null,
        }),
      )
    }),
  )
}

/** What a refused new policy form keeps: the text and id as typed, and why it was refused. */
interface Draft {
  text: string
  id: string
  problems: readonly ProblemView[]
}

function isOptionalString(value: unknown): value is string | undefined {
  return value === undefined || (typeof value === 'string' && value.length <= 128)
}
