import { expect } from 'chai';
import { formatCard } from '../../adapters/chat-console/console-notifier.js';
import { cardBlocks, cardText } from '../../adapters/chat-slack/block-kit.js';
import { approvalCard } from '../../adapters/chat-teams/adaptive-card.js';
import type { ActionResult, CardAction } from '../../core/index.js';
import { callsTo, type CallCounts, type DelegateSpec } from '../../plugins/concur/sandbox/index.js';
import { concurHarness, SOURCE, type ConcurHarness } from '../support/concur-harness.js';
import { connectAs } from '../support/concur-consent.js';

/**
 * Concur expense delegates (`delegates.notify`), against the sandbox over real HTTP with a real
 * SQLite queue: who gets a report's card besides its approver (a delegate who can approve and
 * receives approval e-mails, inside any temporary window), and a delegate approving from chat under
 * their own Concur token, checked fresh against Concur's delegate list at the click (docs/concur-api.md, Delegates).
 */

const PUBLIC_URL = 'https://approvals.example.test';
const SPEND_USER = 'GET /profile/spend/v4.1/Users/:id';
const APPROVE = 'PATCH /expensereports/v4/users/:userId/context/:contextType/reports/:reportId/approve';

type Act = Extract<CardAction, { type: 'act' }>;

describe('Concur actions: expense delegates get the card and act for the approver (sandbox, real HTTP)', function () {
  this.timeout(60_000);
  let h: ConcurHarness;
  afterEach(async () => h?.close());

  async function start(notify = true): Promise<void> {
    h = await concurHarness({
      http: true,
      config: { actions: ['approve', 'sendBack'], consent: { publicUrl: PUBLIC_URL }, delegates: { notify } },
    });
    await h.host.start();
  }

  const approvers = () => h.sandbox.admin.users().filter((u) => u.isApprover);
  const chat = (email: string) => ({ email, channel: 'chat', channelName: 'Chat' });
  const keyOf = (id: string) => `${SOURCE}:expense-report:${id}`;
  const local = (url: string) => {
    const u = new URL(url);
    return `${h.host.url!}${u.pathname}${u.search}`;
  };
  const delta = (before: CallCounts, key: string, status?: number) => callsTo(h.sandbox.calls(), key, status) - callsTo(before, key, status);

  /** Ann (the approver) and Bo (another approver, her would-be delegate), with Ann's delegates set as given. */
  function people(delegates: (bo: string) => DelegateSpec[]) {
    const [ann, bo] = approvers();
    h.sandbox.admin.setDelegates(ann!.loginId, delegates(bo!.loginId));
    return { ann: { ...ann!, email: ann!.email.toLowerCase() }, bo: { ...bo!, email: bo!.email.toLowerCase() } };
  }

  async function submitted(approver: string): Promise<string> {
    const report = h.sandbox.admin.submit({ approver, entries: 1 });
    await h.cycle();
    return report.ID;
  }

  function tokenOf(id: string, email: string, action = 'approve'): string {
    const card = h.notifier.for(email, keyOf(id)).at(-1)!.card;
    const button = card.actions.find((a): a is Act => a.type === 'act' && a.action === action);
    expect(button, `an ${action} button on ${JSON.stringify(card.actions)}`).to.not.equal(undefined);
    return button!.token!;
  }

  /** The delegate's first press asks them to connect; they connect as themselves in Concur. */
  async function connect(id: string, who: { email: string; loginId: string }): Promise<void> {
    const first = await h.host.actions.act(tokenOf(id, who.email), chat(who.email));
    expect(first.outcome, JSON.stringify(first)).to.equal('consent_needed');
    const steps = await connectAs(h.sandbox, (first as Extract<ActionResult, { outcome: 'consent_needed' }>).url, who.loginId, local);
    expect(steps.status, steps.html).to.equal(200);
  }

  it('sends the card to the approver and to their approving delegate, who connects and approves: Concur moves on, every card closes with the delegate note', async () => {
    await start();
    const { ann, bo } = people((bo) => [{ delegate: bo, canApprove: true, canReceiveApprovalEmail: true }]);
    const id = await submitted(ann.loginId);

    const annCards = h.notifier.for(ann.email, keyOf(id));
    const boCards = h.notifier.for(bo.email, keyOf(id));
    expect(annCards.map((m) => m.action)).to.deep.equal(['notify']);
    expect(boCards.map((m) => m.action)).to.deep.equal(['notify']);
    expect(annCards[0]!.card.onBehalfOf).to.equal(undefined);
    expect(boCards[0]!.card.onBehalfOf).to.equal(ann.displayName);
    // Each channel says so on the delegate's copy only.
    const line = `As delegate of ${ann.displayName}`;
    expect(JSON.stringify(cardBlocks(boCards[0]!.card))).to.contain(line);
    expect(cardText(boCards[0]!.card)).to.contain(`as delegate of ${ann.displayName}`);
    expect(JSON.stringify(approvalCard(boCards[0]!.card))).to.contain(line);
    expect(formatCard(boCards[0]!.card)).to.include(`  ${line}`);
    expect(JSON.stringify(cardBlocks(annCards[0]!.card))).to.not.contain('delegate');
    // The next cycle reads the cached list: no churn, no Spend User call.
    const quiet = h.sandbox.calls();
    await h.cycle();
    expect(delta(quiet, SPEND_USER)).to.equal(0);
    expect(h.notifier.for(bo.email, keyOf(id)).map((m) => m.action)).to.deep.equal(['notify']);

    await connect(id, bo);
    const before = h.sandbox.calls();
    const done = await h.host.actions.act(tokenOf(id, bo.email), chat(bo.email), { comment: 'Covering for Ann' });
    expect(done, JSON.stringify(done)).to.include({ outcome: 'done', action: 'approve' });
    expect(delta(before, SPEND_USER, 200)).to.equal(1); // the fresh canApprove check
    expect(delta(before, APPROVE, 204)).to.equal(1);
    expect(h.sandbox.admin.state().reports.find((r) => r.id === id)).to.include({ status: 'A_APPR' });

    await h.cycle();
    for (const email of [ann.email, bo.email]) {
      const close = h.notifier.for(email, keyOf(id)).at(-1)!;
      expect(close.action, email).to.equal('close');
      expect(close.card.outcome).to.equal('approved');
      expect(close.card.outcomeNote).to.match(
        new RegExp(`^Approved by ${bo.email.replace(/[.]/g, '\\.')} \\(delegate of ${ann.displayName}\\) in Chat at .*: “Covering for Ann”$`),
      );
    }
  });

  it('sends no card to a delegate without approval e-mails, nor to one whose temporary delegation has ended', async () => {
    await start();
    const [ann, bo, cy] = approvers();
    h.sandbox.admin.setDelegates(ann!.loginId, [{ delegate: bo!.loginId, canApprove: true, canReceiveApprovalEmail: false }]);
    h.sandbox.admin.setDelegates(bo!.loginId, [
      { delegate: cy!.loginId, canApprove: true, canReceiveApprovalEmail: true, from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z' },
    ]);
    const forAnn = await submitted(ann!.loginId);
    const forBo = await submitted(bo!.loginId);
    expect(h.notifier.for(ann!.email.toLowerCase(), keyOf(forAnn)).map((m) => m.action)).to.deep.equal(['notify']);
    expect(h.notifier.for(bo!.email.toLowerCase(), keyOf(forAnn))).to.deep.equal([]);
    expect(h.notifier.for(bo!.email.toLowerCase(), keyOf(forBo)).map((m) => m.action)).to.deep.equal(['notify']);
    expect(h.notifier.for(cy!.email.toLowerCase(), keyOf(forBo))).to.deep.equal([]);
  });

  it('answers not_yours when the approver took canApprove away after the card, and changes nothing in Concur', async () => {
    await start();
    const { ann, bo } = people((bo) => [{ delegate: bo, canApprove: true, canReceiveApprovalEmail: true }]);
    const id = await submitted(ann.loginId);
    await connect(id, bo);
    h.sandbox.admin.setDelegates(ann.loginId, [{ delegate: bo.loginId, canApprove: false, canReceiveApprovalEmail: true }]);

    const before = h.sandbox.calls();
    const answer = await h.host.actions.act(tokenOf(id, bo.email), chat(bo.email));
    expect(answer.outcome, JSON.stringify(answer)).to.equal('not_yours');
    expect(answer.message).to.contain(`${ann.displayName} no longer lets you approve for them in Concur`);
    expect(delta(before, APPROVE)).to.equal(0);
    expect(h.sandbox.admin.state().reports.find((r) => r.id === id)).to.include({ status: 'A_PEND', approverLoginID: ann.loginId });
    // The redraw after the refusal read the list anew: Bo's card closes, Ann's stays open.
    expect(h.notifier.for(bo.email, keyOf(id)).at(-1)!.card.outcome).to.equal('reassigned');
    expect(h.notifier.for(ann.email, keyOf(id)).map((m) => m.action)).to.deep.equal(['notify']);
  });

  it('changes nothing with delegates.notify off: no Spend User call, cards to the approver only', async () => {
    await start(false);
    const { ann, bo } = people((bo) => [{ delegate: bo, canApprove: true, canReceiveApprovalEmail: true }]);
    const before = h.sandbox.calls();
    const id = await submitted(ann.loginId);
    expect(delta(before, SPEND_USER)).to.equal(0);
    expect(h.notifier.for(ann.email, keyOf(id)).map((m) => m.action)).to.deep.equal(['notify']);
    expect(h.notifier.for(bo.email, keyOf(id))).to.deep.equal([]);
    expect(h.notifier.for(ann.email, keyOf(id))[0]!.card.actions.map((a) => a.type)).to.deep.equal(['link', 'act', 'act']);
  });
});
