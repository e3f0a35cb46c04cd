export * from './deputy.js'
export * from './mcp.js'
export * from './shop.js'
export * from './storage.js'
