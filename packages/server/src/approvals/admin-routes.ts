import { z } from 'zod'
import { type AdminCall, type AdminRouteRecord, routeRecords } from '../admin/route-records.js'
import type { Actor } from '../audit/types.js'
import { DeputyError } from '../lib/errors.js'
import { type DecideDeps, decideApproval } from './decide.js'
import {
  type AuthorizationDetailType,
  BUILT_IN_TYPES,
  type DetailTypes,
  detailSentence,
} from './detail-types.js'
import type { ApprovalRequest, ApprovalRequests } from './requests.js'

// The operators' side of approvals (issue 11 §2, §8), described once: the same records mount the
// admin API routes (admin-api.ts) and document them (admin/openapi.ts), and `deputy approvals …`
// and `deputy resources detail-types …` call the same functions and print the same wire shapes.

// ---------------------------------------------------------------------------------------------
// Wire shapes: snake_case on the wire, camelCase in code.

const ActorWire = z
  .object({
    type: z.enum(['user', 'client', 'agent', 'system']),
    id: z.string(),
    label: z.string().optional(),
  })
  .describe('Actor')

export const ApprovalWire = z
  .object({
    id: z.string().describe("The request's id (its page is /approvals/<id>); not the auth_req_id."),
    status: z.enum(['pending', 'approved', 'denied', 'expired']),
    client_id: z.string(),
    user_id: z.string(),
    user_email: z.string().nullable().describe('Null when the person no longer exists.'),
    resource: z.string(),
    scopes: z.array(z.string()),
    binding_message: z.string().nullable(),
    authorization_details: z.array(z.record(z.string(), z.unknown())),
    details_in_words: z
      .array(z.string())
      .describe("Each detail as its type's sentence template reads it."),
    delivery_mode: z.enum(['poll', 'ping']),
    created_at: z.string(),
    expires_at: z.string(),
    decided_at: z.string().nullable(),
    decided_by: ActorWire.nullable().describe('The person, or the operator who decided.'),
    consumed_at: z
      .string()
      .nullable()
      .describe('When the approval was exchanged for its one token.'),
  })
  .describe('Approval')

export const DetailTypeWire = z
  .object({
    resource: z.string().describe('`*` for the built-in types every resource accepts.'),
    type: z.string(),
    description: z.string(),
    schema: z
      .record(z.string(), z.unknown())
      .describe('JSON Schema (draft 2020-12) of one detail.'),
    template: z.string().describe('The sentence people read, with {field.path} placeholders.'),
    high_risk: z.boolean().describe('Approving needs a fresh sign-in.'),
    built_in: z.boolean(),
  })
  .describe('AuthorizationDetailType')

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

/** A detail type as sent. */
export function detailTypeToWire(type: AuthorizationDetailType): z.infer<typeof DetailTypeWire> {
  return {
    resource: type.resource,
    type: type.type,
    description: type.description,
    schema: type.schema,
    template: type.template,
    high_risk: type.highRisk,
    built_in: BUILT_IN_TYPES.some((t) => t.type === type.type && t.resource === type.resource),
  }
}

// ---------------------------------------------------------------------------------------------
// What the operators' functions use, and the functions themselves (the CLI calls them too).

/** What the approval and detail-type routes use. */
export interface ApprovalRouteDeps extends Omit<DecideDeps, 'approvals'> {
  approvals: Pick<ApprovalRequests, 'list' | 'byId' | 'decide' | 'markRecorded'>
  detailTypes: Pick<DetailTypes, 'list' | 'put' | 'remove'>
  users: {
    findById(id: string): Promise<{ id: string; email: string } | undefined>
    findByEmail(email: string): Promise<{ id: string; email: string } | undefined>
  }
  /** The resource registry (oauth/resources.ts). */
  resources: { get(uri: string): Promise<{ uri: string } | undefined> }
}

/** Requests as sent, with their people's emails and their details in words. */
async function toWire(
  deps: ApprovalRouteDeps,
  requests: ApprovalRequest[],
): Promise<z.infer<typeof ApprovalWire>[]> {
  const emails = new Map<string, string | null>()
  const types = new Map<string, AuthorizationDetailType[]>()
  for (const request of requests) {
    if (!emails.has(request.userId))
      emails.set(request.userId, (await deps.users.findById(request.userId))?.email ?? null)
    if (!types.has(request.resource))
      types.set(request.resource, await deps.detailTypes.list(request.resource))
  }
  return requests.map((request) => ({
    id: request.id,
    status: request.status,
    client_id: request.clientId,
    user_id: request.userId,
    user_email: emails.get(request.userId) ?? null,
    resource: request.resource,
    scopes: request.scopes,
    binding_message: request.bindingMessage,
    authorization_details: request.authorizationDetails,
    details_in_words: request.authorizationDetails.map((detail) =>
      detailSentence(
        types.get(request.resource)?.find((t) => t.type === detail.type),
        detail,
      ),
    ),
    delivery_mode: request.deliveryMode,
    created_at: iso(request.createdAt) as string,
    expires_at: iso(request.expiresAt) as string,
    decided_at: iso(request.decidedAt),
    decided_by: request.decidedBy,
    consumed_at: iso(request.consumedAt),
  }))
}

