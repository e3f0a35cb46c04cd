// The sentence of a decision (issue 5 §3): who asked, through which agent, to do what, and which
// policies decided — or that none permitted it. Plain functions over plain data, so the CLI, the
// admin API and the audit chain all read the same words.

/** What a sentence names about a policy: its id and, when it has one, its `@description`. */
export interface PolicyLabel {
  readonly id: string
  readonly description?: string | null
}

/** Who asked for what: the person's email, the agent's name, the action and its resource. */
export interface Asked {
  readonly person: string
  readonly agent?: string | undefined
  /** The Cedar action id (`<resource>#<tool>`, `read`). */
  readonly action: string
  /** The tool the action is, and its server: `call deleteFile on https://files.example/mcp`. */
  readonly tool?: { readonly name: string; readonly server: string } | undefined
  /** The resource when it is not a tool (`document "readme"`); tools are named by the action. */
  readonly resource?: string | undefined
}

/** What was decided and why, as explained. */
export type Finding =
  | { readonly kind: 'permitted'; readonly policies: readonly PolicyLabel[] }
  | {
      readonly kind: 'forbidden'
      readonly policies: readonly PolicyLabel[]
      readonly message?: string | undefined
    }
  | { readonly kind: 'not_permitted'; readonly errors: readonly PolicyError[] }
  | {
      readonly kind: 'needs_approval'
      readonly policies: readonly PolicyLabel[]
      /** True when a forbid stands unless approved; false when a permit applies only if approved. */
      readonly forbidden: boolean
    }
  | { readonly kind: 'policy_error'; readonly errors: readonly PolicyError[] }
  | { readonly kind: 'invalid_request'; readonly message: string }
  | { readonly kind: 'depends_on_arguments'; readonly policies: readonly PolicyLabel[] }
  | { readonly kind: 'unknown_person'; readonly sub: string }
  | { readonly kind: 'person_disabled' }
  | { readonly kind: 'unknown_agent'; readonly clientId: string }
  | { readonly kind: 'agent_disabled' }
  | { readonly kind: 'unknown_action' }
  | {
      /** A tool's action asked about another resource (another server's tool of that name). */
      readonly kind: 'wrong_resource'
      readonly resource: { readonly type: string; readonly id: string }
    }
  | { readonly kind: 'no_policy_set'; readonly message: string }

export interface PolicyError {
  readonly policyId: string
  readonly message: string
}

/** One sentence a person can read, e.g. `Allowed: policy "shop.order" permits … through agent "Claude".` */
export function explainFinding(request: Asked, finding: Finding): string {
  const doing = `${request.person} to ${deed(request)}${through(request)}`
  switch (finding.kind) {
    case 'permitted':
      return `Allowed: ${policies(finding.policies)} ${verb(finding.policies, 'permit')} ${doing}.`
    case 'forbidden': {
      const who = `${policies(finding.policies)} ${verb(finding.policies, 'forbid')}`
      return finding.message
        ? `Denied: ${who} it — "${finding.message}".`
        : `Denied: ${who} ${doing}.`
    }
    case 'not_permitted': {
      const failed =
        finding.errors.length === 0
          ? ''
          : `; ${finding.errors.map((e) => `policy "${e.policyId}" could not be evaluated: ${e.message}`).join('; ')}`
      return `Denied: no policy permits ${doing} (Cedar denies what no policy permits${failed}).`
    }
    case 'needs_approval':
      return finding.forbidden
        ? `Needs ${possessive(request.person)} approval: ${policies(finding.policies)} ${verb(finding.policies, 'forbid')} it unless approved.`
        : `Needs ${possessive(request.person)} approval: ${policies(finding.policies)} ${verb(finding.policies, 'permit')} it only when approved.`
    case 'policy_error': {
      const failed = finding.errors
        .map((e) => `policy "${e.policyId}" could not be evaluated (${e.message})`)
        .join('; ')
      return `Denied: ${failed}, and a forbid that cannot be evaluated denies.`
    }
    case 'invalid_request':
      return `Denied: the request for ${doing} does not fit the policy schema (${finding.message}).`
    case 'depends_on_arguments':
      return `Depends on the arguments: ${policies(finding.policies)} ${verb(finding.policies, 'decide')} from them whether ${request.person} may ${deed(request)}${through(request)}.`
    case 'unknown_person':
      return `Denied: there is no person "${finding.sub}".`
    case 'person_disabled':
      return `Denied: ${request.person} is disabled.`
    case 'unknown_agent':
      return `Denied: there is no agent "${finding.clientId}".`
    case 'agent_disabled':
      return `Denied: agent "${request.agent ?? ''}" is disabled.`
    case 'unknown_action':
      return `Denied: "${request.action}" is not a declared action, so no policy can permit it.`
    case 'wrong_resource': {
      const own = request.tool
        ? `the tool ${request.tool.name} of ${request.tool.server}`
        : 'a tool of another server'
      return `Denied: action "${request.action}" is ${own}, not ${finding.resource.type} "${finding.resource.id}".`
    }
    case 'no_policy_set':
      return `Denied: no policy set could be loaded (${finding.message}), and decisions fail closed.`
  }
}

/** `call buyMcpShopItem on https://shop.example/mcp`, `read document "readme"`. */
function deed(request: Asked): string {
  if (request.tool !== undefined) return `call ${request.tool.name} on ${request.tool.server}`
  if (request.resource === undefined) return `call ${request.action}`
  return `${request.action} ${request.resource}`
}

function through(request: Asked): string {
  return request.agent === undefined ? '' : ` through agent "${request.agent}"`
}

/** `policy "a"`, `policies "a" and "b"`, with each `@description` in parentheses. */
function policies(labels: readonly PolicyLabel[]): string {
  const named = labels.map((p) => (p.description ? `"${p.id}" (${p.description})` : `"${p.id}"`))
  if (named.length <= 1) return `policy ${named[0] ?? '""'}`
  return `policies ${named.slice(0, -1).join(', ')} and ${named.at(-1)}`
}

function verb(labels: readonly PolicyLabel[], base: 'permit' | 'forbid' | 'decide'): string {
  return labels.length > 1 ? base : `${base}s`
}

function possessive(name: string): string {
  return `${name}'s`
}
