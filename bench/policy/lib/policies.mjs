// A realistic policy deployment: ~200 tools over 10 MCP servers, and policies spread over them
// the way operators write them — per tool, a few per server, one in a hundred for every action.
import { seededRandom } from './common.mjs'

export const SERVERS = Array.from({ length: 10 }, (_, s) => `https://tools-${s}.example/mcp`)
export const TOOLS_PER_SERVER = 20
export const TEAMS = Array.from({ length: 12 }, (_, i) => `team-${i}`)
export const DEPARTMENTS = ['eng', 'sales', 'finance', 'support']

/** One action per tool: `tool_<server>_<n>`, with typed arguments and a per-person state. */
export function toolDeclarations() {
  return SERVERS.flatMap((resource, s) =>
    Array.from({ length: TOOLS_PER_SERVER }, (_, n) => ({
      name: `tool_${s}_${n}`,
      resource,
      description: `Tool ${n} of server ${s}`,
      arguments: {
        type: 'object',
        properties: {
          target: { type: 'string' },
          amount: { type: 'integer' },
          tags: { type: 'array', items: { type: 'string' } },
          dryRun: { type: 'boolean' },
        },
        required: ['target'],
      },
      state: { type: 'object', properties: { mode: { type: 'string' } } },
    })),
  )
}

/** A tool's Cedar action: `<resource>#<tool>`, its server's own. */
const actionId = (tool) => `${tool.resource}#${tool.name}`
const action = (tool) => `Deputy::Action::"${actionId(tool)}"`

/**
 * `count` policies, each with its `@id`: templates in turn (group and scope, argument limits,
 * first-party agents on a server, night-time third parties, tags and argument patterns, state,
 * approval), each naming one tool (or three of one server), and one in a hundred for every
 * action (a global forbid). Policy 0 is always "team-0 may use tool_0_0 with tools.write".
 */
export function generatePolicies(count) {
  const tools = toolDeclarations()
  const texts = []
  for (let i = 0; i < count; i++) {
    const tool = tools[(i * 37) % tools.length]
    const server = tool.resource
    const id = `p-${String(i).padStart(4, '0')}`
    const team = TEAMS[i % TEAMS.length]
    if (i > 0 && i % 100 === 99) {
      texts.push(`@id("${id}")
@description("Nobody acts while suspended.")
@message("Your account is suspended.")
forbid (principal, action, resource)
when { principal.hasTag("suspended") && principal.getTag("suspended") == "yes-${i}" };`)
      continue
    }
    switch (i % 7) {
      case 0:
        texts.push(`@id("${id}")
@description("${team} may use ${tool.name} with tools.write.")
permit (principal in Deputy::Group::"${team}", action == ${action(tool)}, resource)
when { context.scopes.contains("tools.write") };`)
        break
      case 1:
        texts.push(`@id("${id}")
@message("Amounts over ${100 * (1 + (i % 20))} need the finance role.")
forbid (principal, action == ${action(tool)}, resource)
when { context.arguments has amount && context.arguments.amount > ${100 * (1 + (i % 20))} }
unless { principal in Deputy::Role::"finance" };`)
        break
      case 2: {
        const s = tools.indexOf(tool) - (tools.indexOf(tool) % 20)
        const three = [0, 1, 2].map((k) => action(tools[s + ((i + k * 3) % 20)]))
        texts.push(`@id("${id}")
permit (principal, action in [${three.join(', ')}], resource in Deputy::Server::"${server}")
when { principal.permissions.contains("tools:use") && context has agent && context.agent.firstParty };`)
        break
      }
      case 3:
        texts.push(`@id("${id}")
@message("Third-party agents may not use ${tool.name} at night.")
forbid (principal, action == ${action(tool)}, resource)
when { context.hour < 6 && context has agent && !context.agent.firstParty };`)
        break
      case 4:
        texts.push(`@id("${id}")
permit (principal, action == ${action(tool)}, resource)
when { principal.hasTag("department") && principal.getTag("department") == "${DEPARTMENTS[i % 4]}" && context.arguments.target like "acct-${i % 10}*" };`)
        break
      case 5:
        texts.push(`@id("${id}")
@message("${tool.name} is read-only in this mode.")
forbid (principal, action == ${action(tool)}, resource)
when { context.state has mode && context.state.mode == "readonly" && !(context.arguments has dryRun && context.arguments.dryRun) };`)
        break
      default:
        texts.push(`@id("${id}")
@description("Support may use ${tool.name} once the person approves.")
permit (principal in Deputy::Role::"support", action == ${action(tool)}, resource)
when { context.approved };`)
    }
  }
  return texts
}

/** People with roles, groups (teams nested in departments) and a department tag. */
export function generatePeople(count = 20, seed = 3) {
  const random = seededRandom(seed)
  const roles = ['finance', 'support', 'operator']
  return Array.from({ length: count }, (_, i) => ({
    email: `person-${i}@bench.example`,
    name: `Person ${i}`,
    roles: roles.filter(() => random.next() < 0.4),
    claims: { department: DEPARTMENTS[i % 4], level: 1 + (i % 5) },
    teams: TEAMS.filter(() => random.next() < 0.25),
  }))
}

/** Random tool calls, the same sequence for every policy count. */
export function requestStream(people, agents, seed) {
  const random = seededRandom(seed)
  const tools = toolDeclarations()
  return () => {
    const tool = random.pick(tools)
    return {
      sub: random.pick(people).id,
      clientId: random.pick(agents),
      action: actionId(tool),
      resource: { type: 'Deputy::Tool', id: actionId(tool) },
      scopes: random.next() < 0.5 ? ['tools.read'] : ['tools.read', 'tools.write'],
      arguments: {
        target: `acct-${random.int(100)}`,
        amount: random.int(2500),
        tags: ['bench'],
        ...(random.next() < 0.2 ? { dryRun: true } : {}),
      },
      state: { mode: random.next() < 0.1 ? 'readonly' : 'normal' },
    }
  }
}
