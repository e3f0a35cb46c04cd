import type { AuditHook, ToolCallEvent } from '@deputy/mcp'
import type { AuditLog } from '../audit/types.js'
import { toolCallAuditEvent } from '../mcp-state/audit-bridge.js'

/**
 * Appends every tool call to Deputy's hash-chained audit log (the gateway runs with `--db` on
 * Deputy's database): the same records a server protected by `@deputy/mcp` inside Deputy writes,
 * so `deputy audit tail` and `deputy audit verify` see them. Resolves once the record is
 * committed; a failed append rejects, so the gateway does not forward a call it could not record.
 */
export function chainAudit(audit: AuditLog): AuditHook {
  return async (event) => {
    await audit.append(toolCallAuditEvent(event))
  }
}

/** One tool call as a JSON log line: the event's fields, `at` as an ISO time, never arguments. */
export function toolCallLogRecord(event: ToolCallEvent): Record<string, unknown> {
  // Member by member, in the line's order (no spreads: two records per call).
  const record: Record<string, unknown> = {
    type: event.type,
    callId: event.callId,
    at: event.at.toISOString(),
    resource: event.resource,
    sub: event.sub,
    clientId: event.clientId ?? null,
  }
  if (event.actor !== undefined) record.actor = event.actor
  if (event.tokenId !== undefined) record.jti = event.tokenId
  record.tool = event.tool
  record.argumentsDigest = event.argumentsDigest
  record.decision = event.decision
  record.reason = event.reason ?? null
  if (event.outcome !== undefined) record.outcome = event.outcome
  if (event.approvalId !== undefined) record.approvalId = event.approvalId
  return record
}

/**
 * Writes every tool call as one JSON line to `write` (the gateway's stderr by default). Lines of
 * the calls finished in one event-loop turn go out in a single write (stderr on a pipe is a
 * synchronous syscall per write); the promise a call gets settles once its line was written, so
 * no line waits longer than that turn, and rejects when the write threw.
 */
export function jsonLineAudit(write: (lines: string) => void): AuditHook {
  let pending: string[] = []
  let flushed: Promise<void> | undefined
  const flush = (resolve: () => void, reject: (error: unknown) => void) => {
    const out = pending.join('')
    pending = []
    flushed = undefined
    try {
      write(out)
      resolve()
    } catch (error) {
      reject(error)
    }
  }
  return (event) => {
    pending.push(`${JSON.stringify(toolCallLogRecord(event))}\n`)
    flushed ??= new Promise((resolve, reject) => setImmediate(flush, resolve, reject))
    return flushed
  }
}
