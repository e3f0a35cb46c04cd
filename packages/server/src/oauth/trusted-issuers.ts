import { ASYMMETRIC } from '@deputy/mcp/dpop'
import { z } from 'zod'
import type { Actor, AuditLog } from '../audit/types.js'
import { parseInput } from '../identity/users.js'
import type { Clock } from '../lib/clock.js'
import { DeputyError } from '../lib/errors.js'
import type { Store } from '../store/db.js'
import type { TrustedIssuersTable } from '../store/schema.js'

// The operator's trust store for RFC 7523 jwt-bearer assertions (issue 13 §2, §4): workload issuers
// (a Kubernetes cluster, GitHub Actions, a SPIFFE trust domain) whose tokens get a workload tokens
// as one client, enterprise IdPs whose Identity Assertion JWTs name people, and the resource
// authorization servers Deputy itself issues ID-JAGs for. An assertion is worth exactly what a
// row here says: an issuer nobody added, or claims no rule maps, get nothing.

export type TrustedIssuerKind = TrustedIssuersTable['kind']

export const TRUSTED_ISSUER_KINDS = [
  'workload',
  'enterprise-idp',
  'resource-as',
] as const satisfies readonly TrustedIssuerKind[]

/** The default longest an assertion may be valid for from now: a Kubernetes token's default hour. */
export const DEFAULT_MAX_ASSERTION_LIFETIME_SECONDS = 3600

/** One mapping: a workload issuer's claims to a client, or a client to its id at a resource AS. */
export interface IssuerRule {
  client: string
  claims: Record<string, string>
}

export interface TrustedIssuer {
  name: string
  kind: TrustedIssuerKind
  issuer: string
  jwksUri: string | null
  jwks: { keys: Record<string, unknown>[] } | null
  algorithms: string[]
  /** The `aud` an assertion must name; null: Deputy's issuer or token endpoint. */
  audience: string | null
  maxLifetimeSeconds: number
  /** enterprise-idp: the sign-in provider whose linked identities hold the IdP's subjects. */
  linkProvider: string | null
  /** enterprise-idp: the `email` claim may name a Deputy person. */
  matchEmail: boolean
  rules: IssuerRule[]
  createdAt: string
  updatedAt: string
}

const ClaimNameSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'is not a claim name')

export const AddTrustedIssuerSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lower-case letters, digits and dashes'),
    kind: z.enum(TRUSTED_ISSUER_KINDS),
    issuer: z.string().min(1).max(2048),
    jwksUri: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    jwks: z
      .object({
        keys: z
          .array(z.looseObject({ kty: z.string() }))
          .min(1)
          .max(100),
      })
      .optional(),
    algorithms: z.array(z.enum(ASYMMETRIC)).min(1).optional(),
    audience: z.string().min(1).max(2048).optional(),
    maxLifetimeSeconds: z.number().int().min(60).max(86_400).optional(),
    linkProvider: z.string().min(1).max(100).optional(),
    matchEmail: z.boolean().optional(),
  })
  .refine(
    (v) => (v.kind === 'resource-as' ? !v.jwks && !v.jwksUri : !!v.jwks !== !!v.jwksUri),
    'needs exactly one of a JWKS URL or a JWKS file (and a resource AS needs neither)',
  )
  .refine(
    (v) => v.kind === 'enterprise-idp' || (v.linkProvider === undefined && !v.matchEmail),
    'person matching is only for an enterprise IdP',
  )

export type AddTrustedIssuerInput = z.input<typeof AddTrustedIssuerSchema>

const RuleClaimsSchema = z
  .record(ClaimNameSchema, z.string().min(1).max(512))
  .refine((c) => Object.keys(c).length > 0, 'name at least one claim')
  .refine((c) => Object.keys(c).length <= 20, 'at most 20 claims')

/** Whether an entry is trusted for the assertions it signs or as an audience of ID-JAGs. */
function roleOf(kind: TrustedIssuerKind): TrustedIssuersTable['role'] {
  return kind === 'resource-as' ? 'audience' : 'assertions'
}

