export * from './shop.js'
export * from './storage.js'
