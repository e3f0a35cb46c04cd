import { Layout, renderPage } from './layout.js'

export interface MessagePageProps {
  title: string
  text: string
  link?: { href: string; label: string }
}

/**
 * A page that says one thing went wrong and offers the way back; also the page an authorization
 * request ends on when Deputy must not redirect (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2).
 */
export function MessagePage(props: MessagePageProps) {
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

/** The message page as a complete HTML document. */
export function messagePage(props: MessagePageProps): string {
  return renderPage(<MessagePage {...props} />)
}
