/**
 * The few test-framework functions the kits call. By default they are the globals mocha, jest and
 * vitest (with `globals: true`) define; under `node:test`, pass them:
 * `{ framework: { describe, it, beforeEach, afterEach } }` from `import … from 'node:test'`.
 */
export interface TestFramework {
  describe(name: string, body: () => void): unknown;
  it(name: string, body: () => Promise<void>): unknown;
  beforeEach(body: () => Promise<void> | void): unknown;
  afterEach(body: () => Promise<void> | void): unknown;
}

/** `given`, or the framework's globals; throws naming what is missing rather than failing later. */
export function testFramework(given?: TestFramework): TestFramework {
  if (given) return given;
  const g = globalThis as Record<string, unknown>;
  const missing = ['describe', 'it', 'beforeEach', 'afterEach'].filter((name) => typeof g[name] !== 'function');
  if (missing.length) {
    throw new Error(
      `approvals-hub/testing: no global ${missing.join(', ')}; run the kit under mocha, jest or vitest (globals), or pass options.framework (e.g. from node:test)`,
    );
  }
  return g as unknown as TestFramework;
}

/**
 * Registers a skipped case where the framework can show one (`it.skip`: mocha, jest, vitest,
 * node:test), so the reason appears in the run's output; otherwise registers nothing.
 */
export function skipCase(t: TestFramework, title: string, reason: string): void {
  const skip = (t.it as { skip?: unknown }).skip;
  if (typeof skip === 'function') (skip as (name: string, body: () => Promise<void>) => unknown)(`${title} (skipped: ${reason})`, async () => undefined);
}
