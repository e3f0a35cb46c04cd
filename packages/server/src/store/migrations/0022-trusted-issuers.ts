import { type Kysely, sql } from 'kysely'

// Never edit a migration once it has landed: add a new numbered one instead.

/**
 * Issue 13 §2 and §4: the parties an operator trusts for RFC 7523 jwt-bearer assertions, and the
 * authorization servers Deputy, as an enterprise IdP, issues Identity Assertion JWTs for.
 *
 * - `kind`: `workload` (a Kubernetes, GitHub Actions or SPIFFE issuer whose tokens a workload
 *   presents instead of a stored secret), `enterprise-idp` (an IdP whose ID-JAGs name people), or
 *   `resource-as` (an authorization server Deputy issues ID-JAGs for; no keys of its own here).
 * - `jwks_uri` or `jwks` (a JWK Set read from a file when the issuer was added), never both.
 * - `rules`: JSON `[{client, claims}]`. For a workload issuer: an assertion whose claims equal all
 *   of `claims` gets tokens as `client`; for a resource AS: `client` may get ID-JAGs for it, and
 *   `claims.client_id` is its client_id there.
 * Spent assertion ids go to `client_assertion_jtis` under `issuer:<issuer>`, as client
 * assertions' do under their client.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('trusted_issuers')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) =>
      c.notNull().check(sql`kind in ('workload', 'enterprise-idp', 'resource-as')`),
    )
    .addColumn('issuer', 'text', (c) => c.notNull())
    // `assertions` (workload, enterprise-idp) or `audience` (resource-as): one issuer is trusted
    // once as a source of assertions and once as an ID-JAG audience (two Deputies in both roles).
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('assertions', 'audience')`))
    .addColumn('jwks_uri', 'text')
    .addColumn('jwks', 'text')
    // Space-separated JWS algorithms accepted (asymmetric only).
    .addColumn('algorithms', 'text', (c) => c.notNull())
    // The `aud` assertions must name; null: Deputy's issuer or its token endpoint.
    .addColumn('audience', 'text')
    .addColumn('max_lifetime_seconds', 'integer', (c) => c.notNull())
    // enterprise-idp: the sign-in provider whose linked identities the IdP's subjects are.
    .addColumn('link_provider', 'text')
    // enterprise-idp: 1 when the IdP's `email` claim may name a Deputy person.
    .addColumn('match_email', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rules', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('trusted_issuers_issuer_role', ['issuer', 'role'])
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('trusted_issuers').execute()
}
