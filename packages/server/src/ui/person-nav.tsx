/** The signed-in person's own pages, in the order the navigation shows them (issue 15 §2). */
export const PERSON_PAGES = [
  { key: 'account', href: '/account', label: 'Account' },
  { key: 'agents', href: '/account/agents', label: 'Your agents' },
  { key: 'approvals', href: '/approvals', label: 'Approvals' },
  { key: 'connections', href: '/account/connections', label: 'Connected accounts' },
  { key: 'security', href: '/account/security', label: 'Security' },
  { key: 'notifications', href: '/account/notifications', label: 'Notifications' },
] as const

export type PersonPage = (typeof PERSON_PAGES)[number]['key']

/** A page's navigation: one link per entry, `current` marked with aria-current; wraps on a phone. */
export function SectionNav<K extends string>(props: {
  label: string
  entries: readonly { key: K; href: string; label: string }[]
  current?: K | undefined
}) {
  return (
    <nav aria-label={props.label}>
      <ul>
        {props.entries.map((p) => (
          <li>
            <a href={p.href} aria-current={p.key === props.current ? 'page' : undefined}>
              {p.label}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  )
}

/** The same navigation on every one of the person's pages, for the header of the shared layout. */
export function PersonNav(props: { current?: PersonPage }) {
  return <SectionNav label="Your account" entries={PERSON_PAGES} current={props.current} />
}
