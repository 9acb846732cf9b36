import type { ApprovalSource, SourceBatch, SyncContext, VerifyRef } from '../../contracts/approval-source.js';
import type { Approval } from '../../model/approval.js';
import { approvalProblems } from './checks.js';
import { describeKit, runKitCases, testFramework, type KitCaseResult, type TestFramework } from './framework.js';

/**
 * What the source kit needs to change in the system a source reads, implemented by the plugin's
 * author against that system's test instance (a sandbox's admin API, a seeded database …). Every
 * method acts on the backing system only, never on the source object, and resolves once the
 * change is visible to the source's next call.
 */
export interface SourceDriver {
  /** Creates a new approval pending on someone; resolves to its external id (the `<externalId>` of its key). */
  submit(): Promise<string>;
  /** Changes something its card shows (title, amount …) while it stays pending with the same approver. */
  change(externalId: string): Promise<void>;
  /** Ends the approval (approved, or any other outcome): it is no longer pending. */
  complete(externalId: string): Promise<void>;
  /** Moves the pending approval to a different approver. */
  reassign(externalId: string): Promise<void>;
  /** From now on every call the source makes to its system fails (an outage), until {@link recover}. */
  fail(): Promise<void>;
  /** Ends the outage {@link fail} started. */
  recover(): Promise<void>;
  /**
   * Optional: lets time pass in the backing system between two steps (e.g. advances a sandbox
   * clock), for a source that detects changes by modification time.
   */
  tick?(): Promise<void>;
}

/** What `make` returns: a source on a fresh, empty backing system, its driver, and how to tear them down. */
export interface SourceUnderTest {
  readonly source: ApprovalSource;
  readonly driver: SourceDriver;
  close?(): Promise<void>;
}

/** The cases the source kit runs, by name; the keys of {@link SourceKitOptions.skip}. */
export const SOURCE_KIT_CASES = [
  'first sync',
  'incremental change',
  'completion',
  'reassignment',
  'replayed cursor',
  'failure mid-iteration',
  'listPending',
  'verify',
] as const;
export type SourceKitCase = (typeof SOURCE_KIT_CASES)[number];

export interface SourceKitOptions {
  /**
   * How many approvals the source (as `make` configures it) puts in one batch of `changes`. The
   * failure case submits `3 × batchSize + 1` approvals so the source must yield several batches.
   * Default 1.
   */
  readonly batchSize?: number;
  /** The approval kinds the source may report; unset: any kind (the key must still match it). */
  readonly kinds?: readonly string[];
  /** Cases this source cannot support, each with the reason (shown as the pending test's title). */
  readonly skip?: Partial<Record<SourceKitCase, string>>;
  /** Test framework functions; default: the globals of mocha, jest or vitest. */
  readonly framework?: TestFramework;
}

/** The outcome of one case run programmatically: every contract breach found (empty = passed). */
export type SourceKitResult = KitCaseResult<SourceKitCase>;

function context(): SyncContext {
  return { signal: new AbortController().signal, now: new Date() };
}

interface Read {
  readonly batches: SourceBatch[];
  readonly error?: unknown;
}

/** Reads `changes` to its end (or its failure), calling `afterFirst` once the first batch arrived. */
async function readChanges(source: ApprovalSource, cursor: string | undefined, afterFirst?: () => Promise<void>): Promise<Read> {
  const batches: SourceBatch[] = [];
  try {
    for await (const batch of source.changes(cursor, context())) {
      batches.push(batch);
      if (batches.length === 1) await afterFirst?.();
    }
  } catch (error) {
    return { batches, error };
  }
  return { batches };
}

