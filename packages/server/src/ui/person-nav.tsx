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

/**
 * The same navigation on every one of the person's pages, for the header of the shared layout;
 * `current` is marked with aria-current. The links wrap onto more lines on a phone.
 */
export function PersonNav(props: { current?: PersonPage }) {
  return (
    <nav aria-label="Your account">
      <ul>
        {PERSON_PAGES.map((p) => (
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
