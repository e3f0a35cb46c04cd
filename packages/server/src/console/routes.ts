import { Hono } from 'hono'
import { countAuditEvents, searchAudit } from '../audit/query.js'
import type { AppEnv } from '../http/env.js'
import type { Users } from '../identity/users.js'
import type { SigningKeys } from '../keys/types.js'
import { dashboardPage } from '../ui/console/dashboard.js'
import { keysPage } from '../ui/console/keys.js'
import { type ApprovalsConsoleDeps, registerApprovalPages } from './approvals.js'
import { type AuditConsoleDeps, auditLine, registerAuditPages } from './audit.js'
import { type ClientsConsoleDeps, registerClientPages } from './clients.js'
import { consoleAction, consoleView, done, html } from './gate.js'
import { type PeopleConsoleDeps, registerPeoplePages } from './people.js'
import { type PoliciesConsoleDeps, registerPolicyPages } from './policies.js'
import { type ProvidersConsoleDeps, registerProviderPages } from './providers.js'
import { type RelationshipsConsoleDeps, registerRelationshipPages } from './relationships.js'
import { type ResourcesConsoleDeps, registerResourcePages } from './resources.js'
import { type RolesConsoleDeps, registerRolePages } from './roles.js'

/** What the operator console uses: the same domain services as the admin API and the CLI. */
export interface ConsoleDeps
  extends Omit<PeopleConsoleDeps, 'users'>,
    Omit<ClientsConsoleDeps, 'users'>,
    Omit<AuditConsoleDeps, 'users'>,
    Omit<PoliciesConsoleDeps, 'users' | 'clients'>,
    Omit<RolesConsoleDeps, 'roles'>,
    Omit<ResourcesConsoleDeps, 'resources'>,
    RelationshipsConsoleDeps,
    Omit<ApprovalsConsoleDeps, 'users' | 'resources' | 'clients'>,
    Omit<ProvidersConsoleDeps, 'users' | 'vault'> {
  users: Users
  roles: RolesConsoleDeps['roles']
  signingKeys: Pick<SigningKeys, 'list' | 'rotate'>
  resources: ResourcesConsoleDeps['resources'] & ApprovalsConsoleDeps['resources']
  vault: PeopleConsoleDeps['vault'] & ProvidersConsoleDeps['vault']
}

/** Most pending approvals the dashboard counts exactly. */
const PENDING_COUNTED = 1000

/**
 * The operator console at /admin (issue 15 §1): server-rendered pages for administrators. Every
 * page and change goes through the gate in gate.ts; every change calls the domain function the
 * admin API calls, so it is audited the same, with the administrator as actor.
 */
export function createConsoleRoutes(deps: ConsoleDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>()

  app.get(
    '/admin',
    consoleView(deps, async (c) => {
      const [people, clients, tokensIssued, pending, refusals] = await Promise.all([
        deps.users.list(),
        deps.clients.list(),
        countAuditEvents(deps.store, 'token.issued'),
        deps.approvals.list({ status: 'pending', limit: PENDING_COUNTED + 1 }),
        searchAudit(deps.store, { refusals: true }, { limit: 8 }),
      ])
      return html(
        c,
        dashboardPage({
          people: people.length,
          clients: clients.length,
          tokensIssued,
          pendingApprovals: {
            count: Math.min(pending.length, PENDING_COUNTED),
            more: pending.length > PENDING_COUNTED,
          },
          refusals: refusals.map(auditLine),
        }),
      )
    }),
  )

  registerPeoplePages(app, deps)
  registerClientPages(app, deps)
  registerAuditPages(app, deps)
  registerPolicyPages(app, deps)
  registerRolePages(app, deps)
  registerResourcePages(app, deps)
  registerRelationshipPages(app, deps)
  registerApprovalPages(app, deps)
  registerProviderPages(app, deps)

  app.get(
    '/admin/keys',
    consoleView(deps, async (c, admin) =>
      html(
        c,
        keysPage({
          keys: await deps.signingKeys.list(),
          csrfToken: admin.session.csrfToken,
          ...(c.req.query('done') === 'rotated' && {
            notice: 'Rotated: the new key signs from now on; the previous one stays published.',
          }),
        }),
      ),
    ),
  )

  app.post(
    '/admin/keys/rotate',
    consoleAction(
      deps,
      () => '/admin/keys',
      async (c, admin) => {
        await deps.signingKeys.rotate(admin.actor)
        return done(c, '/admin/keys?done=rotated')
      },
    ),
  )

  return app
}
