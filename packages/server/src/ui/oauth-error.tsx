import { Layout, renderPage } from './layout.js'

export interface OAuthErrorPageProps {
  title: string
  /** The one line that says what went wrong, in words a person understands. */
  text: string
  /** Where to go from here: the app (when the person may decide to return there) or the account. */
  link?: { href: string; label: string }
}

/**
 * The page shown when an authorization request cannot continue and Deputy must not redirect:
 * the client or its redirect URI is not trusted (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2).
 */
export function OAuthErrorPage(props: OAuthErrorPageProps) {
  return (
    <Layout title={props.title}>
      <h1>{props.title}</h1>
      <p class="alert error" role="alert">
        {props.text}
      </p>
      {props.link ? (
        <p>
          <a href={props.link.href}>{props.link.label}</a>
        </p>
      ) : null}
    </Layout>
  )
}

/** The authorization error page as a complete HTML document. */
export function oauthErrorPage(props: OAuthErrorPageProps): string {
  return renderPage(<OAuthErrorPage {...props} />)
}
