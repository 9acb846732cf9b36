import type * as Chai from 'chai';
import type * as FastCheck from 'fast-check';
import type { ApprovalQueue } from '../../contracts/approval-queue.js';
import type { ClaimedTrigger, SourceTrigger } from '../../contracts/source-triggers.js';
import type { Approval } from '../../model/approval.js';
import type { ChangeBatch, Completion, OutboxEntry, QueuedApproval, ReminderCandidate } from '../../model/queue-types.js';
import { planReminders, type ReminderSettings } from '../../pipeline/reminder-scheduler.js';
import { testFramework, type TestFramework } from './framework.js';
import { DAY_MS, NOW, SOURCE, ago, approval, approver, batch, commitContext, expectRejection, unresolved } from './queue-fixtures.js';

/*
 * This suite asserts with chai and generates batches with fast-check. Both are optional peer
 * dependencies of approvals-hub, loaded when the suite first runs (not when
 * `approvals-hub/testing` is imported), so a plugin that only runs the source or notifier kits,
 * which use node:assert, needs neither.
 */
let expect: typeof Chai.expect;
let fc: typeof FastCheck;
let loading: Promise<void> | undefined;
function loadAssertionLibraries(): Promise<void> {
  loading ??= (async () => {
    try {
      expect = (await import('chai')).expect;
      fc = await import('fast-check');
    } catch (error) {
      loading = undefined;
      throw new Error(
        `describeApprovalQueueContract needs the optional peer dependencies chai (>=5) and fast-check (>=3): npm install --save-dev chai fast-check (${error instanceof Error ? error.message : String(error)})`,
      );
    }
  })();
  return loading;
}

