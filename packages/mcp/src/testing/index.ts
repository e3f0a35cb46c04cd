export { stateStoreConformance } from './state-store-conformance.js'
