/**
 * Canonical JSON in the manner of RFC 8785 (JCS): object keys sorted by UTF-16 code units, no
 * whitespace, `undefined` members dropped. Used to hash audit records so the same content
 * always gives the same bytes, whichever order its fields were written in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new TypeError('canonicalJson: non-finite numbers have no JSON form')
    }
    return JSON.stringify(value) ?? 'null'
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
}

/**
 * `canonicalJson` of a value that came out of `JSON.parse` (plain objects, arrays and primitives;
 * no undefined members, no non-finite numbers, so nothing to drop or refuse), as plain loops: the
 * same bytes for about a third of the work, which matters where every audit record's content is
 * hashed on the event loop (audit/chain.ts). The default sort compares UTF-16 code units, the
 * order `canonicalJson` uses; test/lib/canonical-json.test.ts holds the two side by side.
 */
export function canonicalParsedJson(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value)
  let out: string
  if (Array.isArray(value)) {
    out = '['
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ','
      out += canonicalParsedJson(value[i])
    }
    return `${out}]`
  }
  const object = value as Record<string, unknown>
  const keys = Object.keys(object).sort()
  out = '{'
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string
    if (i > 0) out += ','
    out += `${JSON.stringify(key)}:${canonicalParsedJson(object[key])}`
  }
  return `${out}}`
}
