import { Layout, renderPage } from './layout.js'

/** One thing the page names, e.g. the app that asked and the value Deputy refused. */
export interface MessageFact {
  term: string
  value: string
}

export interface MessagePageProps {
  title: string
  text: string
  /** Shown apart from the sentence, as data: what the request named (escaped like all text). */
  facts?: readonly MessageFact[]
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
      {props.facts && props.facts.length > 0 ? (
        <dl class="facts">
          {props.facts.map((fact) => (
            <>
              <dt>{fact.term}</dt>
              <dd>
                <code>{fact.value}</code>
              </dd>
            </>
          ))}
        </dl>
      ) : null}
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
