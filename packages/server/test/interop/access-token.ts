import { createRemoteJWKSet, decodeProtectedHeader, type JWTPayload, jwtVerify } from 'jose'
import { expect } from 'vitest'
import type { User } from '../../src/identity/users.js'
import { PERSON, RESOURCE, ROLE } from './fixture.js'

/**
 * Checks an access token the way a resource server that never saw Deputy's code would: an RFC 9068
 * JWT (`typ: at+jwt`), signed by a key in the published JWKS (fetched over HTTP with jose), for
 * this issuer and this resource only.
 */
export async function verifyAccessTokenLikeAResourceServer(
  token: string,
  expected: { issuer: string; jwksUri: string; audience?: string },
): Promise<JWTPayload> {
  // RFC 9068 §2.1: the header's typ is exactly "at+jwt" (jose also accepts application/at+jwt).
  expect(decodeProtectedHeader(token).typ).toBe('at+jwt')
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(expected.jwksUri)), {
    issuer: expected.issuer,
    audience: expected.audience ?? RESOURCE.uri,
    typ: 'at+jwt',
    requiredClaims: ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti'],
  })
  return payload
}

/** RFC 9068 §2.2 claims of a token issued to `clientId` for the person, plus the claims template. */
export function expectPersonClaims(
  payload: JWTPayload,
  expected: { user: User; clientId: string; scopes: string[] },
): void {
  expect(payload.aud).toBe(RESOURCE.uri)
  expect(payload.sub).toBe(expected.user.id)
  expect(payload.client_id).toBe(expected.clientId)
  expect(String(payload.scope).split(' ').sort()).toEqual([...expected.scopes].sort())
  // The resource's claims template: name, email, roles, permissions and a custom claim.
  expect(payload.name).toBe(PERSON.name)
  expect(payload.email).toBe(PERSON.email)
  expect(payload.roles).toEqual([ROLE.name])
  expect(payload.permissions).toEqual(ROLE.permissions)
  expect(payload.favorite_song).toBe(PERSON.favoriteSong)
}