const STATUSES = ['pending', 'approved', 'denied', 'expired'] as const

/** What an operator may filter the list by. */
export interface ApprovalFilter {
  status?: string
  /** A person's email or user id. */
  person?: string
  client?: string
  limit?: number
}

/** Approval requests, newest first, filtered by status, person (email or id) and client. */
export async function listApprovals(deps: ApprovalRouteDeps, filter: ApprovalFilter) {
  if (filter.status !== undefined && !(STATUSES as readonly string[]).includes(filter.status))
    throw new DeputyError('ERR_INVALID_INPUT', `status must be one of ${STATUSES.join(', ')}`)
  const limit = filter.limit ?? 100
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new DeputyError('ERR_INVALID_INPUT', 'limit must be a whole number from 1 to 1000')
  let userId: string | undefined
  if (filter.person !== undefined) {
    const person =
      (await deps.users.findById(filter.person)) ?? (await deps.users.findByEmail(filter.person))
    if (!person) throw new DeputyError('ERR_NOT_FOUND', `no person ${filter.person}`)
    userId = person.id
  }
  const requests = await deps.approvals.list({
    ...(filter.status === undefined ? {} : { status: filter.status as (typeof STATUSES)[number] }),
    ...(userId === undefined ? {} : { userId }),
    ...(filter.client === undefined ? {} : { clientId: filter.client }),
    limit,
  })
  return toWire(deps, requests)
}

async function requestById(deps: ApprovalRouteDeps, id: string): Promise<ApprovalRequest> {
  const request = await deps.approvals.byId(id)
  if (!request) throw new DeputyError('ERR_NOT_FOUND', `no approval request ${id}`)
  return request
}

/** One approval request as sent. */
export async function showApproval(deps: ApprovalRouteDeps, id: string) {
  const [wire] = await toWire(deps, [await requestById(deps, id)])
  return wire as z.infer<typeof ApprovalWire>
}

/**
 * An operator's decision, through decideApproval: recorded in the audit chain with the operator
 * as actor before it is in force. Already decided or expired: ERR_CONFLICT, and nothing changes.
 */
export async function decideAsOperator(
  deps: ApprovalRouteDeps,
  input: { id: string; decision: 'approved' | 'denied'; actor: Actor; requestId?: string | null },
) {
  const result = await decideApproval(deps, { ...input, shownDigest: null })
  switch (result.status) {
    case 'not-found':
      throw new DeputyError('ERR_NOT_FOUND', `no approval request ${input.id}`)
    case 'already-decided':
      throw new DeputyError(
        'ERR_CONFLICT',
        `approval request ${input.id} was already ${result.request.status}`,
      )
    case 'expired':
      throw new DeputyError(
        'ERR_CONFLICT',
        `approval request ${input.id} expired at ${iso(result.request.expiresAt)}`,
      )
  }
  return showApproval(deps, input.id)
}

async function knownResource(deps: ApprovalRouteDeps, uri: string): Promise<string> {
  const resource = await deps.resources.get(uri)
  if (!resource) throw new DeputyError('ERR_NOT_FOUND', `no resource ${uri}`)
  return resource.uri
}

/** The detail types a resource accepts, the built-in ones first. */
export async function listDetailTypes(deps: ApprovalRouteDeps, resource: string) {
  return (await deps.detailTypes.list(await knownResource(deps, resource))).map(detailTypeToWire)
}

/** Registers (or replaces) a detail type of a resource. */
export async function putDetailType(
  deps: ApprovalRouteDeps,
  input: {
    resource: string
    type: string
    schema: Record<string, unknown>
    template: string
    description?: string | undefined
    highRisk?: boolean | undefined
  },
  actor: Actor,
) {
  const type = await deps.detailTypes.put(
    {
      resource: input.resource,
      type: input.type,
      schema: input.schema,
      template: input.template,
      // A type needs a description; the sentence itself says what it is when none is given.
      description: input.description ?? input.template,
      highRisk: input.highRisk === true,
    },
    actor,
  )
  return detailTypeToWire(type)
}

