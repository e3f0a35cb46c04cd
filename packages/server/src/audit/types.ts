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

/** One SQL statement, compiled for the store's dialect (Kysely's `compile()`). */
export interface AuditWrite {
  sql: string
  parameters: readonly unknown[]
}

/** The rows an event stands for, committed in the same transaction as its record. */
export interface AuditWrites {
  /**
   * Runs first. When it changes no row (a code already spent), nothing of this event is written:
   * neither the record nor `writes`, and `appendWith` resolves with null.
   */
  condition?: AuditWrite
  writes: readonly AuditWrite[]
}

/** The one way any module writes to the audit chain. */
export interface AuditLog {
  /**
   * Appends an event; resolves once it is durably stored and linked into the chain.
   * Concurrent appends (in this process or others on the same database) stay linear.
   */
  append(event: AuditEventInput): Promise<AuditRecord>
  /**
   * Appends an event together with the rows it records, in one transaction of the group commit:
   * the record and its rows are durable together or not at all, and a flow step costs one commit
   * (on a SQLite file, in the writer thread, so the event loop never waits for its fsync).
   * Resolves with null when `writes.condition` changed no row (then nothing was written).
   */
  appendWith(event: AuditEventInput, writes: AuditWrites): Promise<AuditRecord | null>
}
