import {
  type CallToolResult,
  CLIENT_CAPABILITIES_META_KEY,
  type InputRequiredResult,
  inputRequired,
  type ScopeChallengeHandler,
  type ServerContext,
} from '@modelcontextprotocol/server'
import { approvalRefusal, plainBindingMessage, waitingMessage } from './approval/approval-answer.js'
import {
  type ApprovalOutcome,
  awaitApproval,
  type ToolApprovalDeps,
} from './approval/tool-approval.js'
import {
  type AuditFailure,
  type AuditHook,
  newCallId,
  reportToolCall,
  type ToolCallEvent,
} from './audit.js'
import {
  type ConnectionsBroker,
  isConnectionRequired,
  NO_CONNECTIONS,
  type ToolConnections,
} from './connections/tool-connections.js'
import type { VerifiedCallers } from './http-gate.js'
import type { Identity } from './identity.js'
import { sentToolArguments, toolError } from './json-rpc.js'
import { missingScopes, type PolicyContext } from './rules.js'
import type { UserState } from './state.js'
import { decideToolCall } from './tool-decision.js'
import type { ToolDefinition } from './tool-definition.js'
import type { Clock } from './verify/types.js'

/** The key of the kit's URL-mode elicitation in an input_required result. */
const APPROVAL_ELICITATION = 'deputy_approval'
/** The key of the connect link's URL-mode elicitation. */
const CONNECT_ELICITATION = 'deputy_connect'

/** Whether the client declared URL-mode elicitation in this request's envelope (2026-07-28). */
function acceptsUrlElicitation(ctx: ServerContext): boolean {
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined
  const capabilities = envelope?.[CLIENT_CAPABILITIES_META_KEY] as
    | { elicitation?: { url?: unknown } }
    | undefined
  return capabilities?.elicitation?.url !== undefined
}

/** A call the rule allowed (or that waits for approval), with what its records need. */
interface AllowedCall {
  readonly identity: Identity
  readonly connections: ToolConnections
  readonly state: UserState
  /** The arguments as sent: what the records' digest is of. */
  readonly auditedArgs: unknown
  readonly callId: string
  readonly policies?: readonly string[]
  readonly approvalId?: string
  /** Progress notifications already sent under the call's token while it waited for approval. */
  readonly progressSent?: number
}

/**
 * MCP progress: "The progress value MUST increase with each notification." After a wait for
 * approval has sent `sent` notifications under the call's token, the handler's own count, which
 * starts from its beginning, is shifted to follow on from them.
 */
function progressFollowingWait(ctx: ServerContext, sent: number | undefined): ServerContext {
  const token = ctx.mcpReq._meta?.progressToken
  if (!sent || token === undefined) return ctx
  const notify = ctx.mcpReq.notify.bind(ctx.mcpReq)
  const shifted: typeof notify = (notification) => {
    const params = notification.params as Record<string, unknown> | undefined
    if (
      notification.method !== 'notifications/progress' ||
      params?.progressToken !== token ||
      typeof params.progress !== 'number'
    ) {
      return notify(notification)
    }
    return notify({
      ...notification,
      params: {
        ...params,
        progress: params.progress + sent,
        ...(typeof params.total === 'number' && { total: params.total + sent }),
      },
    } as typeof notification)
  }
  return { ...ctx, mcpReq: { ...ctx.mcpReq, notify: shifted } }
}

/** CIBA §7.1 binding message: plain text of at most 100 characters, shown on both devices. */
async function bindingMessage(tool: ToolDefinition, context: PolicyContext): Promise<string> {
  const given = tool.rule.approval?.bindingMessage
  const text = typeof given === 'function' ? await given(context) : (given ?? `Run ${tool.name}`)
  return plainBindingMessage(String(text))
}

/** What the tool wrapper needs. */
export interface ToolCallDeps {
  /** This MCP server's resource indicator. */
  readonly resource: string
  readonly callers: VerifiedCallers
  readonly stateFor: (identity: Identity) => UserState
  readonly audit: AuditHook | undefined
  readonly auditFailure: AuditFailure
  readonly onError: (error: Error) => void
  readonly clock: Clock
  /** Where calls that need approval ask for it; without it they are refused. */
  readonly approvals?: ToolApprovalDeps
  /** The person's connected accounts through Deputy's vault (`ctx.connections`). */
  readonly connections?: ConnectionsBroker
}

/** Runs tools behind their rules, and answers the SDK's scope challenges, with the audit order. */
export interface ToolCallRunner {
  /** One `tools/call`: the rule decides, the decision is recorded, then (allowed) the handler runs. */
  run(
    tool: ToolDefinition,
    args: Record<string, unknown>,
    ctx: ServerContext,
  ): Promise<CallToolResult | InputRequiredResult>
  /** The SDK's pre-dispatch scope check for this tool; none when the rule needs no scope. */
  scopeChallenge(tool: ToolDefinition): ScopeChallengeHandler | undefined
}

