import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import type { RelationshipTuple } from '../../src/policy/types.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

// Issue 5 §2: the retrieval filter — "which of these documents may this person see through this
// agent" — answered by the relationship tuples first, then by Cedar's `read` policies with each
// document's relations and folders in the slice.

const ADMIN: Actor = { type: 'system', id: 'test' }

const VIEWERS = `
  @id("docs.viewers")
  @description("Viewers may read")
  permit(principal, action == Deputy::Action::"read", resource)
  when { context.relations.contains("viewer") };
`
const CONFIDENTIAL = `
  @id("docs.confidential-first-party")
  @message("Confidential documents are not shown to third-party agents")
  forbid(principal, action == Deputy::Action::"read", resource in Deputy::Folder::"confidential")
  when { context has agent && !context.agent.firstParty };
`

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`retrieval filter (${dialect.name})`, () => {
    let deputy: TestDeputy
    let alice: string
    let bob: string
    let claude: string
    let stranger: string

    const tuple = (
      object: string,
      relation: string,
      subject: RelationshipTuple['subject'],
    ): RelationshipTuple => {
      const [type, id] = object.split(':') as [string, string]
      return { object: { type, id }, relation, subject }
    }

    beforeAll(async () => {
      deputy = await startTestDeputy({
        database: await dialect.create(),
        config: { policyRefreshIntervalMs: 60_000 },
      })
      const { users, clients, relationships, policies } = deputy.deps
      alice = (await users.create({ email: 'alice@example.com', name: 'Alice' }, ADMIN)).id
      bob = (await users.create({ email: 'bob@example.com', name: 'Bob' }, ADMIN)).id
      claude = (
        await clients.register(
          { name: 'Claude', redirectUris: ['https://claude.example/cb'], public: true },
          ADMIN,
        )
      ).client.clientId
      stranger = (
        await clients.register(
          { name: 'Stranger', redirectUris: ['https://stranger.example/cb'], public: true },
          ADMIN,
          { kind: 'dynamic' },
        )
      ).client.clientId
      await relationships.write(
        [
          tuple('doc:readme', 'viewer', { type: 'user', id: '*' }),
          tuple('doc:plan', 'viewer', { type: 'group', id: 'eng', relation: 'member' }),
          tuple('group:eng', 'member', { type: 'user', id: alice }),
          tuple('doc:salaries', 'viewer', { type: 'user', id: alice }),
          tuple('doc:salaries', 'owner', { type: 'user', id: alice }),
          // salaries sits two folders below "confidential".
          tuple('doc:salaries', 'parent', { type: 'folder', id: 'hr' }),
          tuple('folder:hr', 'parent', { type: 'folder', id: 'confidential' }),
          tuple('doc:roadmap', 'viewer', { type: 'group', id: 'eng', relation: 'member' }),
          tuple('doc:roadmap', 'parent', { type: 'folder', id: 'confidential' }),
          tuple('doc:bobs-notes', 'viewer', { type: 'user', id: bob }),
        ],
        ADMIN,
      )
      await policies.put(`${VIEWERS}\n${CONFIDENTIAL}`, ADMIN)
      await deputy.deps.policy.refresh()
    })
    afterAll(() => deputy?.dispose())

    const CANDIDATES = ['salaries', 'readme', 'nope', 'bobs-notes', 'roadmap', 'plan']

    it('returns the documents the person may read through a first-party agent, in input order', async () => {
      const readable = await deputy.deps.policy.filterReadable({
        sub: alice,
        clientId: claude,
        type: 'doc',
        objects: CANDIDATES,
      })
      expect(readable).toEqual(['salaries', 'readme', 'roadmap', 'plan'])
    })

    it('a third-party agent does not see documents under the confidential folder, at any depth', async () => {
      const readable = await deputy.deps.policy.filterReadable({
        sub: alice,
        clientId: stranger,
        type: 'doc',
        objects: CANDIDATES,
      })
      expect(readable).toEqual(['readme', 'plan'])
      // The person themself, without an agent, sees them.
      expect(
        await deputy.deps.policy.filterReadable({ sub: alice, type: 'doc', objects: CANDIDATES }),
      ).toEqual(['salaries', 'readme', 'roadmap', 'plan'])
    })

    it('another person sees only what the tuples give them', async () => {
      expect(
        await deputy.deps.policy.filterReadable({
          sub: bob,
          clientId: claude,
          type: 'doc',
          objects: CANDIDATES,
        }),
      ).toEqual(['readme', 'bobs-notes'])
      expect(
        await deputy.deps.policy.filterReadable({
          sub: 'nobody',
          clientId: claude,
          type: 'doc',
          objects: CANDIDATES,
        }),
      ).toEqual([])
    })

    it('filters on another relation when asked (owner), with Cedar still deciding', async () => {
      // The tuple side keeps only what Alice owns; the viewer policy still has to permit it.
      expect(
        await deputy.deps.policy.filterReadable({
          sub: alice,
          clientId: claude,
          type: 'doc',
          objects: CANDIDATES,
          relation: 'owner',
        }),
      ).toEqual(['salaries'])
    })

    it('tuples alone do not make a document readable: with no read policy, nothing is', async () => {
      await deputy.deps.policies.remove('docs.viewers', ADMIN)
      await deputy.deps.policy.refresh()
      try {
        expect(
          await deputy.deps.policy.filterReadable({
            sub: alice,
            clientId: claude,
            type: 'doc',
            objects: CANDIDATES,
          }),
        ).toEqual([])
      } finally {
        await deputy.deps.policies.put(VIEWERS, ADMIN)
        await deputy.deps.policy.refresh()
      }
    })

    it('one policy.filtered event with counts, no policy.decided per document', async () => {
      const { db } = deputy.deps
      const decided = async () =>
        (
          await db
            .selectFrom('audit_events')
            .select('seq')
            .where('type', '=', 'policy.decided')
            .execute()
        ).length
      const before = await decided()
      await deputy.deps.policy.filterReadable({
        sub: alice,
        clientId: stranger,
        type: 'doc',
        objects: CANDIDATES,
      })
      expect(await decided()).toBe(before)
      const event = await db
        .selectFrom('audit_events')
        .selectAll()
        .where('type', '=', 'policy.filtered')
        .orderBy('seq', 'desc')
        .executeTakeFirstOrThrow()
      expect(JSON.parse(event.actor)).toEqual({ type: 'agent', id: stranger })
      expect(JSON.parse(String(event.on_behalf_of))).toMatchObject({ type: 'user', id: alice })
      expect(JSON.parse(event.data)).toEqual({
        action: 'read',
        type: 'doc',
        relation: 'viewer',
        candidates: 6,
        related: 4,
        readable: 2,
        set_version: deputy.deps.policy.loadedVersion(),
      })
    })

    it('a single read decision explains which policy decided, naming the document', async () => {
      const read = (clientId: string, id: string) =>
        deputy.deps.policy.explain({
          sub: alice,
          clientId,
          action: 'read',
          resource: { type: 'Deputy::Document', id },
        })
      const denied = await read(stranger, 'salaries')
      expect(denied).toMatchObject({
        decision: 'deny',
        policies: ['docs.confidential-first-party'],
        message: 'Confidential documents are not shown to third-party agents',
      })
      const allowed = await read(claude, 'salaries')
      expect(allowed.explanation).toBe(
        'Allowed: policy "docs.viewers" (Viewers may read) permits alice@example.com to read document "salaries" through agent "Claude".',
      )
      expect((await read(claude, 'bobs-notes')).explanation).toBe(
        'Denied: no policy permits alice@example.com to read document "bobs-notes" through agent "Claude" (Cedar denies what no policy permits).',
      )
    })

    it('refuses a type Cedar has no read action for', async () => {
      await expect(
        deputy.deps.policy.filterReadable({ sub: alice, type: 'group', objects: ['eng'] }),
      ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    })
  })
}
