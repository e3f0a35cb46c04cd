import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { renderConfigurationReference } from '../../src/config/docs.js'
import { loadConfig } from '../../src/config/load.js'

function tempFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'deputy-config-')), name)
  writeFileSync(path, text)
  return path
}

describe('settings', () => {
  it('defaults to the embedded setup: port 8080, SQLite under .deputy, development mode', () => {
    const config = loadConfig({ env: {}, cwd: '/srv/app' })
    expect(config).toMatchObject({
      port: 8080,
      mode: 'development',
      issuer: 'http://localhost:8080',
      database: '/srv/app/.deputy/deputy.db',
      masterKeyFile: '/srv/app/.deputy/master.key',
    })
  })

  it('ranks flags over the environment over the config file', () => {
    const file = tempFile(
      'deputy.json',
      JSON.stringify({ port: 7000, logLevel: 'warn', host: '0.0.0.0' }),
    )
    const config = loadConfig({
      file,
      env: { PORT: '7100', DEPUTY_LOG_LEVEL: 'debug' },
      overrides: { port: 7200 },
    })
    expect(config.port).toBe(7200)
    expect(config.logLevel).toBe('debug')
    expect(config.host).toBe('0.0.0.0')
    expect(config.issuer).toBe('http://localhost:7200')
  })

  it('keeps a postgres:// URL as it is', () => {
    const config = loadConfig({ env: { DEPUTY_DATABASE_URL: 'postgres://u@db:5432/deputy' } })
    expect(config.database).toBe('postgres://u@db:5432/deputy')
  })

  it('treats NODE_ENV=production as production mode', () => {
    expect(loadConfig({ env: { NODE_ENV: 'production' } }).mode).toBe('production')
  })

  it('refuses an unknown key in a config file, naming it', () => {
    const file = tempFile('deputy.json', JSON.stringify({ prot: 80 }))
    expect(() => loadConfig({ file, env: {} })).toThrow(/prot/)
  })

  it('refuses a bad value, naming the setting', () => {
    expect(() => loadConfig({ env: { PORT: 'eighty' } })).toThrow(/invalid setting "port"/)
  })

  it('says which config file is missing or not JSON', () => {
    expect(() => loadConfig({ file: '/nonexistent/deputy.json', env: {} })).toThrow(
      'config file /nonexistent/deputy.json: no such file',
    )
    const file = tempFile('bad.json', '{ nope')
    expect(() => loadConfig({ file, env: {} })).toThrow(/is not valid JSON/)
  })

  it('docs/configuration.md is the reference generated from the schema (run `npm run docs`)', () => {
    const committed = readFileSync(
      new URL('../../../../docs/configuration.md', import.meta.url),
      'utf8',
    )
    expect(committed).toBe(renderConfigurationReference())
  })
})
