import { expect } from 'chai';
import { resolve } from 'node:path';
import { Operations } from '../../core/host/operations.js';
import { callsTo, type CallCounts } from '../../plugins/concur/sandbox/index.js';
import { concurHarness, SOURCE, type ConcurHarness } from '../support/concur-harness.js';
import { postEvent, reportEvent, signWith, SIGNING_PUBLIC_KEY } from '../support/concur-events.js';

/**
 * Push events through the real host: Concur's webhook (the plugin's route on the host's HTTP
 * server), the triggers stored in the SQLite queue before the answer, and the re-read of the report
 * from the sandbox over real HTTP (docs/concur-api.md 6). Events are signed here with the test key
 * (test/fixtures/ess), as the receiver reads Concur's signature by default.
 */
const GET_REPORT = 'GET /api/v3.0/expense/reports/:id';
const LIST_REPORTS = 'GET /api/v3.0/expense/reports';

describe('Concur push events: the webhook, triggers and re-reads (sandbox, SQLite, real HTTP)', function () {
  this.timeout(60_000);
  let h: ConcurHarness;
  afterEach(async () => h?.close());

  async function start(): Promise<string> {
    h = await concurHarness({ http: true, config: { events: { enabled: true, signature: { publicKeyFiles: [SIGNING_PUBLIC_KEY] } } } });
    await h.host.start();
    await h.cycle(); // joins the first sync the start began
    return `${h.host.url!}/concur/${SOURCE}/events`;
  }

  const now = () => new Date(h.sandbox.admin.now());
  const emailOf = (login: string) =>
    h.sandbox.admin
      .users()
      .find((u) => u.loginId === login)!
      .email.toLowerCase();
  const keyOf = (id: string) => `${SOURCE}:expense-report:${id}`;
  const queued = async () => (await h.host.queue.keys(SOURCE)).map((k) => k.externalId).sort();
  const delta = (before: CallCounts, key: string) => callsTo(h.sandbox.calls(), key) - callsTo(before, key);
  const metric = async (line: string) => (await (await fetch(`${h.host.url!}/metrics`)).text()).split('\n').find((l) => l.startsWith(line));

  it('queues and delivers a pushed report in the same second with one read of it, and a redelivery costs nothing', async () => {
    const url = await start();
    const before = h.sandbox.calls();
    const report = h.sandbox.admin.submit({ entries: 2 });
    const email = emailOf(report.ApproverLoginID!);
    const body = reportEvent(report, { timeStamp: now() });

    expect(await postEvent(url, body)).to.deep.equal({ status: 200, body: { accepted: true, duplicate: false } });
    await waitFor(() => h.notifier.for(email, keyOf(report.ID)).length === 1);

    const card = h.notifier.for(email, keyOf(report.ID))[0]!.card;
    expect(card.title).to.equal(report.Name);
    expect(card.lineItems, 'entries read with the report').to.have.length(2);
    expect([delta(before, GET_REPORT), delta(before, LIST_REPORTS)], 'one GET of the report, no listing').to.deep.equal([1, 0]);
    // Concur asks that the calls an event caused carry its correlation id.
    const correlationId = (JSON.parse(body.toString()) as { correlationId: string }).correlationId;
    expect(h.sandbox.calls().correlationIds[GET_REPORT]).to.deep.equal([correlationId]);
    expect(h.sandbox.calls().correlationIds['GET /api/v3.0/expense/entries']).to.deep.equal([correlationId]);

    // Concur delivers at least once: the same event again is acknowledged and changes nothing.
    const calls = h.sandbox.calls();
    expect(await postEvent(url, body)).to.deep.equal({ status: 200, body: { accepted: true, duplicate: true } });
    // A newer event for a version the queue already holds is not read again either.
    expect((await postEvent(url, reportEvent(report, { timeStamp: now(), eventType: 'reportUpdated' }))).status).to.equal(200);
    await h.host.runners[0]!.wake();
    expect(h.sandbox.calls().total - calls.total).to.equal(0);
    expect(h.notifier.for(email, keyOf(report.ID))).to.have.length(1);
    expect(await metric('approvals_hub_source_triggers_total{source="acme",outcome="duplicate"}')).to.match(/ 1$/);
  });

  it('refuses forged, unknown-key, unsigned and replayed events: nothing stored, nothing read, nothing queued', async () => {
    const url = await start();
    const report = h.sandbox.admin.submit({ entries: 1 });
    const body = reportEvent(report, { timeStamp: now() });
    const keys = await queued();
    const before = h.sandbox.calls();

    const forged = await postEvent(url, body, { signature: signWith(reportEvent(report, { timeStamp: now() })) });
    const unknownKey = await postEvent(url, body, { signature: signWith(body, 'unknown') });
    const unsigned = await postEvent(url, body, { signature: false });
    const old = reportEvent(report, { timeStamp: new Date(now().getTime() - 74 * 3_600_000) });
    const replayed = await postEvent(url, old);

    expect([forged, unknownKey, unsigned, replayed].map((r) => r.status)).to.deep.equal([401, 401, 401, 401]);
    expect(forged.body.error).to.match(/signature/);
    expect(unsigned.body.error).to.match(/unsigned/);
    expect(replayed.body.error).to.match(/old|replay/);
    expect(await h.host.queue.pendingTriggers(SOURCE)).to.deep.equal({ count: 0, oldestReceivedAt: undefined });
    await h.host.runners[0]!.wake();
    expect(h.sandbox.calls().total - before.total).to.equal(0);
    expect(await queued()).to.deep.equal(keys);
    expect(await metric('approvals_hub_source_triggers_total{source="acme",outcome="refused"}')).to.match(/ 4$/);
  });

  it('keeps an acknowledged event across a stop before its report could be read: the next host reads it', async () => {
    const url = await start();
    h.sandbox.admin.setFaults({ rate503: 1, scope: ['reports'] });
    const report = h.sandbox.admin.submit({ entries: 1 });
    const email = emailOf(report.ApproverLoginID!);
    expect((await postEvent(url, reportEvent(report, { timeStamp: now() }))).status).to.equal(200);
    await waitFor(() => h.logs.some((l) => l.includes('refreshing pushed changes failed')));
    expect((await h.host.queue.pendingTriggers(SOURCE)).count).to.equal(1);

    await h.restart();
    h.sandbox.admin.setFaults('none');
    h.advance(10); // past the trigger's backoff
    await h.host.start();
    await waitFor(() => h.notifier.for(email, keyOf(report.ID)).length === 1);
    await waitFor(async () => (await h.host.queue.pendingTriggers(SOURCE)).count === 0);
  });

  it('an identity event sends that approver for a fresh e-mail look-up at the next use, no sooner', async () => {
    const url = await start();
    const report = h.sandbox.admin.submit({ entries: 1 });
    expect((await postEvent(url, reportEvent(report, { timeStamp: now() }))).status).to.equal(200);
    const approver = h.sandbox.admin.users().find((u) => u.loginId === report.ApproverLoginID)!;
    await waitFor(() => h.notifier.for(approver.email.toLowerCase(), keyOf(report.ID)).length === 1);
    const identityCalls = (c: CallCounts) =>
      Object.entries(c.byEndpoint)
        .filter(([k]) => k.includes('/profile/identity/'))
        .reduce((n, [, e]) => n + e.total, 0);

    const body = Buffer.from(
      JSON.stringify({
        id: 'identity-1',
        correlationId: 'c-1',
        eventType: 'IdentityProfileUpdated',
        topic: 'public.concur.user.profile.identity',
        timeStamp: now().toISOString(),
        facts: { userId: approver.id, attributes: ['emails'] },
      }),
    );
    const before = h.sandbox.calls();
    expect((await postEvent(url, body)).status).to.equal(200);
    expect(identityCalls(h.sandbox.calls()) - identityCalls(before), 'nothing read on the event itself').to.equal(0);

    // The approver's next report resolves their e-mail afresh.
    const next = h.sandbox.admin.submit({ entries: 1, approver: approver.loginId });
    expect((await postEvent(url, reportEvent(next, { timeStamp: now() }))).status).to.equal(200);
    await waitFor(() => h.notifier.for(approver.email.toLowerCase(), keyOf(next.ID)).length === 1);
    expect(identityCalls(h.sandbox.calls()) - identityCalls(before)).to.equal(1);
  });

  it("a spend-profile event sends that approver's delegate list for a fresh read: a delegate removed in Concur loses the card at the report's next event", async () => {
    h = await concurHarness({
      http: true,
      config: { delegates: { notify: true }, events: { enabled: true, signature: { publicKeyFiles: [SIGNING_PUBLIC_KEY] } } },
    });
    await h.host.start();
    await h.cycle();
    const url = `${h.host.url!}/concur/${SOURCE}/events`;
    const [ann, bo] = h.sandbox.admin.users().filter((u) => u.isApprover);
    h.sandbox.admin.setDelegates(ann!.loginId, [{ delegate: bo!.loginId, canApprove: true, canReceiveApprovalEmail: true }]);
    const report = h.sandbox.admin.submit({ approver: ann!.loginId, entries: 1 });
    expect((await postEvent(url, reportEvent(report, { timeStamp: now() }))).status).to.equal(200);
    const boCards = () => h.notifier.for(bo!.email.toLowerCase(), keyOf(report.ID));
    await waitFor(() => boCards().length === 1);

    h.sandbox.admin.setDelegates(ann!.loginId, []);
    const spend = Buffer.from(
      JSON.stringify({
        id: 'spend-1',
        correlationId: 'c-2',
        eventType: 'SpendProfileUpdated',
        topic: 'public.concur.user.profile.spend',
        timeStamp: now().toISOString(),
        facts: { userId: ann!.id },
      }),
    );
    expect((await postEvent(url, spend)).status).to.equal(200);
    h.advance(60);
    const edited = h.sandbox.admin.edit(report.ID, { name: 'Trade fair (receipts added)' });
    expect((await postEvent(url, reportEvent(edited, { timeStamp: now(), eventType: 'reportUpdated' }))).status).to.equal(200);
    await waitFor(() => boCards().length === 2);
    expect(boCards()[1]!.action, "the former delegate's card closes").to.equal('close');
    expect(h.notifier.for(ann!.email.toLowerCase(), keyOf(report.ID)).at(-1)!.action).to.equal('update');
  });

  it('reports the events mode and why in /readyz: polling until the first push, then events', async () => {
    const url = await start();
    const ready = async () => ((await (await fetch(`${h.host.url!}/readyz`)).json()) as { sources: Record<string, { events?: unknown }> }).sources[SOURCE]!;
    await waitFor(async () => ((await ready()).events as { mode?: string } | undefined)?.mode === 'polling');
    expect((await ready()).events).to.deep.include({ mode: 'polling', reason: 'no push received yet' });
    const report = h.sandbox.admin.submit({ entries: 1 });
    expect((await postEvent(url, reportEvent(report, { timeStamp: now() }))).status).to.equal(200);
    await waitFor(async () => ((await ready()).events as { mode?: string }).mode === 'events', 10_000);
    expect(await metric('approvals_hub_source_events_healthy{source="acme"}')).to.equal('approvals_hub_source_events_healthy{source="acme"} 1');
    // `diagnostics` reads the same from the queue, so a process that runs no source shows it too.
    await waitFor(async () => (await new Operations(h.host).events())[0]?.mode === 'events');
    expect((await new Operations(h.host).events())[0]).to.deep.include({ source: SOURCE, mode: 'events', reason: 'healthy', pendingTriggers: 0 });
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, ms = 8_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("Concur push events from the sandbox's sender: duplicates, reordering, drops and an outage (SQLite, real HTTP)", function () {
  this.timeout(180_000);
  let h: ConcurHarness;
  afterEach(async () => h?.close());

  const SANDBOX_KEY = resolve(process.cwd(), 'plugins/concur/sandbox/test-keys/signing-public-key.pem');

  async function start(faults: Record<string, unknown>): Promise<void> {
    h = await concurHarness({
      http: true,
      sandbox: { events: { faults, retryInitialMs: 20, retryMaxMs: 200, concurrency: 8 } },
      config: { events: { enabled: true, signature: { publicKeyFiles: [SANDBOX_KEY] } } },
    });
    await h.host.start();
    await h.cycle();
    h.sandbox.events.subscribe(`${h.host.url!}/concur/${SOURCE}/events`);
  }

  /** Concur's pending reports and their approver, against the queue's. */
  async function compare(): Promise<{ concur: string[]; queue: string[] }> {
    const concur = h.sandbox.admin
      .state()
      .reports.filter((r) => r.status === 'A_PEND')
      .map((r) => `${r.id}→${r.approverLoginID}`)
      .sort();
    const queue: string[] = [];
    for (const k of await h.host.queue.keys(SOURCE)) {
      const row = await h.host.queue.get(k.key);
      if (row?.status === 'pending') queue.push(`${k.externalId}→${row.approvers.map((a) => a.sourceUserId).join(',')}`);
    }
    return { concur, queue: queue.sort() };
  }

  async function settled(): Promise<void> {
    await h.sandbox.events.idle();
    await waitFor(async () => (await h.host.queue.pendingTriggers(SOURCE)).count === 0, 60_000);
    await h.host.runners[0]!.wake();
  }

  it('1,000 events with duplicates, reordering and dropped attempts leave the queue equal to Concur', async () => {
    await start({ duplicateRate: 0.2, reorder: 30, dropRate: 0.1 });
    const ids = Array.from({ length: 400 }, () => h.sandbox.admin.submit({ entries: 1 }).ID);
    for (const id of ids.slice(0, 150)) h.sandbox.admin.approve(id);
    for (const id of ids.slice(150, 230)) h.sandbox.admin.sendBack(id, 'Missing receipt');
    for (const id of ids.slice(230, 330)) h.sandbox.admin.edit(id, { name: `Edited ${id}` });
    for (const id of ids.slice(330, 370)) h.sandbox.admin.recall(id);
    for (const id of ids.slice(370, 390)) h.sandbox.admin.delete(id);
    const before = h.sandbox.calls();
    await settled();

    const counts = h.sandbox.events.counts();
    expect(counts.published, 'events published').to.be.at.least(1000);
    expect(counts.duplicated, 'duplicates delivered').to.be.greaterThan(0);
    expect(counts.dropped, 'attempts dropped and retried').to.be.greaterThan(0);
    const { concur, queue } = await compare();
    expect(queue).to.deep.equal(concur);
    expect(concur.length).to.be.greaterThan(100);
    expect(callsTo(h.sandbox.calls(), LIST_REPORTS) - callsTo(before, LIST_REPORTS), 'no poll was needed').to.equal(0);
  });

  it('events lost for 10 minutes are caught by the safety poll, counted as event drift, and the source falls back to polling', async () => {
    await start({});
    const first = h.sandbox.admin.submit({ entries: 1 });
    await settled();
    await h.cycle(); // the runner notes the pushes: events mode
    expect(h.host.runners[0]!.events!.status(new Date(h.sandbox.admin.now())).mode).to.equal('events');

    h.sandbox.events.pause(10);
    const lost = Array.from({ length: 5 }, () => h.sandbox.admin.submit({ entries: 1 }).ID);
    h.sandbox.admin.approve(first.ID);
    h.advance(11 * 60);
    await settled();
    expect(h.sandbox.events.counts().lost).to.be.at.least(6);
    expect((await compare()).queue).to.not.deep.equal((await compare()).concur);

    const report = (await h.cycle()).cycles[0]!;
    expect(report.eventDrift.missed).to.equal(lost.length);
    expect(report.eventDrift['completion-missed'] + report.eventDrift.reassigned).to.be.at.least(1);
    const { concur, queue } = await compare();
    expect(queue).to.deep.equal(concur);
    const status = h.host.runners[0]!.events!.status(new Date(h.sandbox.admin.now()));
    expect(status.mode).to.equal('polling');
    expect(status.reason).to.match(/^the safety poll found changes no push announced/);
  });
});