/** The problems of one run of `changes`: each approval, completions, and where cursors sit. */
function changesProblems(read: Read, source: ApprovalSource, known: ReadonlySet<string>, options: SourceKitOptions, label: string): string[] {
  const problems: string[] = [];
  read.batches.forEach((batch, i) => {
    if (typeof batch !== 'object' || batch === null || !Array.isArray(batch.approvals)) {
      problems.push(`${label}: batch ${i} is not { approvals: Approval[] }`);
      return;
    }
    for (const a of batch.approvals) problems.push(...approvalProblems(a, source.id, options.kinds).map((p) => `${label}: ${p}`));
    for (const c of batch.completions ?? []) {
      if (!known.has(c.key)) problems.push(`${label}: completion of ${JSON.stringify(c.key)}, a key the source never reported (completions name queued keys)`);
      if (c.status === ('pending' as string)) problems.push(`${label}: completion of ${JSON.stringify(c.key)} with status pending`);
    }
    const last = i === read.batches.length - 1 && read.error === undefined;
    if (batch.cursor !== undefined && !last) {
      problems.push(
        `${label}: batch ${i} of ${read.batches.length}${read.error === undefined ? '' : ' (before a failure)'} carries a cursor; only the batch that completes a result set (the last) may`,
      );
    }
    if (batch.cursor !== undefined && typeof batch.cursor !== 'string') problems.push(`${label}: batch ${i}'s cursor is not a string`);
  });
  return problems;
}

