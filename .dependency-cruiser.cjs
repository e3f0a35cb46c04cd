// The import rule of packages/server/src (docs/architecture.md): one composition root, nothing
// below it imports it, and no import cycle between its source folders. `npm test` runs
// `depcruise --config .dependency-cruiser.cjs packages/server/src` (`npm run deps`).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-import-of-the-composition-root',
      severity: 'error',
      comment:
        'deputy.ts wires the modules together; only the HTTP edge (server.ts), the CLI and the package entry (index.ts) may import it. A module names the services it uses in its own deps type.',
      from: {
        path: '^packages/server/src/',
        pathNot: ['^packages/server/src/(server|index|deputy)\\.ts$', '^packages/server/src/cli/'],
      },
      to: { path: '^packages/server/src/deputy\\.ts$' },
    },
    {
      name: 'no-cycle-between-folders',
      severity: 'error',
      comment:
        'Source folders form layers (edge → composition → routes → domain → store, keys, audit, lib): no folder may depend, directly or through others, on a folder that depends on it.',
      scope: 'folder',
      from: { path: '^packages/server/src/[^/]+$' },
      to: { path: '^packages/server/src/[^/]+$', circular: true },
    },
    {
      name: 'no-circular-modules',
      severity: 'error',
      comment: 'No import cycle between modules either.',
      from: { path: '^packages/server/src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Folder-level rules need the folder aggregation that metrics computes.
    metrics: true,
    // Type-only imports count: a module that needs another's types depends on it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    exclude: { path: '\\.test\\.ts$' },
  },
}
