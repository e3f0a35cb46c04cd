import type { Child } from 'hono/jsx'
import { Layout, renderPage } from '../layout.js'
import { SectionNav } from '../person-nav.js'

/** The console's sections, in the order the navigation shows them. */
export const CONSOLE_SECTIONS = [
  { key: 'dashboard', href: '/admin', label: 'Dashboard' },
  { key: 'people', href: '/admin/people', label: 'People' },
  { key: 'clients', href: '/admin/clients', label: 'Clients' },
  { key: 'roles', href: '/admin/roles', label: 'Roles' },
  { key: 'resources', href: '/admin/resources', label: 'Resources' },
  { key: 'providers', href: '/admin/providers', label: 'Providers' },
  { key: 'relationships', href: '/admin/relationships', label: 'Relationships' },
  { key: 'approvals', href: '/admin/approvals', label: 'Approvals' },
  { key: 'policies', href: '/admin/policies', label: 'Policies' },
  { key: 'audit', href: '/admin/audit', label: 'Audit' },
  { key: 'keys', href: '/admin/keys', label: 'Signing keys' },
] as const

export type ConsoleSection = (typeof CONSOLE_SECTIONS)[number]['key']

/** What every console page is given: where it is, and a notice after a change. */
export interface ConsoleFrame {
  section: ConsoleSection
  /** One sentence confirming the change just made (fixed text, never from the request). */
  notice?: string
  /** A script from /assets/ the page enhances itself with (it works without it too). */
  script?: string
}

/** The console's frame: the shared layout, wide, with the console's navigation. */
export function ConsoleLayout(props: ConsoleFrame & { title: string; children: Child }) {
  const nav = (
    <SectionNav
      label="Console"
      entries={[...CONSOLE_SECTIONS, { key: 'account', href: '/account', label: 'Your account' }]}
      current={props.section}
    />
  )
  return (
    <Layout title={`${props.title} · Console`} wide nav={nav} script={props.script}>
      <h1>{props.title}</h1>
      {props.notice ? (
        <p class="alert notice" role="status">
          {props.notice}
        </p>
      ) : null}
      {props.children}
    </Layout>
  )
}

/** A console page as a complete HTML document. */
export function consolePage(page: unknown): string {
  return renderPage(page)
}

/** A hidden CSRF field: every console form that changes something carries it. */
export function Csrf(props: { token: string }) {
  return <input type="hidden" name="csrf_token" value={props.token} />
}

/** `2026-12-02 13:45 UTC` from an ISO time. */
export function formatTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`
}

/** A time as a `<time>` element. */
export function Time(props: { iso: string }) {
  return <time datetime={props.iso}>{formatTime(props.iso)}</time>
}