const keysOf = (read: Read): Approval[] => read.batches.flatMap((b) => b.approvals ?? []);
const cursorOf = (read: Read, from: string | undefined): string | undefined => read.batches.reduce<string | undefined>((c, b) => b.cursor ?? c, from);
const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** One case, on a fresh subject; returns the problems it found. */
async function runCase(name: SourceKitCase, subject: SourceUnderTest, options: SourceKitOptions): Promise<string[]> {
  const { source, driver } = subject;
  const problems: string[] = [];
  const known = new Set<string>();
  const tick = async () => driver.tick?.();
  const keyOf = (externalId: string, approvals: readonly Approval[]) => approvals.find((a) => a.externalId === externalId);

  /** A first sync of `count` fresh approvals; returns their ids and the cursor it ended on. */
  const firstSync = async (count: number) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push(await driver.submit());
    await tick();
    const read = await readChanges(source, undefined);
    if (read.error !== undefined) throw new Error(`first sync failed: ${errorText(read.error)}`);
    for (const a of keysOf(read)) known.add(a.key);
    problems.push(...changesProblems(read, source, known, options, 'first sync'));
    for (const id of ids) {
      const a = keyOf(id, keysOf(read));
      if (!a) problems.push(`first sync: the pending approval ${JSON.stringify(id)} was not reported`);
      else if (a.status !== 'pending') problems.push(`first sync: approval ${JSON.stringify(a.key)} reported as ${a.status}, expected pending`);
    }
    const withApprovals = read.batches.filter((b) => (b.approvals?.length ?? 0) > 0).length > 0;
    const cursor = cursorOf(read, undefined);
    if (withApprovals && cursor === undefined) problems.push('first sync: no batch carried a cursor, so the next cycle would read everything again');
    return { ids, cursor, read };
  };

  /** `changes(cursor)` after a step; returns what it yielded. */
  const next = async (cursor: string | undefined, label: string) => {
    await tick();
    const read = await readChanges(source, cursor);
    if (read.error !== undefined) throw new Error(`${label}: changes failed: ${errorText(read.error)}`);
    for (const a of keysOf(read)) known.add(a.key);
    problems.push(...changesProblems(read, source, known, options, label));
    return read;
  };

  switch (name) {
    case 'first sync':
      await firstSync(2);
      break;
    case 'incremental change': {
      const { ids, cursor, read } = await firstSync(1);
      const before = keyOf(ids[0]!, keysOf(read));
      await driver.change(ids[0]!);
      const after = keyOf(ids[0]!, keysOf(await next(cursor, 'incremental change')));
      if (!after) problems.push(`incremental change: changes(cursor) did not report the changed approval ${JSON.stringify(ids[0])}`);
      else if (after.status !== 'pending') problems.push(`incremental change: the changed approval came back ${after.status}, expected still pending`);
      else if (before && after.sourceUpdatedAt < before.sourceUpdatedAt) problems.push('incremental change: sourceUpdatedAt went back in time');
      break;
    }
    case 'completion': {
      const { ids, cursor } = await firstSync(1);
      const key = [...known].find((k) => k.endsWith(`:${ids[0]}`));
      await driver.complete(ids[0]!);
      const read = await next(cursor, 'completion');
      const reported = keyOf(ids[0]!, keysOf(read));
      const completed = read.batches.some((b) => (b.completions ?? []).some((c) => c.key === key));
      if (!completed && !reported)
        problems.push(`completion: changes(cursor) reported neither the outcome nor a completion of ${JSON.stringify(key ?? ids[0])}`);
      else if (!completed && reported?.status === 'pending')
        problems.push(`completion: the completed approval ${JSON.stringify(reported.key)} was reported still pending`);
      break;
    }
    case 'reassignment': {
      const { ids, cursor, read } = await firstSync(1);
      const before = keyOf(ids[0]!, keysOf(read));
      await driver.reassign(ids[0]!);
      const after = keyOf(ids[0]!, keysOf(await next(cursor, 'reassignment')));
      const who = (a: Approval | undefined) =>
        (a?.approvers ?? [])
          .map((p) => p.sourceUserId)
          .sort()
          .join(',');
      if (!after) problems.push(`reassignment: changes(cursor) did not report the reassigned approval ${JSON.stringify(ids[0])}`);
      else if (after.status !== 'pending') problems.push(`reassignment: the reassigned approval came back ${after.status}, expected pending`);
      else if (who(after) === who(before)) problems.push(`reassignment: the approvers did not change (still ${who(after)})`);
      break;
    }
    case 'replayed cursor': {
      const { ids, cursor } = await firstSync(1);
      await driver.change(ids[0]!);
      const first = keyOf(ids[0]!, keysOf(await next(cursor, 'replayed cursor (first read)')));
      const again = keyOf(ids[0]!, keysOf(await next(cursor, 'replayed cursor (replay)')));
      if (!first) problems.push(`replayed cursor: changes(cursor) did not report the changed approval ${JSON.stringify(ids[0])}`);
      if (first && !again)
        problems.push('replayed cursor: reading again from the same cursor skipped a change it reported the first time (a failed commit would lose it)');
      break;
    }
    case 'failure mid-iteration': {
      const count = 3 * (options.batchSize ?? 1) + 1;
      const ids: string[] = [];
      for (let i = 0; i < count; i++) ids.push(await driver.submit());
      await tick();
      let failed = false;
      const read = await readChanges(source, undefined, async () => {
        failed = true;
        await driver.fail();
      });
      await driver.recover();
      problems.push(...changesProblems(read, source, known, options, 'failure mid-iteration'));
      if (!failed) problems.push('failure mid-iteration: changes yielded no batch, so there was nothing to fail in the middle of');
      else if (read.error === undefined) {
        problems.push(
          `failure mid-iteration: changes completed (${read.batches.length} batches for ${count} approvals, batchSize ${options.batchSize ?? 1}) although every call failed after the first batch`,
        );
      }
      // What the runner would have committed is the cursor of the batches before the failure.
      const replay = await next(cursorOf(read, undefined), 'failure mid-iteration (replay)');
      const seen = new Set([...keysOf(read), ...keysOf(replay)].map((a) => a.externalId));
      const lost = ids.filter((id) => !seen.has(id));
      if (lost.length)
        problems.push(
          `failure mid-iteration: after recovery, a replay from the last committed cursor never reported ${lost.join(', ')} (skipped, not replayed)`,
        );
      break;
    }
    case 'listPending': {
      const { ids } = await firstSync(2);
      await driver.complete(ids[1]!);
      await tick();
      const listed: Approval[] = [];
      for await (const batch of source.listPending(context())) {
        if (!Array.isArray(batch)) {
          problems.push(
            `listPending: yielded ${typeof batch === 'object' && batch !== null && 'cursor' in batch ? 'a batch with a cursor' : 'something'} instead of an array of approvals (its batches carry no cursor)`,
          );
          continue;
        }
        listed.push(...batch);
      }
      for (const a of listed) {
        problems.push(...approvalProblems(a, source.id, options.kinds).map((p) => `listPending: ${p}`));
        if (a.status !== 'pending') problems.push(`listPending: approval ${JSON.stringify(a.key)} is ${a.status}; listPending lists pending approvals only`);
      }
      if (!keyOf(ids[0]!, listed)) problems.push(`listPending: the pending approval ${JSON.stringify(ids[0])} was not listed`);
      if (keyOf(ids[1]!, listed)) problems.push(`listPending: the completed approval ${JSON.stringify(ids[1])} was listed`);
      break;
    }
    case 'verify': {
      const { ids, read } = await firstSync(3);
      await driver.complete(ids[1]!);
      await tick();
      const byId = new Map(keysOf(read).map((a) => [a.externalId, a]));
      // Deliberately not in the order the source reported them: results must follow the refs.
      const refs: VerifyRef[] = [ids[2]!, ids[0]!, ids[1]!].map((id) => ({ externalId: id, sourceData: byId.get(id)?.sourceData }));
      const results = await source.verify(refs, context());
      if (!Array.isArray(results) || results.length !== refs.length) {
        problems.push(`verify: ${refs.length} refs gave ${Array.isArray(results) ? results.length : typeof results} results; expected one per ref`);
        break;
      }
      results.forEach((r, i) => {
        const id = r.found ? r.approval?.externalId : r.externalId;
        if (id !== refs[i]!.externalId)
          problems.push(`verify: result ${i} is for ${JSON.stringify(id)}, expected ${JSON.stringify(refs[i]!.externalId)} (results follow the refs' order)`);
        if (r.found) problems.push(...approvalProblems(r.approval, source.id, options.kinds).map((p) => `verify: ${p}`));
      });
      const pending = results[1];
      if (!pending?.found || pending.approval.status !== 'pending')
        problems.push(`verify: the pending approval ${JSON.stringify(ids[0])} was not found pending`);
      const done = results[2];
      if (done?.found && done.approval.status === 'pending')
        problems.push(`verify: the completed approval ${JSON.stringify(ids[1])} was reported still pending`);
      break;
    }
  }
  return problems;
}

