// Regenerates the documentation that is derived from code (docs/configuration.md).
import { writeFileSync } from 'node:fs'
import { renderConfigurationReference } from '../packages/server/dist/config/docs.js'

writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigurationReference())
console.log('wrote docs/configuration.md')
