import type { SigningKeySummary } from '../../keys/types.js'
import { ConsoleLayout, Csrf, consolePage, Time } from './layout.js'

/** A signing key as the console lists it: the public facts keys/ reports (no key material). */
export type KeyView = SigningKeySummary

/** Signing keys: which signs, which are still published, and rotation. */
export function keysPage(props: { keys: KeyView[]; csrfToken: string; notice?: string }): string {
  return consolePage(
    <ConsoleLayout title="Signing keys" section="keys" notice={props.notice}>
      <p>
        The active key signs new tokens. After a rotation the previous key stays in the JWKS until
        every token it signed has expired, so nothing in flight is refused.
      </p>
      <ul class="rows" aria-label="Signing keys">
        {props.keys.map((k) => (
          <li>
            <code>{k.kid}</code> <span class="muted">{k.alg}</span>{' '}
            <strong>{k.status === 'active' ? 'active' : 'retired'}</strong>
            <p class="muted">
              created <Time iso={k.createdAt} />
              {k.retiredAt ? (
                <>
                  , retired <Time iso={k.retiredAt} />
                </>
              ) : null}
              {k.status === 'retired' && k.publishUntil ? (
                <>
                  , {k.published ? 'published until' : 'left the JWKS'}{' '}
                  <Time iso={k.publishUntil} />
                </>
              ) : null}
            </p>
          </li>
        ))}
      </ul>
      <form method="post" action="/admin/keys/rotate">
        <Csrf token={props.csrfToken} />
        <button type="submit" class="inline">
          Rotate: make a new key sign
        </button>
      </form>
    </ConsoleLayout>,
  )
}
