import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ActionResult, CardAction } from '../../core/index.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { createLogger } from '../../core/host/logging.js';
import { ConcurApprovalSource } from '../../plugins/concur/concur-approval-source.js';
import { callsTo, startConcurSandbox, type CallCounts } from '../../plugins/concur/sandbox/index.js';
import { runCli } from '../support/cli.js';
import { concurHarness, SOURCE, type ConcurHarness } from '../support/concur-harness.js';
import { connectAs } from '../support/concur-consent.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';

/**
 * Approve and send back from chat as the approver, under their own Concur user token, against the
 * sandbox over real HTTP: connecting through the plugin's consent routes (the sandbox's consent
 * page driven with fetch), the stale-step guard, and the refusals (docs/concur-api.md 2.4, 4.4, 13).
 */

/** Where approvers' browsers reach the host: a TLS proxy in front of it, stood in for by rewriting the origin to the host's loopback URL. */
const PUBLIC_URL = 'https://approvals.example.test';
const GUARD = 'GET /expensereports/v4/users/:userId/context/:contextType/reportsToApprove';
const APPROVE = 'PATCH /expensereports/v4/users/:userId/context/:contextType/reports/:reportId/approve';
const SEND_BACK = 'PATCH /expensereports/v4/users/:userId/context/:contextType/reports/:reportId/sendBack';
const TOKEN = 'POST /oauth2/v0/token';

type Act = Extract<CardAction, { type: 'act' }>;

