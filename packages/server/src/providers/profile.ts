import * as oidc from 'openid-client'
import { CATALOGUE } from './catalogue.js'
import { verifiedIdTokenClaims } from './protocol.js'
import { type Provider, ProviderError, type UpstreamProfile, type UpstreamTokens } from './types.js'
import type { UpstreamFetch } from './upstream-fetch.js'

type Json = Record<string, unknown>

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null)

/** GETs a provider's own API with the person's access token, as JSON. */
async function getJson(fetch: UpstreamFetch, url: string, accessToken: string, headers = {}) {
  const response = await fetch.request(url, {
    headers: { authorization: `Bearer ${accessToken}`, ...headers },
  })
  if (response.status === 401)
    throw new ProviderError('invalid_token', `${new URL(url).host} refused the access token`)
  if (response.status >= 400)
    throw new ProviderError(
      'invalid_response',
      `${new URL(url).host} answered ${response.status}`,
      {
        transient: response.status >= 500 || response.status === 429,
      },
    )
  try {
    return JSON.parse(await response.text()) as unknown
  } catch {
    throw new ProviderError('invalid_response', `${new URL(url).host} answered no JSON`)
  }
}

const GITHUB_HEADERS = {
  accept: 'application/vnd.github+json',
  'x-github-api-version': '2022-11-28',
}

/**
 * GitHub: /user says who (the numeric `id` is the stable subject; the login can be renamed),
 * /user/emails which addresses GitHub verified. Only a verified primary address counts as
 * verified; /user's public email, if that is all there is, is not.
 */
async function githubProfile(fetch: UpstreamFetch, provider: Provider, token: string) {
  const api = provider.endpoints.user_api ?? CATALOGUE.github.endpoints?.user_api
  const user = (await getJson(fetch, api as string, token, GITHUB_HEADERS)) as Json
  if (typeof user.id !== 'number' && typeof user.id !== 'string')
    throw new ProviderError('invalid_response', 'GitHub /user has no id')
  let email = str(user.email)
  let emailVerified = false
  if (provider.endpoints.emails_api) {
    // Without the user:email scope this is 403/404: the public email, unverified, is all.
    const emails = await getJson(fetch, provider.endpoints.emails_api, token, GITHUB_HEADERS).catch(
      (err: unknown) => {
        if (err instanceof ProviderError && err.code === 'invalid_response' && !err.transient)
          return []
        throw err
      },
    )
    const list = Array.isArray(emails) ? (emails as Json[]) : []
    const primary = list.find((e) => e.primary === true && e.verified === true)
    if (primary && str(primary.email)) {
      email = str(primary.email)
      emailVerified = true
    }
  }
  const login = str(user.login)
  return {
    subject: String(user.id),
    email,
    emailVerified,
    name: str(user.name),
    label: login ?? email,
    claims: { github_login: login, github_id: user.id },
  }
}

/** Slack: users.identity with the person's user token (identity.basic, identity.email). */
async function slackProfile(fetch: UpstreamFetch, provider: Provider, token: string) {
  const api = provider.endpoints.user_api ?? CATALOGUE.slack.endpoints?.user_api
  const answer = (await getJson(fetch, api as string, token)) as Json
  if (answer.ok !== true)
    throw new ProviderError(str(answer.error) ?? 'invalid_response', 'Slack refused users.identity')
  const user = (answer.user ?? {}) as Json
  const team = (answer.team ?? {}) as Json
  const userId = str(user.id)
  const teamId = str(team.id)
  if (!userId || !teamId) throw new ProviderError('invalid_response', 'Slack named no user or team')
  const email = str(user.email)
  return {
    // A Slack user id is only unique within its workspace.
    subject: `${teamId}:${userId}`,
    email,
    // Slack confirms a member's address before it becomes their account's.
    emailVerified: email !== null,
    name: str(user.name),
    label: email ?? str(user.name),
    claims: { slack_user_id: userId, slack_team_id: teamId },
  }
}

/** Claims mapped per OpenID type, for access-token claims templates. */
function mappedOpenIdClaims(provider: Provider, claims: Json): Json {
  if (provider.type === 'google') return { google_sub: claims.sub, google_hd: claims.hd ?? null }
  if (provider.type === 'microsoft')
    return { microsoft_oid: claims.oid ?? null, microsoft_tid: claims.tid ?? null }
  return { [`${provider.type}_sub`]: claims.sub }
}

/**
 * OpenID types: the ID token's claims (only those openid-client checked, kept by the tokens
 * object redeemCallback or refresh returned) and the userinfo endpoint's, whose `sub` must match.
 * `email_verified` counts only when it is `true`: Entra ID sends none, so its email is unverified.
 */
async function openIdProfile(
  config: () => Promise<oidc.Configuration>,
  provider: Provider,
  tokens: UpstreamTokens,
) {
  const idClaims = verifiedIdTokenClaims.get(tokens) ?? {}
  let claims: Json = { ...idClaims }
  if (provider.endpoints.userinfo_endpoint) {
    const expected = str(idClaims.sub) ?? oidc.skipSubjectCheck
    const userinfo = await oidc.fetchUserInfo(await config(), tokens.accessToken, expected)
    claims = { ...userinfo, ...idClaims }
  }
  const subject = str(claims.sub)
  if (!subject) throw new ProviderError('invalid_response', 'provider named no subject')
  const email = str(claims.email)
  return {
    subject,
    email,
    emailVerified: email !== null && claims.email_verified === true,
    name: str(claims.name),
    label: str(claims.preferred_username) ?? email,
    claims: mappedOpenIdClaims(provider, claims),
  }
}

/**
 * Plain OAuth 2.0: only a userinfo endpoint can say who the account is (`sub`, or `id`). With
 * none the subject is unknown, so such a provider cannot sign people in (registry.ts refuses
 * the use) and profile() throws.
 */
async function userinfoProfile(fetch: UpstreamFetch, provider: Provider, token: string) {
  const endpoint = provider.endpoints.userinfo_endpoint
  if (!endpoint)
    throw new ProviderError(
      'invalid_request',
      `provider ${provider.name} has no userinfo endpoint: the account's subject is unknown`,
    )
  const info = (await getJson(fetch, endpoint, token)) as Json
  const id = info.sub ?? info.id
  if (typeof id !== 'string' && typeof id !== 'number')
    throw new ProviderError('invalid_response', 'userinfo has no sub')
  const email = str(info.email)
  return {
    subject: String(id),
    email,
    emailVerified: email !== null && info.email_verified === true,
    name: str(info.name),
    label: str(info.preferred_username) ?? str(info.login) ?? email,
    claims: { oauth2_sub: String(id) },
  }
}

/** Who the tokens belong to, per the catalogue's profile source of the provider's type. */
export async function upstreamProfile(
  deps: { fetch: UpstreamFetch; configuration(p: Provider): Promise<oidc.Configuration> },
  provider: Provider,
  tokens: UpstreamTokens,
): Promise<UpstreamProfile> {
  switch (CATALOGUE[provider.type].profile) {
    case 'github':
      return githubProfile(deps.fetch, provider, tokens.accessToken)
    case 'slack':
      return slackProfile(deps.fetch, provider, tokens.accessToken)
    case 'openid':
      return openIdProfile(() => deps.configuration(provider), provider, tokens)
    case 'userinfo':
      return userinfoProfile(deps.fetch, provider, tokens.accessToken)
  }
}
