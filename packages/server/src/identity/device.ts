/**
 * A browser's User-Agent header summarised as a person recognises it: "Firefox on Linux". Only
 * this is stored with a session (migration 0026), never the header: the account page needs the
 * person to tell their own browsers apart, not a fingerprint of each.
 */
export function describeDevice(userAgent: string | undefined | null): string | null {
  if (!userAgent) return null
  const ua = userAgent.slice(0, 512)
  return `${browserOf(ua)} on ${systemOf(ua)}`
}

// Order matters: Edge and Opera say "Chrome", Chrome says "Safari", so the narrower come first.
const BROWSERS: readonly [RegExp, string][] = [
  [/\bEdg(?:e|A|iOS)?\//, 'Edge'],
  [/\b(?:OPR|Opera)\//, 'Opera'],
  [/\bFirefox\/|\bFxiOS\//, 'Firefox'],
  [/\bHeadlessChrome\//, 'Headless Chrome'],
  [/\bChrom(?:e|ium)\/|\bCriOS\//, 'Chrome'],
  [/\bSafari\//, 'Safari'],
  [/^curl\//, 'curl'],
]

const SYSTEMS: readonly [RegExp, string][] = [
  [/\biPhone\b/, 'iPhone'],
  [/\biPad\b/, 'iPad'],
  [/\bAndroid\b/, 'Android'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bWindows\b/, 'Windows'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
  [/\bLinux\b/, 'Linux'],
]

function browserOf(ua: string): string {
  return BROWSERS.find(([pattern]) => pattern.test(ua))?.[1] ?? 'An unknown browser'
}

function systemOf(ua: string): string {
  return SYSTEMS.find(([pattern]) => pattern.test(ua))?.[1] ?? 'an unknown system'
}
