/**
 * The import boundaries of approvals-hub, checked by `npm run lint:deps` (dependency-cruiser).
 *
 * - Plugins and adapters are written as a third party would write them: from core they import only
 *   the package's public entry points (package.json `exports`), and never each other.
 * - Inside core, arrows point one way: model ← contracts ← pipeline ← host. `di.ts` (inversify,
 *   re-exported) sits under contracts; `testing/` sits on top and ships only for tests.
 * - Core never imports its own entry files (ESM evaluation order stays the one the layers give),
 *   production code never imports `test/`, and nothing is circular.
 *
 * Type-only imports count (`tsPreCompilationDeps`): a type reaching into `core/pipeline` is as much
 * a coupling as a value. There are no exceptions: one added to `knownViolations` must say why
 * (it is then reported as ignored); anything else fails the check.
 */

/** package.json `exports`: approvals-hub, approvals-hub/host, approvals-hub/queue-kit, approvals-hub/testing. */
const ENTRY_POINTS = '^core/(index|host/index|queue-kit|testing/index)[.]ts$';

/** A test kept beside the plugin it tests (`plugins/x/x.test.ts`) is not production code. */
const TEST_FILE = '[.]test[.]ts$';

module.exports = {
  forbidden: [
    {
      name: 'plugin-imports-core-internals',
      comment:
        'A plugin or adapter imports core only through an entry point: core/index.ts (approvals-hub), ' +
        'core/host/index.ts (approvals-hub/host), core/queue-kit.ts (approvals-hub/queue-kit) or ' +
        'core/testing/index.ts (approvals-hub/testing). Export what it needs from the right entry instead.',
      severity: 'error',
      from: { path: '^(plugins|adapters)/' },
      to: { path: '^core/', pathNot: ENTRY_POINTS },
    },
    {
      name: 'plugin-imports-other-plugin',
      comment: 'Plugins and adapters import core, never each other (not even plugins/ ↔ adapters/).',
      severity: 'error',
      from: { path: '^((plugins|adapters)/[^/]+)/' },
      to: { path: '^(plugins|adapters)/', pathNot: '^$1/' },
    },
    {
      name: 'core-imports-plugin',
      comment: 'Core loads plugins and adapters by manifest at run time; it never imports one.',
      severity: 'error',
      from: { path: '^core/' },
      to: { path: '^(plugins|adapters)/' },
    },
    {
      name: 'core-imports-own-entry-point',
      comment:
        'Core files import the module that defines a name, never an entry point: an entry re-exports ' +
        'most of core, so importing it from inside would make ESM evaluation order depend on cycles.',
      severity: 'error',
      from: { path: '^core/' },
      to: { path: ENTRY_POINTS },
    },
    {
      name: 'model-imports-upward',
      comment: 'core/model is plain data and pure functions: it imports nothing else from core.',
      severity: 'error',
      from: { path: '^core/model/' },
      to: { path: '^core/', pathNot: '^core/model/' },
    },
    {
      name: 'contracts-import-upward',
      comment: 'core/contracts (interface + token) may import only core/model and core/di.ts.',
      severity: 'error',
      from: { path: '^core/contracts/' },
      to: { path: '^core/', pathNot: '^core/(model/|contracts/|di[.]ts$)' },
    },
    {
      name: 'pipeline-imports-host',
      comment: 'core/pipeline runs inside a host but does not know it: no imports from core/host or core/testing.',
      severity: 'error',
      from: { path: '^core/pipeline/' },
      to: { path: '^core/(host|testing)/' },
    },
    {
      name: 'production-imports-testing-kit',
      comment:
        'core/testing (fakes, contract kits; needs chai/fast-check) is for tests: no production code imports it. ' +
        "A plugin's own *.test.ts may, through core/testing/index.ts (approvals-hub/testing).",
      severity: 'error',
      from: { path: '^(core|plugins|adapters)/', pathNot: ['^core/testing/', TEST_FILE] },
      to: { path: '^core/testing/' },
    },
    {
      name: 'production-imports-test',
      comment: 'core, plugins and adapters ship in the package; test/ does not.',
      severity: 'error',
      from: { path: '^(core|plugins|adapters)/', pathNot: TEST_FILE },
      to: { path: '^test/' },
    },
    {
      name: 'no-circular',
      comment: 'A cycle makes ESM evaluation order (and so which binding is still undefined) depend on the entry file.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    knownViolations: [],
  },
};