export interface QueueUnderTest {
  queue: ApprovalQueue;
  /** Durable adapters only: closes `queue` and returns a new, initialised queue on the same store. */
  reopen?: () => Promise<ApprovalQueue>;
  /** Closes whatever queue is open and removes the store. */
  cleanup: () => Promise<void>;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const OTHER_SOURCE = 'concur-globex';
const later = (ms: number): Date => new Date(NOW.getTime() + ms);

/**
 * The behaviour every ApprovalQueue adapter shares. `make` returns an initialised queue on a
 * fresh, empty store.
 *
 * Pinned down here where the contract's TSDoc leaves a choice:
 * - `OutboxEntry.attempts` counts earlier claims: 0 on an entry's first claim, so a claimed entry
 *   with attempts > 0 may already have been sent; an entry not inflight reports all its claims.
 * - `commit` returns in `outbox` the entries it actually wrote (a replayed idempotency key is not one).
 * - settling an id the outbox does not hold fails; `close` may be called twice.
 * - an approval whose `sourceUpdatedAt` is not a time fails the whole batch.
 */
export function describeApprovalQueueContract(name: string, make: () => Promise<QueueUnderTest>, options: { readonly framework?: TestFramework } = {}): void {
  const { describe, it, beforeEach, afterEach } = testFramework(options.framework);
  describe(`ApprovalQueue contract: ${name}`, () => {
    let subject: QueueUnderTest;
    let queue: ApprovalQueue;
    const ctx = commitContext();
    const notBefore = ctx.notBefore;

    beforeEach(async () => {
      await loadAssertionLibraries();
      subject = await make();
      queue = subject.queue;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    const commit = (approvals: readonly Approval[], extra: Partial<ChangeBatch> = {}, context = ctx) => queue.commit(batch(approvals, extra), context);
    const forApprover = (email: string, extra: { source?: string; limit?: number; notBefore?: Date } = {}) =>
      queue.listForApprover(email, { notBefore, ...extra }).then((rows) => rows.map((r) => r.key));
    /** Everything still owed (pending or parked), oldest first. */
    const owed = async (): Promise<OutboxEntry[]> =>
      [...(await queue.listOutbox('pending')), ...(await queue.listOutbox('parked'))].sort((a, b) => a.id - b.id);
    const summary = (entries: readonly OutboxEntry[]) =>
      entries.map((e) => `${e.action}${e.outcome ? `(${e.outcome})` : ''} r${e.revision} ${e.approver.sourceUserId} ${e.channel}`);

    describe('lifecycle', () => {
      it('can be initialised again without losing data', async () => {
        await commit([approval('R1')]);
        await queue.init();
        expect(await queue.get(approval('R1').key)).to.include({ revision: 1 });
      });

      it('fails every call after close', async () => {
        await queue.close();
        await expectRejection(queue.get(approval('R1').key));
        await expectRejection(commit([approval('R1')]));
        await expectRejection(queue.claimOutbox(1, NOW, MINUTE_MS));
        await queue.close();
      });
    });

    describe('commit', () => {
      it('queues a new pending approval at revision 1 and owes one notify per approver per channel', async () => {
        const a = approval('R1', { approvers: [approver('grace'), approver('alan')] });
        const result = await commit([a], {}, commitContext({ channels: ['console', 'slack'] }));

        expect(result).to.deep.equal({ inserted: 1, updated: 0, unchanged: 0, completed: 0, ignored: 0, reassigned: 0, outbox: 4, lagMs: [DAY_MS] });
        const row = await queue.get(a.key);
        expect(row).to.include({ key: a.key, revision: 1, queuedAt: NOW.toISOString(), title: 'Report R1' });
        expect(row?.fingerprint).to.be.a('string').that.is.not.empty;
        const entries = await owed();
        expect(summary(entries)).to.have.members(['notify r1 grace console', 'notify r1 grace slack', 'notify r1 alan console', 'notify r1 alan slack']);
        for (const e of entries) {
          expect(e).to.include({ approvalKey: a.key, source: SOURCE, state: 'pending', attempts: 0, createdAt: NOW.toISOString() });
          expect(e.card).to.include({ approvalKey: a.key, revision: 1, title: 'Report R1' });
          expect(e.idempotencyKey).to.equal(`${a.key}#${row?.generation}.1:${e.approver.sourceUserId}:${e.channel}:notify`);
        }
      });

      it('leaves one row at revision 1 and owes nothing more when the same batch is committed twice', async () => {
        const b = [approval('R1')];
        await commit(b, { cursor: 'c1' });
        const second = await commit(b, { cursor: 'c1' });

        expect(second).to.include({ inserted: 0, updated: 0, unchanged: 1, outbox: 0 });
        expect((await queue.list({ notBefore })).map((r) => [r.key, r.revision])).to.deep.equal([[approval('R1').key, 1]]);
        expect(summary(await owed())).to.deep.equal(['notify r1 grace console']);
      });

      it('bumps the revision and owes update, not notify, when the card changes', async () => {
        const a = approval('R1');
        await commit([a]);
        const result = await commit([{ ...a, title: 'Trip to Berlin (corrected)', sourceUpdatedAt: ago(HOUR_MS) }]);

        expect(result).to.include({ updated: 1, outbox: 1 });
        expect(await queue.get(a.key)).to.include({ revision: 2, title: 'Trip to Berlin (corrected)' });
        const entries = await owed();
        expect(summary(entries)).to.deep.equal(['notify r1 grace console', 'update r2 grace console']);
        expect(entries[1]?.card).to.include({ revision: 2, title: 'Trip to Berlin (corrected)' });
      });

      it('owes nothing and keeps the revision when an unchanged approval comes back with a newer source time', async () => {
        const a = approval('R1');
        await commit([a]);
        const result = await commit([{ ...a, sourceUpdatedAt: ago(HOUR_MS) }]);

        expect(result).to.include({ unchanged: 1, outbox: 0 });
        expect(await queue.get(a.key)).to.include({ revision: 1, sourceUpdatedAt: ago(HOUR_MS) });
        expect(await owed()).to.have.length(1);
      });

      it('ignores a version older than the queued one', async () => {
        const a = approval('R1');
        await commit([a]);
        const result = await commit([{ ...a, title: 'an older title', sourceUpdatedAt: ago(2 * DAY_MS) }]);

        expect(result).to.include({ ignored: 1, outbox: 0 });
        expect(await queue.get(a.key)).to.include({ revision: 1, title: 'Report R1', sourceUpdatedAt: a.sourceUpdatedAt });
      });

      it('owes close(reassigned) to the removed approver and notify to the added one', async () => {
        const a = approval('R1');
        await commit([a]);
        await commit([{ ...a, approvers: [approver('alan')], sourceUpdatedAt: ago(HOUR_MS) }]);

        expect(summary(await owed())).to.deep.equal(['notify r1 grace console', 'close(reassigned) r2 grace console', 'notify r2 alan console']);
        expect(await forApprover('grace@acme.test')).to.deep.equal([]);
        expect(await forApprover('alan@acme.test')).to.deep.equal([a.key]);
      });

      it('commits the cursor with its batch', async () => {
        expect(await queue.getCursor(SOURCE)).to.equal(undefined);
        await commit([approval('R1')], { cursor: '2025-06-02T11:00:00Z' });

        expect(await queue.getCursor(SOURCE)).to.equal('2025-06-02T11:00:00Z');
        expect(await queue.getCursor(OTHER_SOURCE)).to.equal(undefined);
      });

      it('leaves the cursor as it was when a batch carries none', async () => {
        await commit([approval('R1')], { cursor: 'c1' });
        await commit([approval('R2')]);

        expect(await queue.getCursor(SOURCE)).to.equal('c1');
      });

      it('writes nothing, cursor and audit included, when planBatch rejects the batch', async () => {
        const a = approval('R1');
        await commit([a], { cursor: 'c1' });
        const foreign = approval('R3', { source: OTHER_SOURCE });

        await expectRejection(
          commit([approval('R2'), foreign], {
            cursor: 'c2',
            completions: [{ key: a.key, status: 'approved' }],
            audit: [{ actor: 'ops', action: 'queue.resync' }],
          }),
        );
        expect(await queue.getCursor(SOURCE)).to.equal('c1');
        expect(await queue.get(a.key)).to.include({ revision: 1 });
        expect(await queue.get(approval('R2').key)).to.equal(undefined);
        expect(await queue.get(foreign.key)).to.equal(undefined);
        expect(summary(await owed())).to.deep.equal(['notify r1 grace console']);
        expect(await queue.listAudit()).to.deep.equal([]);
      });

      it('writes nothing when rendering a card throws', async () => {
        await commit([approval('R1')], { cursor: 'c1' });
        const failing = commitContext({
          render: (a, outcome) => {
            if (a.externalId === 'R3') throw new Error('template broke');
            return ctx.render(a, outcome);
          },
        });

        await expectRejection(commit([approval('R2'), approval('R3')], { cursor: 'c2', audit: [{ actor: 'ops', action: 'x' }] }, failing));
        expect(await queue.get(approval('R2').key)).to.equal(undefined);
        expect(await queue.getCursor(SOURCE)).to.equal('c1');
        expect(await owed()).to.have.length(1);
        expect(await queue.listAudit()).to.deep.equal([]);
      });

      it('rejects the whole batch when a sourceUpdatedAt is not a time', async () => {
        await expectRejection(commit([approval('R1'), approval('R2', { sourceUpdatedAt: 'yesterday' })], { cursor: 'c1' }));

        expect(await queue.get(approval('R1').key)).to.equal(undefined);
        expect(await queue.getCursor(SOURCE)).to.equal(undefined);
        expect(await owed()).to.deep.equal([]);
      });
    });

    describe('completion', () => {
      it('removes an approval that left pending and owes close with its status as outcome', async () => {
        const a = approval('R1');
        await commit([a]);
        const result = await commit([{ ...a, status: 'approved', sourceUpdatedAt: ago(HOUR_MS) }]);

        expect(result).to.include({ completed: 1, outbox: 1 });
        expect(await queue.get(a.key)).to.equal(undefined);
        const close = (await owed())[1];
        expect(close).to.include({ action: 'close', outcome: 'approved', revision: 2 });
        expect(close?.card).to.include({ outcome: 'approved', revision: 2 });
      });

      it('removes an approval named in completions and owes close with that status', async () => {
        const a = approval('R1');
        await commit([a]);
        const result = await commit([], { completions: [{ key: a.key, status: 'recalled' }] });

        expect(result).to.include({ completed: 1 });
        expect(await queue.get(a.key)).to.equal(undefined);
        expect(summary(await owed())).to.deep.equal(['notify r1 grace console', 'close(recalled) r2 grace console']);
      });

      it('notifies again when a completed approval comes back to pending (sent back, then resubmitted)', async () => {
        const a = approval('R1');
        await commit([a]);
        await commit([{ ...a, status: 'sent_back', sourceUpdatedAt: ago(2 * HOUR_MS) }]);
        const result = await commit([{ ...a, sourceUpdatedAt: ago(HOUR_MS) }]);

        expect(result).to.include({ inserted: 1, outbox: 1 });
        expect(summary(await owed())).to.deep.equal(['notify r1 grace console', 'close(sent_back) r2 grace console', 'notify r1 grace console']);
        expect(await forApprover('grace@acme.test')).to.deep.equal([a.key]);
      });

      it('queues nothing and owes nothing for an approval already complete when first seen', async () => {
        const result = await commit([approval('R1', { status: 'approved' })], { completions: [{ key: approval('R2').key, status: 'recalled' }] });

        expect(result).to.include({ inserted: 0, completed: 0, ignored: 2, outbox: 0 });
        expect(await queue.keys(SOURCE)).to.deep.equal([]);
        expect(await owed()).to.deep.equal([]);
      });
    });

    describe('retention', () => {
      it('never queues a pending approval already older than notBefore', async () => {
        const result = await commit([approval('R1', { sourceUpdatedAt: ago(31 * DAY_MS) })]);

        expect(result).to.include({ inserted: 0, ignored: 1, outbox: 0 });
        expect(await queue.keys(SOURCE)).to.deep.equal([]);
        expect(await owed()).to.deep.equal([]);
      });

      it('hides rows older than notBefore from listForApprover, list and count before any purge', async () => {
        const fresh = approval('R1', { sourceUpdatedAt: ago(DAY_MS) });
        const old = approval('R2', { sourceUpdatedAt: ago(10 * DAY_MS) });
        await commit([fresh, old]);
        const since = new Date(NOW.getTime() - 5 * DAY_MS);

        expect(await forApprover('grace@acme.test', { notBefore: since })).to.deep.equal([fresh.key]);
        expect((await queue.list({ notBefore: since })).map((r) => r.key)).to.deep.equal([fresh.key]);
        expect(await queue.count({ notBefore: since })).to.equal(1);
      });

      it('still names expired rows in keys and returns them from get', async () => {
        const old = approval('R2', { sourceUpdatedAt: ago(10 * DAY_MS) });
        await commit([old]);
        await queue.list({ notBefore: NOW });

        expect(await queue.keys(SOURCE)).to.deep.equal([{ key: old.key, externalId: 'R2', sourceUpdatedAt: old.sourceUpdatedAt }]);
        expect(await queue.get(old.key)).to.include({ key: old.key });
      });

      it('purges rows older than notBefore and owes close(expired) for them', async () => {
        const fresh = approval('R1', { sourceUpdatedAt: ago(DAY_MS) });
        const old = approval('R2', { sourceUpdatedAt: ago(10 * DAY_MS) });
        await commit([fresh, old]);
        const in25Days = commitContext({ now: later(25 * DAY_MS) });

        expect(await queue.purgeExpired(in25Days)).to.deep.equal([old.key]);
        expect(await queue.get(old.key)).to.equal(undefined);
        expect(await queue.get(fresh.key)).to.include({ revision: 1 });
        const close = (await owed()).find((e) => e.action === 'close');
        expect(close).to.include({ approvalKey: old.key, outcome: 'expired', revision: 2, createdAt: later(25 * DAY_MS).toISOString() });
        expect(await queue.purgeExpired(in25Days)).to.deep.equal([]);
      });
    });

    describe('reads', () => {
      it("never returns another person's approval from listForApprover", async () => {
        await commit([
          approval('R1', { approvers: [approver('grace')] }),
          approval('R2', { approvers: [approver('alan')] }),
          approval('R3', { approvers: [approver('alan'), approver('grace')] }),
        ]);

        expect(await forApprover('grace@acme.test')).to.have.members([approval('R1').key, approval('R3').key]);
        expect(await forApprover('alan@acme.test')).to.have.members([approval('R2').key, approval('R3').key]);
        expect(await forApprover('mallory@acme.test')).to.deep.equal([]);
      });

      it('finds nothing for a blank e-mail, even when an approver has none', async () => {
        await commit([approval('R1', { approvers: [unresolved('u42')] })]);

        expect(await forApprover('')).to.deep.equal([]);
        expect(await forApprover('  ')).to.deep.equal([]);
      });

      it('matches the approver e-mail case-insensitively', async () => {
        await commit([approval('R1', { approvers: [{ sourceUserId: 'grace', email: 'Grace.Hopper@Acme.TEST' }] })]);

        expect(await forApprover('grace.hopper@acme.test')).to.deep.equal([approval('R1').key]);
        expect(await forApprover('GRACE.HOPPER@ACME.test')).to.deep.equal([approval('R1').key]);
      });

      it('keeps look-alike e-mails apart: the Kelvin sign is not a k, so \u212Aate@example.com is not Kate', async () => {
        await commit([
          approval('R1', { approvers: [{ sourceUserId: 'kate', email: 'kate@example.com' }] }),
          approval('R2', { approvers: [{ sourceUserId: 'kelvin', email: '\u212Aate@example.com' }] }),
          approval('R3', { approvers: [unresolved('fullwidth')] }),
        ]);
        await queue.resolveApprover(SOURCE, { sourceUserId: 'fullwidth', email: '\uFF4Bate@example.com' });

        expect(await forApprover('kate@example.com')).to.deep.equal([approval('R1').key]);
        expect(await forApprover('KATE@Example.com')).to.deep.equal([approval('R1').key]);
        expect(await forApprover('\u212Aate@example.com')).to.deep.equal([approval('R2').key]);
        expect(await forApprover('\uFF4Bate@example.com')).to.deep.equal([approval('R3').key]);
      });

      it('filters listForApprover by source', async () => {
        await commit([approval('R1')]);
        const other = approval('R1', { source: OTHER_SOURCE });
        await queue.commit({ source: OTHER_SOURCE, approvals: [other] }, ctx);

        expect(await forApprover('grace@acme.test')).to.have.members([approval('R1').key, other.key]);
        expect(await forApprover('grace@acme.test', { source: OTHER_SOURCE })).to.deep.equal([other.key]);
      });

      it('returns the newest approvals first and honours the limit', async () => {
        await commit([
          approval('R1', { sourceUpdatedAt: ago(3 * HOUR_MS) }),
          approval('R2', { sourceUpdatedAt: ago(1 * HOUR_MS) }),
          approval('R3', { sourceUpdatedAt: ago(2 * HOUR_MS) }),
        ]);

        expect(await forApprover('grace@acme.test')).to.deep.equal(['R2', 'R3', 'R1'].map((id) => approval(id).key));
        expect(await forApprover('grace@acme.test', { limit: 2 })).to.deep.equal(['R2', 'R3'].map((id) => approval(id).key));
      });

      it('lists and counts every source newest first, or one source', async () => {
        await commit([approval('R1', { sourceUpdatedAt: ago(3 * HOUR_MS) })]);
        const other = approval('G1', { source: OTHER_SOURCE, sourceUpdatedAt: ago(HOUR_MS) });
        await queue.commit({ source: OTHER_SOURCE, approvals: [other] }, ctx);

        expect((await queue.list({ notBefore })).map((r) => r.key)).to.deep.equal([other.key, approval('R1').key]);
        expect((await queue.list({ notBefore, source: SOURCE })).map((r) => r.key)).to.deep.equal([approval('R1').key]);
        expect((await queue.list({ notBefore, limit: 1 })).map((r) => r.key)).to.deep.equal([other.key]);
        expect(await queue.count({ notBefore })).to.equal(2);
        expect(await queue.count({ notBefore, source: OTHER_SOURCE })).to.equal(1);
      });

      it('returns copies that a caller cannot use to change the queue', async () => {
        await commit([approval('R1')]);
        const row = await queue.get(approval('R1').key);
        (row as { title: string }).title = 'changed by a caller';

        expect(await queue.get(approval('R1').key)).to.include({ title: 'Report R1' });
      });
    });

    describe('unresolved approvers', () => {
      const withUnresolved = approval('R1', { approvers: [approver('grace'), unresolved('u42')] });

      it('parks the entries of an approver without an e-mail and names them in parkedApprovers', async () => {
        await commit([withUnresolved]);

        expect((await owed()).map((e) => [e.approver.sourceUserId, e.state])).to.deep.equal([
          ['grace', 'pending'],
          ['u42', 'parked'],
        ]);
        expect(await queue.parkedApprovers(SOURCE)).to.deep.equal([{ sourceUserId: 'u42', name: 'U42' }]);
        expect(await queue.parkedApprovers(OTHER_SOURCE)).to.deep.equal([]);
        expect((await queue.claimOutbox(10, NOW, MINUTE_MS)).map((e) => e.approver.sourceUserId)).to.deep.equal(['grace']);
      });

      it('releases parked entries once the approver is resolved, and finds the approval by the new e-mail', async () => {
        await commit([withUnresolved]);
        const released = await queue.resolveApprover(SOURCE, { sourceUserId: 'u42', email: 'Alan.Turing@Acme.test' });

        expect(released).to.equal(1);
        expect(await queue.parkedApprovers(SOURCE)).to.deep.equal([]);
        const entry = (await queue.listOutbox('pending')).find((e) => e.approver.sourceUserId === 'u42');
        expect(entry?.approver).to.include({ email: 'alan.turing@acme.test' });
        expect(await forApprover('alan.turing@acme.test')).to.deep.equal([withUnresolved.key]);
        expect((await queue.get(withUnresolved.key))?.approvers.find((a) => a.sourceUserId === 'u42')).to.include({ email: 'alan.turing@acme.test' });
        const [asGraceSeesIt] = await queue.listForApprover('grace@acme.test', { notBefore });
        expect(
          asGraceSeesIt?.approvers.find((a) => a.sourceUserId === 'u42'),
          'the other approver reads the same approval',
        ).to.include({ email: 'alan.turing@acme.test' });
      });

      it('resolves an approver only within the named source', async () => {
        await commit([withUnresolved]);
        const other = approval('G1', { source: OTHER_SOURCE, approvers: [unresolved('u42')] });
        await queue.commit({ source: OTHER_SOURCE, approvals: [other] }, ctx);
        await queue.resolveApprover(SOURCE, { sourceUserId: 'u42', email: 'alan@acme.test' });

        expect(await queue.parkedApprovers(OTHER_SOURCE)).to.deep.equal([{ sourceUserId: 'u42', name: 'U42' }]);
        expect(await forApprover('alan@acme.test')).to.deep.equal([withUnresolved.key]);
      });

      it('keeps a resolved e-mail when a later version names the approver without one', async () => {
        await commit([withUnresolved]);
        await queue.resolveApprover(SOURCE, { sourceUserId: 'u42', email: 'alan@acme.test' });
        await commit([{ ...withUnresolved, title: 'Report R1 (corrected)', sourceUpdatedAt: ago(HOUR_MS) }]);

        const update = (await owed()).find((e) => e.action === 'update' && e.approver.sourceUserId === 'u42');
        expect(update).to.include({ state: 'pending' });
        expect(update?.approver).to.include({ email: 'alan@acme.test' });
        expect(await forApprover('alan@acme.test')).to.deep.equal([withUnresolved.key]);
      });
    });

    describe('outbox', () => {
      const three = () => commit([approval('R1'), approval('R2'), approval('R3')]);

      it('claims the oldest entries first, up to the limit, and marks them inflight', async () => {
        await three();
        const first = await queue.claimOutbox(2, NOW, MINUTE_MS);
        const rest = await queue.claimOutbox(5, NOW, MINUTE_MS);

        expect(first.map((e) => e.approvalKey)).to.deep.equal([approval('R1').key, approval('R2').key]);
        expect(first.every((e) => e.state === 'inflight' && e.attempts === 0)).to.equal(true);
        expect(rest.map((e) => e.approvalKey)).to.deep.equal([approval('R3').key]);
        expect(await queue.listOutbox('inflight')).to.have.length(3);
      });

      it('never hands out an entry twice while its lease holds', async () => {
        await three();
        await queue.claimOutbox(10, NOW, MINUTE_MS);

        expect(await queue.claimOutbox(10, later(MINUTE_MS - 1), MINUTE_MS)).to.deep.equal([]);
      });

      it('offers an entry again once its lease has expired, reporting the earlier claim', async () => {
        await commit([approval('R1')]);
        const [first] = await queue.claimOutbox(1, NOW, MINUTE_MS);
        const [again] = await queue.claimOutbox(1, later(MINUTE_MS), MINUTE_MS);

        expect(first).to.include({ attempts: 0 });
        expect(again).to.include({ id: first?.id, attempts: 1, state: 'inflight' });
      });

      it('gives concurrent claimers disjoint entries', async () => {
        await commit([approval('R1'), approval('R2')], {}, commitContext({ channels: ['console', 'slack'] }));
        const [a, b] = await Promise.all([queue.claimOutbox(2, NOW, MINUTE_MS), queue.claimOutbox(2, NOW, MINUTE_MS)]);
        const ids = [...(a ?? []), ...(b ?? [])].map((e) => e.id);

        expect(ids).to.have.length(4);
        expect(new Set(ids).size).to.equal(4);
      });

      it('stores the receipt of a delivered entry and never claims it again', async () => {
        await commit([approval('R1')]);
        const [entry] = await queue.claimOutbox(1, NOW, MINUTE_MS);
        await queue.settleOutbox(entry!.id, { state: 'delivered', receipt: { ref: 'C123/1717329600.000100' } }, NOW);

        expect(await queue.receipt(approval('R1').key, 'grace', 'console')).to.deep.equal({ ref: 'C123/1717329600.000100' });
        expect(await queue.receipt(approval('R1').key, 'grace', 'slack')).to.equal(undefined);
        expect(await queue.listOutbox('delivered')).to.have.length(1);
        expect(await queue.claimOutbox(1, later(DAY_MS), MINUTE_MS)).to.deep.equal([]);
      });

      it('claims messages to one person about one approval on one channel in order, each once the one before is settled', async () => {
        const a = approval('R1');
        await commit([a]);
        await commit([{ ...a, title: 'corrected', sourceUpdatedAt: ago(HOUR_MS) }]);
        const [notify, ...rest] = await queue.claimOutbox(10, NOW, MINUTE_MS);
        expect(notify).to.include({ action: 'notify' });
        expect(rest, 'the update waits for the notify').to.deep.equal([]);
        expect(await queue.claimOutbox(10, later(2 * MINUTE_MS), MINUTE_MS), 'even when the notify claim expired, it comes first')
          .to.have.length(1)
          .and.to.have.nested.property('[0].id', notify!.id);
        await queue.settleOutbox(notify!.id, { state: 'delivered', receipt: { ref: 'ref-r1' } }, NOW);
        const [update] = await queue.claimOutbox(10, NOW, MINUTE_MS);
        expect(update).to.include({ action: 'update' });
        await queue.settleOutbox(update!.id, { state: 'delivered', receipt: { ref: 'ref-r2' } }, NOW);

        expect(await queue.receipt(a.key, 'grace', 'console')).to.deep.equal({ ref: 'ref-r2' });
      });

      it('holds a close back while the notify it closes is being retried, so it is never dropped for want of a receipt', async () => {
        const a = approval('R1');
        await commit([a]);
        const [notify] = await queue.claimOutbox(1, NOW, MINUTE_MS);
        await queue.settleOutbox(notify!.id, { state: 'retry', error: 'HTTP 429', nextAttemptAt: later(HOUR_MS) }, NOW);
        await commit([], { completions: [{ key: a.key, status: 'approved' }] });

        expect(await queue.claimOutbox(10, NOW, MINUTE_MS)).to.deep.equal([]);
        const [again] = await queue.claimOutbox(10, later(HOUR_MS), MINUTE_MS);
        expect(again).to.include({ id: notify!.id, action: 'notify' });
        await queue.settleOutbox(again!.id, { state: 'delivered', receipt: { ref: 'ref-r1' } }, later(HOUR_MS));
        const [close] = await queue.claimOutbox(10, later(HOUR_MS), MINUTE_MS);
        expect(close).to.include({ action: 'close' });
      });

      it('feeds what was delivered on one channel after a time, in the order it settled', async () => {
        await commit([approval('R1'), approval('R2'), approval('R3')], {}, commitContext({ channels: ['console', 'web'] }));
        const web = (await queue.claimOutbox(10, NOW, MINUTE_MS)).filter((e) => e.channel === 'web');
        const [r1, r2, r3] = web;
        await queue.settleOutbox(r2!.id, { state: 'delivered', receipt: { ref: 'w2' } }, later(1_000));
        await queue.settleOutbox(r1!.id, { state: 'retry', error: 'HTTP 503', nextAttemptAt: later(MINUTE_MS) }, later(1_000));
        await queue.settleOutbox(r3!.id, { state: 'dead', error: 'gone' }, later(1_000));

        const first = await queue.deliveredSince('web', NOW, 10);
        expect(first.map((e) => [e.approvalKey, e.settledAt])).to.deep.equal([[approval('R2').key, later(1_000).toISOString()]]);
        expect(await queue.deliveredSince('console', NOW, 10), 'nothing delivered on console yet').to.deep.equal([]);

        const again = (await queue.claimOutbox(10, later(MINUTE_MS), MINUTE_MS)).find((e) => e.channel === 'web');
        expect(again).to.include({ id: r1!.id });
        await queue.settleOutbox(again!.id, { state: 'delivered', receipt: { ref: 'w1' } }, later(2 * MINUTE_MS));
        expect(
          (await queue.deliveredSince('web', later(1_000), 10)).map((e) => e.approvalKey),
          'only what settled after',
        ).to.deep.equal([approval('R1').key]);
        expect(
          (await queue.deliveredSince('web', NOW, 1)).map((e) => e.approvalKey),
          'oldest first, up to the limit',
        ).to.deep.equal([approval('R2').key]);
        expect((await queue.deliveredSince('web', NOW, 10)).map((e) => e.approvalKey)).to.deep.equal([approval('R2').key, approval('R1').key]);
      });

      it('purges settled entries older than the cut-off, and a receipt only once its card is final', async () => {
        const a = approval('R1');
        const b = approval('R2');
        await commit([a, b]);
        for (const e of await queue.claimOutbox(10, NOW, MINUTE_MS)) {
          await queue.settleOutbox(e.id, { state: 'delivered', receipt: { ref: `msg-${e.approvalKey}` } }, NOW);
        }
        await commit([], { completions: [{ key: a.key, status: 'approved' }] });
        const [close] = await queue.claimOutbox(10, later(HOUR_MS), MINUTE_MS);
        expect(close).to.include({ action: 'close', approvalKey: a.key });

        expect(await queue.purgeOutbox(later(DAY_MS), 100), 'nothing settled before the close is delivered').to.deep.equal({ entries: 2, receipts: 0 });
        expect(await queue.receipt(a.key, 'grace', 'console'), 'the close still needs the receipt').to.deep.equal({ ref: `msg-${a.key}` });
        await queue.settleOutbox(close!.id, { state: 'delivered', receipt: { ref: `msg-${a.key}` } }, later(2 * HOUR_MS));

        expect(await queue.purgeOutbox(later(HOUR_MS), 100), 'the close settled after the cut-off').to.deep.equal({ entries: 0, receipts: 0 });
        expect(await queue.purgeOutbox(later(DAY_MS), 100)).to.deep.equal({ entries: 1, receipts: 1 });
        expect(await queue.receipt(a.key, 'grace', 'console'), 'approved, closed: the card is final').to.equal(undefined);
        expect(await queue.receipt(b.key, 'grace', 'console'), 'still queued: its card may still change').to.deep.equal({ ref: `msg-${b.key}` });
        expect(await queue.listOutbox('delivered')).to.deep.equal([]);
      });

      it('purges at most the limit, oldest first, and never an entry still owed', async () => {
        await commit([approval('R1'), approval('R2'), approval('R3')]);
        const [first, second, third] = await queue.claimOutbox(10, NOW, MINUTE_MS);
        await queue.settleOutbox(second!.id, { state: 'dead', error: 'gone' }, later(1_000));
        await queue.settleOutbox(first!.id, { state: 'delivered', receipt: { ref: 'm1' } }, later(2_000));
        await queue.settleOutbox(third!.id, { state: 'retry', error: 'HTTP 503', nextAttemptAt: later(MINUTE_MS) }, later(3_000));

        expect(await queue.purgeOutbox(later(DAY_MS), 1)).to.deep.equal({ entries: 1, receipts: 0 });
        expect(await queue.listOutbox('dead'), 'the oldest went first').to.deep.equal([]);
        expect(await queue.purgeOutbox(later(DAY_MS), 10)).to.deep.equal({ entries: 1, receipts: 0 });
        expect((await queue.listOutbox('pending')).map((e) => e.id)).to.deep.equal([third!.id]);
      });

      it('keeps other people and channels independent of a message held back', async () => {
        await commit([approval('R1'), approval('R2')], {}, commitContext({ channels: ['console', 'slack'] }));
        const claimed = await queue.claimOutbox(10, NOW, MINUTE_MS);
        expect(claimed).to.have.length(4);
      });

      it('keeps the receipt of a message sent after the approval was queued again', async () => {
        const a = approval('R1');
        await commit([a]);
        const [first] = await queue.claimOutbox(1, NOW, MINUTE_MS);
        await queue.settleOutbox(first!.id, { state: 'delivered', receipt: { ref: 'old-message' } }, NOW);
        await commit([], { completions: [{ key: a.key, status: 'sent_back' }] });
        await commit([{ ...a, title: 'resubmitted', sourceUpdatedAt: ago(MINUTE_MS) }]);
        const [close, ...held] = await queue.claimOutbox(10, NOW, MINUTE_MS);
        expect(close).to.include({ action: 'close' });
        expect(held, 'the new notify waits for the close of the old card').to.deep.equal([]);
        await queue.settleOutbox(close!.id, { state: 'delivered', receipt: { ref: 'old-message' } }, NOW);
        const [renotify] = await queue.claimOutbox(10, NOW, MINUTE_MS);
        expect(renotify).to.include({ action: 'notify', revision: 1 });
        await queue.settleOutbox(renotify!.id, { state: 'delivered', receipt: { ref: 'new-message' } }, NOW);

        expect(await queue.receipt(a.key, 'grace', 'console')).to.deep.equal({ ref: 'new-message' });
      });

      it('counts outbox entries by unsettled state', async () => {
        await commit([approval('R1'), approval('R2'), approval('R3', { approvers: [unresolved('nobody')] })]);
        const [first] = await queue.claimOutbox(1, NOW, MINUTE_MS);
        await queue.settleOutbox(first!.id, { state: 'dead', error: 'gone' }, NOW);
        await queue.claimOutbox(1, NOW, MINUTE_MS);

        expect(await queue.outboxCounts()).to.deep.equal({ pending: 0, parked: 1, inflight: 1, dead: 1 });
      });

      it('retries an entry only once its nextAttemptAt has come', async () => {
        await commit([approval('R1')]);
        const [entry] = await queue.claimOutbox(1, NOW, MINUTE_MS);
        await queue.settleOutbox(entry!.id, { state: 'retry', error: 'HTTP 503', nextAttemptAt: later(5 * MINUTE_MS) }, NOW);

        expect(await queue.listOutbox('pending'))
          .to.have.length(1)
          .and.to.have.nested.property('[0].lastError', 'HTTP 503');
        expect(await queue.claimOutbox(1, later(5 * MINUTE_MS - 1), MINUTE_MS)).to.deep.equal([]);
        const [retried] = await queue.claimOutbox(1, later(5 * MINUTE_MS), MINUTE_MS);
        expect(retried).to.include({ id: entry!.id, attempts: 1 });
      });

      it('lists dead entries with their error and never claims them again', async () => {
        await commit([approval('R1')]);
        const [entry] = await queue.claimOutbox(1, NOW, MINUTE_MS);
        await queue.settleOutbox(entry!.id, { state: 'dead', error: 'channel_not_found' }, NOW);

        expect(await queue.listOutbox('dead'))
          .to.have.length(1)
          .and.to.have.nested.property('[0].lastError', 'channel_not_found');
        expect(await queue.claimOutbox(1, later(DAY_MS), MINUTE_MS)).to.deep.equal([]);
      });

      it('never claims a superseded entry again', async () => {
        await commit([approval('R1')]);
        const [entry] = await queue.claimOutbox(1, NOW, MINUTE_MS);
        await queue.settleOutbox(entry!.id, { state: 'superseded' }, NOW);

        expect(await queue.listOutbox('superseded')).to.have.length(1);
        expect(await queue.claimOutbox(1, later(DAY_MS), MINUTE_MS)).to.deep.equal([]);
      });

      it('returns every inflight entry to pending on releaseInflight, keeping its attempts', async () => {
        await three();
        await queue.claimOutbox(2, NOW, MINUTE_MS);

        expect(await queue.releaseInflight()).to.equal(2);
        expect(await queue.listOutbox('inflight')).to.deep.equal([]);
        const claimed = await queue.claimOutbox(10, NOW, MINUTE_MS);
        expect(claimed.map((e) => e.attempts)).to.deep.equal([1, 1, 0]);
      });

      it('refuses to settle an entry it does not hold', async () => {
        await expectRejection(queue.settleOutbox(4242, { state: 'superseded' }, NOW));
      });

      it('lists entries of one state oldest first, up to the limit', async () => {
        await three();

        expect((await queue.listOutbox('pending', 2)).map((e) => e.approvalKey)).to.deep.equal([approval('R1').key, approval('R2').key]);
      });
    });

    describe('reminders', () => {
      /** A day after the notify, three at most; quiet hours off, so only the queue decides. */
      const settings: ReminderSettings = { afterHours: 24, maxReminders: 3, quietHours: { start: '00:00', end: '00:00' }, defaultTimeZone: 'UTC' };
      const digest: ReminderSettings = { ...settings, digest: { at: '09:00' } };
      const due = (at: Date, extra: { limit?: number; after?: { lastAt: string; approvalKey: string; approverId: string } } = {}) =>
        queue.dueReminders({ lastBefore: new Date(at.getTime() - 24 * HOUR_MS), maxReminders: 3, notBefore: new Date(at.getTime() - 30 * DAY_MS), ...extra });
      const who = (candidates: readonly ReminderCandidate[]) => candidates.map((c) => `${c.approval.externalId} ${c.approver.sourceUserId} sent=${c.sent}`);
      /** Reads what is due at `at`, plans it as the scheduler does and writes it; returns the entries written. */
      const remind = async (at: Date, with_: ReminderSettings = settings, channels = ['console']) =>
        queue.scheduleReminders(planReminders(await due(at), with_, at, { channels, render: ctx.render }), at);
      const reminders = async () => (await owed()).filter((e) => e.action === 'remind' || e.action === 'digest');

      it('finds an approver due a reminder only once afterHours have passed since the notify', async () => {
        await commit([approval('R1')]);

        expect(await due(later(24 * HOUR_MS - 1))).to.deep.equal([]);
        const [candidate, ...rest] = await due(later(24 * HOUR_MS));
        expect(rest).to.deep.equal([]);
        expect(candidate).to.deep.include({ sent: 0, lastAt: NOW.toISOString() });
        expect(candidate?.approval).to.include({ key: approval('R1').key, revision: 1 });
        expect(candidate?.approver).to.deep.equal(approver('grace'));
      });

      it("owes one remind per channel, keyed by its number, and restarts the approver's clock", async () => {
        await commit([approval('R1')], {}, commitContext({ channels: ['console', 'slack'] }));
        const generation = (await queue.get(approval('R1').key))!.generation;

        expect(await remind(later(24 * HOUR_MS), settings, ['console', 'slack'])).to.equal(2);
        const owedNow = await reminders();
        expect(summary(owedNow)).to.deep.equal(['remind r1 grace console', 'remind r1 grace slack']);
        expect(owedNow[0]).to.include({
          idempotencyKey: `${approval('R1').key}#${generation}.1:grace:console:remind-1`,
          createdAt: later(24 * HOUR_MS).toISOString(),
        });
        expect(owedNow[0]?.card).to.include({ approvalKey: approval('R1').key, revision: 1 });
        expect(await due(later(47 * HOUR_MS))).to.deep.equal([]);
        expect(who(await due(later(48 * HOUR_MS)))).to.deep.equal(['R1 grace sent=1']);
      });

      it('spends at most maxReminders reminders on an approval version', async () => {
        await commit([approval('R1')]);
        for (let day = 1; day <= 5; day++) await remind(later(day * 24 * HOUR_MS));

        expect((await reminders()).map((e) => e.idempotencyKey.split(':').at(-1))).to.deep.equal(['remind-1', 'remind-2', 'remind-3']);
        expect(await due(later(10 * 24 * HOUR_MS))).to.deep.equal([]);
      });

      it('owes nothing new when the same reminders are scheduled twice', async () => {
        await commit([approval('R1'), approval('R2')]);
        const at = later(24 * HOUR_MS);
        const drafts = planReminders(await due(at), settings, at, { channels: ['console'], render: ctx.render });

        expect(await queue.scheduleReminders(drafts, at)).to.equal(2);
        expect(await queue.scheduleReminders(drafts, at)).to.equal(0);
        expect(await remind(at)).to.equal(0);
        expect(await reminders()).to.have.length(2);
        expect(who(await due(later(48 * HOUR_MS)))).to.deep.equal(['R1 grace sent=1', 'R2 grace sent=1']);
      });

      it('finds no reminder due for an approval once it completes', async () => {
        await commit([approval('R1')]);
        await commit([], { completions: [{ key: approval('R1').key, status: 'approved' }] });

        expect(await due(later(24 * HOUR_MS))).to.deep.equal([]);
      });

      it('spends no reminder on an approval that completed after the reminder was read', async () => {
        await commit([approval('R1')]);
        const at = later(24 * HOUR_MS);
        const drafts = planReminders(await due(at), settings, at, { channels: ['console'], render: ctx.render });
        await commit([], { completions: [{ key: approval('R1').key, status: 'approved' }] });

        expect(await queue.scheduleReminders(drafts, at)).to.equal(0);
        expect(await reminders()).to.deep.equal([]);
      });

      it('reminds no approver the approval was reassigned away from, and counts the new one from their notify', async () => {
        const a = approval('R1');
        await commit([a]);
        await commit([{ ...a, approvers: [approver('alan')], sourceUpdatedAt: ago(HOUR_MS) }], {}, commitContext({ now: later(10 * HOUR_MS) }));

        expect(await due(later(24 * HOUR_MS))).to.deep.equal([]);
        expect(who(await due(later(34 * HOUR_MS)))).to.deep.equal(['R1 alan sent=0']);
      });

      it("records an approver's time zone without touching the card, and keeps it when a later version comes without one", async () => {
        const a = approval('R1');
        await commit([a]);
        const tokyo = { ...approver('grace'), timeZone: 'Asia/Tokyo' };
        const learned = await commit([{ ...a, approvers: [tokyo] }]);
        await commit([{ ...a, sourceUpdatedAt: ago(HOUR_MS) }]);

        expect(learned).to.include({ unchanged: 1, outbox: 0 });
        expect((await queue.get(a.key))?.approvers).to.deep.equal([tokyo]);
        expect((await due(later(24 * HOUR_MS)))[0]?.approver).to.deep.equal(tokyo);
        expect(await owed()).to.have.length(1);
      });

      it('restarts the count when the approval is queued again under a new generation', async () => {
        const a = approval('R1');
        await commit([a]);
        await remind(later(24 * HOUR_MS));
        await commit([{ ...a, status: 'sent_back', sourceUpdatedAt: ago(2 * HOUR_MS) }], {}, commitContext({ now: later(25 * HOUR_MS) }));
        await commit([{ ...a, sourceUpdatedAt: ago(HOUR_MS) }], {}, commitContext({ now: later(26 * HOUR_MS) }));

        const [candidate] = await due(later(50 * HOUR_MS));
        expect(candidate).to.deep.include({ sent: 0, lastAt: later(26 * HOUR_MS).toISOString() });
        expect(candidate?.approval.generation).to.equal((await queue.get(a.key))!.generation);
      });

      it('finds no reminder due for an approver without an e-mail, nor for an expired approval', async () => {
        await commit([approval('R1', { approvers: [unresolved('u42')] }), approval('R2', { sourceUpdatedAt: ago(20 * DAY_MS) })]);

        expect(await due(later(11 * DAY_MS))).to.deep.equal([]);
        expect(who(await due(later(24 * HOUR_MS)))).to.deep.equal(['R2 grace sent=0']);
      });

      it('pages due reminders in (lastAt, approval key, approver id) order', async () => {
        await commit([approval('R1'), approval('R2', { approvers: [approver('grace'), approver('alan')] })]);
        await commit([approval('R3')], {}, commitContext({ now: later(HOUR_MS) }));
        const at = later(25 * HOUR_MS);
        const first = await due(at, { limit: 2 });
        const last = first.at(-1)!;
        const rest = await due(at, { after: { lastAt: last.lastAt, approvalKey: last.approval.key, approverId: last.approver.sourceUserId } });

        expect(who(first)).to.deep.equal(['R1 grace sent=0', 'R2 alan sent=0']);
        expect(who(rest)).to.deep.equal(['R2 grace sent=0', 'R3 grace sent=0']);
      });

      it('writes a digest listing its cards and spends one reminder on each approval in it', async () => {
        await commit([approval('R1'), approval('R2')]);

        expect(await remind(later(24 * HOUR_MS), digest)).to.equal(1);
        const [entry, ...rest] = await reminders();
        expect(rest).to.deep.equal([]);
        expect(entry).to.include({ action: 'digest', idempotencyKey: 'digest:grace@acme.test:console:2025-06-03', approvalKey: 'digest:grace@acme.test' });
        expect(entry?.digest?.map((c) => c.approvalKey)).to.deep.equal([approval('R1').key, approval('R2').key]);
        const [claimed] = await queue.claimOutbox(10, later(24 * HOUR_MS), MINUTE_MS).then((all) => all.filter((e) => e.action === 'digest'));
        expect(claimed?.digest).to.deep.equal(entry?.digest);
        expect(who(await due(later(48 * HOUR_MS)))).to.deep.equal(['R1 grace sent=1', 'R2 grace sent=1']);
      });

      it('writes at most one digest per person per local day', async () => {
        await commit([approval('R1')]);
        await commit([approval('R2')], {}, commitContext({ now: later(HOUR_MS) }));
        await remind(later(24 * HOUR_MS), digest);

        expect(await remind(later(25 * HOUR_MS), digest)).to.equal(0);
        expect((await reminders()).map((e) => e.idempotencyKey)).to.deep.equal(['digest:grace@acme.test:console:2025-06-03']);
        expect(who(await due(later(25 * HOUR_MS)))).to.deep.equal(['R2 grace sent=0']);
      });

      it("leaves the card's receipt and every other owed message in place when a reminder is delivered", async () => {
        const a = approval('R1');
        await commit([a]);
        const [notify] = await queue.claimOutbox(1, NOW, MINUTE_MS);
        await queue.settleOutbox(notify!.id, { state: 'delivered', receipt: { ref: 'card-1' } }, NOW);
        await commit([{ ...a, title: 'corrected', sourceUpdatedAt: ago(HOUR_MS) }]);
        const [update] = await queue.claimOutbox(1, NOW, MINUTE_MS);
        await queue.settleOutbox(update!.id, { state: 'retry', error: 'HTTP 503', nextAttemptAt: later(30 * HOUR_MS) }, NOW);
        await remind(later(24 * HOUR_MS));
        const [reminder] = await queue.claimOutbox(1, later(24 * HOUR_MS), MINUTE_MS);
        expect(reminder).to.include({ action: 'remind' });
        await queue.settleOutbox(reminder!.id, { state: 'delivered' }, later(24 * HOUR_MS));

        expect(await queue.receipt(a.key, 'grace', 'console')).to.deep.equal({ ref: 'card-1' });
        expect(summary(await owed())).to.deep.equal(['update r2 grace console']);
      });

      it('keeps reminder counts and clocks across a reopen', async function (this: { skip?: () => void } | undefined) {
        if (!subject.reopen) return void this?.skip?.();
        await commit([approval('R1')]);
        await remind(later(24 * HOUR_MS));

        queue = await subject.reopen!();

        expect(who(await due(later(48 * HOUR_MS)))).to.deep.equal(['R1 grace sent=1']);
        expect(await remind(later(24 * HOUR_MS))).to.equal(0);
      });
    });

    describe('triggers', () => {
      /** A push event about report `R-<id>`, received a minute before NOW. */
      const trigger = (id: string, extra: Partial<SourceTrigger> = {}): SourceTrigger => ({ id, externalId: `R-${id}`, receivedAt: ago(MINUTE_MS), ...extra });
      const add = (...triggers: SourceTrigger[]) => queue.addTriggers(SOURCE, triggers);
      const claim = (at: Date = NOW, limit = 100, source = SOURCE) => queue.claimTriggers(source, limit, at, MINUTE_MS);
      const ids = (claimed: readonly ClaimedTrigger[]) => claimed.map((t) => `${t.id}#${t.attempts}`);
      const seqs = (claimed: readonly ClaimedTrigger[], ...of: string[]) => claimed.filter((t) => of.includes(t.id)).map((t) => t.seq);

      it('stores triggers and claims them lowest seq first, up to the limit, with their data as stored', async () => {
        const data = { type: 'expense.report.submitted', modifiedAt: '2025-06-02T11:58:00.000Z', nested: { list: [1, 'two', null, true], empty: {} } };
        expect(await queue.addTriggers(SOURCE, []), 'an empty push').to.deep.equal({ added: 0, duplicates: 0 });
        expect(await add(trigger('e1'), trigger('e2', { data }), trigger('e3'))).to.deep.equal({ added: 3, duplicates: 0 });

        const first = await claim(NOW, 2);
        const rest = await claim(NOW, 2);

        expect(ids(first)).to.deep.equal(['e1#1', 'e2#1']);
        expect(ids(rest)).to.deep.equal(['e3#1']);
        const [e1, e2] = first;
        expect(e1).to.deep.equal({ id: 'e1', externalId: 'R-e1', receivedAt: ago(MINUTE_MS), seq: e1!.seq, attempts: 1 });
        expect(e2).to.deep.include({ id: 'e2', externalId: 'R-e2', data });
        expect(e1!.seq).to.be.lessThan(e2!.seq);
        expect(e2!.seq).to.be.lessThan(rest[0]!.seq);
        expect(await claim(NOW, 0), 'a limit of 0 claims nothing').to.deep.equal([]);
      });

      it('counts an id held pending, claimed or settled as a duplicate, within a call and across calls, and never hands it out twice', async () => {
        expect(await add(trigger('a'), trigger('b'), trigger('a', { externalId: 'R-other' }))).to.deep.equal({ added: 2, duplicates: 1 });
        expect(await add(trigger('b'), trigger('c')), 'b is pending').to.deep.equal({ added: 1, duplicates: 1 });
        const claimed = await claim();
        expect(ids(claimed)).to.deep.equal(['a#1', 'b#1', 'c#1']);
        expect(claimed[0]).to.include({ externalId: 'R-a' });
        expect(await add(trigger('c')), 'c is claimed').to.deep.equal({ added: 0, duplicates: 1 });
        await queue.settleTriggers(SOURCE, seqs(claimed, 'a'), NOW);
        expect(await add(trigger('a', { externalId: 'R-again' })), 'a is settled').to.deep.equal({ added: 0, duplicates: 1 });

        expect(ids(await claim(later(2 * MINUTE_MS))), 'once the leases ran out').to.deep.equal(['b#2', 'c#2']);
        expect(await queue.pendingTriggers(SOURCE)).to.include({ count: 2 });
      });

      it('never hands out a claimed trigger again while its lease holds, then again with attempts 2', async () => {
        await add(trigger('a'), trigger('b'));
        const [a] = await claim(NOW, 1);

        expect(ids(await claim(later(MINUTE_MS - 1))), 'a is leased; b is not').to.deep.equal(['b#1']);
        expect(await claim(later(MINUTE_MS - 1)), 'both leased').to.deep.equal([]);
        const [again] = await claim(later(MINUTE_MS), 1);
        expect(again).to.include({ id: 'a', seq: a!.seq, attempts: 2 });
      });

      it('gives concurrent claimers disjoint triggers', async () => {
        await add(...Array.from({ length: 10 }, (_, i) => trigger(`e${i}`)));
        const claims = await Promise.all([claim(NOW, 3), claim(NOW, 3), claim(NOW, 3), claim(NOW, 3)]);
        const all = claims.flat().map((t) => t.seq);

        expect(all).to.have.length(10);
        expect(new Set(all).size).to.equal(10);
      });

      it('takes settled triggers out of the pending set and its count, and never claims them again', async () => {
        await add(trigger('b', { receivedAt: ago(2 * HOUR_MS) }), trigger('a', { receivedAt: ago(3 * HOUR_MS) }), trigger('c', { receivedAt: ago(HOUR_MS) }));
        expect(await queue.pendingTriggers(SOURCE), 'the oldest received, not the first added').to.deep.equal({ count: 3, oldestReceivedAt: ago(3 * HOUR_MS) });
        const claimed = await claim();

        await queue.settleTriggers(SOURCE, [...seqs(claimed, 'a', 'c'), 999_999], NOW);
        await queue.settleTriggers(OTHER_SOURCE, seqs(claimed, 'b'), NOW);

        expect(await queue.pendingTriggers(SOURCE), 'another source cannot settle b').to.deep.equal({ count: 1, oldestReceivedAt: ago(2 * HOUR_MS) });
        expect(ids(await claim(later(DAY_MS)))).to.deep.equal(['b#2']);
        await queue.settleTriggers(SOURCE, seqs(claimed, 'b'), later(DAY_MS));
        await queue.settleTriggers(SOURCE, seqs(claimed, 'b'), later(2 * DAY_MS));
        expect(await queue.pendingTriggers(SOURCE)).to.deep.equal({ count: 0, oldestReceivedAt: undefined });
        expect(await claim(later(2 * DAY_MS))).to.deep.equal([]);
      });

      it('makes a released trigger claimable at its retry time and not before, still pending meanwhile', async () => {
        await add(trigger('a'), trigger('b'));
        const claimed = await claim();
        await queue.releaseTriggers(SOURCE, seqs(claimed, 'a'), later(HOUR_MS));
        await queue.releaseTriggers(SOURCE, seqs(claimed, 'b'), NOW);

        expect(ids(await claim(NOW)), 'b at once, before its lease would have run out').to.deep.equal(['b#2']);
        await queue.settleTriggers(SOURCE, seqs(claimed, 'b'), NOW);
        expect(await claim(later(HOUR_MS - 1)), 'a waits for its retry time, past its lease').to.deep.equal([]);
        expect(await queue.pendingTriggers(SOURCE)).to.include({ count: 1 });
        expect(ids(await claim(later(HOUR_MS)))).to.deep.equal(['a#2']);
      });

      it('forgets the ids settled before the cut, which are then accepted again, and keeps the younger and the pending ones', async () => {
        await add(trigger('a'), trigger('b'), trigger('c'));
        const claimed = await claim();
        await queue.settleTriggers(SOURCE, seqs(claimed, 'a'), NOW);
        await queue.settleTriggers(SOURCE, seqs(claimed, 'b'), later(HOUR_MS));

        expect(await queue.purgeTriggers(later(HOUR_MS)), 'b settled at the cut, not before it').to.equal(1);
        expect(await add(trigger('a', { externalId: 'R-a2' }), trigger('b'), trigger('c'))).to.deep.equal({ added: 1, duplicates: 2 });
        const again = await claim(later(2 * HOUR_MS));
        expect(ids(again), 'c (lease ran out), then the new a').to.deep.equal(['c#2', 'a#1']);
        expect(again[1]).to.include({ externalId: 'R-a2' });
        expect(again[1]!.seq).to.be.greaterThan(seqs(claimed, 'c')[0]!);

        expect(await queue.purgeTriggers(later(10 * DAY_MS)), 'b only: a and c are pending').to.equal(1);
        expect(await add(trigger('a'), trigger('b'), trigger('c'))).to.deep.equal({ added: 1, duplicates: 2 });
      });

      it('keeps the triggers of each source apart, an id included', async () => {
        await add(trigger('a'));
        expect(await queue.addTriggers(OTHER_SOURCE, [trigger('a', { externalId: 'G-a' })]), 'ids are per source').to.deep.equal({ added: 1, duplicates: 0 });

        const [other] = await claim(NOW, 10, OTHER_SOURCE);
        expect(other).to.include({ id: 'a', externalId: 'G-a', attempts: 1 });
        expect(await claim(NOW, 10, OTHER_SOURCE)).to.deep.equal([]);
        await queue.releaseTriggers(SOURCE, [other!.seq], NOW);
        expect(await claim(NOW, 10, OTHER_SOURCE), 'another source cannot release it').to.deep.equal([]);
        const [mine] = await claim();
        expect(mine).to.include({ id: 'a', externalId: 'R-a', attempts: 1 });
        await queue.settleTriggers(OTHER_SOURCE, [other!.seq], NOW);

        expect(await queue.pendingTriggers(SOURCE)).to.include({ count: 1 });
        expect(await queue.pendingTriggers(OTHER_SOURCE)).to.deep.equal({ count: 0, oldestReceivedAt: undefined });
        expect(await queue.purgeTriggers(later(HOUR_MS)), 'purge spans sources').to.equal(1);
        expect(await queue.addTriggers(OTHER_SOURCE, [trigger('a')])).to.deep.equal({ added: 1, duplicates: 0 });
        expect(await add(trigger('a'))).to.deep.equal({ added: 0, duplicates: 1 });
      });

      it('refuses to store triggers once closed, so the push is not acknowledged', async () => {
        await queue.close();
        await expectRejection(add(trigger('a')));
      });

      it('keeps pending triggers, their leases and the ids it remembers across a reopen', async function (this: { skip?: () => void } | undefined) {
        if (!subject.reopen) return void this?.skip?.();
        const data = { type: 'expense.report.submitted' };
        await add(trigger('a', { data }), trigger('b'), trigger('c'));
        const [a, , c] = await claim(NOW, 3);
        await queue.settleTriggers(SOURCE, [c!.seq], NOW);

        queue = await subject.reopen!();

        expect(await queue.pendingTriggers(SOURCE)).to.deep.equal({ count: 2, oldestReceivedAt: ago(MINUTE_MS) });
        expect(await add(trigger('a'), trigger('b'), trigger('c'))).to.deep.equal({ added: 0, duplicates: 3 });
        expect(await claim(later(MINUTE_MS - 1)), 'the leases held across the reopen').to.deep.equal([]);
        const again = await claim(later(MINUTE_MS));
        expect(ids(again)).to.deep.equal(['a#2', 'b#2']);
        expect(again[0]).to.deep.equal({ ...a, attempts: 2 });
      });
    });

    describe('source state and audit log', () => {
      it('round-trips and overwrites source state, per namespace', async () => {
        expect(await queue.getState('concur-acme', 'refreshToken')).to.equal(undefined);
        await queue.setState('concur-acme', 'refreshToken', 't1');
        await queue.setState('concur-acme', 'refreshToken', 't2');
        await queue.setState('concur-globex', 'refreshToken', 'g1');

        expect(await queue.getState('concur-acme', 'refreshToken')).to.equal('t2');
        expect(await queue.getState('concur-globex', 'refreshToken')).to.equal('g1');
      });

      it('lists the audit entries written with batches newest first, stamped with the commit time', async () => {
        const key = approval('R1').key;
        await commit([approval('R1')], { audit: [{ actor: 'ops@acme.test', action: 'queue.resync', key, detail: 'asked by Grace' }] });
        await commit([], { audit: [{ actor: 'system', action: 'audit.fix' }] }, commitContext({ now: later(HOUR_MS) }));

        const audit = await queue.listAudit();
        expect(audit.map(({ id: _, ...rest }) => rest)).to.deep.equal([
          { at: later(HOUR_MS).toISOString(), actor: 'system', action: 'audit.fix' },
          { at: NOW.toISOString(), actor: 'ops@acme.test', action: 'queue.resync', key, detail: 'asked by Grace' },
        ]);
        expect(audit[0]!.id).to.be.greaterThan(audit[1]!.id);
        expect(await queue.listAudit(1)).to.have.length(1);
      });
    });

    describe('properties', () => {
      it('changes nothing and owes nothing when any batch is committed a second time', async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(batchArbitrary(), { minLength: 1, maxLength: 6 }), async (batches) => {
            const run = await make();
            try {
              for (const b of batches) {
                await run.queue.commit(b, ctx);
                const before = await snapshot(run.queue);
                const again = await run.queue.commit(b, ctx);
                expect(again.outbox).to.equal(0);
                expect(await snapshot(run.queue)).to.deep.equal(before);
                for (const email of EMAILS) {
                  const expected = before.rows.filter((r) => r.approvers.some((a) => a.email === email)).map((r) => r.key);
                  expect((await run.queue.listForApprover(email, { notBefore })).map((r) => r.key)).to.have.members(expected);
                }
              }
            } finally {
              await run.cleanup();
            }
          }),
          { numRuns: 40 },
        );
      });
    });

    describe('durability', () => {
      it('keeps rows, cursor, outbox, receipts, state and audit across a reopen', async function (this: { skip?: () => void } | undefined) {
        if (!subject.reopen) return void this?.skip?.();
        await commit([approval('R1'), approval('R2')], { cursor: 'c1', audit: [{ actor: 'ops', action: 'queue.resync' }] });
        const [entry] = await queue.claimOutbox(1, NOW, MINUTE_MS);
        await queue.settleOutbox(entry!.id, { state: 'delivered', receipt: { ref: 'r-1' } }, NOW);
        await queue.setState('concur-acme', 'refreshToken', 't1');
        const before = await snapshot(queue);

        queue = await subject.reopen!();

        expect(await snapshot(queue)).to.deep.equal(before);
        expect(await queue.getCursor(SOURCE)).to.equal('c1');
        expect(await queue.receipt(approval('R1').key, 'grace', 'console')).to.deep.equal({ ref: 'r-1' });
        expect(await queue.getState('concur-acme', 'refreshToken')).to.equal('t1');
        expect(await queue.listAudit()).to.have.length(1);
        expect(await queue.claimOutbox(10, NOW, MINUTE_MS)).to.have.length(1);
      });
    });
  });
}

