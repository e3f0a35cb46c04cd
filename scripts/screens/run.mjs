// `npm run screens`: photographs every page of Deputy at a desktop's and a phone's size, into
// docs/screens/<page>-desktop.png and <page>-phone.png. A throwaway Deputy on a temporary SQLite
// database with demo data (a person, an administrator, clients, a grant, a pending approval, the
// audit records all that wrote), driven by the installed Chromium. The page list: pages.mjs.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { resolveConfig } from '../../packages/server/dist/config/load.js'
import { ConfigSchema } from '../../packages/server/dist/config/schema.js'
import { createDeputy } from '../../packages/server/dist/deputy.js'
import { generateMasterKey } from '../../packages/server/dist/keys/master-key.js'
import { listen } from '../../packages/server/dist/server.js'
import { CONSOLE_SECTIONS } from '../../packages/server/dist/ui/console/layout.js'
import { SCREEN_SIZES, screenPages } from './pages.mjs'

const OUT = new URL('../../docs/screens/', import.meta.url).pathname
const CHROMIUM = process.env.DEPUTY_TEST_CHROMIUM ?? '/usr/bin/chromium'
const SYSTEM = { type: 'system', id: 'screens', label: 'npm run screens' }
const PERSON = { email: 'pat@example.com', password: 'correct horse battery', name: 'Pat Person' }
const ADMIN = { email: 'ada@example.com', password: 'analytical-engine-1843', name: 'Ada Admin' }
const SHOP = 'https://shop.example/mcp'

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** The demo data every page has something to show from. */
async function seed(deputy, direct) {
  const { deps } = deputy
  const pat = await deps.users.create({ ...PERSON }, SYSTEM)
  await deps.users.create({ ...ADMIN, roles: ['admin'] }, SYSTEM)
  await deps.resources.put(
    {
      uri: SHOP,
      name: 'Example Shop',
      scopes: { 'shop:read': 'See your past orders.', 'shop:order': 'Place orders in your name.' },
      isDefault: true,
    },
    SYSTEM,
  )
  const app = (
    await deps.clients.register(
      { name: 'Shop Assistant', redirectUris: ['https://app.example/cb'], public: true },
      SYSTEM,
    )
  ).client
  const grant = await deps.grants.create({
    userId: pat.id,
    clientId: app.clientId,
    resource: SHOP,
    scopes: ['shop:read', 'shop:order'],
    agreedText: [
      { scope: 'shop:order', sentence: 'Place orders in your name.' },
      { scope: 'shop:read', sentence: 'See your past orders.' },
    ],
  })
  await deps.grants.recordUse(grant.id)
  const ciba = await deps.clients.register(
    { name: 'Trading agent', grantTypes: ['urn:openid:params:grant-type:ciba'] },
    SYSTEM,
  )
  const asked = await fetch(`${direct}/bc-authorize`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${btoa(`${ciba.client.clientId}:${ciba.clientSecret}`)}`,
    },
    body: new URLSearchParams({
      scope: 'openid shop:order',
      login_hint: PERSON.email,
      binding_message: 'ORDER-7',
    }),
  })
  if (asked.status !== 200) throw new Error(`bc-authorize answered ${asked.status}`)
  const [approval] = await deps.approvals.listForUser(pat.id, 'pending', 1)
  const authorize = `/authorize?${new URLSearchParams({
    response_type: 'code',
    client_id: app.clientId,
    redirect_uri: 'https://app.example/cb',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    state: 'screens',
    scope: 'shop:read shop:order',
    prompt: 'consent',
  })}`
  return { approval: approval?.id ?? 'none', authorize }
}

async function signedIn(browser, origin, person, size) {
  const context = await browser.newContext({ viewport: size })
  const page = await context.newPage()
  await page.goto(`${origin}/login`)
  await page.getByLabel('Email').fill(person.email)
  await page.getByLabel('Password').fill(person.password)
  await Promise.all([
    page.waitForURL((url) => url.pathname !== '/login'),
    page.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ])
  return { context, page }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'deputy-screens-'))
  const port = await freePort()
  const origin = `http://localhost:${port}`
  const config = resolveConfig(
    ConfigSchema.parse({
      masterKey: generateMasterKey(),
      database: join(dir, 'deputy.db'),
      logLevel: 'silent',
      issuer: origin,
      port,
    }),
  )
  const deputy = await createDeputy(config)
  const server = await listen(deputy, { port, host: '127.0.0.1' })
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  })
  let total = 0
  try {
    const filled = await seed(deputy, `http://127.0.0.1:${port}`)
    mkdirSync(OUT, { recursive: true })
    for (const size of SCREEN_SIZES) {
      const viewers = {
        anonymous: await browser.newContext({ viewport: size }).then(async (context) => ({
          context,
          page: await context.newPage(),
        })),
        person: await signedIn(browser, origin, PERSON, size),
        admin: await signedIn(browser, origin, ADMIN, size),
      }
      for (const p of screenPages(CONSOLE_SECTIONS)) {
        const path = p.path
          .replace('{approval}', filled.approval)
          .replace('{authorize}', filled.authorize)
        const { page } = viewers[p.as]
        const answer = await page.goto(`${origin}${path}`)
        if (!answer || answer.status() >= 400)
          throw new Error(`${p.name}: ${path} answered ${answer?.status() ?? 'nothing'}`)
        const file = join(OUT, `${p.name}-${size.name}.png`)
        await page.screenshot({ path: file })
        total += statSync(file).size
        console.log(`wrote docs/screens/${p.name}-${size.name}.png`)
      }
      for (const v of Object.values(viewers)) await v.context.close()
    }
    console.log(`${(total / 1024 / 1024).toFixed(2)} MB in docs/screens/`)
  } finally {
    await browser.close()
    await server.shutdown()
    await deputy.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(`screens: ${err.message}`)
  process.exitCode = 1
})
