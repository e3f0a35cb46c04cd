/**
 * The part of node-oidc-provider (no types of its own) the test fixtures use, typed loosely: the
 * fixture (upstream-provider.ts) is the only user, and the library checks its own configuration.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  export type AdapterPayload = Record<string, unknown> & {
    jti?: string
    uid?: string
    grantId?: string
    accountId?: string
    exp?: number
    consumed?: number
  }

  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void>
    find(id: string): Promise<AdapterPayload | undefined>
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>
    findByUid(uid: string): Promise<AdapterPayload | undefined>
    consume(id: string): Promise<void>
    destroy(id: string): Promise<void>
    revokeByGrantId(grantId: string): Promise<void>
  }

  export interface KoaContextWithOIDC {
    path: string
    method: string
    status: number
    type: string
    body: unknown
    req: IncomingMessage
    res: ServerResponse
    get(header: string): string
    redirect(url: string): void
    oidc: { params?: Record<string, unknown>; route?: string; [key: string]: unknown }
  }

  export interface Interaction {
    uid: string
    prompt: { name: string; reasons: string[]; details: Record<string, unknown> }
    params: Record<string, unknown>
    session?: { accountId: string }
    grantId?: string
  }

  export interface Grant {
    addOIDCScope(scope: string): void
    addOIDCClaims(claims: string[]): void
    addResourceScope(indicator: string, scope: string): void
    save(): Promise<string>
  }

  export interface ClientInstance {
    clientId: string
    grantTypeAllowed(type: string): boolean
    redirectUriAllowed(uri: string): boolean
  }

  // biome-ignore lint/suspicious/noExplicitAny: the library's configuration is checked by the library
  export type Configuration = Record<string, any>

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration)
    static get ctx(): KoaContextWithOIDC | undefined
    Client: { prototype: ClientInstance; find(id: string): Promise<ClientInstance | undefined> }
    Grant: {
      new (init: { accountId?: string; clientId: string }): Grant
      find(id: string): Promise<Grant | undefined>
    }
    on(event: string, listener: (ctx: KoaContextWithOIDC, ...rest: unknown[]) => void): this
    use(middleware: (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>): void
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>
    interactionResult(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<string>
  }
}
