import { type Context, Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import type { Actor, AuditLog } from '../audit/types.js'
import type { ResolvedConfig } from '../config/load.js'
import type { AppEnv } from '../http/env.js'
import { signInHref } from '../identity/return-to.js'
import { type CurrentSession, readSession, type SessionDeps } from '../identity/sessions.js'
import { FormError, readForm } from '../lib/form.js'
import { safeEqual } from '../lib/random.js'
import { approvalPage, inboxPage } from '../ui/approvals.js'
import { messagePage } from '../ui/message-page.js'
import { type DecideDeps, decideApproval } from './decide.js'
import type { DetailTypes } from './detail-types.js'
import type { ApprovalRequest, ApprovalRequests } from './requests.js'
import { type ShownApproval, shownApproval, shownDigest } from './shown.js'

// The person's side of asynchronous approval (issue 11 §3): the inbox at /approvals, a page per
// request at /approvals/<id> with Approve and Deny, and /approvals/events, the server-sent events
// that keep both live. A decision binds to what the page displayed: the page carries the digest
// of its content, the decision posts it back, and a digest that no longer matches the request is
// refused. High-risk types need the password entered (or a passkey used) within
// approvalFreshSignInMinutes.

/** A resource as the inbox names it (oauth/resources.ts). */
interface ResourceEntry {
  uri: string
  name: string
  scopes: Record<string, string>
}

/** What the inbox reads and decides with. */
export interface InboxDeps extends SessionDeps, DecideDeps {
  config: Pick<ResolvedConfig, 'sessionTtlSeconds' | 'approvalFreshSignInMinutes'>
  approvals: Pick<
    ApprovalRequests,
    'byId' | 'listForUser' | 'subscribe' | 'decide' | 'markRecorded'
  >
  clients: {
    get(
      clientId: string,
    ): Promise<{ name: string; backchannelClientNotificationEndpoint: string | null } | undefined>
  }
  resources: { list(): Promise<ResourceEntry[]> }
  detailTypes: Pick<DetailTypes, 'list'>
  /** A scope in words for a resource (oauth/consent.ts scopeSentence). */
  scopeSentence(resource: ResourceEntry, scope: string): string
  /** Aborted when the server drains: open event streams end (browsers reconnect elsewhere). */
  streamsEnd?: AbortSignal
  /** How often an idle event stream sends a comment and checks its session (default 25 s). */
  keepAliveMs?: number
  audit: AuditLog
}

/** How often an idle event stream sends a comment, so proxies do not close it. */
const KEEP_ALIVE_MS = 25_000

const ID_SHAPE = /^[A-Za-z0-9_-]{1,64}$/

/** How a session must have been signed in to confirm a high-risk approval (passkeys: user-verified). */
const FRESH_SIGN_IN_METHODS: ReadonlySet<string> = new Set(['password', 'passkey'])

function page(c: Context<AppEnv>, body: string, status = 200): Response {
  return c.html(body, status as 200, { 'Cache-Control': 'no-store' })
}

function message(c: Context<AppEnv>, status: number, title: string, text: string, back: string) {
  return page(
    c,
    messagePage({ title, text, link: { href: back, label: 'Back to your approvals' } }),
    status,
  )
}

function toSignIn(c: Context<AppEnv>, returnTo: string, fresh = false): Response {
  c.header('Cache-Control', 'no-store')
  return c.redirect(signInHref(returnTo, { fresh }), 303)
}

/** Builds the views of requests, looking each client, resource and type list up once. */
function viewer(deps: InboxDeps, session: CurrentSession) {
  const clients = new Map<string, Promise<{ name: string } | undefined>>()
  const types = new Map<string, ReturnType<InboxDeps['detailTypes']['list']>>()
  let resources: Promise<ResourceEntry[]> | undefined
  return async (request: ApprovalRequest): Promise<ShownApproval> => {
    let client = clients.get(request.clientId)
    if (!client) {
      client = deps.clients.get(request.clientId)
      clients.set(request.clientId, client)
    }
    let typeList = types.get(request.resource)
    if (!typeList) {
      typeList = deps.detailTypes.list(request.resource)
      types.set(request.resource, typeList)
    }
    resources ??= deps.resources.list()
    const [c, t, all] = await Promise.all([client, typeList, resources])
    const resource = all.find((r) => r.uri === request.resource)
    return shownApproval(request, {
      client: c,
      person: { email: session.user.email },
      resource,
      types: t,
      scopeSentence: (scope) => (resource ? deps.scopeSentence(resource, scope) : scope),
    })
  }
}

/** The inbox, the request pages, the decisions and the event stream. */
export function createInboxRoutes(deps: InboxDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()
  const freshMs = deps.config.approvalFreshSignInMinutes * 60_000
  // Listen from the start: on PostgreSQL the first subscription opens the LISTEN connection, and
  // the first person's stream should not wait for it (or miss what is signalled meanwhile).
  const stopListening = deps.approvals.subscribe(() => {})
  deps.streamsEnd?.addEventListener('abort', stopListening, { once: true })

  /** The person's own request by id, or undefined (another person's is as unknown as none). */
  async function ownRequest(session: CurrentSession, id: string) {
    if (!ID_SHAPE.test(id)) return undefined
    const request = await deps.approvals.byId(id)
    return request?.userId === session.user.id ? request : undefined
  }

  // Only a password typed or a user-verified passkey used within minutes counts: a provider
  // sign-in completes without the person doing anything while the provider's session is still
  // open in the browser.
  const needsFreshSignIn = (shown: ShownApproval, session: CurrentSession) =>
    shown.highRisk &&
    (!FRESH_SIGN_IN_METHODS.has(session.signedInWith) ||
      deps.clock.now().getTime() - session.signedInAt > freshMs)

  app.get('/approvals', async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session) return toSignIn(c, '/approvals')
    const view = viewer(deps, session)
    const [pending, history] = await Promise.all([
      deps.approvals.listForUser(session.user.id, 'pending', 50),
      deps.approvals.listForUser(session.user.id, 'history', 20),
    ])
    return page(
      c,
      inboxPage({
        pending: await Promise.all(pending.map(view)),
        history: await Promise.all(history.map(view)),
      }),
    )
  })

  // Server-sent events: `approval` with {id, event} whenever one of this person's requests is
  // created or decided, on any replica (the approvals signal, store/signals.ts).
  app.get('/approvals/events', async (c) => {
    const session = await readSession(deps, c.req.raw)
    if (!session)
      return c.json({ error: 'login_required', message: 'sign in to follow your approvals' }, 401)
    const userId = session.user.id
    const queue: string[] = []
    let wake: (() => void) | undefined
    // Subscribed before the stream opens, so nothing signalled after the browser sees it is lost.
    const stop = deps.approvals.subscribe((signal) => {
      if (signal.userId !== userId) return
      queue.push(JSON.stringify({ id: signal.id, event: signal.event }))
      wake?.()
    })
    c.header('Cache-Control', 'no-store')
    return streamSSE(c, async (stream) => {
      let open = true
      const end = () => {
        open = false
        wake?.()
      }
      stream.onAbort(end)
      if (deps.streamsEnd?.aborted) end()
      deps.streamsEnd?.addEventListener('abort', end, { once: true })
      try {
        await stream.writeSSE({ event: 'ready', data: '{}', retry: 3000 })
        while (open) {
          while (queue.length > 0 && open)
            await stream.writeSSE({ event: 'approval', data: queue.shift() as string })
          if (!open) break
          let timer: NodeJS.Timeout | undefined
          await new Promise<void>((resolve) => {
            wake = resolve
            timer = setTimeout(resolve, deps.keepAliveMs ?? KEEP_ALIVE_MS)
          })
          clearTimeout(timer)
          wake = undefined
          if (!open || queue.length > 0) continue
          // Each quiet interval: a stream outlives its session by at most one interval.
          if (!(await readSession(deps, c.req.raw))) break
          await stream.write(': keep-alive\n\n')
        }
      } finally {
        stop()
        deps.streamsEnd?.removeEventListener('abort', end)
      }
    })
  })

  app.get('/approvals/:id', async (c) => {
    const id = c.req.param('id')
    const session = await readSession(deps, c.req.raw)
    if (!session) return toSignIn(c, `/approvals/${encodeURIComponent(id)}`)
    const request = await ownRequest(session, id)
    if (!request)
      return message(c, 404, 'No such request', 'You have no approval request here.', '/approvals')
    const shown = await viewer(deps, session)(request)
    return page(
      c,
      approvalPage({
        approval: shown,
        digest: shownDigest(shown),
        csrfToken: session.csrfToken,
        needsFreshSignIn: needsFreshSignIn(shown, session),
        freshSignInMinutes: deps.config.approvalFreshSignInMinutes,
      }),
    )
  })

  app.post('/approvals/:id', async (c) => {
    const id = c.req.param('id')
    const back = `/approvals/${encodeURIComponent(id)}`
    let form: Awaited<ReturnType<typeof readForm>>
    try {
      form = await readForm(c.req)
    } catch (err) {
      if (!(err instanceof FormError)) throw err
      return message(
        c,
        err.problem === 'not-form' ? 415 : 400,
        'Form not accepted',
        err.problem === 'not-form'
          ? 'This address accepts only a submitted web form.'
          : 'The form was not sent as Deputy built it. Reload the page and try again.',
        back,
      )
    }
    const session = await readSession(deps, c.req.raw)
    if (!session) return toSignIn(c, back)
    const sent = form.get('csrf_token')
    if (!sent || !safeEqual(sent, session.csrfToken))
      return message(
        c,
        403,
        'Form expired',
        'This form has expired or did not come from Deputy. Reload the page and try again.',
        back,
      )
    const request = await ownRequest(session, id)
    if (!request)
      return message(c, 404, 'No such request', 'You have no approval request here.', '/approvals')
    const decision = form.get('decision')
    if (decision !== 'approve' && decision !== 'deny')
      return message(c, 400, 'Not decided', 'Choose Approve or Deny.', back)
    const shown = await viewer(deps, session)(request)
    const digest = shownDigest(shown)
    const actor: Actor = { type: 'user', id: session.user.id, label: session.user.email }
    const requestId = c.get('requestId') ?? null
    const posted = form.get('shown_digest')
    if (!posted || !safeEqual(posted, digest)) {
      await deps.audit.append({
        type: 'approval.decision-refused',
        actor,
        target: { type: 'approval', id: request.id },
        decision: 'deny',
        reason: 'the decision was for other content than the request now shows',
        requestId,
        data: { shownDigest: digest },
      })
      return message(
        c,
        409,
        'Look at the request again',
        'This request no longer reads as the page you decided on. Nothing was decided; open it again to see what it asks now.',
        back,
      )
    }
    if (request.status !== 'pending')
      return message(
        c,
        409,
        'Already settled',
        request.status === 'expired'
          ? 'This request expired before your answer arrived.'
          : 'This request was already decided.',
        back,
      )
    // Approve counts only with a fresh password or passkey for high-risk types; Deny always counts.
    if (decision === 'approve' && needsFreshSignIn(shown, session)) return toSignIn(c, back, true)
    const result = await decideApproval(deps, {
      id: request.id,
      decision: decision === 'approve' ? 'approved' : 'denied',
      actor,
      shownDigest: digest,
      requestId,
    })
    if (result.status === 'decided') {
      c.header('Cache-Control', 'no-store')
      return c.redirect(back, 303)
    }
    return message(
      c,
      409,
      'Already settled',
      result.status === 'expired'
        ? 'This request expired before your answer arrived.'
        : 'This request was already decided.',
      back,
    )
  })

  return app
}
