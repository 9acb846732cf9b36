import { expect } from 'chai';
import { SNOW_SOURCE, serviceNowHarness, type ServiceNowHarness } from '../support/servicenow-harness.js';

const APPROVALS = 'GET /api/now/table/sysapproval_approver';

describe('ServiceNow source against the sandbox (real HTTP on loopback, real SQLite, a real host)', function () {
  this.timeout(120_000);
  let h: ServiceNowHarness;
  afterEach(async () => h?.close());

  const key = (id: string) => `${SNOW_SOURCE}:requested-item:${id}`;
  const approverOf = (id: string) => h.sandbox.admin.record('sysapproval_approver', id)!.approver!;
  const emailOf = (userSysId: string) => h.sandbox.admin.users().find((u) => u.sysId === userSysId)!.email;
  const notBefore = () => h.host.commitContext().notBefore;
  const waitingOn = async (email: string) => (await h.host.queue.listForApprover(email, { notBefore: notBefore() })).map((a) => a.externalId);
  const calls = (endpoint: string) => h.sandbox.admin.calls()[endpoint] ?? 0;
  const people = () => h.sandbox.admin.users().slice(1);

  it('takes in 1,000 requested approvals over ten pages on a first sync, reading their requested items and approvers in bulk', async () => {
    h = await serviceNowHarness({ config: { pageSize: 100 } });
    const { approvals } = h.sandbox.admin.createApprovals({ count: 1000, shortDescription: 'Standard laptop' });
    await h.cycle();

    expect((await h.host.queue.keys(SNOW_SOURCE)).length).to.equal(1000);
    expect(calls(APPROVALS), 'one listing call a page (all 1,000 share one second)').to.equal(10);
    expect(calls('GET /api/now/table/sc_req_item'), 'requested items read with sys_idIN…, a call a page').to.equal(10);
    expect(calls('GET /api/now/table/sc_req_item/:sys_id')).to.equal(0);
    expect(calls('GET /api/now/table/sys_user/:sys_id'), 'approvers resolved in bulk').to.equal(0);

    const first = approvals[0]!;
    const item = h.sandbox.admin.record('sc_req_item', h.sandbox.admin.record('sysapproval_approver', first)!.sysapproval!)!;
    const queued = (await h.host.queue.get(key(first)))!;
    expect(queued.title).to.equal(`${item.number}: Standard laptop`);
    expect(queued.links.view).to.equal(`${h.sandbox.url}/nav_to.do?uri=sysapproval_approver.do%3Fsys_id%3D${first}`);
    expect(queued.amount).to.deep.equal({ value: '1299.00', currency: 'USD' });
    expect(queued.content?.fields?.map((f) => f.label)).to.include.members(['Number', 'Requested for', 'Opened by', 'Price', 'Quantity']);
    expect(queued.approvers[0]).to.include({ sourceUserId: approverOf(first), email: emailOf(approverOf(first)) });
    const messages = h.notifier.for(emailOf(approverOf(first)), key(first));
    expect(messages.map((m) => m.action)).to.deep.equal(['notify']);
    expect(messages[0]!.card.actions.find((a) => a.type === 'link')).to.deep.include({ label: 'View Requested Item' });
  });

  it('shows a change request with its risk and planned dates', async () => {
    h = await serviceNowHarness();
    const [id] = h.sandbox.admin.createApprovals({ count: 1, table: 'change_request', shortDescription: 'Patch database cluster' }).approvals;
    await h.cycle();
    const queued = (await h.host.queue.get(`${SNOW_SOURCE}:change-request:${id}`))!;
    expect(queued.title).to.match(/^CHG\d+: Patch database cluster$/);
    expect(queued.content?.fields).to.deep.include({ label: 'Risk', value: 'Moderate' });
    expect(queued.content?.fields?.map((f) => f.label)).to.include.members(['Planned start', 'Planned end']);
  });

  it('reads an approved record once per approval version: a poll after a restart reuses the queued card', async () => {
    h = await serviceNowHarness();
    const [id] = h.sandbox.admin.createApprovals({ count: 30 }).approvals;
    await h.cycle();
    const reads = calls('GET /api/now/table/sc_req_item');
    h.advance(10); // within overlapSeconds: the next poll reads all 30 again
    await h.cycle();
    await h.restart();
    h.advance(10);
    await h.cycle();
    expect(calls(APPROVALS), 'each poll listed the 30 again').to.be.at.least(3);
    expect(calls('GET /api/now/table/sc_req_item'), 'no item read again, before or after the restart').to.equal(reads);
    h.advance(10);
    h.sandbox.admin.touch([id!]);
    await h.cycle();
    expect(calls('GET /api/now/table/sc_req_item'), 'a new version of one approval: its item is read again').to.equal(reads + 1);
  });

  describe('decisions in ServiceNow', () => {
    beforeEach(async () => {
      h = await serviceNowHarness();
    });

    for (const [act, outcome] of [
      ['approve', 'approved'],
      ['reject', 'rejected'],
      ['cancel', 'no_longer_required'],
    ] as const) {
      it(`closes the card of an approval ${{ approve: 'approved', reject: 'rejected', cancel: 'cancelled' }[act]} in ServiceNow as ${outcome}`, async () => {
        const [id] = h.sandbox.admin.createApprovals({ count: 1, approvers: [people()[0]!.sysId] }).approvals;
        await h.cycle();
        const email = emailOf(approverOf(id!));
        expect(await waitingOn(email)).to.deep.equal([id]);
        h.advance(60);
        if (act === 'approve') h.sandbox.admin.approve(id!, 'ok');
        else if (act === 'reject') h.sandbox.admin.reject(id!, 'not now');
        else h.sandbox.admin.cancel(id!);
        await h.cycle();
        expect(await waitingOn(email)).to.deep.equal([]);
        const last = h.notifier.for(email, key(id!)).at(-1)!;
        expect(last.action).to.equal('close');
        expect(last.card.outcome).to.equal(outcome);
      });
    }

    it('tells the old approver and notifies the new one when an approval is reassigned', async () => {
      const [before, after] = people();
      const [id] = h.sandbox.admin.createApprovals({ count: 1, approvers: [before!.sysId] }).approvals;
      await h.cycle();
      h.advance(60);
      h.sandbox.admin.reassign(id!, after!.sysId);
      await h.cycle();
      expect(h.notifier.for(before!.email, key(id!)).map((m) => [m.action, m.card.outcome ?? null])).to.deep.equal([
        ['notify', null],
        ['close', 'reassigned'],
      ]);
      expect(h.notifier.for(after!.email, key(id!)).map((m) => m.action)).to.deep.equal(['notify']);
      expect(await waitingOn(after!.email)).to.deep.equal([id]);
    });
  });

  it('sees all of 50 records updated in one second across page boundaries, also when records move to the end while it pages', async () => {
    h = await serviceNowHarness({ config: { pageSize: 20 } });
    const admin = h.sandbox.admin;
    const { approvals, tasks } = admin.createApprovals({ count: 120, shortDescription: 'Monitor' });
    await h.cycle();
    h.advance(60);
    // 50 approvals (and their items) updated in one second: rows 1–50 of the next poll, pages of 20.
    const touched = approvals.slice(30, 80);
    admin.touch(tasks.slice(30, 80), { short_description: 'Monitor (second screen)' }, 'sc_req_item');
    const second = admin.touch(touched);
    // While the poll reads the page where those 50 start, five of its records are updated a second
    // later: they move to the end of the order, and every later row moves up five places. Paging by
    // offset would now skip the first five rows of the next page, five of the 50.
    const straddled = new Set(touched);
    let moved = false;
    admin.onListPage((page) => {
      if (moved || page.table !== 'sysapproval_approver' || !page.sysIds.some((id) => straddled.has(id)) || page.sysIds.every((id) => straddled.has(id)))
        return;
      moved = true;
      admin.advanceClock(1);
      admin.touch(page.sysIds.slice(0, 5));
    });
    await h.cycle();
    admin.onListPage(undefined);

    expect(moved).to.equal(true);
    expect(second).to.match(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    const titles = await Promise.all(touched.map(async (id) => (await h.host.queue.get(key(id)))!.title));
    expect(titles.filter((t) => t.endsWith(': Monitor (second screen)')).length).to.equal(50);
    for (const id of touched) expect(h.notifier.for(emailOf(approverOf(id)), key(id)).map((m) => m.action)).to.deep.equal(['notify', 'update']);
  });

  it('rides out a storm of 429s, waiting what Retry-After asks', async () => {
    h = await serviceNowHarness({ config: { maxAttempts: 5 } });
    const [id] = h.sandbox.admin.createApprovals({ count: 1 }).approvals;
    h.sandbox.admin.rateLimitStorm(4, 1);
    await h.cycle();
    expect(await h.host.queue.get(key(id!))).to.not.equal(undefined);
    const waits = h.logs.map((l) => JSON.parse(l) as { msg?: string; status?: number; retryAfter?: string }).filter((l) => l.status === 429);
    expect(waits).to.have.length(4);
    expect(waits.every((l) => l.msg === 'ServiceNow call failed' && l.retryAfter === '1')).to.equal(true);
  });

  it('closes the card of a deleted approval record at the next sweep (GET by sys_id answers 404)', async () => {
    h = await serviceNowHarness({ sweepIntervalSeconds: 600 });
    const [kept, gone] = h.sandbox.admin.createApprovals({ count: 2, approvers: [people()[0]!.sysId] }).approvals;
    await h.cycle();
    const email = people()[0]!.email;
    h.sandbox.admin.delete(gone!);
    h.advance(60);
    await h.cycle();
    expect((await waitingOn(email)).sort(), 'an incremental poll cannot see a deletion').to.deep.equal([kept, gone].sort());
    h.advance(600);
    await h.cycle();
    expect(await waitingOn(email)).to.deep.equal([kept]);
    expect(h.notifier.for(email, key(gone!)).at(-1)!.action).to.equal('close');
    expect(calls('GET /api/now/table/sysapproval_approver/:sys_id')).to.be.at.least(1);
  });

  describe('signing in', () => {
    it('gets a new OAuth token once when ServiceNow refuses the stored one (401), and keeps it in the credential store', async () => {
      h = await serviceNowHarness();
      h.sandbox.admin.createApprovals({ count: 1 });
      await h.cycle();
      const tokens = calls('POST /oauth_token.do');
      expect(tokens).to.equal(1);
      h.sandbox.admin.expireAccessTokens();
      h.advance(60);
      h.sandbox.admin.createApprovals({ count: 1 });
      await h.cycle();
      expect(calls('POST /oauth_token.do')).to.equal(2);
      expect((await h.host.queue.keys(SNOW_SOURCE)).length).to.equal(2);
      expect(h.logs.join('\n')).to.not.include(h.sandbox.credentials.clientSecret);
    });

    it('reads with basic auth as the integration user', async () => {
      h = await serviceNowHarness({ auth: 'basic' });
      const [id] = h.sandbox.admin.createApprovals({ count: 1 }).approvals;
      await h.cycle();
      expect(await h.host.queue.get(key(id!))).to.not.equal(undefined);
      expect(calls('POST /oauth_token.do')).to.equal(0);
      expect(h.logs.join('\n')).to.not.include(h.sandbox.credentials.password);
    });
  });
});
