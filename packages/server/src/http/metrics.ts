import type { MiddlewareHandler } from 'hono'
import { matchedRoutes } from 'hono/route'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { RefusalLog } from '../audit/refusals.js'
import type { AuditEventInput, AuditLog } from '../audit/types.js'
import type { AppEnv } from './env.js'

// Prometheus metrics (issue 14 §4), through prom-client. Labels are only ever values Deputy's
// code chose (route patterns, grant types, event types, reason kinds), and each label set is
// capped, so no request can grow the registry: an unknown value past the cap counts as "other".

/** Distinct values one label may take before the rest count as `other`. */
export const MAX_LABEL_VALUES = 200

/** What a scrape asks the database for, at the moment of the scrape. */
export interface MetricsSources {
  /** Approval requests waiting for a person's decision. */
  pendingApprovals(): Promise<number>
  /** PostgreSQL's connection pool, when there is one. */
  poolStats?(): { total: number; idle: number; waiting: number }
}

export interface Metrics {
  /** Counts each request and times it, labelled by the route pattern that answered it. */
  middleware: MiddlewareHandler<AppEnv>
  /** The audit log, counting what it appends (tokens by grant type, events) and timing appends. */
  observeAudit(audit: AuditLog): AuditLog
  /** The refusal log, counting refusals by event type and reason kind. */
  observeRefusals(refusals: RefusalLog): RefusalLog
  /** Counts a request refused by a rate limit (http/rate-limits.ts), by the limit's name. */
  rateLimited(limit: string): void
  /** The text exposition format (and its content type) of every metric now. */
  render(): Promise<{ contentType: string; body: string }>
}

/** A label value from a bounded set: past `MAX_LABEL_VALUES` distinct ones, `other`. */
function boundedLabel(): (value: string) => string {
  const seen = new Set<string>()
  return (value) => {
    if (seen.has(value)) return value
    if (seen.size >= MAX_LABEL_VALUES) return 'other'
    seen.add(value)
    return value
  }
}

/**
 * The kind of a refusal: the code-chosen first word of its reason (`unsupported-grant-type`,
 * `invalid-client-secret`), never the detail after it, which may carry what the request sent.
 */
export function reasonKind(reason: string | undefined): string {
  const first = (reason ?? '').split(/[\s:(]/, 1)[0] ?? ''
  return /^[a-z0-9][a-z0-9._-]{0,63}$/i.test(first) ? first : 'unspecified'
}

/**
 * `processMetrics` adds Node's own (CPU, memory, event-loop delay) for a served process; it is
 * off for embedded and test instances, which share a process and would each sample the loop.
 */
export function createMetrics(
  sources: MetricsSources,
  options: { processMetrics?: boolean } = {},
): Metrics {
  const registry = new Registry()
  if (options.processMetrics)
    collectDefaultMetrics({ register: registry, prefix: 'deputy_process_' })
  const route = boundedLabel()
  const requests = new Counter({
    name: 'deputy_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'deputy_http_request_duration_seconds',
    help: 'Time from a request reaching Deputy to its response being ready, by route pattern.',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  })
  const grantType = boundedLabel()
  const tokens = new Counter({
    name: 'deputy_tokens_issued_total',
    help: 'Access tokens issued by the token endpoint, by grant type.',
    labelNames: ['grant_type'] as const,
    registers: [registry],
  })
  const eventType = boundedLabel()
  const events = new Counter({
    name: 'deputy_audit_events_total',
    help: 'Events appended to the audit chain, by type.',
    labelNames: ['type'] as const,
    registers: [registry],
  })
  const appendLatency = new Histogram({
    name: 'deputy_audit_append_duration_seconds',
    help: 'Time to append one event durably to the audit chain.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  })
  const refusalLabel = boundedLabel()
  const refusals = new Counter({
    name: 'deputy_refusals_total',
    help: 'Requests refused, by event type and reason kind (also summarised in the audit chain).',
    labelNames: ['type', 'reason'] as const,
    registers: [registry],
  })
  const limitLabel = boundedLabel()
  const rateLimited = new Counter({
    name: 'deputy_rate_limited_total',
    help: 'Requests refused 429 by a rate limit, by limit (token-client, sign-in, …).',
    labelNames: ['limit'] as const,
    registers: [registry],
  })
  new Gauge({
    name: 'deputy_approvals_pending',
    help: 'Approval requests (CIBA) waiting for a person, not yet expired.',
    registers: [registry],
    async collect() {
      this.set(await sources.pendingApprovals())
    },
  })
  const poolStats = sources.poolStats
  if (poolStats) {
    new Gauge({
      name: 'deputy_database_pool_connections',
      help: 'PostgreSQL pool clients, by state (total, idle, waiting for a client).',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        const stats = poolStats()
        this.set({ state: 'total' }, stats.total)
        this.set({ state: 'idle' }, stats.idle)
        this.set({ state: 'waiting' }, stats.waiting)
      },
    })
  }

  const countEvent = (event: AuditEventInput) => {
    events.inc({ type: eventType(event.type) })
    if (event.type === 'token.issued') {
      const granted = (event.data as { grantType?: unknown } | null | undefined)?.grantType
      tokens.inc({ grant_type: grantType(typeof granted === 'string' ? granted : 'unknown') })
    }
  }

  return {
    async middleware(c, next) {
      const started = performance.now()
      await next()
      // The pattern of the handler that answered (`/admin/api/users/:id`), never the raw path.
      const answered = matchedRoutes(c)[c.req.routeIndex]
      const pattern =
        answered && answered.method !== 'ALL'
          ? route(answered.path)
          : c.res.status === 404
            ? 'unmatched'
            : route(answered?.path ?? 'unmatched')
      const method = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].includes(
        c.req.method,
      )
        ? c.req.method
        : 'other'
      requests.inc({ method, route: pattern, status: String(c.res.status) })
      latency.observe({ method, route: pattern }, (performance.now() - started) / 1000)
    },
    observeAudit(audit) {
      return {
        async append(event) {
          const started = performance.now()
          const record = await audit.append(event)
          appendLatency.observe((performance.now() - started) / 1000)
          countEvent(event)
          return record
        },
        async appendWith(event, writes) {
          const started = performance.now()
          const record = await audit.appendWith(event, writes)
          appendLatency.observe((performance.now() - started) / 1000)
          if (record) countEvent(event)
          return record
        },
      }
    },
    observeRefusals(log) {
      return {
        record(event) {
          refusals.inc({
            type: refusalLabel(event.type),
            reason: refusalLabel(reasonKind(event.reason ?? undefined)),
          })
          return log.record(event)
        },
        flush: () => log.flush(),
        close: () => log.close(),
      }
    },
    rateLimited(limit) {
      rateLimited.inc({ limit: limitLabel(limit) })
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() }
    },
  }
}
