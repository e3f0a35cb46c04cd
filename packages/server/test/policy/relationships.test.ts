import type { KyselyPlugin } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Actor } from '../../src/audit/types.js'
import {
  createRelationships,
  MAX_DEPTH,
  MAX_TUPLES_PER_CALL,
} from '../../src/policy/relationships.js'
import {
  formatSubject,
  formatTuple,
  parseObject,
  parseSubject,
  parseTuple,
} from '../../src/policy/tuple-syntax.js'
import type { Relationships, RelationshipTuple, TupleSubject } from '../../src/policy/types.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const actor: Actor = { type: 'user', id: 'operator-1', label: 'ops@example.com' }

const tuples = (...texts: string[]): RelationshipTuple[] => texts.map(parseTuple)
const subject = (text: string): TupleSubject => parseSubject(text)
const object = (text: string) => parseObject(text)

// Issue 5 §2: the text form people type (`deputy relationships write …`, the admin API).
describe('relationship tuple syntax (issue 5 §2)', () => {
  it('parses and formats objects, usersets and wildcards', () => {
    expect(parseTuple('doc:readme#viewer@user:alice')).toEqual({
      object: { type: 'doc', id: 'readme' },
      relation: 'viewer',
      subject: { type: 'user', id: 'alice' },
    })
    expect(parseTuple(' doc:readme#viewer@group:eng#member ')).toEqual({
      object: { type: 'doc', id: 'readme' },
      relation: 'viewer',
      subject: { type: 'group', id: 'eng', relation: 'member' },
    })
    expect(parseTuple('doc:faq#viewer@user:*').subject).toEqual({ type: 'user', id: '*' })
    // An id may hold ':' and '/' (only the first ':' separates the type).
    expect(parseTuple('doc:s3://bucket/a.md#parent@folder:s3://bucket').object.id).toBe(
      's3://bucket/a.md',
    )
    for (const text of [
      'doc:readme#viewer@user:alice',
      'doc:readme#viewer@group:eng#member',
      'doc:faq#viewer@user:*',
    ])
      expect(formatTuple(parseTuple(text))).toBe(text)
    expect(formatSubject(parseSubject('group:eng#member'))).toBe('group:eng#member')
    expect(parseObject('folder:root')).toEqual({ type: 'folder', id: 'root' })
  })

  it('refuses malformed text with one line naming the problem', () => {
    const refusals: [string, RegExp][] = [
      ['', /^empty tuple: expected object#relation@subject/],
      ['doc:readme#viewer', /missing @subject/],
      ['doc:readme@user:alice', /missing #relation/],
      ['readme#viewer@user:alice', /object "readme" needs a type, as in type:id/],
      ['doc:readme#viewer@alice', /subject "alice" needs a type/],
      ['doc:readme#viewer@user:a@b', /more than one '@'/],
      ['doc:re#ad#viewer@user:alice', /more than one '#' before '@'/],
      ['doc:readme#viewer@group:eng#member#x', /more than one '#' after '@'/],
      ['Doc:readme#viewer@user:alice', /object type "Doc" must be a lower-case letter/],
      ['doc:readme#Viewer@user:alice', /relation "Viewer" must be a lower-case letter/],
      ['doc:read me#viewer@user:alice', /object id "read me" must be 1–256 characters/],
      ['doc:#viewer@user:alice', /object id "" must be 1–256 characters/],
      ['doc:*#viewer@user:alice', /object id cannot be '\*'/],
      ['doc:readme#viewer@user:*#member', /a wildcard stands for plain subjects only/],
      [`doc:${'x'.repeat(257)}#viewer@user:alice`, /object id ".*\.\.\." must be 1–256/],
    ]
    for (const [text, message] of refusals) {
      let error: unknown
      try {
        parseTuple(text)
      } catch (err) {
        error = err
      }
      expect(error, text).toMatchObject({ code: 'ERR_INVALID_INPUT', message })
      expect((error as Error).message, text).not.toContain('\n')
    }
    expect(() => parseSubject('group:eng#member@x')).toThrow(/expected type:id or type:id#relation/)
    expect(() => parseObject('doc:readme#viewer')).toThrow(/expected type:id/)
    expect(() => parseObject('doc:*')).toThrow(/object id cannot be '\*'/)
  })
})

/** Counts the statements a Relationships instance sends, over the test's real database. */
function countingRelationships(deputy: TestDeputy): {
  relationships: Relationships
  count(): number
} {
  let statements = 0
  const counter: KyselyPlugin = {
    transformQuery: (args) => {
      statements++
      return args.node
    },
    transformResult: async (args) => args.result,
  }
  const { store, clock, audit } = deputy.deps
  const relationships = createRelationships({
    store: { ...store, db: store.db.withPlugin(counter) },
    clock,
    audit,
  })
  return { relationships, count: () => statements }
}

for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(
    `relationship tuples on ${dialect.name} (issue 5 §2)`,
    () => {
      let deputy: TestDeputy
      let rel: Relationships

      beforeAll(async () => {
        deputy = await startTestDeputy({ database: await dialect.create() })
        rel = deputy.deps.relationships
      })
      afterAll(() => deputy?.dispose())

      async function events(type: string) {
        const rows = await deputy.deps.db
          .selectFrom('audit_events')
          .selectAll()
          .where('type', '=', type)
          .orderBy('seq')
          .execute()
        return rows.map((r) => ({
          actor: JSON.parse(r.actor) as Actor,
          data: JSON.parse(r.data) as Record<string, unknown>,
        }))
      }

      const viewer = (doc: string, who: string) =>
        rel.check({ object: object(doc), relation: 'viewer', subject: subject(who) })

      it('follows usersets through nested groups, and stops when a link is deleted', async () => {
        await rel.write(
          tuples(
            'group:eng#member@user:alice',
            'group:all#member@group:eng#member',
            'doc:plan#viewer@group:all#member',
          ),
          actor,
        )
        expect(await viewer('doc:plan', 'user:alice')).toBe(true)
        expect(await viewer('doc:plan', 'user:bob')).toBe(false)
        // A userset is a subject too: everyone in eng is in all.
        expect(await viewer('doc:plan', 'group:eng#member')).toBe(true)
        expect(await viewer('doc:plan', 'group:eng')).toBe(false)
        expect((await rel.expandSubject(subject('user:alice'))).map(formatSubject)).toEqual([
          'user:alice',
          'user:*',
          'group:eng#member',
          'group:all#member',
        ])

        expect(await rel.delete(tuples('group:all#member@group:eng#member'), actor)).toEqual({
          deleted: 1,
        })
        expect(await viewer('doc:plan', 'user:alice')).toBe(false)
        expect((await rel.expandSubject(subject('user:alice'))).map(formatSubject)).toEqual([
          'user:alice',
          'user:*',
          'group:eng#member',
        ])
      })

      it('lists every group a person is a member of, even one no tuple names as a subject', async () => {
        await rel.write(tuples('group:lonely#member@user:gina', 'doc:g#owner@user:gina'), actor)
        // The Cedar model needs group memberships; a plain doc relation is not a userset to follow.
        expect((await rel.expandSubject(subject('user:gina'))).map(formatSubject)).toEqual([
          'user:gina',
          'user:*',
          'group:lonely#member',
        ])
      })

      it('follows a userset of any relation, not only member (owners are viewers)', async () => {
        await rel.write(
          tuples(
            'doc:design#viewer@doc:design#owner',
            'doc:design#owner@user:quinn',
            'folder:specs#viewer@folder:specs#editor',
            'folder:specs#editor@group:writers#member',
            'group:writers#member@user:rita',
          ),
          actor,
        )
        expect(await viewer('doc:design', 'user:quinn')).toBe(true)
        expect(await viewer('doc:design', 'user:rita')).toBe(false)
        expect(await viewer('folder:specs', 'user:rita')).toBe(true)
        expect(await viewer('folder:specs', 'user:quinn')).toBe(false)
        expect((await rel.expandSubject(subject('user:rita'))).map(formatSubject)).toEqual([
          'user:rita',
          'user:*',
          'group:writers#member',
          'folder:specs#editor',
        ])
      })

      it('gives user:* to every user, directly and through a group, but not to other types', async () => {
        await rel.write(
          tuples(
            'doc:faq#viewer@user:*',
            'group:everyone#member@user:*',
            'doc:handbook#viewer@group:everyone#member',
          ),
          actor,
        )
        expect(await viewer('doc:faq', 'user:carol')).toBe(true)
        expect(await viewer('doc:handbook', 'user:carol')).toBe(true)
        expect(await viewer('doc:faq', 'agent:carol')).toBe(false)
        expect(await viewer('doc:handbook', 'group:eng#member')).toBe(false)
        expect(
          await rel.listObjects({
            subject: subject('user:nobody'),
            relation: 'viewer',
            type: 'doc',
          }),
        ).toEqual(['faq', 'handbook'])
      })

      it('terminates on cyclic groups (a in b in a) and still answers', async () => {
        await rel.write(
          tuples(
            'group:a#member@group:b#member',
            'group:b#member@group:a#member',
            'group:a#member@user:dave',
            'doc:cyclic#viewer@group:b#member',
          ),
          actor,
        )
        expect(await viewer('doc:cyclic', 'user:dave')).toBe(true)
        expect(await viewer('doc:cyclic', 'user:erin')).toBe(false)
        // Level by level, by name within a level (user:* is in group:everyone from the test above).
        expect((await rel.expandSubject(subject('user:dave'))).map(formatSubject)).toEqual([
          'user:dave',
          'user:*',
          'group:a#member',
          'group:everyone#member',
          'group:b#member',
        ])
      })

      it(`follows at most ${MAX_DEPTH} levels of nesting`, async () => {
        // user:deep ∈ chain0 ∈ chain1 ∈ … ∈ chain19
        const chain = Array.from({ length: 20 }, (_, i) =>
          i === 0
            ? 'group:chain0#member@user:deep'
            : `group:chain${i}#member@group:chain${i - 1}#member`,
        )
        await rel.write(
          tuples(
            ...chain,
            `doc:reachable#viewer@group:chain${MAX_DEPTH - 1}#member`,
            `doc:too-deep#viewer@group:chain${MAX_DEPTH}#member`,
          ),
          actor,
        )
        expect(await viewer('doc:reachable', 'user:deep')).toBe(true)
        expect(await viewer('doc:too-deep', 'user:deep')).toBe(false)
      })

      it('lists objects through usersets and filters candidates in their order', async () => {
        await rel.write(
          tuples(
            'group:sales#member@user:frank',
            'doc:q1#viewer@user:frank',
            'doc:q2#viewer@group:sales#member',
            'doc:q3#viewer@group:sales#member',
            'doc:q3#viewer@user:frank',
            'doc:q4#editor@user:frank',
            'doc:q5#viewer@user:someone-else',
            'folder:q#viewer@user:frank',
          ),
          actor,
        )
        const frank = subject('user:frank')
        expect(await rel.listObjects({ subject: frank, relation: 'viewer', type: 'doc' })).toEqual([
          'faq',
          'handbook',
          'q1',
          'q2',
          'q3',
        ])
        expect(await rel.listObjects({ subject: frank, relation: 'editor', type: 'doc' })).toEqual([
          'q4',
        ])
        expect(
          await rel.listObjects({ subject: frank, relation: 'viewer', type: 'folder' }),
        ).toEqual(['q'])
        // Input order kept, unknown and refused ids dropped, a repeated id answered once.
        expect(
          await rel.filter({
            subject: frank,
            relation: 'viewer',
            type: 'doc',
            objects: ['q3', 'nope', 'q5', 'q1', 'q3', 'q4', 'q2', 'has space', '*'],
          }),
        ).toEqual(['q3', 'q1', 'q2'])
        expect(
          await rel.filter({ subject: frank, relation: 'viewer', type: 'doc', objects: [] }),
        ).toEqual([])
      })

      it('filters 2,000 candidates in one call with a bounded number of queries', async () => {
        const ids = Array.from({ length: 2000 }, (_, i) => `bulk-${String(i).padStart(4, '0')}`)
        const visible = ids.filter((_, i) => i % 7 === 0)
        const viaGroup = ids.filter((_, i) => i % 7 !== 0 && i % 11 === 0)
        await rel.write(
          [
            ...visible.map((id) => parseTuple(`doc:${id}#viewer@user:hank`)),
            parseTuple('group:bulk#member@user:hank'),
          ],
          actor,
        )
        await rel.write(
          viaGroup.map((id) => parseTuple(`doc:${id}#viewer@group:bulk#member`)),
          actor,
        )
        const reversed = [...ids].reverse()
        const counting = countingRelationships(deputy)
        const result = await counting.relationships.filter({
          subject: subject('user:hank'),
          relation: 'viewer',
          type: 'doc',
          objects: reversed,
        })
        const expected = reversed.filter((id) => visible.includes(id) || viaGroup.includes(id))
        expect(result).toEqual(expected)
        // Expansion: the userset relations, then one query per level (user → bulk and everyone
        // → nothing); then one query per 500 candidates.
        expect(counting.count()).toBe(1 + 2 + 2000 / 500)
      })

      it('expands a subject with one query per level, not one per tuple or per group', async () => {
        await rel.write(
          tuples(
            ...Array.from({ length: 30 }, (_, i) => `group:wide${i}#member@user:ivy`),
            ...Array.from({ length: 30 }, (_, i) => `group:wider#member@group:wide${i}#member`),
          ),
          actor,
        )
        const counting = countingRelationships(deputy)
        const expansion = await counting.relationships.expandSubject(subject('user:ivy'))
        expect(expansion.map(formatSubject)).toEqual(
          expect.arrayContaining([
            'group:wide0#member',
            'group:wide29#member',
            'group:wider#member',
          ]),
        )
        // The userset relations; then user → 30 groups (and everyone, through user:*) → wider
        // → nothing.
        expect(counting.count()).toBe(1 + 3)
      })

      it('follows parent tuples to ancestors, nearest first, through cycles', async () => {
        await rel.write(
          tuples(
            'doc:spec#parent@folder:design',
            'doc:spec#parent@folder:shared',
            'folder:design#parent@folder:eng',
            'folder:eng#parent@folder:root',
            'folder:root#parent@folder:design',
            'folder:shared#parent@folder:root',
          ),
          actor,
        )
        expect(await rel.ancestors(object('doc:spec'))).toEqual([
          { type: 'folder', id: 'design' },
          { type: 'folder', id: 'shared' },
          { type: 'folder', id: 'eng' },
          { type: 'folder', id: 'root' },
        ])
        expect(await rel.ancestors(object('folder:root'))).toEqual([
          { type: 'folder', id: 'design' },
          { type: 'folder', id: 'eng' },
        ])
        expect(await rel.ancestors(object('doc:orphan'))).toEqual([])
      })

      it('names every relation a subject holds on an object, through usersets too', async () => {
        await rel.write(
          tuples(
            'doc:roadmap#owner@user:judy',
            'doc:roadmap#viewer@group:pm#member',
            'group:pm#member@user:judy',
            'doc:roadmap#commenter@user:kim',
          ),
          actor,
        )
        const roadmap = object('doc:roadmap')
        expect(await rel.relations({ object: roadmap, subject: subject('user:judy') })).toEqual([
          'owner',
          'viewer',
        ])
        expect(await rel.relations({ object: roadmap, subject: subject('user:kim') })).toEqual([
          'commenter',
        ])
        expect(await rel.relations({ object: roadmap, subject: subject('user:zed') })).toEqual([])
      })

      it('refuses a batch with one invalid tuple and writes none of it', async () => {
        const good = parseTuple('doc:atomic#viewer@user:lena')
        const bad: [RelationshipTuple, RegExp][] = [
          [{ ...good, object: { type: 'Doc', id: 'x' } }, /^tuple 2: object type "Doc" must be/],
          [{ ...good, object: { type: 'doc', id: 'a b' } }, /^tuple 2: object id "a b" must be/],
          [{ ...good, object: { type: 'doc', id: 'a#b' } }, /^tuple 2: object id "a#b" must be/],
          [{ ...good, relation: 'view-er' }, /^tuple 2: relation "view-er" must be/],
          [{ ...good, subject: { type: 'user', id: 'x@y' } }, /^tuple 2: subject id "x@y" must be/],
          [
            { ...good, subject: { type: 'user', id: '*', relation: 'member' } },
            /^tuple 2: subject user:\*#member is not allowed/,
          ],
          [
            { ...good, subject: { type: 'group', id: 'eng', relation: '' } },
            /^tuple 2: subject relation "" must be/,
          ],
          [{ ...good, object: { type: 'doc', id: '*' } }, /^tuple 2: object id cannot be '\*'/],
          [{ ...good, subject: undefined } as unknown as RelationshipTuple, /subject is missing/],
        ]
        for (const [tuple, message] of bad) {
          await expect(rel.write([good, tuple], actor)).rejects.toMatchObject({
            code: 'ERR_INVALID_INPUT',
            message,
          })
          await expect(rel.delete([good, tuple], actor)).rejects.toMatchObject({
            code: 'ERR_INVALID_INPUT',
          })
        }
        const tooMany = Array.from({ length: MAX_TUPLES_PER_CALL + 1 }, (_, i) =>
          parseTuple(`doc:many${i}#viewer@user:lena`),
        )
        await expect(rel.write(tooMany, actor)).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: `at most ${MAX_TUPLES_PER_CALL} tuples per call (got ${MAX_TUPLES_PER_CALL + 1})`,
        })
        expect(await rel.read({ subject: subject('user:lena') })).toEqual([])
        expect(await viewer('doc:atomic', 'user:lena')).toBe(false)
      })

      it('refuses invalid queries', async () => {
        await expect(
          rel.check({ object: object('doc:x'), relation: 'Viewer', subject: subject('user:a') }),
        ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', message: /^relation "Viewer"/ })
        await expect(
          rel.listObjects({
            subject: { type: 'user', id: 'a b' },
            relation: 'viewer',
            type: 'doc',
          }),
        ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', message: /^subject id "a b"/ })
        await expect(rel.read({}, 0)).rejects.toMatchObject({
          code: 'ERR_INVALID_INPUT',
          message: /^limit must be an integer from 1 to/,
        })
      })

      it('writes idempotently and audits what changed', async () => {
        const before = (await events('relationships.written')).length
        const batch = tuples(
          'doc:idem#viewer@user:mona',
          'doc:idem#viewer@user:mona',
          'doc:idem#editor@group:x#member',
        )
        expect(await rel.write(batch, actor)).toEqual({ written: 2 })
        expect(await rel.write(batch, actor)).toEqual({ written: 0 })
        expect(
          await rel.write(tuples('doc:idem#viewer@user:mona', 'doc:idem#viewer@user:nils'), actor),
        ).toEqual({
          written: 1,
        })
        expect(await rel.read({ object: object('doc:idem') })).toEqual(
          tuples(
            'doc:idem#editor@group:x#member',
            'doc:idem#viewer@user:mona',
            'doc:idem#viewer@user:nils',
          ),
        )
        const written = (await events('relationships.written')).slice(before)
        // The no-op second write changed nothing, so it is not an event.
        expect(written).toEqual([
          {
            actor,
            data: {
              written: 2,
              requested: 2,
              tuples: ['doc:idem#viewer@user:mona', 'doc:idem#editor@group:x#member'],
            },
          },
          {
            actor,
            data: {
              written: 1,
              requested: 2,
              tuples: ['doc:idem#viewer@user:mona', 'doc:idem#viewer@user:nils'],
            },
          },
        ])
      })

      it('names only the first few tuples of a large write in the audit event', async () => {
        const many = Array.from({ length: 40 }, (_, i) =>
          parseTuple(`doc:audit${i}#viewer@user:olga`),
        )
        expect(await rel.write(many, actor)).toEqual({ written: 40 })
        const [event] = (await events('relationships.written')).slice(-1)
        expect(event?.data).toMatchObject({ written: 40, requested: 40 })
        expect(event?.data.tuples).toHaveLength(5)
      })

      it('deletes present tuples, ignores absent ones, and audits the count', async () => {
        await rel.write(tuples('doc:gone#viewer@user:pia', 'doc:gone#owner@user:pia'), actor)
        expect(
          await rel.delete(
            tuples(
              'doc:gone#viewer@user:pia',
              'doc:gone#viewer@user:pia',
              'doc:gone#viewer@user:absent',
            ),
            actor,
          ),
        ).toEqual({ deleted: 1 })
        expect(await rel.delete(tuples('doc:gone#viewer@user:pia'), actor)).toEqual({ deleted: 0 })
        expect(await rel.read({ object: object('doc:gone') })).toEqual(
          tuples('doc:gone#owner@user:pia'),
        )
        const [event] = (await events('relationships.deleted')).slice(-1)
        expect(event).toEqual({
          actor,
          data: {
            deleted: 1,
            requested: 2,
            tuples: ['doc:gone#viewer@user:pia', 'doc:gone#viewer@user:absent'],
          },
        })
      })

      it('reads tuples by object type, relation and subject, up to a limit', async () => {
        await rel.write(
          tuples('doc:r1#viewer@group:readers#member', 'doc:r2#viewer@group:readers#member'),
          actor,
        )
        expect(
          await rel.read({ relation: 'viewer', subject: subject('group:readers#member') }),
        ).toEqual(
          tuples('doc:r1#viewer@group:readers#member', 'doc:r2#viewer@group:readers#member'),
        )
        // A userset and the plain subject of the same name are different subjects.
        expect(await rel.read({ subject: subject('group:readers') })).toEqual([])
        expect(
          await rel.read({ object: { type: 'doc' }, subject: subject('group:readers#member') }, 1),
        ).toEqual(tuples('doc:r1#viewer@group:readers#member'))
      })

      it('pages through tuples after the last one read, in key order, without repeats', async () => {
        await rel.write(
          tuples(
            'page:a#viewer@user:zed',
            'page:a#editor@user:amy',
            'page:a#viewer@group:x#member',
            'page:a#viewer@user:amy',
            'page:b#viewer@user:amy',
          ),
          actor,
        )
        const all = await rel.read({ object: { type: 'page' } })
        expect(all.map(formatTuple)).toEqual([
          'page:a#editor@user:amy',
          'page:a#viewer@group:x#member',
          'page:a#viewer@user:amy',
          'page:a#viewer@user:zed',
          'page:b#viewer@user:amy',
        ])
        const pages: string[][] = []
        let after: RelationshipTuple | undefined
        for (;;) {
          const page = await rel.read({ object: { type: 'page' }, ...(after && { after }) }, 2)
          if (page.length === 0) break
          pages.push(page.map(formatTuple))
          after = page.at(-1)
        }
        expect(pages.flat()).toEqual(all.map(formatTuple))
        expect(pages.map((p) => p.length)).toEqual([2, 2, 1])
        // A userset subject's relation is part of the key: '' (a plain subject) sorts first.
        expect(
          (await rel.read({ after: parseTuple('page:a#viewer@group:x') }, 1)).map(formatTuple),
        ).toEqual(['page:a#viewer@group:x#member'])
        await expect(
          rel.read({ after: { ...parseTuple('page:a#viewer@user:amy'), relation: 'No' } }),
        ).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
      })
    },
  )
}
