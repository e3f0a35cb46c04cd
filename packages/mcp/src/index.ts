export {
  APPROVAL_META_KEY,
  type ApprovalRefusal,
  approvalRefusal,
  plainBindingMessage,
  waitingMessage,
} from './approval/approval-answer.js'
export {
  type CibaClient,
  type CibaClientAuthentication,
  type CibaClientOptions,
  cibaClient,
} from './approval/ciba-client.js'
export {
  APPROVAL_STATE_PREFIX,
  type ApprovalCall,
  type ApprovalOutcome,
  awaitApproval,
  type ToolApprovalDeps,
  type ToolCallDetail,
  toolCallDetail,
} from './approval/tool-approval.js'
export {
  type AuditFailure,
  type AuditHook,
  argumentsDigest,
  newCallId,
  reportToolCall,
  type ToolCallEvent,
  type ToolCallEventType,
  type ToolCallReport,
  type ToolDecision,
} from './audit.js'
export { type BrowserPageFacts, browserPageOr } from './browser-page.js'
export {
  type CedarPolicyOptions,
  cedarPolicy,
  type JsonSchema,
  type PolicyDecisionPoint,
  type PolicyDecisionPointAnswer,
  type ToolCallAuthorizationRequest,
} from './cedar-policy.js'
export {
  type BearerChallengeParams,
  bearerChallenge,
  type DpopChallengeParams,
  dpopChallenge,
  tokenRefusalResponse,
} from './challenge.js'
export {
  CONNECTION_ACCESS_TOKEN_TYPE,
  type ConnectionExchange,
  type ConnectionToken,
  connectionExchange,
  type ExchangeOutcome,
  TOKEN_EXCHANGE_GRANT_TYPE,
} from './connections/exchange-client.js'
export {
  ConnectionRequiredError,
  type ConnectionTokenOptions,
  isConnectionRequired,
  type ToolConnections,
} from './connections/tool-connections.js'
export {
  type DeputyClient,
  type DeputyClientAuthentication,
  type DeputyClientOptions,
  deputyClient,
} from './deputy-client.js'
export {
  boundJkt,
  checkDpopProof,
  DPOP_ALGORITHMS,
  DPOP_PROOF_TYP,
  type DpopProofCheck,
  type DpopProofExpectations,
  type DpopProofRejection,
  type DpopReplayCache,
  dpopReplayCache,
  normalizeHtu,
} from './dpop.js'
export { type Identity, identityFromClaims } from './identity.js'
export {
  metadataResponse,
  type ProtectedResourceMetadata,
  protectedResourceMetadataPath,
  protectedResourceMetadataUrl,
} from './metadata.js'
export {
  type ProtectedMcpServer,
  type ProtectedToolConfig,
  type ProtectedToolContext,
  type ProtectedToolHandler,
  type ProtectMcpServerOptions,
  protectMcpServer,
  type ToolActionDeclaration,
  type ToolApprovalOptions,
  type ToolArguments,
  type ToolConnectionsOptions,
} from './protect.js'
export { readBodyWithin, withoutCredentials } from './request-parts.js'
export {
  type ApprovalRule,
  allow,
  type Decision,
  type DecisionBasis,
  deny,
  missingScopes,
  needsApproval,
  type PolicyContext,
  staticRefusal,
  type ToolPolicy,
  type ToolRule,
} from './rules.js'
export {
  type JsonValue,
  memoryStateStore,
  type StateScope,
  type StateStore,
  type StateUpdater,
  type UserState,
  userState,
} from './state.js'
export { type IntrospectionVerifierOptions, introspectionVerifier } from './verify/introspection.js'
export { ASYMMETRIC, type JwtVerifierOptions, jwtVerifier } from './verify/jwt.js'
export type {
  AccessTokenVerifier,
  Clock,
  FetchLike,
  TokenCheck,
  TokenRejection,
} from './verify/types.js'
export {
  type DpopRequest,
  verifyAccessToken,
  verifyRequestToken,
} from './verify/verify-access-token.js'
