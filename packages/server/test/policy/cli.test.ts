import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDeputy } from '../../src/deputy.js'
import { generateMasterKey } from '../../src/keys/master-key.js'
import { type CliResult, deputyCli, json, lines, oneLineError } from '../cli/run.js'
import { testConfig } from '../helpers/deputy.js'
import {
  APPROVAL_POLICY,
  BAD_POLICIES,
  RETRIEVAL_POLICY,
  SHOP,
  SHOP_POLICIES,
  seedShop,
} from './shop-fixture.js'

// Issue 5 §3: `deputy policy …` and `deputy relations …`, the real CLI on a real database.
describe('deputy policy and deputy relations (issue 5 §3)', () => {
  let dir: string
  const masterKey = generateMasterKey()
  let run: (args: string[], input?: string) => CliResult
  let file: (name: string, text: string) => string
  let aliceId: string
  let agentId: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'deputy-cli-policy-'))
    const db = join(dir, 'deputy.db')
    run = (args, input) =>
      deputyCli(['--db', db, ...args], { cwd: dir, env: { DEPUTY_MASTER_KEY: masterKey }, input })
    file = (name, text) => {
      const path = join(dir, name)
      writeFileSync(path, text)
      return name
    }
    // What an MCP server and an operator would have done before: tools declared, people, an agent.
    const deputy = await createDeputy(testConfig(db, { masterKey }), {
      logger: pino({ level: 'silent' }),
    })
    try {
      ;({ aliceId, agentId } = await seedShop(deputy))
    } finally {
      await deputy.close()
    }
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('validate reports file:line:column for a bad policy, exits 1 and stores nothing', () => {
    const bad = file('bad.cedar', BAD_POLICIES)
    const result = run(['policy', 'validate', bad])
    expect(result.status).toBe(1)
    expect(result.stdout).toBe('')
    const [problem, ...more] = lines(result.stderr)
    expect(more).toEqual([])
    expect(problem).toMatch(/^bad\.cedar:7:8: \[bad\] .*stat/)
    expect(result.stderr).not.toMatch(/\n\s+at /)

    const fromStdin = run(['policy', 'validate', '-'], BAD_POLICIES)
    expect(fromStdin.status).toBe(1)
    expect(fromStdin.stderr).toMatch(/^<stdin>:7:8: /)

    const asJson = run(['--json', 'policy', 'validate', bad])
    expect(asJson.status).toBe(1)
    expect(JSON.parse(asJson.stdout)).toMatchObject({
      valid: false,
      problems: [{ policy_id: 'bad', line: 7, column: 8 }],
    })

    // add refuses the same way, and the valid statement beside the bad one is not stored either.
    const added = run(['policy', 'add', bad])
    expect(added.status).toBe(1)
    expect(lines(added.stderr)).toEqual([expect.stringMatching(/^bad\.cedar:7:8: \[bad\] /)])
    expect(json<unknown[]>(run(['--json', 'policy', 'list']))).toEqual([])
  })

  it('validate prints OK with the ids of a good file and stores nothing', () => {
    const good = file('shop.cedar', SHOP_POLICIES)
    const result = run(['policy', 'validate', good])
    expect(result.status).toBe(0)
    expect(result.stdout).toBe('OK: shop.tools, shop.banned-order, shop.admin-user-info\n')
    expect(json<unknown[]>(run(['--json', 'policy', 'list']))).toEqual([])
  })

  it('add, list, show, show --history and remove', () => {
    const added = run(['policy', 'add', 'shop.cedar'])
    expect(added.status).toBe(0)
    expect(lines(added.stdout)).toEqual([
      expect.stringMatching(/^stored shop\.tools version 1 \(policy set version \d+\)$/),
      expect.stringMatching(/^stored shop\.banned-order version 1 /),
      expect.stringMatching(/^stored shop\.admin-user-info version 1 /),
    ])

    const list = run(['policy', 'list'])
    expect(list.status).toBe(0)
    expect(list.stdout).toMatch(/^ID\s+EFFECT\s+VERSION\s+ACTIONS\s+DESCRIPTION/)
    expect(list.stdout).toMatch(
      /shop\.banned-order\s+forbid\s+1\s+https:\/\/shop\.example\/mcp#buyMcpShopItem\s+A banned person does not get a shirt\./,
    )

    const shown = run(['policy', 'show', 'shop.banned-order'])
    expect(shown.status).toBe(0)
    expect(shown.stdout).toMatch(/^-- shop\.banned-order: forbid, version 1 /)
    expect(shown.stdout).toContain('@message("ABSOLUTELY NOT. GO AWAY 👋")')

    // One statement without @id takes --id; the change is version 2.
    file(
      'ban.cedar',
      `forbid (principal, action == Deputy::Action::"${SHOP}#buyMcpShopItem", resource)\nwhen { context.state has demoMode && context.state.demoMode == "banned" };\n`,
    )
    const changed = run(['policy', 'add', 'ban.cedar', '--id', 'shop.banned-order'])
    expect(changed.stdout).toMatch(/^stored shop\.banned-order version 2 /)
    const removed = run(['policy', 'remove', 'shop.banned-order'])
    expect(removed.stdout).toBe('removed shop.banned-order\n')
    oneLineError(run(['policy', 'show', 'shop.banned-order']), /no policy shop\.banned-order/)
    oneLineError(run(['policy', 'remove', 'shop.banned-order']), /shop\.banned-order/)

    const history = run(['policy', 'show', 'shop.banned-order', '--history'])
    expect(history.status).toBe(0)
    expect(history.stdout).toMatch(/-- version 1 \(policy set version \d+\), .* by /)
    expect(history.stdout).toMatch(/-- version 2 /)
    expect(history.stdout).toMatch(/-- version 3 [^\n]*\n\(removed\)/)
    const versions = json<{ version: number; text: string | null }[]>(
      run(['--json', 'policy', 'show', 'shop.banned-order', '--history']),
    )
    expect(versions.map((v) => [v.version, v.text === null])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ])

    // Back as it was, with the approval and retrieval policies, for the decisions below.
    expect(run(['policy', 'add', 'shop.cedar']).status).toBe(0)
    expect(run(['policy', 'add', '-'], APPROVAL_POLICY).status).toBe(0)
    expect(run(['policy', 'add', file('docs.cedar', RETRIEVAL_POLICY)]).status).toBe(0)
    expect(
      json<{ id: string }[]>(run(['--json', 'policy', 'list']))
        .map((p) => p.id)
        .sort(),
    ).toEqual([
      'docs.viewers',
      'shop.admin-user-info',
      'shop.banned-order',
      'shop.big-orders-need-approval',
      'shop.tools',
    ])
  })

  it('test exits 0 for allow, 1 for deny and 2 for needs approval, naming the deciding policy', () => {
    const buy = ['policy', 'test', '--person', 'alice@example.com', '--agent', agentId]
    const allowed = run([...buy, '--action', 'buyMcpShopItem', '--args', '{"item":"tshirt"}'])
    expect(allowed.status).toBe(0)
    expect(allowed.stdout).toMatch(/^allow: .*shop\.tools/)

    const denied = run([
      ...buy,
      '--action',
      'buyMcpShopItem',
      '--args',
      '{"item":"tshirt"}',
      '--state',
      '{"demoMode":"banned"}',
    ])
    expect(denied.status).toBe(1)
    expect(denied.stderr).toBe('')
    expect(lines(denied.stdout)).toEqual([
      expect.stringMatching(/^deny: .*shop\.banned-order/),
      'message: ABSOLUTELY NOT. GO AWAY 👋',
    ])

    const big = [...buy, '--action', 'buyMcpShopItem', '--args', '{"item":"tshirt","quantity":10}']
    const pending = run(big)
    expect(pending.status).toBe(2)
    expect(pending.stdout).toMatch(/^needs_approval: .*shop\.big-orders-need-approval/)
    expect(run([...big, '--approved']).status).toBe(0)

    // The person by id, the resource given; --json prints the decision.
    const asJson = run([
      '--json',
      'policy',
      'test',
      '--person',
      aliceId,
      '--action',
      'getUserInfo',
      '--resource',
      SHOP,
      '--scopes',
      'shop:read shop:admin',
    ])
    expect(asJson.status).toBe(0)
    expect(JSON.parse(asJson.stdout)).toMatchObject({
      decision: 'allow',
      policies: ['shop.tools'],
      errors: [],
      set_version: expect.any(Number),
    })
    const bob = run(['policy', 'test', '--person', 'bob@example.com', '--action', 'getUserInfo'])
    expect(bob.status).toBe(1)
    expect(bob.stdout).toMatch(/shop\.admin-user-info/)
  })

  it('explain prints the long form: decision, deciding policies with description and message', () => {
    const result = run([
      'policy',
      'explain',
      '--person',
      'alice@example.com',
      '--action',
      'buyMcpShopItem',
      '--args',
      '{"item":"tshirt"}',
      '--state',
      '{"demoMode":"banned"}',
    ])
    expect(result.status).toBe(1)
    const out = lines(result.stdout)
    expect(out[0]).toBe('decision: deny')
    expect(out[1]).toMatch(/^explanation: .*shop\.banned-order/)
    expect(out).toContain('message: ABSOLUTELY NOT. GO AWAY 👋')
    expect(out).toContain('deciding policies:')
    expect(out).toContainEqual(
      expect.stringMatching(/^ {2}shop\.banned-order \(forbid, version \d+\)$/),
    )
    expect(out).toContain('    description: A banned person does not get a shirt.')
    expect(out.at(-1)).toMatch(/^policy set version: \d+$/)

    const read = run([
      'policy',
      'explain',
      '--person',
      'alice@example.com',
      '--action',
      'read',
      '--resource',
      'doc:nothing-here',
    ])
    expect(read.status).toBe(1)
    expect(read.stdout).toContain('deciding policies: none')
  })

  it('simulate prints what an agent may do for a person, as a table', () => {
    const result = run(['policy', 'simulate', '--person', 'bob@example.com', '--agent', agentId])
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/^ACTION\s+RESOURCE\s+DECISION\s+POLICIES\s+EXPLANATION/)
    expect(result.stdout).toMatch(
      /https:\/\/shop\.example\/mcp#getUserInfo\s+https:\/\/shop\.example\/mcp\s+deny\s+shop\.admin-user-info\s+\S/,
    )
    const rows = json<{ action: string; decision: string }[]>(
      run(['--json', 'policy', 'simulate', '--person', 'alice@example.com', '--agent', agentId]),
    )
    expect(rows.find((r) => r.action === `${SHOP}#getUserInfo`)?.decision).toBe('allow')
  })

  it('schema prints the Cedar schema in force; actions lists the declared ones', () => {
    const text = run(['policy', 'schema'])
    expect(text.status).toBe(0)
    expect(text.stdout).toMatch(/namespace Deputy/)
    expect(text.stdout).toMatch(/buyMcpShopItem/)
    expect(json<Record<string, unknown>>(run(['--json', 'policy', 'schema']))).toHaveProperty(
      'Deputy',
    )
    // The action id policies name, then the tool's name.
    expect(run(['policy', 'actions']).stdout).toMatch(
      /^ACTION\s+TOOL\s+DESCRIPTION\n(.*\n)*https:\/\/shop\.example\/mcp#buyMcpShopItem\s+buyMcpShopItem/,
    )
  })

  it('mistakes in decision options are one clear line', () => {
    const base = ['policy', 'test', '--person', 'alice@example.com', '--action', 'buyMcpShopItem']
    oneLineError(run([...base, '--args', '{item']), /--args is not valid JSON/)
    oneLineError(run([...base, '--state', '["banned"]']), /--state must be a JSON object/)
    oneLineError(
      run(['policy', 'test', '--person', 'alice@example.com', '--action', 'nope']),
      /no action nope is declared/,
    )
    oneLineError(run([...base, '--resource', 'ftp:x']), /must be an MCP server URL/)
    oneLineError(run(['policy', 'validate', 'missing.cedar']), /cannot read missing\.cedar/)
  })

  it('relations write, check through a group, list-objects, filter, list and delete', () => {
    const write = run([
      'relations',
      'write',
      'doc:readme#viewer@group:eng#member',
      `group:eng#member@user:${aliceId}`,
    ])
    expect(write.stdout).toBe('wrote 2 of 2 tuples\n')
    const tuples = file(
      'tuples.txt',
      `# the roadmap, for alice\ndoc:roadmap#viewer@user:${aliceId}\n\ndoc:salaries#viewer@user:someone-else\n`,
    )
    expect(run(['relations', 'write', '--file', tuples]).stdout).toBe('wrote 2 of 2 tuples\n')
    expect(run(['relations', 'write', 'doc:readme#viewer@group:eng#member']).stdout).toBe(
      'wrote 0 of 1 tuples\n',
    )

    const allowed = run(['relations', 'check', `doc:readme#viewer@user:${aliceId}`])
    expect([allowed.status, allowed.stdout]).toEqual([0, 'allowed\n'])
    const refused = run(['relations', 'check', `doc:salaries#viewer@user:${aliceId}`])
    expect([refused.status, refused.stdout]).toEqual([1, 'not allowed\n'])

    const who = ['--subject', `user:${aliceId}`, '--relation', 'viewer', '--type', 'doc']
    expect(lines(run(['relations', 'list-objects', ...who]).stdout).sort()).toEqual([
      'readme',
      'roadmap',
    ])
    expect(
      json<{ objects: string[] }>(
        run(['--json', 'relations', 'filter', ...who, 'salaries', 'roadmap', 'nope', 'readme']),
      ),
    ).toEqual({ objects: ['roadmap', 'readme'] })

    expect(lines(run(['relations', 'list', '--object', 'doc:readme']).stdout)).toEqual([
      'doc:readme#viewer@group:eng#member',
    ])
    expect(lines(run(['relations', 'list', '--subject', `user:${aliceId}`]).stdout).sort()).toEqual(
      [`doc:roadmap#viewer@user:${aliceId}`, `group:eng#member@user:${aliceId}`].sort(),
    )

    expect(run(['relations', 'delete', `group:eng#member@user:${aliceId}`]).stdout).toBe(
      'deleted 1 of 1 tuples\n',
    )
    expect(run(['relations', 'check', `doc:readme#viewer@user:${aliceId}`]).status).toBe(1)
    expect(run(['relations', 'write', `group:eng#member@user:${aliceId}`]).status).toBe(0)

    // The retrieval policy over these tuples: alice may read what she views, nothing else.
    const read = ['policy', 'test', '--person', 'alice@example.com', '--action', 'read']
    const readme = run([...read, '--resource', 'doc:readme'])
    expect(readme.status).toBe(0)
    expect(readme.stdout).toMatch(/docs\.viewers/)
    expect(run([...read, '--resource', 'doc:salaries']).status).toBe(1)
  })

  it('relations: a malformed tuple is one line (with its line in a file) and nothing is written', () => {
    const before = run(['relations', 'list']).stdout
    oneLineError(
      run(['relations', 'write', 'doc:a#viewer@user:x', 'doc:readme#viewer']),
      /invalid tuple "doc:readme#viewer": missing @subject/,
    )
    const bad = file('bad-tuples.txt', 'doc:a#viewer@user:x\n\ndoc:b#Viewer@user:y\n')
    oneLineError(run(['relations', 'write', '--file', bad]), /^deputy: bad-tuples\.txt:3: /)
    oneLineError(run(['relations', 'write']), /give tuples as arguments/)
    oneLineError(
      run([
        'relations',
        'list-objects',
        '--subject',
        'alice',
        '--relation',
        'viewer',
        '--type',
        'doc',
      ]),
      /needs a type/,
    )
    expect(run(['relations', 'list']).stdout).toBe(before)
  })
})
