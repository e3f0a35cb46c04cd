export {
  createSqlUserStateStore,
  type JsonValue,
  MAX_STATE_VALUE_BYTES,
  type UserStateScope,
  type UserStateStore,
} from './sql-user-state.js'
