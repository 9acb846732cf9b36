import assert from 'node:assert/strict';

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

/** What one case of a kit found when run programmatically: every contract breach (empty = passed). */
export interface KitCaseResult<C extends string> {
  readonly case: C;
  readonly problems: readonly string[];
  /** Set when the case was skipped, with the reason given. */
  readonly skipped?: string;
}

/**
 * Runs a kit's cases in order, each on a fresh subject from `make` (closed afterwards), without a
 * test framework; a case that throws reports the error as its problem.
 */
export async function runKitCases<C extends string, S extends { close?(): Promise<void> }>(
  make: () => Promise<S>,
  cases: readonly C[],
  skip: Partial<Record<C, string>> | undefined,
  errorText: (error: unknown) => string,
  run: (kase: C, subject: S) => Promise<string[]>,
): Promise<KitCaseResult<C>[]> {
  const results: KitCaseResult<C>[] = [];
  for (const name of cases) {
    const skipped = skip?.[name];
    if (skipped !== undefined) {
      results.push({ case: name, problems: [], skipped });
      continue;
    }
    const subject = await make();
    try {
      results.push({ case: name, problems: await run(name, subject) });
    } catch (error) {
      results.push({ case: name, problems: [`${name}: ${errorText(error)}`] });
    } finally {
      await subject.close?.();
    }
  }
  return results;
}

/**
 * Registers a kit as a suite: one test per case (a skipped one shown with its reason), each
 * failing with every breach `check` finds in it.
 */
export function describeKit<C extends string>(
  t: TestFramework,
  suite: string,
  cases: readonly C[],
  titles: Record<C, string>,
  skip: Partial<Record<C, string>> | undefined,
  breaks: string,
  check: (kase: C) => Promise<KitCaseResult<C>[]>,
): void {
  t.describe(suite, () => {
    for (const kase of cases) {
      const skipped = skip?.[kase];
      if (skipped !== undefined) {
        skipCase(t, titles[kase], skipped);
        continue;
      }
      t.it(titles[kase], async () => {
        const [result] = await check(kase);
        assert.deepEqual(result!.problems, [], `${breaks}:\n  ${result!.problems.join('\n  ')}`);
      });
    }
  });
}