const EMAILS = ['grace@acme.test', 'alan@acme.test'];

/**
 * Batches over a small world (three reports, three approvers, one unresolved) so replays collide
 * often. Like a source's, a batch names each approval at most once: as a version or a completion.
 */
function batchArbitrary(): FastCheck.Arbitrary<ChangeBatch> {
  const version = fc.record({
    title: fc.constantFrom('A', 'B'),
    status: fc.constantFrom('pending', 'pending', 'approved', 'sent_back') as FastCheck.Arbitrary<Approval['status']>,
    approvers: fc.subarray(['grace', 'alan', 'u42'], { minLength: 1 }),
    daysAgo: fc.constantFrom(1, 2, 3, 40),
  });
  const change = fc.oneof(fc.constant('absent' as const), fc.constant('completed' as const), version);
  return fc
    .record({ changes: fc.tuple(change, change, change), cursor: fc.option(fc.constantFrom('c1', 'c2'), { nil: undefined }) })
    .map(({ changes, cursor }) => {
      const approvals: Approval[] = [];
      const completions: Completion[] = [];
      changes.forEach((c, i) => {
        const id = `R${i + 1}`;
        if (c === 'completed') completions.push({ key: approval(id).key, status: 'no_longer_required' });
        else if (c !== 'absent') {
          approvals.push(
            approval(id, {
              title: c.title,
              status: c.status,
              approvers: c.approvers.map((a) => (a === 'u42' ? unresolved(a) : approver(a))),
              sourceUpdatedAt: ago(c.daysAgo * DAY_MS),
            }),
          );
        }
      });
      return batch(approvals, { completions, cursor });
    });
}

async function snapshot(queue: ApprovalQueue) {
  const keys = await queue.keys(SOURCE);
  const rows = [];
  for (const { key } of keys) rows.push(await queue.get(key));
  const outbox = [];
  for (const state of ['pending', 'parked', 'inflight', 'delivered', 'superseded', 'dead'] as const) {
    outbox.push(...(await queue.listOutbox(state)));
  }
  return {
    keys,
    rows: rows.filter((r): r is QueuedApproval => r !== undefined),
    outbox: outbox.sort((a, b) => a.id - b.id),
    cursor: await queue.getCursor(SOURCE),
  };
}