function toIssuer(row: TrustedIssuersTable): TrustedIssuer {
  return {
    name: row.name,
    kind: row.kind,
    issuer: row.issuer,
    jwksUri: row.jwks_uri,
    jwks: row.jwks ? (JSON.parse(row.jwks) as TrustedIssuer['jwks']) : null,
    algorithms: row.algorithms.split(' '),
    audience: row.audience,
    maxLifetimeSeconds: Number(row.max_lifetime_seconds),
    linkProvider: row.link_provider,
    matchEmail: Number(row.match_email) === 1,
    rules: JSON.parse(row.rules) as IssuerRule[],
    createdAt: new Date(Number(row.created_at)).toISOString(),
    updatedAt: new Date(Number(row.updated_at)).toISOString(),
  }
}

/**
 * The keys of a stored set that sign JWTs. A SPIFFE trust bundle (`spire-server bundle show
 * -format spiffe`) marks JWT-SVID keys `use: jwt-svid` and holds X.509 authorities
 * (`x509-svid`) too: the former are signing keys (jose only takes `sig` or no `use`), the latter
 * are left out.
 */
function signingKeys(jwks: { keys: Record<string, unknown>[] }): {
  keys: Record<string, unknown>[]
} {
  const keys = jwks.keys
    .filter((k) => k.use !== 'x509-svid')
    .map((k) => (k.use === 'jwt-svid' ? { ...k, use: 'sig' } : k))
  if (keys.length === 0)
    throw new DeputyError('ERR_INVALID_INPUT', 'the JWK Set holds no key for signatures')
  return { keys }
}

/** What an audit record says of an issuer: everything but the keys themselves. */
function described(issuer: TrustedIssuer): Record<string, unknown> {
  const { jwks, createdAt: _c, updatedAt: _u, ...rest } = issuer
  return { ...rest, jwksKeys: jwks?.keys.length ?? null }
}