/**
 * Runs the source kit's cases without a test framework and returns what each found, so a test can
 * show the kit fails a broken source (and a tool can print a report).
 */
export async function checkApprovalSource(
  make: () => Promise<SourceUnderTest>,
  options: SourceKitOptions = {},
  cases: readonly SourceKitCase[] = SOURCE_KIT_CASES,
): Promise<SourceKitResult[]> {
  return runKitCases(make, cases, options.skip, errorText, (name, subject) => runCase(name, subject, options));
}

const TITLES: Record<SourceKitCase, string> = {
  'first sync': 'reports every pending approval on a first sync, well-formed, with a cursor on the last batch only',
  'incremental change': 'reports a change made after the cursor',
  completion: 'reports an approval that left pending after the cursor, as an outcome or a completion of a queued key',
  reassignment: 'reports a reassignment after the cursor with the new approvers',
  'replayed cursor': 'reports the same change again when read again from the same cursor',
  'failure mid-iteration': 'rejects when its system fails mid-iteration, with no cursor before the failure, and loses nothing on replay',
  listPending: 'lists only pending approvals, in batches without a cursor',
  verify: "verifies one result per ref, in the refs' order",
};

/**
 * The contract every {@link ApprovalSource} plugin must keep, as a test suite. `make` returns a
 * source on a fresh, empty backing system and a {@link SourceDriver} to change that system; it
 * is called once per case.
 *
 * ```ts
 * import { describeApprovalSource } from 'approvals-hub/testing';
 * describeApprovalSource('my-source', async () => {
 *   const sandbox = await startMySandbox();
 *   return { source: new MySource('acme', sandbox.url), driver: sandbox.driver(), close: () => sandbox.close() };
 * });
 * ```
 */
export function describeApprovalSource(name: string, make: () => Promise<SourceUnderTest>, options: SourceKitOptions = {}): void {
  const t = testFramework(options.framework);
  describeKit(t, `ApprovalSource contract kit: ${name}`, SOURCE_KIT_CASES, TITLES, options.skip, `${name} breaks the ApprovalSource contract`, (kase) =>
    checkApprovalSource(make, options, [kase]),
  );
}
