import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { ActionResult, ApprovalActions, CardAction } from '../../core/index.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { ManualClock, RecordingNotifier, ScriptedSource } from '../../core/testing/index.js';
import { DATABASE_URL, dropSchema, freshSchema } from '../soak/soak.js';

const ANN = { sourceUserId: 'ann', name: 'Ann', email: 'ann@example.test' };
const BOB = { sourceUserId: 'bob', name: 'Bob', email: 'bob@example.test' };
const chat = { email: ANN.email, channel: 'chat', channelName: 'Chat' };

type Act = Extract<CardAction, { type: 'act' }>;

/**
 * The core's action path end to end on a real SQLite queue: tokens on the buttons each recipient
 * gets, the checks between a click and the source, one click per card revision, and the outcome
 * on every card with an audit row.
 */
describe('approval actions: from a button to the source, through the core', function () {
  this.timeout(20_000);
  let clock: ManualClock;
  let source: ScriptedSource;
  let notifier: RecordingNotifier;
  let host: Host;
  let actions: ApprovalActions;

  async function start(sourceActions: readonly string[] = ['approve', 'sendBack']): Promise<void> {
    clock = new ManualClock('2026-03-02T09:00:00.000Z');
    source = new ScriptedSource('src', clock, 100, 'expense-report', sourceActions);
    notifier = new RecordingNotifier('chat');
    const queue = { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-actions-')), 'queue.db') } };
    host = await Host.create(loadDeployment(undefined, { raw: { queue, notifiers: [] }, env: {} }), {
      logger: pino({ level: 'silent' }),
      clock,
      notifiers: [notifier],
      sources: [source],
    });
    actions = host.actions;
    await host.runOnce();
  }

  /** The act buttons of the newest card `email` got for `externalId`. */
  function buttons(externalId: string, email = ANN.email): Act[] {
    const card = notifier.messages.filter((m) => m.recipient.email === email && m.card.approvalKey.endsWith(`:${externalId}`)).at(-1)?.card;
    return (card?.actions ?? []).filter((a): a is Act => a.type === 'act');
  }
  const tokenOf = (externalId: string, action: string, email = ANN.email) => buttons(externalId, email).find((b) => b.action === action)!.token!;

  async function submitted(externalId: string, approvers = [ANN]): Promise<void> {
    source.submit(externalId, { title: `Report ${externalId}`, approvers });
    clock.advance(60_000);
    await host.runOnce();
  }

  afterEach(async () => host?.stop());

  it('puts a signed token on each act button, one per recipient, and none when the source has no actions', async () => {
    await start();
    await submitted('r1', [ANN, BOB]);
    const annTokens = buttons('r1').map((b) => b.token);
    const bobTokens = buttons('r1', BOB.email).map((b) => b.token);
    expect(buttons('r1').map((b) => b.action)).to.deep.equal(['approve', 'sendBack']);
    expect(annTokens.every((t) => typeof t === 'string' && t.length > 40)).to.equal(true);
    expect(annTokens).to.not.deep.equal(bobTokens);
    await host.stop();

    await start([]);
    await submitted('r2');
    const card = notifier.messages.at(-1)!.card;
    expect(card.actions.map((a) => a.type)).to.deep.equal(['link']);
  });

  it('approves as the approver: the source acts once, every card shows who acted where, and the audit log records it', async () => {
    await start();
    await submitted('r1');
    const result = await actions.act(tokenOf('r1', 'approve'), chat);
    expect(result).to.include({ outcome: 'done', action: 'approve' });
    expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'approve', by: ANN.email, comment: undefined }]);
    await host.runOnce();
    const close = notifier.messages.filter((m) => m.action === 'close').at(-1)!;
    expect(close.card.outcome).to.equal('approved');
    expect(close.card.outcomeNote).to.equal('Approved by ann@example.test in Chat at 2026-03-02 09:01 UTC');
    const [audit] = await host.queue.listAudit(5);
    expect(audit).to.include({ actor: ANN.email, action: 'action.approve', key: close.card.approvalKey });
    expect(JSON.parse(audit!.detail!)).to.include({ channel: 'chat', comment: null });
  });

  it('sends back only with a comment, and the card carries the comment', async () => {
    await start();
    await submitted('r1');
    const refused = await actions.act(tokenOf('r1', 'sendBack'), chat);
    expect(refused.outcome).to.equal('refused');
    expect(source.acted).to.deep.equal([]);
    const done = await actions.act(tokenOf('r1', 'sendBack'), chat, { comment: 'Receipt for the taxi is missing' });
    expect(done.outcome).to.equal('done');
    await host.runOnce();
    const close = notifier.messages.filter((m) => m.action === 'close').at(-1)!;
    expect(close.card.outcome).to.equal('sent_back');
    expect(close.card.outcomeNote).to.match(/^Sent back by ann@example.test in Chat at .*: “Receipt for the taxi is missing”$/);
  });

  it('refuses a forged, a foreign, a replayed and an expired button without calling the source', async () => {
    await start();
    await submitted('r1');
    await submitted('r2');
    const token = tokenOf('r1', 'approve');
    const [payload, mac] = token.split('.') as [string, string];
    const forged = `${Buffer.from(Buffer.from(payload, 'base64url').toString().replace('"approve"', '"sendBack"')).toString('base64url')}.${mac}`;
    const results: ActionResult[] = [
      await actions.act(forged, chat),
      await actions.act('garbage', chat),
      await actions.act(token, { email: BOB.email, channel: 'chat' }),
    ];
    expect(results.map((r) => r.outcome)).to.deep.equal(['refused', 'refused', 'not_yours']);
    expect(source.calls.act).to.equal(0);

    expect((await actions.act(token, chat)).outcome).to.equal('done');
    const replay = await actions.act(token, chat);
    expect(replay.outcome).to.equal('already_decided');
    expect(source.calls.act).to.equal(1);

    clock.advance(31 * 86_400_000);
    const expired = await actions.act(tokenOf('r2', 'approve'), chat);
    expect(expired).to.include({ outcome: 'refused' });
    expect(expired.message).to.match(/expired/);
    expect(source.calls.act).to.equal(1);
  });

  it('refuses a stale card: changed, approved elsewhere, or reassigned between card and click', async () => {
    await start();
    await submitted('changed');
    await submitted('decided');
    await submitted('moved');
    source.modify('changed', 'Report changed (v2)');
    source.complete('decided', 'approved');
    source.reassign('moved', [BOB]);
    // No cycle between: the source's own re-read catches what the queue has not seen yet.
    expect((await actions.act(tokenOf('changed', 'approve'), chat)).outcome).to.equal('changed');
    expect((await actions.act(tokenOf('decided', 'approve'), chat)).outcome).to.equal('already_decided');
    expect((await actions.act(tokenOf('moved', 'approve'), chat)).outcome).to.equal('not_yours');
    expect(source.acted).to.deep.equal([]);
    // And each of those cards was redrawn at once, without waiting for a poll.
    await host.drain();
    const last = (id: string) => notifier.messages.filter((m) => m.recipient.email === ANN.email && m.card.approvalKey.endsWith(`:${id}`)).at(-1)!;
    expect(last('changed').card.title).to.equal('Report changed (v2)');
    expect(last('decided').card.outcome).to.equal('approved');
    expect(last('moved').card.outcome).to.equal('reassigned');
    // The core's own check, once the queue knows: the old card's button is for an older revision.
    expect((await actions.act(buttons('changed').at(0)!.token!, chat)).outcome).to.equal('done');
  });

  it('asks for consent first, and lets the same button act once consent is given', async () => {
    await start();
    await submitted('r1');
    source.needsConsent.add(ANN.email);
    const first = await actions.act(tokenOf('r1', 'approve'), chat);
    expect(first.outcome).to.equal('consent_needed');
    expect(first)
      .to.have.property('url')
      .that.matches(/^https:\/\/consent\.example\.test\//);
    source.needsConsent.clear();
    expect((await actions.act(tokenOf('r1', 'approve'), chat)).outcome).to.equal('done');
  });

  it('lets one of two simultaneous clicks on a card through: the source is called once', async () => {
    await start();
    await submitted('r1');
    const token = tokenOf('r1', 'approve');
    const results = await Promise.all([actions.act(token, chat), actions.act(token, { ...chat, channel: 'web' }), actions.act(token, chat)]);
    expect(results.filter((r) => r.outcome === 'done')).to.have.length(1);
    expect(results.filter((r) => r.outcome !== 'done').map((r) => r.outcome)).to.satisfy((o: string[]) =>
      o.every((x) => x === 'in_progress' || x === 'already_decided'),
    );
    expect(source.calls.act).to.equal(1);
  });

  it('counts each action by source, action, channel and outcome', async () => {
    await start();
    await submitted('r1');
    await actions.act('garbage', chat);
    await actions.act(tokenOf('r1', 'approve'), chat);
    const text = await host.metrics.render();
    expect(text).to.match(/approvals_hub_actions_total\{source="src",action="approve",outcome="done",channel="chat"\} 1/);
    expect(text).to.match(/approvals_hub_actions_total\{source="unknown",action="unknown",outcome="refused",channel="chat"\} 1/);
  });
});

