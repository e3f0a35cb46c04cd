/** Where the exchanged tokens go: the API the MCP server calls for the person (their `aud`). */
export const DOWNSTREAM = 'http://127.0.0.1:9998/api'
