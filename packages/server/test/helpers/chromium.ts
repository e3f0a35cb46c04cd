import { existsSync } from 'node:fs'
import { type Browser, chromium, type Page } from 'playwright-core'

/** The Chromium the browser tests drive; `DEPUTY_TEST_CHROMIUM` names another. */
export const CHROMIUM = process.env.DEPUTY_TEST_CHROMIUM ?? '/usr/bin/chromium'

/** Browser tests are skipped only when Chromium is not installed (the global setup says so). */
export const hasChromium = existsSync(CHROMIUM)

/** Starts a headless Chromium that reaches nothing but the pages it is sent to. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
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
}

/** Fills in the sign-in page open in `page` as `person` and presses Sign in. */
export async function signInOnPage(
  page: Page,
  person: { email: string; password: string },
): Promise<void> {
  await page.getByLabel('Email').fill(person.email)
  await page.getByLabel('Password').fill(person.password)
  await page.getByRole('button', { name: 'Sign in', exact: true }).click()
}
