/** Who did something: a person, an OAuth client, an agent, or Deputy itself. */
export interface Actor {
  type: 'user' | 'client' | 'agent' | 'system'
  id: string
  /** A readable label (email, client name); optional. */
  label?: string
}

/** What an event is about. */
export interface AuditTarget {
  type: string
  id: string
}

/** An event as a module reports it. Never put a secret, token, code or password in it. */
export interface AuditEventInput {
  /** `noun.past-verb`, e.g. `user.created`, `session.started`, `login.failed`. */
  type: string
  actor: Actor
  /** The person an agent acted for. */
  onBehalfOf?: Actor | null
  /** The delegation chain, outermost actor first (agent → sub-agent → …). */
  delegationChain?: Actor[]
  target?: AuditTarget | null
  /** `allow`, `deny`, `needs-approval`, … or null when nothing was decided. */
  decision?: string | null
  reason?: string | null
  requestId?: string | null
  data?: Record<string, unknown>
}

/** An event as stored: its position in the chain and its hashes. */
export interface AuditRecord {
  seq: number
  time: string
  type: string
  actor: Actor
  onBehalfOf: Actor | null
  delegationChain: Actor[]
  target: AuditTarget | null
  decision: string | null
  reason: string | null
  requestId: string | null
  data: Record<string, unknown>
  prevHash: string
  hash: string
}

/** The one way any module writes to the audit chain. */
export interface AuditLog {
  /**
   * Appends an event; resolves once it is durably stored and linked into the chain.
   * Concurrent appends (in this process or others on the same database) stay linear.
   */
  append(event: AuditEventInput): Promise<AuditRecord>
}
