import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { explainCheck } from '../../src/policy/relationship-path.js'
import { formatTuple, parseTuple } from '../../src/policy/tuple-syntax.js'
import type { Relationships } from '../../src/policy/types.js'
import { DIALECTS, skipDialect } from '../helpers/databases.js'
import { startTestDeputy, type TestDeputy } from '../helpers/deputy.js'

const actor = { type: 'system' as const, id: 'test' }

/** The answer and its path in the text form, for a question in the text form. */
async function explained(rel: Relationships, question: string) {
  const answer = await explainCheck(rel, parseTuple(question))
  return { allowed: answer.allowed, path: answer.path?.map(formatTuple) ?? null }
}

// Why a relationship check says yes (the console's check, issue 15 §1): the stored tuples from
// the subject to the relation on the object, the shortest chain, always agreeing with `check`.
for (const dialect of DIALECTS) {
  describe.skipIf(skipDialect(dialect.name))(`the path behind a check (${dialect.name})`, () => {
    let deputy: TestDeputy
    let rel: Relationships

    beforeAll(async () => {
      deputy = await startTestDeputy({ database: await dialect.create() })
      rel = deputy.deps.relationships
      await rel.write(
        [
          'doc:direct#viewer@user:ada',
          'group:eng#member@user:ada',
          'group:all#member@group:eng#member',
          'doc:deep#viewer@group:all#member',
          // A shorter way to the same document: the path found is this one.
          'doc:short#viewer@group:all#member',
          'doc:short#viewer@group:eng#member',
          'doc:public#viewer@user:*',
          // A cycle between two groups is harmless.
          'group:a#member@group:b#member',
          'group:b#member@group:a#member',
          'group:a#member@user:cyd',
        ].map(parseTuple),
        actor,
      )
    })
    afterAll(() => deputy?.dispose())

    it('a direct tuple is its own path', async () => {
      expect(await explained(rel, 'doc:direct#viewer@user:ada')).toEqual({
        allowed: true,
        path: ['doc:direct#viewer@user:ada'],
      })
    })

    it('nested groups: every tuple from the person to the document, subject side first', async () => {
      expect(await explained(rel, 'doc:deep#viewer@user:ada')).toEqual({
        allowed: true,
        path: [
          'group:eng#member@user:ada',
          'group:all#member@group:eng#member',
          'doc:deep#viewer@group:all#member',
        ],
      })
      expect((await explained(rel, 'doc:short#viewer@user:ada')).path).toEqual([
        'group:eng#member@user:ada',
        'doc:short#viewer@group:eng#member',
      ])
    })

    it('a wildcard grants every subject of its type, and says so', async () => {
      expect(await explained(rel, 'doc:public#viewer@user:bob')).toEqual({
        allowed: true,
        path: ['doc:public#viewer@user:*'],
      })
      expect((await explained(rel, 'doc:public#viewer@group:eng#member')).allowed).toBe(false)
    })

    it('no: no path, whatever the cycles, and the same answer as check', async () => {
      for (const question of [
        'doc:deep#viewer@user:bob',
        'doc:deep#editor@user:ada',
        'doc:deep#viewer@user:cyd',
      ]) {
        expect(await explained(rel, question)).toEqual({ allowed: false, path: null })
        expect(await rel.check(parseTuple(question))).toBe(false)
      }
      expect((await explained(rel, 'group:b#member@user:cyd')).path).toEqual([
        'group:a#member@user:cyd',
        'group:b#member@group:a#member',
      ])
    })
  })
}