/** The tool wrapper: rule, audit record, handler, outcome record, in that order. */
export function toolCallRunner(deps: ToolCallDeps): ToolCallRunner {
  function report(
    identity: Identity,
    tool: string,
    args: unknown,
    callId: string,
    fields: Pick<
      ToolCallEvent,
      'type' | 'decision' | 'reason' | 'outcome' | 'policies' | 'approvalId'
    >,
  ): Promise<boolean> {
    return reportToolCall(deps.audit, deps.onError, {
      callId,
      at: deps.clock(),
      resource: deps.resource,
      identity,
      tool,
      args,
      fields,
    })
  }

  async function run(
    tool: ToolDefinition,
    args: Record<string, unknown>,
    ctx: ServerContext,
  ): Promise<CallToolResult | InputRequiredResult> {
    const known = deps.callers.get(ctx.http?.authInfo)
    // Only the gate creates AuthInfo objects the map knows; anything else is refused.
    if (known === undefined) return toolError('This tool needs an authenticated caller.')
    const { identity } = known
    const auditedArgs = sentToolArguments(known.requests, ctx.mcpReq.id) ?? args
    const callId = newCallId()
    const state = deps.stateFor(identity)
    const connections = deps.connections?.forCaller(identity.sub, known.token) ?? NO_CONNECTIONS
    const verdict = await decideToolCall(
      tool.rule,
      { resource: deps.resource, tool: tool.name, identity, args, state },
      deps.onError,
    )
    if (verdict.decision === 'needs_approval' && deps.approvals !== undefined) {
      return runWithApproval(deps.approvals, tool, args, ctx, {
        identity,
        connections,
        state,
        auditedArgs,
        callId,
        ...(verdict.policies !== undefined && { policies: verdict.policies }),
      })
    }
    if (verdict.decision !== 'allow') {
      // Recorded before it is answered; a refusal stands whether or not the record was written.
      await report(identity, tool.name, auditedArgs, callId, {
        type: 'tool.refused',
        decision: verdict.decision,
        reason: verdict.reason,
        outcome: 'refused',
        ...(verdict.policies !== undefined && { policies: verdict.policies }),
      })
      return toolError(verdict.message)
    }
    return runAllowed(tool, args, ctx, {
      identity,
      connections,
      state,
      auditedArgs,
      callId,
      ...(verdict.policies !== undefined && { policies: verdict.policies }),
    })
  }

  /** An allowed call: its record, then the handler, then the outcome's record. */
  async function runAllowed(
    tool: ToolDefinition,
    args: Record<string, unknown>,
    ctx: ServerContext,
    call: AllowedCall,
  ): Promise<CallToolResult | InputRequiredResult> {
    const { identity, state, auditedArgs, callId } = call
    const allowedBy = {
      ...(call.policies !== undefined && { policies: call.policies }),
      ...(call.approvalId !== undefined && { approvalId: call.approvalId }),
    }
    // No action without its record: the decision is written before the handler runs, and a
    // decision that could not be written is not acted on unless the operator said otherwise.
    const recorded = await report(identity, tool.name, auditedArgs, callId, {
      type: 'tool.allowed',
      decision: 'allow',
      reason: undefined,
      outcome: undefined,
      ...allowedBy,
    })
    if (!recorded && deps.auditFailure === 'refuse') {
      return toolError(`This call to ${tool.name} was not run: it could not be recorded.`)
    }
    let result: CallToolResult | InputRequiredResult
    try {
      const handlerCtx = progressFollowingWait(ctx, call.progressSent)
      result = await tool.handler(args as never, {
        ...handlerCtx,
        identity,
        state,
        connections: call.connections,
      })
    } catch (error) {
      if (isConnectionRequired(error)) {
        // The person must connect an account first: the link, never a token, goes back.
        await report(identity, tool.name, auditedArgs, callId, {
          type: 'tool.called',
          decision: 'allow',
          reason: 'connection_required',
          outcome: 'error',
          ...allowedBy,
        })
        return connectAnswer(tool.name, error.provider, error.connectUri, ctx)
      }
      await report(identity, tool.name, auditedArgs, callId, {
        type: 'tool.called',
        decision: 'allow',
        reason: undefined,
        outcome: 'error',
        ...allowedBy,
      })
      throw error
    }
    // The call happened: a failing outcome record goes to onError, the result to the caller.
    await report(identity, tool.name, auditedArgs, callId, {
      type: 'tool.called',
      decision: 'allow',
      reason: undefined,
      outcome: (result as CallToolResult).isError === true ? 'error' : 'success',
      ...allowedBy,
    })
    return result
  }

  /**
   * A call that needs the person's approval: asked for (or found pending) and waited for; run
   * once if approved, with exactly the approved arguments; otherwise answered with where it stands.
   */
  async function runWithApproval(
    approvals: ToolApprovalDeps,
    tool: ToolDefinition,
    args: Record<string, unknown>,
    ctx: ServerContext,
    call: AllowedCall,
  ): Promise<CallToolResult | InputRequiredResult> {
    const { identity, state, auditedArgs, callId } = call
    const policies = call.policies !== undefined ? { policies: call.policies } : {}
    const refuse = async (
      decision: 'needs_approval' | 'deny',
      reason: string,
      approvalId: string | undefined,
    ) => {
      await report(identity, tool.name, auditedArgs, callId, {
        type: 'tool.refused',
        decision,
        reason,
        outcome: 'refused',
        ...policies,
        ...(approvalId !== undefined && { approvalId }),
      })
    }
    const progressToken = ctx.mcpReq._meta?.progressToken
    let progress = 0
    let outcome: ApprovalOutcome
    try {
      outcome = await awaitApproval(approvals, {
        identity,
        state,
        tool: tool.name,
        args,
        bindingMessage: await bindingMessage(tool, {
          resource: deps.resource,
          identity,
          tool: tool.name,
          arguments: args,
          state,
        }),
        signal: ctx.mcpReq.signal,
        onWaiting: async () => {
          if (progressToken === undefined) return
          progress += 1
          // MCP progress: the client asked for it with a progressToken; a lost one is harmless.
          await ctx.mcpReq
            .notify({
              method: 'notifications/progress',
              params: {
                progressToken,
                progress,
                message: waitingMessage(identity),
              },
            })
            .catch(() => {})
        },
      })
    } catch (error) {
      deps.onError(error instanceof Error ? error : new Error(String(error)))
      await refuse('needs_approval', 'approval_error', undefined)
      return toolError(
        `This call to ${tool.name} needs approval, which could not be asked for right now.`,
      )
    }
    if (outcome.status === 'approved') {
      return runAllowed(tool, args, ctx, {
        ...call,
        approvalId: outcome.approvalId,
        progressSent: progress,
      })
    }
    const refusal = approvalRefusal(outcome, tool.name, identity)
    await refuse(refusal.decision, refusal.reason, outcome.approvalId)
    if (
      outcome.status === 'pending' &&
      outcome.approvalUri !== undefined &&
      acceptsUrlElicitation(ctx) &&
      ctx.mcpReq.inputResponses?.[APPROVAL_ELICITATION] === undefined
    ) {
      // MCP URL-mode elicitation (2026-07-28: an input_required result): the client shows the
      // person the request's page; its retry is the identical call, which picks the decision up.
      // Asked once per call: a retry still undecided gets the pending result.
      return inputRequired({
        inputRequests: {
          [APPROVAL_ELICITATION]: inputRequired.elicitUrl({
            message: `Approve or decline this call to ${tool.name} on Deputy's page.`,
            url: outcome.approvalUri,
          }),
        },
      })
    }
    return refusal.result
  }

  /**
   * A call that needs the person to connect an account: a URL-mode elicitation of the connect
   * link for a client that declared it (once per call; its retry runs the tool again), otherwise
   * a tool error whose text carries the link.
   */
  function connectAnswer(
    toolName: string,
    provider: string,
    connectUri: string,
    ctx: ServerContext,
  ): CallToolResult | InputRequiredResult {
    if (
      acceptsUrlElicitation(ctx) &&
      ctx.mcpReq.inputResponses?.[CONNECT_ELICITATION] === undefined
    ) {
      return inputRequired({
        inputRequests: {
          [CONNECT_ELICITATION]: inputRequired.elicitUrl({
            message: `Connect your ${provider} account so ${toolName} can act for you there.`,
            url: connectUri,
          }),
        },
      })
    }
    return toolError(
      `${toolName} needs your ${provider} account: connect it at ${connectUri} and then try again.`,
    )
  }

  // The SDK answers a scope challenge with 403 insufficient_scope before dispatch, on both the
  // 2026-07-28 path and the 2025 fallback (MCP authorization "Scope Challenge Handling").
  function scopeChallenge(tool: ToolDefinition): ScopeChallengeHandler | undefined {
    const required = tool.rule.scopes ?? []
    if (required.length === 0) return undefined
    return async ({ request, authInfo }) => {
      const known = deps.callers.get(authInfo)
      if (known === undefined || missingScopes(known.identity, required).length === 0)
        return undefined
      const params = request.params as { arguments?: unknown } | undefined
      await report(known.identity, tool.name, params?.arguments, newCallId(), {
        type: 'tool.refused',
        decision: 'insufficient_scope',
        reason: 'scope',
        outcome: 'refused',
      })
      // Every scope the tool needs, not only the missing ones: the client asks for the union.
      return {
        scopes: [...required] as [string, ...string[]],
        errorDescription: 'The access token lacks a scope this tool needs',
      }
    }
  }

  return { run, scopeChallenge }
}
