import { expect } from 'chai';
import { Operations } from '../../core/host/operations.js';
import { toPublicJson } from '../../core/model/public-json.js';
import { callsTo } from '../../plugins/concur/sandbox/index.js';
import { startConcurProxy, type ConcurProxy } from '../support/concur-proxy.js';
import { concurHarness, days, SOURCE, type ConcurHarness } from '../support/concur-harness.js';

const key = (id: string) => `${SOURCE}:expense-report:${id}`;

describe('Concur source against the sandbox (real HTTP on loopback, real SQLite)', function () {
  this.timeout(60_000);
  let h: ConcurHarness;
  afterEach(async () => h?.close());

  /** The approver's work e-mail, as the sandbox's identity API knows it. */
  const emailOf = (login: string) =>
    h.sandbox.admin
      .users()
      .find((u) => u.loginId === login)!
      .email.toLowerCase();
  const approverOf = (id: string) => h.sandbox.admin.state().reports.find((r) => r.id === id)!.approverLoginID!;
  const notBefore = () => h.host.commitContext().notBefore;
  const waitingOn = async (email: string) => (await h.host.queue.listForApprover(email, { notBefore: notBefore() })).map((a) => a.externalId);

  describe('lifecycle', () => {
    beforeEach(async () => {
      h = await concurHarness();
    });

    it('queues a submitted report and notifies its approver once, with a View Expense Report link', async () => {
      const report = h.sandbox.admin.submit({ entries: 3 });
      await h.cycle();
      await h.cycle();
      const email = emailOf(approverOf(report.ID));
      expect(await waitingOn(email)).to.deep.equal([report.ID]);
      const messages = h.notifier.for(email, key(report.ID));
      expect(messages.map((m) => m.action)).to.deep.equal(['notify']);
      const link = messages[0]!.card.actions.find((a) => a.type === 'link');
      expect(link).to.deep.include({
        label: 'View Expense Report',
        url: `https://www.concursolutions.com/goto/expense-report/${report.ID}?companyUUID=${h.sandbox.companyId}&context=MANAGER`,
      });
      expect(messages[0]!.card.lineItems).to.have.length(3);
    });

    it("records the approver's Identity time zone on the queued approval, for reminders", async () => {
      const report = h.sandbox.admin.submit({});
      await h.cycle();
      const [approver] = (await h.host.queue.get(key(report.ID)))!.approvers;

      expect(approver).to.include({ sourceUserId: approverOf(report.ID), email: emailOf(approverOf(report.ID)) });
      expect(approver!.timeZone).to.be.oneOf([
        'America/New_York',
        'America/Chicago',
        'America/Los_Angeles',
        'Europe/Berlin',
        'Europe/London',
        'America/Vancouver',
      ]);
    });

    it('updates the card of a modified report without notifying again', async () => {
      const report = h.sandbox.admin.submit({});
      await h.cycle();
      h.advance(60);
      h.sandbox.admin.edit(report.ID, { name: 'Q3 offsite (corrected)' });
      await h.cycle();
      const messages = h.notifier.for(emailOf(approverOf(report.ID)), key(report.ID));
      expect(messages.map((m) => m.action)).to.deep.equal(['notify', 'update']);
      expect(messages[1]!.card.title).to.equal('Q3 offsite (corrected)');
      expect(messages[1]!.previous).to.deep.equal({ ref: 'chat-1' });
    });

    for (const [act, outcome] of [
      ['approve', 'approved'],
      ['sendBack', 'sent_back'],
      ['recall', 'sent_back'],
    ] as const) {
      it(`removes a report ${act === 'approve' ? 'approved' : act === 'sendBack' ? 'sent back' : 'recalled'} in Concur and closes its card`, async () => {
        const report = h.sandbox.admin.submit({});
        await h.cycle();
        const email = emailOf(approverOf(report.ID));
        h.advance(60);
        if (act === 'approve') h.sandbox.admin.approve(report.ID);
        else if (act === 'sendBack') h.sandbox.admin.sendBack(report.ID, 'missing receipt');
        else h.sandbox.admin.recall(report.ID);
        await h.cycle();
        expect(await waitingOn(email)).to.deep.equal([]);
        const last = h.notifier.for(email, key(report.ID)).at(-1)!;
        expect(last.action).to.equal('close');
        expect(last.card.outcome).to.equal(outcome);
        expect(last.card.actions).to.deep.equal([]);
      });
    }

    it('tells the old approver and notifies the new one when a report is reassigned', async () => {
      const report = h.sandbox.admin.submit({});
      await h.cycle();
      const oldLogin = approverOf(report.ID);
      const newLogin = h.sandbox.admin.users().find((u) => u.isApprover && u.loginId !== oldLogin)!.loginId;
      h.advance(60);
      h.sandbox.admin.reassign(report.ID, newLogin);
      await h.cycle();
      const old = h.notifier.for(emailOf(oldLogin), key(report.ID));
      expect(old.map((m) => m.action)).to.deep.equal(['notify', 'close']);
      expect(old[1]!.card.outcome).to.equal('reassigned');
      expect(h.notifier.for(emailOf(newLogin), key(report.ID)).map((m) => m.action)).to.deep.equal(['notify']);
      expect(await waitingOn(emailOf(oldLogin))).to.deep.equal([]);
      expect(await waitingOn(emailOf(newLogin))).to.deep.equal([report.ID]);
    });

    it('purges a report untouched for 31 days and never lists it again', async () => {
      const report = h.sandbox.admin.submit({});
      await h.cycle();
      const email = emailOf(approverOf(report.ID));
      h.advance(days(31));
      expect(await waitingOn(email), 'expired rows are never listed, even before a purge').to.deep.equal([]);
      await h.cycle();
      expect(await h.host.queue.get(key(report.ID))).to.equal(undefined);
      expect(h.notifier.for(email, key(report.ID)).at(-1)!.card.outcome).to.equal('expired');
    });

    it('deletes delivered messages and the receipts of final cards after delivery.keepDays, and keeps those of approvals still queued', async () => {
      const approved = h.sandbox.admin.submit({});
      const waiting = h.sandbox.admin.submit({});
      await h.cycle();
      const approvedBy = approverOf(approved.ID);
      h.advance(60);
      h.sandbox.admin.approve(approved.ID);
      await h.cycle();
      const approver = approverOf(waiting.ID);
      expect((await h.host.queue.listOutbox('delivered')).length).to.be.at.least(3);

      h.advance(days(29)); // keepDays 30: nothing is old enough yet
      h.sandbox.admin.edit(waiting.ID, { name: 'Still waiting' }); // keeps it queued, and updates its card
      await h.cycle();
      const before = (await h.host.queue.listOutbox('delivered')).length;
      h.advance(days(2));
      await h.cycle();

      const left = await h.host.queue.listOutbox('delivered');
      expect(
        left.map((e) => [e.approvalKey, e.action]),
        'only the update sent 2 days ago is left',
      ).to.deep.equal([[key(waiting.ID), 'update']]);
      expect(before).to.be.greaterThan(left.length);
      expect(await h.host.queue.receipt(key(approved.ID), approvedBy, 'chat'), 'approved and closed: the card is final').to.equal(undefined);
      expect(await h.host.queue.receipt(key(waiting.ID), approver, 'chat'), 'its card can still be updated').to.not.equal(undefined);
      expect(h.logs.some((l) => l.includes('purged settled outbox entries'))).to.equal(true);
      const metrics = await h.host.metrics.render();
      expect(metrics).to.match(new RegExp(`approvals_hub_outbox_purged_total\\{kind="entries"\\} ${before - left.length}\\b`));
      expect(metrics).to.match(/approvals_hub_outbox_purged_total\{kind="receipts"\} 1\b/);
    });
  });

  describe('when a workflow step does not bump LastModifiedDate (unconfirmed in the docs)', () => {
    beforeEach(async () => {
      h = await concurHarness({ sandbox: { workflowBumpsLastModified: false } });
    });

    it('still removes an approved report within one sweep', async () => {
      const report = h.sandbox.admin.submit({});
      await h.cycle();
      const email = emailOf(approverOf(report.ID));
      h.advance(600);
      h.sandbox.admin.submit({}); // moves the cursor past the overlap window that would re-read the report
      await h.cycle();
      h.sandbox.admin.approve(report.ID);
      await h.cycle();
      expect(await waitingOn(email), 'the incremental poll cannot see it').to.deep.equal([report.ID]);
      h.advance(15 * 60);
      const { cycles } = await h.cycle();
      expect(cycles[0]!.swept).to.equal(true);
      expect(cycles[0]!.drift).to.equal(1);
      expect(await waitingOn(email)).to.deep.equal([]);
    });

    it('moves a silently reassigned report to its new approver within one sweep', async () => {
      const report = h.sandbox.admin.submit({});
      await h.cycle();
      const oldLogin = approverOf(report.ID);
      const newLogin = h.sandbox.admin.users().find((u) => u.isApprover && u.loginId !== oldLogin)!.loginId;
      h.sandbox.admin.reassign(report.ID, newLogin);
      h.advance(15 * 60);
      await h.cycle();
      expect(await waitingOn(emailOf(newLogin))).to.deep.equal([report.ID]);
      expect(h.notifier.for(emailOf(oldLogin), key(report.ID)).at(-1)!.card.outcome).to.equal('reassigned');
    });

    /** A report reassigned behind the incremental poll's back to an approver nobody has looked up yet. */
    async function silentlyReassigned() {
      const report = h.sandbox.admin.submit({});
      await h.cycle();
      const oldLogin = approverOf(report.ID);
      const newLogin = h.sandbox.admin.users().find((u) => u.isApprover && u.loginId !== oldLogin)!.loginId;
      h.sandbox.admin.reassign(report.ID, newLogin);
      return { report, oldLogin, newLogin };
    }

    for (const repair of ['audit --fix', 'queue resync'] as const) {
      it(`routes a silently reassigned report repaired by ${repair} to the new approver's e-mail at once`, async () => {
        const { report, oldLogin, newLogin } = await silentlyReassigned();
        const ops = new Operations(h.host);
        if (repair === 'audit --fix') {
          const found = await ops.audit({ fix: true, actor: 'ops' });
          expect(found.map((d) => `${d.kind} ${d.key}`)).to.deep.equal([`changed ${key(report.ID)}`]);
        } else await ops.resync(key(report.ID), 'ops');

        const row = (await h.host.queue.get(key(report.ID)))!;
        expect(row.approvers.map((a) => [a.sourceUserId, a.email])).to.deep.equal([[newLogin, emailOf(newLogin)]]);
        expect(await waitingOn(emailOf(newLogin)), 'queue list --approver <new>').to.deep.equal([report.ID]);
        expect(await waitingOn(emailOf(oldLogin))).to.deep.equal([]);
        expect(await ops.unreachable(), 'diagnostics').to.deep.equal([]);
        expect(await h.host.queue.listOutbox('parked')).to.deep.equal([]);
        await h.host.drain();
        expect(h.notifier.for(emailOf(newLogin), key(report.ID)).map((m) => m.action)).to.deep.equal(['notify']);
      });
    }
  });

  describe('cost', () => {
    beforeEach(async () => {
      h = await concurHarness();
    });

    it('spends exactly one Concur call on a quiet cycle', async () => {
      for (let i = 0; i < 5; i++) h.sandbox.admin.submit({});
      await h.cycle();
      h.advance(60);
      h.sandbox.resetCalls();
      await h.cycle();
      const calls = h.sandbox.calls();
      expect(calls.total, JSON.stringify(calls.byEndpoint)).to.equal(1);
      expect(callsTo(calls, 'GET /api/v3.0/expense/reports')).to.equal(1);
    });

    it('takes in a first-sync backlog with listing calls only, and enriches what changes after', async () => {
      for (let i = 0; i < 150; i++) h.sandbox.admin.submit({ entries: 2 });
      await h.cycle();
      const first = h.sandbox.calls();
      expect(callsTo(first, 'GET /api/v3.0/expense/reports')).to.equal(2);
      expect(callsTo(first, 'GET /api/v3.0/expense/entries')).to.equal(0);
      expect(await h.host.queue.count({ notBefore: notBefore() })).to.equal(150);
      h.advance(600);
      h.sandbox.resetCalls();
      const changed = h.sandbox.admin.submit({ entries: 2 });
      await h.cycle();
      // One for the changed report, and the backfill's default budget for the backlog.
      expect(callsTo(h.sandbox.calls(), 'GET /api/v3.0/expense/entries')).to.equal(1 + 20);
      expect((await h.host.queue.get(key(changed.ID)))!.content!.lineItems).to.have.length(2);
    });

    it('spends ceil(k/100) list calls plus one entries call per changed report', async () => {
      await h.cycle();
      h.advance(60);
      const k = 250;
      for (let i = 0; i < k; i++) h.sandbox.admin.submit({ entries: 2 });
      h.sandbox.resetCalls();
      await h.cycle();
      const calls = h.sandbox.calls();
      expect(callsTo(calls, 'GET /api/v3.0/expense/reports')).to.equal(Math.ceil(k / 100));
      expect(callsTo(calls, 'GET /api/v3.0/expense/entries')).to.equal(k);
      expect(await h.host.queue.count({ notBefore: h.host.commitContext().notBefore })).to.equal(k);
    });
  });

  describe('line items of a first sync backlog (backfill)', () => {
    const entriesCalls = () => callsTo(h.sandbox.calls(), 'GET /api/v3.0/expense/entries');
    const lineItemsOf = async (id: string) => (await h.host.queue.get(key(id)))?.content?.lineItems as unknown[] | undefined;
    const pending = async () => (await h.host.backfillPending()).find((b) => b.source === SOURCE)?.pending;
    /** Concur API calls, leaving out the token grant a new process makes for its first access token. */
    const apiCalls = () => {
      const calls = h.sandbox.calls();
      return calls.total - callsTo(calls, 'POST /oauth2/v0/token');
    };
    /** Outbox entries written by the last cycle. */
    let written = 0;
    const cycle = async () => {
      const { cycles } = await h.cycle();
      written = cycles.reduce((n, c) => n + c.committed.outbox, 0);
      return cycles[0]!;
    };

    it('gives every card its line items at the configured rate, newest submission first, each as an update, across a restart', async () => {
      h = await concurHarness({ config: { backfillCallsPerCycle: 40 } });
      const reports = [];
      for (let i = 0; i < 150; i++) {
        reports.push(h.sandbox.admin.submit({ entries: 2 }));
        h.advance(60);
      }
      const newestFirst = reports.map((r) => r.ID).reverse();
      await cycle();
      expect(entriesCalls(), 'go-live takes the backlog in by listing only').to.equal(0);
      expect(await pending()).to.equal(150);
      expect(await h.host.metrics.render()).to.match(/approvals_hub_source_backfill_pending\{source="acme"\} 150\b/);

      for (let c = 1; c <= 4; c++) {
        h.advance(60);
        if (c === 3) await h.restart(); // where the backfill stands survives a restart
        h.sandbox.resetCalls();
        await cycle();
        const done = Math.min(150, 40 * c);
        expect(entriesCalls(), `cycle ${c}`).to.equal(done - Math.min(150, 40 * (c - 1)));
        const read: string[] = [];
        for (const id of newestFirst) if (Array.isArray(await lineItemsOf(id))) read.push(id);
        expect(read, `cycle ${c}: the newest ${done}`).to.deep.equal(newestFirst.slice(0, done));
        expect(await pending()).to.equal(150 - done);
      }
      expect(await h.host.metrics.render()).to.match(/approvals_hub_source_backfill_pending\{source="acme"\} 0\b/);
      for (const r of reports) {
        expect(
          h.notifier.for(emailOf(approverOf(r.ID)), key(r.ID)).map((m) => m.action),
          r.ID,
        ).to.deep.equal(['notify', 'update']);
        const shown = toPublicJson((await h.host.queue.get(key(r.ID)))!);
        expect(shown.lineItems, 'queue show --json').to.have.length(2);
        expect(shown.fields).to.deep.include({ label: 'Entries', value: '2' });
      }
      expect(h.notifier.messages.filter((m) => m.action === 'update').every((m) => m.card.lineItems.length === 2)).to.equal(true);

      await h.restart();
      h.advance(60);
      h.sandbox.resetCalls();
      await cycle();
      expect(apiCalls(), 'a quiet cycle once the backlog is done').to.equal(1);
      expect(written).to.equal(0);
    });

    it('holds the backfill for one cycle at a report whose entries cannot be read, then moves past it', async () => {
      const proxy = await startConcurProxy();
      try {
        h = await concurHarness({ config: { backfillCallsPerCycle: 5 }, baseUrl: (sb) => ((proxy.target = sb.baseUrl), proxy.url) });
        const reports = [];
        for (let i = 0; i < 150; i++) {
          reports.push(h.sandbox.admin.submit({ entries: 2 }));
          h.advance(60);
        }
        const [broken, ...rest] = reports.map((r) => r.ID).reverse();
        await cycle();
        proxy.rules = { refuse: (r) => (r.url.startsWith('/api/v3.0/expense/entries') && r.url.includes(broken!) ? 503 : undefined) };
        h.advance(60);
        await cycle();
        expect(await lineItemsOf(broken!)).to.equal(undefined);
        expect(await lineItemsOf(rest[0]!), 'held: tried again next cycle').to.equal(undefined);
        expect(await pending()).to.equal(150);
        h.advance(60);
        await cycle();
        expect(await lineItemsOf(broken!), 'a second failure gives up on it').to.equal(undefined);
        for (const id of rest.slice(0, 4)) expect(await lineItemsOf(id), id).to.have.length(2);
        expect(await lineItemsOf(rest[4]!)).to.equal(undefined);
        expect(await pending()).to.equal(145);
      } finally {
        await proxy.close();
      }
    });

    it('makes no entries call with backfillCallsPerCycle 0, and reports the backlog left', async () => {
      h = await concurHarness({ config: { backfillCallsPerCycle: 0 } });
      for (let i = 0; i < 150; i++) h.sandbox.admin.submit({ entries: 2 });
      await cycle();
      for (let c = 0; c < 3; c++) {
        h.advance(60);
        await cycle();
      }
      expect(entriesCalls()).to.equal(0);
      expect(await pending()).to.equal(150);
      expect(h.notifier.messages.map((m) => m.action)).to.deep.equal(Array(150).fill('notify'));
    });

    /** A two-page backlog whose newest 10 reports lie inside the overlap window of the next cycles. */
    async function backlogWithTenInOverlap(): Promise<void> {
      for (let i = 0; i < 140; i++) h.sandbox.admin.submit({ entries: 2 });
      h.advance(3600);
      for (let i = 0; i < 10; i++) h.sandbox.admin.submit({ entries: 2 });
      await cycle();
      expect(entriesCalls()).to.equal(0);
    }

    it('spends one list call and sends nothing on a quiet cycle of a fresh process after a multi-page first sync', async () => {
      h = await concurHarness({ config: { backfillCallsPerCycle: 0 } });
      await backlogWithTenInOverlap();
      await h.restart();
      h.advance(60); // the 10 newest reports are read again by this cycle's listing
      h.sandbox.resetCalls();
      const before = h.notifier.messages.length;
      await cycle();
      expect(apiCalls(), JSON.stringify(h.sandbox.calls().byEndpoint)).to.equal(1);
      expect(callsTo(h.sandbox.calls(), 'GET /api/v3.0/expense/reports')).to.equal(1);
      expect(written, 'outbox entries').to.equal(0);
      expect(h.notifier.messages.length).to.equal(before);
    });

    it('spends only its budget in a fresh process: the overlap re-read of the backlog costs no entries call', async () => {
      h = await concurHarness();
      await backlogWithTenInOverlap();
      await h.restart();
      h.advance(60);
      h.sandbox.resetCalls();
      const before = h.notifier.messages.length;
      const report = await cycle();
      expect(callsTo(h.sandbox.calls(), 'GET /api/v3.0/expense/reports')).to.equal(1);
      expect(entriesCalls(), 'the default backfillCallsPerCycle').to.equal(20);
      expect(report.backfilled).to.equal(20);
      expect(h.notifier.messages.slice(before).map((m) => m.action)).to.deep.equal(Array(20).fill('update'));
      expect(await pending()).to.equal(130);
    });
  });

  describe('faults', () => {
    beforeEach(async () => {
      h = await concurHarness({ config: { pageSize: 20 } });
      await h.cycle();
      h.advance(60);
      for (let i = 0; i < 90; i++) h.sandbox.admin.submit({ entries: 1 });
    });

    /** Runs cycles under the fault until one succeeds; the cursor may never move while a cycle fails. */
    async function catchUp(faults: Parameters<ConcurHarness['sandbox']['setFaults']>[0]): Promise<number> {
      const cursorBefore = await h.host.queue.getCursor(SOURCE);
      h.sandbox.setFaults(faults);
      let failed = 0;
      for (let i = 0; i < 3; i++) {
        const report = await h.host.runOnce();
        if (report.failures.length === 0) break;
        failed++;
        expect(await h.host.queue.getCursor(SOURCE), 'cursor moved past unprocessed data').to.equal(cursorBefore);
      }
      h.sandbox.setFaults('none');
      await h.cycle();
      expect(await h.host.queue.count({ notBefore: h.host.commitContext().notBefore })).to.equal(90);
      const notifies = h.notifier.messages.filter((m) => m.action === 'notify').map((m) => m.card.approvalKey);
      expect(notifies).to.have.length(90);
      expect(new Set(notifies).size).to.equal(90);
      expect(await h.host.queue.getCursor(SOURCE)).not.to.equal(cursorBefore);
      return failed;
    }

    it('retries a 429 after the Retry-After it names and loses nothing', async () => {
      await catchUp({ rate429: 0.3, retryAfterSeconds: 1, scope: ['reports'] });
      const throttled = h.logs.filter((l) => l.includes('"status":429'));
      expect(throttled.length).to.be.greaterThan(0);
      expect(throttled[0]).to.include('"retryAfter":"1"');
    });

    it('fails a cycle cleanly on persistent 503s and catches up on the next', async () => {
      expect(await catchUp({ rate503: 1, scope: ['reports'] })).to.be.greaterThan(0);
    });

    it('gives up on a hanging call after its timeout and catches up on the next cycle', async () => {
      expect(await catchUp({ rateHang: 1, scope: ['reports'] })).to.be.greaterThan(0);
    });

    it('fails a cycle on a malformed page with an error naming it, and catches up', async () => {
      h.sandbox.setFaults({ rateMalformed: 1 });
      const report = await h.host.runOnce();
      expect(report.failures[0]!.error).to.match(/read reports page failed: HTTP 200 malformed JSON/);
      expect(await catchUp({ rateMalformed: 0.5 })).to.be.at.least(0);
    });

    it('logs the concur-correlationid of a failed call', async () => {
      await catchUp({ rate503: 1, scope: ['reports'] });
      expect(h.logs.some((l) => /"status":503.*"correlationId":"[0-9a-f-]{36}"/.test(l))).to.equal(true);
    });
  });

  describe('tokens', () => {
    beforeEach(async () => {
      h = await concurHarness();
    });

    it('persists the rotated refresh token and uses it after a restart', async () => {
      h.sandbox.admin.submit({});
      await h.cycle();
      const stored = JSON.parse((await h.host.credentials.get(`source:${SOURCE}`, 'oauth'))!) as { refreshToken: string };
      expect(stored.refreshToken).to.be.a('string').and.not.equal(h.sandbox.credentials.refreshToken);
      await h.restart();
      h.advance(3700); // past the stored access token's life, so the restarted host must refresh
      h.sandbox.admin.submit({});
      h.sandbox.resetCalls();
      await h.cycle(); // the configured token was used once and is dead: only the stored one works
      expect(callsTo(h.sandbox.calls(), 'POST /oauth2/v0/token', 200)).to.equal(1);
      expect(h.notifier.messages.filter((m) => m.action === 'notify')).to.have.length(2);
    });

    /** A kill after Concur rotated the refresh token but before the new one was stored: the store holds the used one. */
    async function loseRotation(): Promise<void> {
      await h.cycle();
      const {
        accessToken: _access,
        accessExpiresAt: _expiry,
        ...stored
      } = JSON.parse((await h.host.credentials.get(`source:${SOURCE}`, 'oauth'))!) as Record<string, string>;
      await h.host.credentials.set(`source:${SOURCE}`, 'oauth', JSON.stringify({ ...stored, refreshToken: h.sandbox.credentials.refreshToken }));
      await h.restart();
    }

    it('fails each cycle with an error naming code 108 and the remedy when the refresh token is dead and no request token is configured', async () => {
      await loseRotation();
      h.sandbox.admin.submit({});
      const report = await h.host.runOnce();
      expect(report.failures[0]!.error)
        .to.match(/code 108/)
        .and.to.match(/configure a new refreshToken, or a requestToken/);
      expect(h.logs.some((l) => l.includes('"level":50') && l.includes('no company request token is configured'))).to.equal(true);
      expect(h.notifier.messages).to.deep.equal([]);
    });

    it('recovers with the company request token when the refresh token is dead, and keeps the new refresh token', async () => {
      await h.close();
      h = await concurHarness({ requestToken: true });
      await loseRotation();
      const report = h.sandbox.admin.submit({});
      await h.cycle();
      expect(h.logs.some((l) => l.includes('recovering with the company request token'))).to.equal(true);
      expect(h.notifier.messages.map((m) => m.card.approvalKey)).to.deep.equal([key(report.ID)]);
      await h.restart();
      h.advance(3700); // past the access token's life: the stored refresh token must work
      h.sandbox.resetCalls();
      await h.cycle();
      expect(callsTo(h.sandbox.calls(), 'POST /oauth2/v0/token', 200)).to.equal(1);
      expect(callsTo(h.sandbox.calls(), 'POST /oauth2/v0/token', 400)).to.equal(0);
    });

    it('refreshes an access token Concur expired early, once, and retries the call', async () => {
      await h.cycle();
      h.sandbox.setFaults({ expiringTokens: true, expiringTokenSeconds: 2 });
      await h.cycle(); // this token is issued with the short life
      h.sandbox.setFaults('none');
      h.advance(10);
      h.sandbox.resetCalls();
      h.sandbox.admin.submit({});
      await h.cycle();
      const calls = h.sandbox.calls();
      expect(callsTo(calls, 'GET /api/v3.0/expense/reports', 401)).to.be.at.most(1);
      expect(callsTo(calls, 'POST /oauth2/v0/token')).to.be.at.most(1);
      expect(h.notifier.messages.filter((m) => m.action === 'notify')).to.have.length(1);
    });

    it('never writes a secret to the log', async () => {
      h.sandbox.setFaults({ rate503: 0.2, rate429: 0.2, retryAfterSeconds: 0 });
      for (let i = 0; i < 5; i++) h.sandbox.admin.submit({});
      for (let i = 0; i < 3; i++) {
        await h.host.runOnce();
        h.advance(3700); // past the access token's life: more refreshes, more rotated tokens
      }
      await h.restart();
      await h.host.runOnce();
      const stored = JSON.parse((await h.host.credentials.get(`source:${SOURCE}`, 'oauth'))!) as { refreshToken: string };
      const secrets = [h.sandbox.credentials.clientSecret, h.sandbox.credentials.refreshToken, stored.refreshToken];
      const text = h.logs.join('');
      expect(h.logs.length).to.be.greaterThan(5);
      for (const secret of secrets) expect(text).not.to.include(secret);
      expect(text).not.to.match(/Bearer [A-Za-z0-9]/);
    });
  });

  describe('NextPage', () => {
    let proxy: ConcurProxy;
    afterEach(() => proxy?.close());

    it('refuses a NextPage that points at another host', async () => {
      // A proxy in front of the sandbox that rewrites NextPage to a foreign host, as a tampered page would.
      proxy = await startConcurProxy({ rewrite: (body) => body.replace(/"NextPage":"http:\/\/127\.0\.0\.1:\d+/g, '"NextPage":"https://attacker.example') });
      h = await concurHarness({ baseUrl: (sb) => ((proxy.target = sb.baseUrl), proxy.url), config: { pageSize: 5 } });
      for (let i = 0; i < 12; i++) h.sandbox.admin.submit({});
      const report = await h.host.runOnce();
      expect(report.failures[0]!.error).to.include('refusing NextPage https://attacker.example/api/v3.0/expense/reports');
      expect(await h.host.queue.getCursor(SOURCE)).to.equal(undefined);
    });
  });

  /**
   * Runs a cycle whose requests to `path` hang after the first `after`, and restarts the host when
   * one does: the stop aborts the cycle there, as a kill would. The proxy forwards everything after.
   */
  async function cutShortAt(proxy: ConcurProxy, path: string, after: number): Promise<void> {
    let seen = 0;
    let reached!: () => void;
    const hung = new Promise<void>((resolve) => (reached = resolve));
    proxy.rules = {
      refuse: (r) => {
        if (!r.url.startsWith(path) || ++seen <= after) return undefined;
        reached();
        return 'hang';
      },
    };
    const cycle = h.host.runOnce().catch(() => undefined);
    await hung;
    await h.restart();
    await cycle;
    proxy.rules = {};
  }

  describe('restarts', () => {
    let proxy: ConcurProxy;
    afterEach(() => proxy?.close());

    /** Entries calls that reached the sandbox since the last reset. */
    const entriesCalls = () => callsTo(h.sandbox.calls(), 'GET /api/v3.0/expense/entries');
    let cursorBefore: string | undefined;

    beforeEach(async () => {
      proxy = await startConcurProxy();
      h = await concurHarness({ baseUrl: (sb) => ((proxy.target = sb.baseUrl), proxy.url) });
      await h.cycle();
      cursorBefore = await h.host.queue.getCursor(SOURCE);
      h.advance(60);
    });

    it('does not read line items again for report versions already queued when a restarted host re-lists them', async () => {
      for (let i = 0; i < 30; i++) h.sandbox.admin.submit({ entries: 2 });
      await h.cycle();
      await h.restart();
      h.advance(60); // the next listing's overlap window still holds all 30
      h.sandbox.resetCalls();
      await h.cycle();

      expect(callsTo(h.sandbox.calls(), 'GET /api/v3.0/expense/reports')).to.equal(1);
      expect(entriesCalls(), 'entries calls for versions already queued').to.equal(0);
      const queued = await h.host.queue.listForApprover(h.notifier.messages[0]!.recipient.email!, { notBefore: notBefore() });
      expect(
        queued.map((a) => a.content?.lineItems?.length),
        'line items kept',
      ).to.deep.equal(queued.map(() => 2));
      expect(h.notifier.messages.filter((m) => m.action !== 'notify')).to.deep.equal([]);
    });

    it('keeps the reports it read when a cycle is cut short part way through a page, and reads only the rest after a restart', async () => {
      for (let i = 0; i < 30; i++) h.sandbox.admin.submit({ entries: 1 });
      await cutShortAt(proxy, '/api/v3.0/expense/entries', 25);
      expect(await h.host.queue.count({ notBefore: notBefore() }), 'the first 20 read were committed').to.equal(20);
      expect(await h.host.queue.getCursor(SOURCE), 'the page was not finished: the cursor stays').to.equal(cursorBefore);

      h.sandbox.resetCalls();
      await h.cycle();
      expect(entriesCalls(), 'only the 10 not yet queued are read').to.equal(10);
      expect(await h.host.queue.count({ notBefore: notBefore() })).to.equal(30);
      const notifies = h.notifier.messages.filter((m) => m.action === 'notify').map((m) => m.card.approvalKey);
      expect(notifies).to.have.length(30);
      expect(new Set(notifies).size).to.equal(30);
    });

    it('keeps the identities it found when the lookup of one approver fails', async () => {
      const logins = h.sandbox.admin
        .users()
        .filter((u) => u.isApprover)
        .map((u) => u.loginId);
      const [broken, ...working] = logins;
      const reports = logins.map((login) => h.sandbox.admin.submit({ approver: login }));
      proxy.rules = { refuse: (r) => (r.url.startsWith('/profile/identity/v4/Users') && decodeURIComponent(r.url).includes(broken!) ? 503 : undefined) };
      await h.cycle();

      const notified = h.notifier.messages.filter((m) => m.action === 'notify').map((m) => m.card.approvalKey);
      expect(notified.sort()).to.deep.equal(
        reports
          .slice(1)
          .map((r) => key(r.ID))
          .sort(),
      );
      expect(working.length).to.be.greaterThan(0);
      expect((await h.host.queue.listOutbox('parked')).map((e) => e.approvalKey)).to.deep.equal([key(reports[0]!.ID)]);

      proxy.rules = {};
      h.advance(10 * 60);
      await h.cycle();
      expect(h.notifier.for(emailOf(broken!), key(reports[0]!.ID)).map((m) => m.action)).to.deep.equal(['notify']);
    });
  });

  describe('a first sync cut short', () => {
    let proxy: ConcurProxy;
    afterEach(() => proxy?.close());

    it('is not taken for a sweep when resumed: a report approved meanwhile leaves the queue in that cycle', async () => {
      proxy = await startConcurProxy();
      h = await concurHarness({ baseUrl: (sb) => ((proxy.target = sb.baseUrl), proxy.url), config: { pageSize: 5 } });
      const reports = Array.from({ length: 12 }, () => h.sandbox.admin.submit({}));
      await cutShortAt(proxy, '/api/v3.0/expense/reports', 1);
      const taken = (await h.host.queue.keys(SOURCE)).map((k) => k.key);
      expect(taken, 'the first page was committed').to.have.length(5);
      expect(await h.host.queue.getCursor(SOURCE)).to.equal(undefined);

      const approved = reports.find((r) => taken.includes(key(r.ID)))!;
      h.advance(60);
      h.sandbox.admin.approve(approved.ID);
      await h.cycle();

      expect(await h.host.queue.get(key(approved.ID)), 'approved while the first sync was cut short').to.equal(undefined);
      expect(await h.host.queue.keys(SOURCE)).to.have.length(11);
    });
  });

  describe('identity API down', () => {
    beforeEach(async () => {
      h = await concurHarness();
    });

    it('parks approvals while identity is down and delivers them once it recovers', async () => {
      h.sandbox.setFaults({ identityDown: true });
      const reports = [h.sandbox.admin.submit({}), h.sandbox.admin.submit({}), h.sandbox.admin.submit({})];
      await h.cycle();
      expect(h.notifier.messages).to.deep.equal([]);
      expect((await h.host.queue.listOutbox('parked')).length).to.equal(3);
      expect(await h.host.queue.count({ notBefore: notBefore() }), 'queued while parked').to.equal(3);
      h.sandbox.setFaults('none');
      h.advance(10 * 60);
      await h.cycle();
      for (const r of reports) {
        expect(h.notifier.for(emailOf(approverOf(r.ID)), key(r.ID)).map((m) => m.action)).to.deep.equal(['notify']);
      }
      expect(await h.host.queue.listOutbox('parked')).to.deep.equal([]);
    });

    it('uses the last known e-mail when identity times out after the mapping expired', async () => {
      h = await concurHarness({ config: { identity: { ttlHours: 1, timeoutSeconds: 1 } } });
      const first = h.sandbox.admin.submit({});
      await h.cycle();
      h.advance(days(1));
      h.sandbox.setFaults({ identityDown: true });
      const second = h.sandbox.admin.submit({ approver: approverOf(first.ID) });
      await h.cycle();
      expect(h.notifier.for(emailOf(approverOf(second.ID)), key(second.ID)).map((m) => m.action)).to.deep.equal(['notify']);
    });
  });
});