describe('Concur actions: approve and send back as the approver (sandbox, real HTTP)', function () {
  this.timeout(60_000);
  let h: ConcurHarness;
  afterEach(async () => h?.close());

  async function start(actions: readonly string[] = ['approve', 'sendBack']): Promise<void> {
    h = await concurHarness({ http: true, config: { actions, consent: { publicUrl: PUBLIC_URL } } });
    await h.host.start();
  }

  const user = (login: string) => h.sandbox.admin.users().find((u) => u.loginId === login)!;
  const emailOf = (login: string) => user(login).email.toLowerCase();
  const reportState = (id: string) => h.sandbox.admin.state().reports.find((r) => r.id === id)!;
  const chat = (email: string) => ({ email, channel: 'chat', channelName: 'Chat' });
  const consents = () => (h.host.sources.get(SOURCE) as ConcurApprovalSource).consents!;
  const local = (url: string) => {
    const u = new URL(url);
    return `${h.host.url!}${u.pathname}${u.search}`;
  };

  /** A report submitted in Concur and carded: its id, approver login and e-mail. */
  async function submitted(): Promise<{ id: string; login: string; email: string }> {
    const report = h.sandbox.admin.submit({ entries: 1 });
    await h.cycle();
    const login = report.ApproverLoginID!;
    return { id: report.ID, login, email: emailOf(login) };
  }

  function tokenOf(id: string, email: string, action: string): string {
    const card = h.notifier.for(email, `${SOURCE}:expense-report:${id}`).at(-1)!.card;
    const button = card.actions.find((a): a is Act => a.type === 'act' && a.action === action);
    expect(button, `an ${action} button on ${JSON.stringify(card.actions)}`).to.not.equal(undefined);
    return button!.token!;
  }

  /** Follows a consent URL as a browser would, signing in to the sandbox's consent page as `login`; the callback's answer. */
  async function connect(url: string, login: string): Promise<{ status: number; html: string }> {
    const steps = await connectAs(h.sandbox, url, login, local);
    expect(steps.authorize.searchParams.get('code_challenge_method')).to.equal('S256');
    expect(steps.authorize.searchParams.get('redirect_uri')).to.equal(`${PUBLIC_URL}/concur/${SOURCE}/callback`);
    return steps;
  }

  /** The first click answers consent_needed; the approver connects; the same button then works. */
  async function connected(r: { login: string; email: string; id: string }, action = 'approve'): Promise<void> {
    const first = await h.host.actions.act(tokenOf(r.id, r.email, action), chat(r.email), { comment: 'ok' });
    expect(first.outcome).to.equal('consent_needed');
    const answer = await connect((first as Extract<ActionResult, { outcome: 'consent_needed' }>).url, r.login);
    expect(answer.status, answer.html).to.equal(200);
    expect(answer.html).to.contain('Go back and press Approve or Send back again');
  }

  const delta = (before: CallCounts, key: string, status?: number) => callsTo(h.sandbox.calls(), key, status) - callsTo(before, key, status);

  it('asks for consent first, connects through the consent routes, then approves as the approver: one guard read and one write', async () => {
    await start();
    const r = await submitted();
    expect((await consents().list()).map((e) => e.email)).to.deep.equal([]);
    await connected(r);
    expect((await consents().list()).map((e) => e.email)).to.deep.equal([r.email]);

    await h.cycle(); // the host's own polling, done before counting
    const before = h.sandbox.calls();
    const done = await h.host.actions.act(tokenOf(r.id, r.email, 'approve'), chat(r.email), { comment: 'Thanks' });
    expect(done, JSON.stringify(done)).to.include({ outcome: 'done', action: 'approve' });
    expect((done as { correlationId?: string }).correlationId).to.be.a('string');
    // The user token did it: the sandbox answers a company token 403 on this URL.
    expect(delta(before, APPROVE, 204)).to.equal(1);
    expect(delta(before, GUARD, 200)).to.equal(1);
    expect(delta(before, TOKEN)).to.equal(0); // the access token from the code exchange is still good
    // Nothing else: the core closes the cards with the action's outcome without reading the report again.
    expect(h.sandbox.calls().total - before.total).to.equal(2);
    expect(reportState(r.id)).to.include({ status: 'A_APPR' });
    const metrics = await (await fetch(`${h.host.url!}/metrics`)).text();
    expect(metrics).to.contain(
      'approvals_hub_source_calls_total{source="acme",endpoint="PATCH /expensereports/v4/users/{userId}/context/MANAGER/reports/{reportId}/approve",status="204"} 1',
    );
    expect(metrics).to.match(
      /approvals_hub_source_calls_total\{source="acme",endpoint="GET \/expensereports\/v4\/users\/\{userId\}\/context\/MANAGER\/reportsToApprove",status="200"\} 1\n/,
    );

    await h.cycle();
    const close = h.notifier.for(r.email, `${SOURCE}:expense-report:${r.id}`).at(-1)!;
    expect(close.action).to.equal('close');
    expect(close.card.outcomeNote).to.match(new RegExp(`^Approved by ${r.email.replace(/[.]/g, '\\.')} in Chat at .*: “Thanks”$`));
  });

  it('sends back only with a comment, and refreshes a spent access token once (token + guard + write)', async () => {
    await start();
    const r = await submitted();
    await connected(r, 'sendBack');
    const refused = await h.host.actions.act(tokenOf(r.id, r.email, 'sendBack'), chat(r.email));
    expect(refused.outcome).to.equal('refused');

    h.advance(2 * 3600); // the access token from the exchange has expired
    await h.cycle(); // the host's own polling (and company token refresh), done before counting
    const before = h.sandbox.calls();
    const done = await h.host.actions.act(tokenOf(r.id, r.email, 'sendBack'), chat(r.email), { comment: 'Taxi receipt missing' });
    expect(done.outcome, JSON.stringify(done)).to.equal('done');
    expect([delta(before, TOKEN, 200), delta(before, GUARD, 200), delta(before, SEND_BACK, 204)]).to.deep.equal([1, 1, 1]);
    expect(reportState(r.id)).to.include({ status: 'A_RESU' });
    expect(h.sandbox.admin.report(r.id)!.LastComment).to.equal('Taxi receipt missing');
    await h.cycle();
    const close = h.notifier.for(r.email, `${SOURCE}:expense-report:${r.id}`).at(-1)!;
    expect(close.card.outcome).to.equal('sent_back');
    expect(close.card.outcomeNote).to.match(/: “Taxi receipt missing”$/);
  });

  it('does nothing on a report approved in Concur, reassigned or edited since the card, and says so', async () => {
    await start();
    const decided = await submitted();
    await connected(decided);
    const moved = await submitted();
    const edited = await submitted();
    h.sandbox.admin.approve(decided.id);
    const other = h.sandbox.admin.users().find((u) => u.isApprover && u.loginId !== moved.login)!;
    h.sandbox.admin.reassign(moved.id, other.loginId);
    h.sandbox.admin.edit(edited.id, { name: 'Q3 offsite (corrected)' });

    const before = h.sandbox.calls();
    const results = [
      await h.host.actions.act(tokenOf(decided.id, decided.email, 'approve'), chat(decided.email)),
      await h.host.actions.act(tokenOf(moved.id, moved.email, 'approve'), chat(moved.email)),
      await h.host.actions.act(tokenOf(edited.id, edited.email, 'approve'), chat(edited.email)),
    ];
    // Each approver connects once; only connected ones reach the guard.
    for (const [i, r] of [decided, moved, edited].entries()) {
      if (results[i]!.outcome === 'consent_needed') {
        expect((await connect((results[i] as { url: string }).url, r.login)).status).to.equal(200);
        results[i] = await h.host.actions.act(tokenOf(r.id, r.email, 'approve'), chat(r.email));
      }
    }
    expect(results.map((x) => x.outcome)).to.deep.equal(['already_decided', 'not_yours', 'changed']);
    expect(results[0]!.message).to.match(/already approved in Concur/);
    expect(results[1]!.message).to.contain(`now waits on ${other.displayName}`);
    expect(delta(before, APPROVE) + delta(before, SEND_BACK)).to.equal(0);
    expect(reportState(edited.id)).to.include({ status: 'A_PEND', approverLoginID: edited.login });
  });

  it('asks to connect again when the approver revoked the app in Concur (refresh refused)', async () => {
    await start();
    const r = await submitted();
    await connected(r);
    h.sandbox.admin.revokeConsent(r.login);
    h.advance(2 * 3600);
    const again = await h.host.actions.act(tokenOf(r.id, r.email, 'approve'), chat(r.email));
    expect(again.outcome).to.equal('consent_needed');
    expect((again as { url: string }).url).to.match(new RegExp(`^${PUBLIC_URL}/concur/${SOURCE}/connect\\?state=`));
    expect(await consents().list()).to.deep.equal([]);
    expect(reportState(r.id)).to.include({ status: 'A_PEND' });
  });

  it('stores nothing for a forged or replayed state, or a consent given by another Concur user', async () => {
    await start();
    const r = await submitted();
    const forged = await fetch(`${h.host.url!}/concur/${SOURCE}/callback?code=abc&state=${Buffer.from(r.email).toString('base64url')}.${'A'.repeat(32)}`);
    expect(forged.status).to.equal(400);
    expect(await forged.text()).to.contain('does not match a link we made');

    const first = (await h.host.actions.act(tokenOf(r.id, r.email, 'approve'), chat(r.email))) as { url: string };
    const someoneElse = h.sandbox.admin.users().find((u) => u.loginId !== r.login)!;
    const wrong = await connect(first.url, someoneElse.loginId);
    expect(wrong.status).to.equal(403);
    expect(wrong.html).to.contain('someone other than');
    expect(await consents().list()).to.deep.equal([]);
    // The state was used up by that callback: the same link does not start a connection again.
    expect((await fetch(local(first.url), { redirect: 'manual' })).status).to.equal(400);
  });

  it('lists connected approvers and forgets one with approvals-hub consent list / revoke, from another process', async () => {
    await start();
    const r = await submitted();
    await connected(r);
    const dir = mkdtempSync(join(tmpdir(), 'ah-consent-cli-'));
    const { source, env } = sandboxSource(h.sandbox, { id: SOURCE, config: { actions: ['approve', 'sendBack'], consent: { publicUrl: PUBLIC_URL } } });
    writeFileSync(join(dir, 'approvals.config.json'), JSON.stringify({ queue: { adapter: 'sqlite', config: { path: h.dbPath } }, sources: [source] }));
    const cli = async (...args: string[]) => {
      const result = await runCli([...args, '--config', join(dir, 'approvals.config.json')], { cwd: dir, env });
      expect(result.code, result.stderr).to.equal(0);
      return result.stdout;
    };
    expect(await cli('consent', 'list')).to.match(new RegExp(`^${SOURCE}\\t${r.email.replace(/[.]/g, '\\.')}\\tconnected 2026-`));
    expect(await cli('consent', 'revoke', r.email.toUpperCase())).to.contain(`forgot the Concur token of ${r.email}`);
    expect(await consents().list()).to.deep.equal([]);
    expect((await h.host.actions.act(tokenOf(r.id, r.email, 'approve'), chat(r.email))).outcome).to.equal('consent_needed');
    expect(await cli('consent', 'list')).to.contain('(nobody connected)');
  });

  it('lets an approver see and end their own connection through the core, whatever the channel: the next press asks to connect again', async () => {
    await start();
    const r = await submitted();
    expect(await h.host.actions.connections(r.email)).to.deep.equal([]);
    await connected(r);
    const [connection] = await h.host.actions.connections(r.email);
    expect(connection).to.include({ source: SOURCE });
    expect(Date.parse(connection!.connectedAt)).to.be.a('number').and.not.NaN;
    expect(await h.host.actions.disconnect(r.email, SOURCE)).to.equal(true);
    expect(await h.host.actions.connections(r.email)).to.deep.equal([]);
    expect((await h.host.actions.act(tokenOf(r.id, r.email, 'approve'), chat(r.email))).outcome).to.equal('consent_needed');
    expect(reportState(r.id)).to.include({ status: 'A_PEND' });
  });

  it("explains Concur's expenseRejectedComment rule: a report with expenses rejected in Concur is approved there, and nothing changes", async () => {
    await start();
    const r = await submitted();
    await connected(r);
    h.sandbox.admin.edit(r.id, { rejectedExpenses: true });
    const before = h.sandbox.calls();
    const answer = await h.host.actions.act(tokenOf(r.id, r.email, 'approve'), chat(r.email));
    expect(answer.outcome).to.equal('refused');
    expect(answer.message).to.match(/were rejected in Concur, and Concur then needs a comment about them: approve it in Concur/);
    expect(delta(before, APPROVE, 400)).to.equal(1);
    expect(reportState(r.id)).to.include({ status: 'A_PEND' });
  });

  it('refuses a deployment that turns actions on without consent.publicUrl', async () => {
    const sandbox = await startConcurSandbox(SMALL_COMPANY);
    try {
      const { source, env } = sandboxSource(sandbox, { config: { actions: ['approve'] } });
      const raw = { queue: { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-consent-cfg-')), 'q.db') } }, sources: [source] };
      let error: unknown;
      await Host.create(loadDeployment(undefined, { raw, env }), { logger: createLogger({ level: 'silent' }) }).then(
        (host) => host.stop(),
        (e: unknown) => (error = e),
      );
      expect(String(error)).to.match(/consent.*publicUrl/);
    } finally {
      await sandbox.close();
    }
  });

  it('leaves cards as they were without actions configured', async () => {
    await start([]);
    const r = await submitted();
    const card = h.notifier.for(r.email, `${SOURCE}:expense-report:${r.id}`).at(-1)!.card;
    expect(card.actions.map((a) => a.type)).to.deep.equal(['link']);
    expect(h.host.sources.get(SOURCE)!.capabilities.actions).to.deep.equal([]);
  });
});
