// The pages `npm run screens` photographs (scripts/screens/run.mjs), as plain data so a test can
// check the list (packages/server/test/docs/screens.test.ts). The console's pages come from its
// CONSOLE_SECTIONS, so a section added there is photographed without touching this file.

/**
 * Every page to photograph: `name` is the file name (docs/screens/<name>-desktop.png and
 * <name>-phone.png), `path` the address (`{approval}` and `{authorize}` are filled in by the run
 * from its demo data), `as` who looks at it: nobody signed in, the person, or the administrator.
 */
export function screenPages(consoleSections) {
  return [
    { name: 'login', path: '/login', as: 'anonymous' },
    { name: 'consent', path: '{authorize}', as: 'person' },
    { name: 'account', path: '/account', as: 'person' },
    { name: 'agents', path: '/account/agents', as: 'person' },
    { name: 'approvals', path: '/approvals', as: 'person' },
    { name: 'approval', path: '/approvals/{approval}', as: 'person' },
    { name: 'connections', path: '/account/connections', as: 'person' },
    { name: 'security', path: '/account/security', as: 'person' },
    { name: 'notifications', path: '/account/notifications', as: 'person' },
    ...consoleSections.map((s) => ({ name: `console-${s.key}`, path: s.href, as: 'admin' })),
  ]
}

/** The two sizes every page is taken at. */
export const SCREEN_SIZES = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
]