// ---------------------------------------------------------------------------------------------
// The routes.

/** What a handler is given. */
export type ApprovalCall<B> = AdminCall<ApprovalRouteDeps, B>

/** A route record: its description (for openapi.json) and its handler. */
export type ApprovalAdminRoute<B = unknown> = AdminRouteRecord<ApprovalRouteDeps, B>

const route = routeRecords<ApprovalRouteDeps>()

const ListQuery = z.strictObject({
  status: z.enum(STATUSES).optional(),
  person: z.string().max(320).optional().describe("The person's email or user id."),
  client: z.string().max(2048).optional().describe('A client_id.'),
  limit: z
    .string()
    .regex(/^\d{1,4}$/, 'must be a whole number')
    .optional(),
})

// Our own API rejects unknown fields: a misspelt `high_risc` must not be silently ignored.
const PutDetailTypeBody = z.strictObject({
  schema: z
    .record(z.string(), z.unknown())
    .describe('JSON Schema (draft 2020-12) every detail of this type must satisfy.'),
  template: z
    .string()
    .describe('The sentence people read, e.g. "Pay {instructedAmount.amount} to {creditorName}".'),
  description: z.string().optional().describe('What the type is for; default: the template.'),
  high_risk: z.boolean().optional().describe('Approving needs a fresh sign-in.'),
})

const decide = (decision: 'approved' | 'denied') => async (call: ApprovalCall<unknown>) =>
  decideAsOperator(call.deps, {
    id: call.params.id as string,
    decision,
    actor: call.actor,
    requestId: call.requestId ?? null,
  })

/** Every approval and detail-type route of the admin API (paths relative to /admin/api). */
export const APPROVAL_ADMIN_ROUTES: readonly ApprovalAdminRoute<unknown>[] = [
  route({
    method: 'get',
    path: '/approvals',
    summary: 'List approval (CIBA) requests, newest first',
    query: ListQuery,
    response: z.object({ approvals: z.array(ApprovalWire) }),
    errors: [400, 404],
    handle: async ({ deps, query }) => ({
      approvals: await listApprovals(deps, {
        ...query,
        ...(query.limit === undefined ? {} : { limit: Number(query.limit) }),
      }),
    }),
  }),
  route({
    method: 'get',
    path: '/approvals/:id',
    summary: 'Get an approval request',
    response: ApprovalWire,
    errors: [404],
    handle: async ({ deps, params }) => showApproval(deps, params.id as string),
  }),
  route({
    method: 'post',
    path: '/approvals/:id/approve',
    summary:
      'Approve a pending request as the operator (audited with the operator as actor before it is in force)',
    response: ApprovalWire,
    errors: [404, 409],
    handle: decide('approved'),
  }),
  route({
    method: 'post',
    path: '/approvals/:id/deny',
    summary: 'Deny a pending request as the operator',
    response: ApprovalWire,
    errors: [404, 409],
    handle: decide('denied'),
  }),
  route({
    method: 'get',
    path: '/resources/:uri/detail-types',
    summary:
      'The authorization detail types (RFC 9396) a resource accepts; the URI is one URL-encoded path segment',
    response: z.object({ detail_types: z.array(DetailTypeWire) }),
    errors: [404],
    handle: async ({ deps, params }) => ({
      detail_types: await listDetailTypes(deps, params.uri as string),
    }),
  }),
  route({
    method: 'put',
    path: '/resources/:uri/detail-types/:type',
    summary: 'Register or replace a detail type of a resource: its JSON Schema and its sentence',
    body: PutDetailTypeBody,
    response: DetailTypeWire,
    errors: [400, 404],
    handle: async ({ deps, params, body, actor }) => {
      const input = body as z.infer<typeof PutDetailTypeBody>
      return putDetailType(
        deps,
        {
          resource: await knownResource(deps, params.uri as string),
          type: params.type as string,
          schema: input.schema,
          template: input.template,
          description: input.description,
          highRisk: input.high_risk,
        },
        actor,
      )
    },
  }),
  route({
    method: 'delete',
    path: '/resources/:uri/detail-types/:type',
    summary: 'Remove a detail type from a resource',
    response: z.null(),
    noContent: true,
    errors: [404],
    handle: async ({ deps, params, actor }) => {
      await deps.detailTypes.remove(params.uri as string, params.type as string, actor)
      return undefined
    },
  }),
]
