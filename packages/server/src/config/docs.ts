import { ConfigSchema, ENVIRONMENT_VARIABLES } from './schema.js'

/** Renders the configuration reference (docs/configuration.md) from the settings schema. */
export function renderConfigurationReference(): string {
  const json = ConfigSchema.toJSONSchema({ io: 'input' }) as {
    properties: Record<
      string,
      { description?: string; default?: unknown; enum?: unknown[]; type?: string }
    >
  }
  const envFor = (key: string) =>
    Object.entries(ENVIRONMENT_VARIABLES)
      .filter(([, k]) => k === key)
      .map(([name]) => `\`${name}\``)
      .join(', ') || '–'
  const rows = Object.entries(json.properties).map(([key, prop]) => {
    const kind = prop.enum
      ? prop.enum.map((v) => `\`${String(v)}\``).join(' \\| ')
      : (prop.type ?? 'string')
    const def = prop.default === undefined ? '–' : `\`${String(prop.default)}\``
    return `| \`${key}\` | ${envFor(key)} | ${kind} | ${def} | ${prop.description ?? ''} |`
  })
  return [
    '# Configuration reference',
    '',
    'Generated from `packages/server/src/config/schema.ts` by `npm run docs`; a test fails when this',
    'file and the schema disagree. Settings come from, in rising priority: defaults, a JSON config file',
    '(`--config <file>`; unknown keys are refused), environment variables, command-line flags.',
    '',
    '| setting | environment | type | default | what it is for |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n')
}