/**
 * Two hosts on one PostgreSQL schema, as a scaled-out deployment runs: the same button pressed
 * on both at once (a double click that two load-balanced requests carry) reaches the source once.
 */
describe('approval actions across hosts (two hosts, one PostgreSQL schema)', function () {
  this.timeout(30_000);
  let schema: string;
  const hosts: Host[] = [];

  after(async () => {
    for (const h of hosts) await h.stop().catch(() => undefined);
    await dropSchema(DATABASE_URL, schema).catch(() => undefined);
  });

  it('calls the source once for simultaneous clicks on both hosts, and the second host refuses the replay', async () => {
    schema = freshSchema('ah_actions');
    const clock = new ManualClock('2026-03-02T09:00:00.000Z');
    const source = new ScriptedSource('src', clock, 100, 'expense-report', ['approve', 'sendBack']);
    const notifier = new RecordingNotifier('chat');
    const raw = {
      queue: { adapter: 'postgres', config: { connectionString: DATABASE_URL, schema } },
      notifiers: [],
      credentials: { key: { env: 'AH_TEST_ACTIONS_KEY' } },
    };
    const env = { AH_TEST_ACTIONS_KEY: randomBytes(32).toString('base64') };
    for (let i = 0; i < 2; i++) {
      hosts.push(
        await Host.create(loadDeployment(undefined, { raw, env }), { logger: pino({ level: 'silent' }), clock, notifiers: [notifier], sources: [source] }),
      );
    }
    source.submit('r1', { title: 'Report r1', approvers: [ANN] });
    await hosts[0]!.runOnce();
    const token = (notifier.messages.at(-1)!.card.actions.find((a) => a.type === 'act' && a.action === 'approve') as Act).token!;

    const results = await Promise.all(hosts.flatMap((h) => [h.actions.act(token, chat), h.actions.act(token, chat)]));
    expect(results.filter((r) => r.outcome === 'done')).to.have.length(1);
    expect(source.calls.act).to.equal(1);
    // The token the first host made is good on the second (one key, in the shared credential store).
    expect((await hosts[1]!.actions.act(token, chat)).outcome).to.equal('already_decided');
    expect(source.calls.act).to.equal(1);
  });
});
