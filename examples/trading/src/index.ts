export * from './deputy.js'
export * from './market.js'
export * from './mcp.js'
export * from './trading.js'