/** The trust store: add, list, show, map and remove trusted issuers, each change audited. */
export function createTrustedIssuers(deps: { store: Store; clock: Clock; audit: AuditLog }) {
  const db = deps.store.db

  async function get(name: string): Promise<TrustedIssuer | undefined> {
    const row = await db
      .selectFrom('trusted_issuers')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst()
    return row ? toIssuer(row) : undefined
  }

  async function mustGet(name: string): Promise<TrustedIssuer> {
    const found = await get(name)
    if (!found) throw new DeputyError('ERR_NOT_FOUND', `no trusted issuer ${name}`)
    return found
  }

  async function writeRules(
    issuer: TrustedIssuer,
    rules: IssuerRule[],
    event: string,
    data: Record<string, unknown>,
    actor: Actor,
  ): Promise<TrustedIssuer> {
    await deps.audit.append({
      type: event,
      actor,
      target: { type: 'trusted-issuer', id: issuer.name },
      data: { name: issuer.name, kind: issuer.kind, issuer: issuer.issuer, ...data },
    })
    await db
      .updateTable('trusted_issuers')
      .set({ rules: JSON.stringify(rules), updated_at: deps.clock.now().getTime() })
      .where('name', '=', issuer.name)
      .execute()
    return mustGet(issuer.name)
  }

  return {
    get,

    /**
     * The entry whose `issuer` is exactly `iss`: as a source of assertions (an assertion's `iss`,
     * not yet verified) or as an ID-JAG audience (resource-as).
     */
    async byIssuer(
      iss: string,
      role: TrustedIssuersTable['role'] = 'assertions',
    ): Promise<TrustedIssuer | undefined> {
      if (iss.length > 2048) return undefined
      const row = await db
        .selectFrom('trusted_issuers')
        .selectAll()
        .where('issuer', '=', iss)
        .where('role', '=', role)
        .executeTakeFirst()
      return row ? toIssuer(row) : undefined
    },

    async list(): Promise<TrustedIssuer[]> {
      const rows = await db.selectFrom('trusted_issuers').selectAll().orderBy('name').execute()
      return rows.map(toIssuer)
    },

    async add(input: AddTrustedIssuerInput, actor: Actor): Promise<TrustedIssuer> {
      const v = parseInput(AddTrustedIssuerSchema, input, 'trusted issuer')
      if (await get(v.name)) throw new DeputyError('ERR_CONFLICT', `${v.name} already exists`)
      const role = roleOf(v.kind)
      const taken = await db
        .selectFrom('trusted_issuers')
        .select('name')
        .where('issuer', '=', v.issuer)
        .where('role', '=', role)
        .executeTakeFirst()
      if (taken)
        throw new DeputyError('ERR_CONFLICT', `${v.issuer} is already trusted as ${taken.name}`)
      if (v.linkProvider !== undefined) {
        const provider = await db
          .selectFrom('providers')
          .select('name')
          .where('name', '=', v.linkProvider)
          .executeTakeFirst()
        if (!provider) throw new DeputyError('ERR_NOT_FOUND', `no provider ${v.linkProvider}`)
      }
      const now = deps.clock.now().getTime()
      const row: TrustedIssuersTable = {
        name: v.name,
        kind: v.kind,
        issuer: v.issuer,
        role,
        jwks_uri: v.jwksUri ?? null,
        jwks: v.jwks ? JSON.stringify(signingKeys(v.jwks)) : null,
        algorithms: (v.algorithms ?? ['ES256', 'RS256', 'EdDSA']).join(' '),
        audience: v.audience ?? null,
        max_lifetime_seconds: v.maxLifetimeSeconds ?? DEFAULT_MAX_ASSERTION_LIFETIME_SECONDS,
        link_provider: v.linkProvider ?? null,
        match_email: v.matchEmail ? 1 : 0,
        rules: '[]',
        created_at: now,
        updated_at: now,
      }
      const added = toIssuer(row)
      await deps.audit.append({
        type: 'trusted-issuer.added',
        actor,
        target: { type: 'trusted-issuer', id: v.name },
        decision: 'allow',
        data: described(added),
      })
      await db.insertInto('trusted_issuers').values(row).execute()
      return added
    },

    /**
     * Adds a rule: for a workload issuer, assertions whose claims equal all of `claims` get tokens
     * as `client`; for a resource AS, `client` may get ID-JAGs for it (`claims.client_id`: its
     * client_id there, required). The client must be one an operator registered.
     */
    async map(name: string, rule: IssuerRule, actor: Actor): Promise<TrustedIssuer> {
      const issuer = await mustGet(name)
      if (issuer.kind === 'enterprise-idp')
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'an enterprise IdP names people, not clients: its ID-JAGs carry the client_id',
        )
      const claims = parseInput(RuleClaimsSchema, rule.claims, 'claims')
      if (issuer.kind === 'resource-as' && Object.keys(claims).join() !== 'client_id')
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'a resource AS rule names only client_id=<the client id there>',
        )
      const client = await db
        .selectFrom('clients')
        .select(['client_id', 'kind'])
        .where('client_id', '=', rule.client)
        .executeTakeFirst()
      if (!client) throw new DeputyError('ERR_NOT_FOUND', `no client ${rule.client}`)
      if (client.kind !== 'registered')
        throw new DeputyError(
          'ERR_INVALID_INPUT',
          'only a client an operator registered can be mapped (not a dynamic or metadata-document one)',
        )
      const same = (r: IssuerRule) =>
        r.client === rule.client && JSON.stringify(r.claims) === JSON.stringify(claims)
      if (issuer.rules.some(same)) return issuer
      const rules =
        issuer.kind === 'resource-as'
          ? [
              ...issuer.rules.filter((r) => r.client !== rule.client),
              { client: rule.client, claims },
            ]
          : [...issuer.rules, { client: rule.client, claims }]
      if (rules.length > 100) throw new DeputyError('ERR_INVALID_INPUT', 'at most 100 rules')
      return writeRules(
        issuer,
        rules,
        'trusted-issuer.mapped',
        { client: rule.client, claims },
        actor,
      )
    },

    /** Removes every rule of `name` for `client`. */
    async unmap(name: string, client: string, actor: Actor): Promise<TrustedIssuer> {
      const issuer = await mustGet(name)
      const rules = issuer.rules.filter((r) => r.client !== client)
      if (rules.length === issuer.rules.length)
        throw new DeputyError('ERR_NOT_FOUND', `${name} has no rule for ${client}`)
      return writeRules(issuer, rules, 'trusted-issuer.unmapped', { client }, actor)
    },

    async remove(name: string, actor: Actor): Promise<void> {
      const issuer = await mustGet(name)
      await deps.audit.append({
        type: 'trusted-issuer.removed',
        actor,
        target: { type: 'trusted-issuer', id: name },
        data: { name, kind: issuer.kind, issuer: issuer.issuer },
      })
      await db.deleteFrom('trusted_issuers').where('name', '=', name).execute()
    },
  }
}

export type TrustedIssuers = ReturnType<typeof createTrustedIssuers>
