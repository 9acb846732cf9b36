import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ACT_ACTION, ACT_COMMENT_ACTION, cardBlocks } from '../../adapters/chat-slack/block-kit.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import type { Card } from '../../core/index.js';
import { ManualClock, ScriptedSource } from '../../core/testing/index.js';
import { FAKE_TEAM_ID, FakeSlack, slackSignatureHeaders, type FakeSlackMessage } from '../support/fake-slack.js';

const SECRET = 'fake-signing-secret-for-actions-0001';
const ANN = { sourceUserId: 'ann', name: 'Ann', email: 'ann@example.test' };
const BOB = { sourceUserId: 'bob', name: 'Bob', email: 'bob@example.test' };
const SLACK_ANN = { id: 'U0ANN00001', email: ANN.email, name: 'Ann' };
const SLACK_BOB = { id: 'U0BOB00001', email: BOB.email, name: 'Bob' };

type Json = Record<string, unknown>;

/** The buttons of a Block Kit message, by their text. */
function buttonsOf(message: FakeSlackMessage | undefined): Json[] {
  return (message?.blocks ?? []).flatMap((b) => {
    const block = b as Json;
    return block.type === 'actions' ? (block.elements as Json[]) : [];
  });
}

function button(message: FakeSlackMessage | undefined, label: string): Json {
  const found = buttonsOf(message).find((b) => (b.text as Json).text === label);
  if (!found) throw new Error(`no "${label}" button on ${JSON.stringify(message?.blocks)}`);
  return found;
}

/**
 * Acting from Slack end to end: a real host (SQLite queue, the real Slack plugin, a scripted source
 * that acts) serving the Slack callbacks on loopback, and a fake Slack Web API that records what the
 * plugin sends. Clicks are built as Slack sends them (a signed form with a `payload`), from the
 * buttons of the card the plugin actually posted.
 */
describe('Slack: approve and send back from a card (real host, fake Slack on loopback)', function () {
  this.timeout(30_000);
  let fake: FakeSlack;
  let clock: ManualClock;
  let source: ScriptedSource;
  let host: Host;
  let seq = 0;

  /** A host with one Slack notifier and the source, with `externalIds` submitted to Ann and their cards posted. */
  async function start(...externalIds: string[]): Promise<void> {
    fake = await FakeSlack.start();
    fake.addUser(SLACK_ANN);
    fake.addUser(SLACK_BOB);
    clock = new ManualClock('2026-03-02T09:00:00.000Z');
    source = new ScriptedSource('src', clock, 100, 'expense-report', ['approve', 'sendBack']);
    const raw = {
      queue: { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-slack-act-')), 'queue.db') } },
      notifiers: [
        {
          id: 'slack',
          plugin: 'slack',
          config: { botToken: { env: 'AH_SLACK_TOKEN' }, signingSecret: { env: 'AH_SLACK_SIGNING' }, apiUrl: fake.apiUrl, teamId: FAKE_TEAM_ID },
        },
      ],
      http: { host: '127.0.0.1', port: 0 },
    };
    host = await Host.create(loadDeployment(undefined, { raw, env: { AH_SLACK_TOKEN: FakeSlack.TOKEN, AH_SLACK_SIGNING: SECRET } }), {
      logger: pino({ level: 'silent' }),
      clock,
      sources: [source],
    });
    for (const id of externalIds) source.submit(id, { title: `Report ${id}`, approvers: [ANN] });
    clock.advance(60_000);
    // One cycle and its deliveries before the loops start, so every card is in Slack already.
    await host.runOnce();
    await host.start();
  }

  afterEach(async () => {
    await host?.stop();
    await fake?.close();
  });

  /** Ann's card about `externalId`, as the fake holds it now. */
  function cardOf(externalId: string): FakeSlackMessage {
    const found = fake.messagesTo(SLACK_ANN.id).find((m) => String(m.metadata?.event_payload.approval_key).endsWith(`:${externalId}`));
    if (!found) throw new Error(`no card about ${externalId}`);
    return found;
  }

  /** POSTs an interaction payload as Slack does: form-encoded `payload`, signed at the host's clock (or with `secret`). */
  async function post(payload: Json, secret = SECRET): Promise<{ status: number; body: string }> {
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const headers = { 'content-type': 'application/x-www-form-urlencoded', ...slackSignatureHeaders(secret, body, Math.floor(clock.now().getTime() / 1000)) };
    const res = await fetch(`${host.url}/slack/interactivity`, { method: 'POST', headers, body });
    return { status: res.status, body: await res.text() };
  }

  /** A `block_actions` payload (docs.slack.dev/reference/interaction-payloads/block_actions-payload) for a click on `pressed` in `card`. */
  function click(user: { id: string }, card: FakeSlackMessage, pressed: Json): { payload: Json; responseUrl: string } {
    const responseUrl = fake.responseUrl(`actions/${FAKE_TEAM_ID}/${++seq}/click`);
    const channel = fake.dmChannelOf(SLACK_ANN.id);
    const payload = {
      type: 'block_actions',
      user: { id: user.id, username: user.id.toLowerCase(), name: user.id.toLowerCase(), team_id: FAKE_TEAM_ID },
      api_app_id: 'A0FAKEAPP1',
      token: 'legacy-verification-token',
      container: { type: 'message', message_ts: card.ts, channel_id: channel, is_ephemeral: false },
      trigger_id: fake.triggerId(),
      team: { id: FAKE_TEAM_ID, domain: 'fake' },
      enterprise: null,
      is_enterprise_install: false,
      channel: { id: channel, name: 'directmessage' },
      message: { type: 'message', ts: card.ts, text: card.text, blocks: card.blocks },
      response_url: responseUrl,
      actions: [{ ...pressed, block_id: 'b1', action_ts: `${Math.floor(clock.now().getTime() / 1000)}.${seq}` }],
    };
    return { payload, responseUrl };
  }

  /**
   * A `view_submission` payload (docs.slack.dev/reference/interaction-payloads/view-interactions-payload)
   * of the modal opened last, with `comment` typed into its input.
   */
  function submit(user: { id: string }, comment: string): Json {
    const opened = fake.modals.at(-1)!.view;
    return {
      type: 'view_submission',
      team: { id: FAKE_TEAM_ID, domain: 'fake' },
      user: { id: user.id, username: user.id.toLowerCase(), name: user.id.toLowerCase(), team_id: FAKE_TEAM_ID },
      api_app_id: 'A0FAKEAPP1',
      token: 'legacy-verification-token',
      trigger_id: fake.triggerId(),
      view: {
        id: 'V00000001',
        team_id: FAKE_TEAM_ID,
        type: 'modal',
        title: opened.title,
        blocks: opened.blocks,
        private_metadata: opened.private_metadata,
        callback_id: opened.callback_id,
        state: { values: { comment: { comment: { type: 'plain_text_input', value: comment } } } },
        hash: '1.fake',
      },
      response_urls: [],
      is_enterprise_install: false,
      enterprise: null,
    };
  }

  /** The reply posted to `responseUrl`, once there is one. */
  const replyTo = (responseUrl: string): Promise<Json> => fake.until(() => fake.responses.find((r) => responseUrl.endsWith(r.path))?.body as Json | undefined);

  /** Ann's card about `externalId` once `chat.update` has redrawn it with a closing note matching `note`. */
  const redrawn = (externalId: string, note: RegExp): Promise<FakeSlackMessage> =>
    fake.until(() => {
      const card = cardOf(externalId);
      return card.edited && note.test(JSON.stringify(card.blocks)) ? card : undefined;
    });

  it('puts Approve (primary), Approve with comment… (same token) and Send Back on the card, each carrying its token', async () => {
    await start('r1');
    const card = cardOf('r1');
    const approve = button(card, 'Approve');
    const sendBack = button(card, 'Send Back');
    expect(buttonsOf(card).map((b) => (b.text as Json).text)).to.deep.equal(['View Expense Report', 'Approve', 'Approve with comment…', 'Send Back']);
    const withComment = button(card, 'Approve with comment…');
    expect(withComment).to.include({ action_id: `${ACT_COMMENT_ACTION}.approve`, value: approve.value });
    expect(withComment).to.not.have.property('style');
    expect(approve).to.include({ action_id: `${ACT_ACTION}.approve`, style: 'primary' });
    expect(sendBack).to.include({ action_id: `${ACT_ACTION}.sendBack` });
    expect(sendBack).to.not.have.property('style');
    for (const b of [approve, sendBack]) expect(b.value).to.be.a('string').with.length.within(41, 2000);
    expect(approve.value).to.not.equal(sendBack.value);
    expect(button(card, 'View Expense Report')).to.include({ url: 'https://example.test/r1', action_id: 'approvals.open' });
  });

  it('acknowledges an Approve click before acting, then approves once, tells the clicker and redraws the card with who approved', async () => {
    await start('r1');
    const release = fake.hold('users.info');
    const { payload, responseUrl } = click(SLACK_ANN, cardOf('r1'), button(cardOf('r1'), 'Approve'));
    const answered = await post(payload);
    // Slack has not even said who clicked yet: the acknowledgement did not wait for the action.
    expect(answered.status).to.equal(200);
    expect(source.calls.act).to.equal(0);
    release();

    const reply = await replyTo(responseUrl);
    expect(reply).to.include({ response_type: 'ephemeral', replace_original: false, text: 'Approved.' });
    expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'approve', by: ANN.email, comment: undefined }]);
    const card = await redrawn('r1', /Approved by ann@example\.test in Slack at 2026-03-02 09:01 UTC/);
    expect(buttonsOf(card)).to.deep.equal([]);
    expect(JSON.stringify(card.blocks)).to.include('✅ Approved');
    expect(fake.callsTo('users.info').map((c) => c.args.user)).to.deep.equal([SLACK_ANN.id]);
  });

  it('asks for a comment in a modal before sending back, refuses an empty one, and sends back with the comment', async () => {
    await start('r1');
    const { payload, responseUrl } = click(SLACK_ANN, cardOf('r1'), button(cardOf('r1'), 'Send Back'));
    expect((await post(payload)).status).to.equal(200);
    const { triggerId, view } = await fake.until(() => fake.modals[0]);
    expect(triggerId).to.equal(payload.trigger_id);
    expect(view).to.include({ type: 'modal', callback_id: 'approvals.comment' });
    const input = (view.blocks as Json[]).find((b) => b.type === 'input')!;
    expect(input).to.include({ block_id: 'comment' });
    expect(input).to.not.have.property('optional');
    expect(input.element).to.include({ type: 'plain_text_input', action_id: 'comment', multiline: true });
    expect(JSON.stringify(view.blocks)).to.include('Report r1');
    expect(source.calls.act).to.equal(0);

    const empty = await post(submit(SLACK_ANN, '   '));
    expect(empty.status).to.equal(200);
    expect(JSON.parse(empty.body)).to.deep.equal({ response_action: 'errors', errors: { comment: 'Write a comment for the requester.' } });
    expect(source.calls.act).to.equal(0);

    const sent = await post(submit(SLACK_ANN, 'The taxi receipt is missing'));
    expect(sent).to.deep.equal({ status: 200, body: '' });
    expect(await replyTo(responseUrl)).to.include({ text: 'Sent back.' });
    expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'sendBack', by: ANN.email, comment: 'The taxi receipt is missing' }]);
    await redrawn('r1', /Sent back by ann@example\.test in Slack at .*: “The taxi receipt is missing”/);
  });

  it('approves with an optional comment through a modal: the comment reaches the source and the card', async () => {
    await start('r1');
    const { payload, responseUrl } = click(SLACK_ANN, cardOf('r1'), button(cardOf('r1'), 'Approve with comment…'));
    expect((await post(payload)).status).to.equal(200);
    const { triggerId, view } = await fake.until(() => fake.modals[0]);
    expect(triggerId).to.equal(payload.trigger_id);
    expect(view).to.deep.include({
      type: 'modal',
      callback_id: 'approvals.comment.optional',
      title: { type: 'plain_text', text: 'Approve with comment', emoji: false },
      submit: { type: 'plain_text', text: 'Approve', emoji: false },
    });
    const input = (view.blocks as Json[]).find((b) => b.type === 'input')!;
    expect(input).to.include({ block_id: 'comment', optional: true });
    expect(input.element).to.include({ type: 'plain_text_input', action_id: 'comment', multiline: true });
    expect(JSON.stringify(view.blocks)).to.include('Report r1');
    expect(source.calls.act).to.equal(0);

    const sent = await post(submit(SLACK_ANN, '  Thanks, all in order '));
    expect(sent).to.deep.equal({ status: 200, body: '' });
    expect(await replyTo(responseUrl)).to.include({ text: 'Approved.' });
    expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'approve', by: ANN.email, comment: 'Thanks, all in order' }]);
    await redrawn('r1', /Approved by ann@example\.test in Slack at .*: “Thanks, all in order”/);
  });

  it('approves without a comment when the optional comment is left empty', async () => {
    await start('r1');
    const { payload, responseUrl } = click(SLACK_ANN, cardOf('r1'), button(cardOf('r1'), 'Approve with comment…'));
    await post(payload);
    await fake.until(() => fake.modals[0]);
    const sent = await post(submit(SLACK_ANN, '   '));
    expect(sent).to.deep.equal({ status: 200, body: '' });
    expect(await replyTo(responseUrl)).to.include({ text: 'Approved.' });
    expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'approve', by: ANN.email, comment: undefined }]);
    const card = await redrawn('r1', /Approved by ann@example\.test in Slack at 2026-03-02 09:01 UTC/);
    expect(JSON.stringify(card.blocks)).to.not.include('“');
  });

  it('does not open the optional-comment modal for someone other than the approver, and acts on nothing', async () => {
    await start('r1');
    const { payload, responseUrl } = click(SLACK_BOB, cardOf('r1'), button(cardOf('r1'), 'Approve with comment…'));
    await post(payload);
    expect(await replyTo(responseUrl))
      .to.have.property('text')
      .that.matches(/sent to someone else/);
    expect(fake.modals).to.deep.equal([]);
    expect(source.calls.act).to.equal(0);
  });

  it('does not act for a Slack user other than the approver, whatever the button says', async () => {
    await start('r1');
    const approve = click(SLACK_BOB, cardOf('r1'), button(cardOf('r1'), 'Approve'));
    const sendBack = click(SLACK_BOB, cardOf('r1'), button(cardOf('r1'), 'Send Back'));
    await post(approve.payload);
    await post(sendBack.payload);
    expect(await replyTo(approve.responseUrl))
      .to.have.property('text')
      .that.matches(/sent to someone else/);
    expect(await replyTo(sendBack.responseUrl))
      .to.have.property('text')
      .that.matches(/sent to someone else/);
    expect(fake.modals).to.deep.equal([]);
    expect(source.calls.act).to.equal(0);
    expect(buttonsOf(cardOf('r1'))).to.have.length(4);
  });

  it('acts on nothing when Slack cannot say who clicked (users.info fails), and says so', async () => {
    await start('r1');
    fake.fail({ kind: 'http', status: 503 }, { methods: ['users.info'] });
    const { payload, responseUrl } = click(SLACK_ANN, cardOf('r1'), button(cardOf('r1'), 'Approve'));
    expect((await post(payload)).status).to.equal(200);
    expect(await replyTo(responseUrl))
      .to.have.property('text')
      .that.matches(/try again/);
    expect(source.calls.act).to.equal(0);
  });

  it('refuses a click with a forged signature with 401 and acts on nothing', async () => {
    await start('r1');
    const forged = click(SLACK_ANN, cardOf('r1'), button(cardOf('r1'), 'Approve'));
    expect((await post(forged.payload, 'not-the-signing-secret')).status).to.equal(401);
    // A genuine click after it is the only one acted on.
    const genuine = click(SLACK_ANN, cardOf('r1'), button(cardOf('r1'), 'Approve'));
    expect((await post(genuine.payload)).status).to.equal(200);
    await replyTo(genuine.responseUrl);
    expect(source.calls.act).to.equal(1);
    expect(fake.responses.map((r) => r.path)).to.deep.equal([new URL(genuine.responseUrl).pathname]);
  });

  it('answers a replayed button after the approval is done with "already", without calling the source again', async () => {
    await start('r1');
    const pressed = button(cardOf('r1'), 'Approve');
    const first = click(SLACK_ANN, cardOf('r1'), pressed);
    await post(first.payload);
    expect(await replyTo(first.responseUrl)).to.include({ text: 'Approved.' });
    const again = click(SLACK_ANN, cardOf('r1'), pressed);
    await post(again.payload);
    expect(await replyTo(again.responseUrl))
      .to.have.property('text')
      .that.matches(/already/i);
    expect(source.calls.act).to.equal(1);
  });

  it('offers the consent link when the source needs the approver to connect first', async () => {
    await start('r1');
    source.needsConsent.add(ANN.email);
    const { payload, responseUrl } = click(SLACK_ANN, cardOf('r1'), button(cardOf('r1'), 'Approve'));
    await post(payload);
    const reply = await replyTo(responseUrl);
    expect(reply).to.include({ response_type: 'ephemeral', text: 'Connect your account first.' });
    const connect = (reply.blocks as Json[]).flatMap((b) => (b.type === 'actions' ? (b.elements as Json[]) : []));
    expect(connect).to.have.length(1);
    expect(connect[0]).to.include({ type: 'button', url: `https://consent.example.test/connect?user=${encodeURIComponent(ANN.email)}` });
    expect(source.acted).to.deep.equal([]);
    expect(buttonsOf(cardOf('r1'))).to.have.length(4);
  });
});

describe('Slack cards with act buttons (block-kit)', () => {
  const base: Card = {
    approvalKey: 'src:expense-report:r1',
    kind: 'expense-report',
    revision: 1,
    title: 'Report r1',
    requester: { name: 'Requester' },
    fields: [],
    lineItems: [],
    flags: [],
    actions: [
      { type: 'link', label: 'View Expense Report', url: 'https://example.test/r1' },
      { type: 'act', label: 'Approve', action: 'approve', style: 'primary', token: 'a.b' },
      { type: 'act', label: 'Send Back', action: 'sendBack', token: 'c.d' },
    ],
  };
  const elements = (card: Card) => cardBlocks(card).flatMap((b) => (b.type === 'actions' ? b.elements : []));

  it('leaves out an act button without a token or with one longer than a button value holds (2000)', () => {
    const card = {
      ...base,
      actions: [
        base.actions[0]!,
        { type: 'act' as const, label: 'Approve', action: 'approve', token: undefined },
        { type: 'act' as const, label: 'Send Back', action: 'sendBack', token: 'x'.repeat(2001) },
      ],
    };
    expect(elements(card).map((e) => e.action_id)).to.deep.equal(['approvals.open']);
  });

  it('shows the outcome note under the outcome and no buttons once there is an outcome', () => {
    const blocks = cardBlocks({ ...base, outcome: 'approved', outcomeNote: 'Approved by ann@example.test in Slack at 2026-03-02 09:01 UTC' });
    expect(blocks.slice(1, 3)).to.deep.equal([
      { type: 'section', text: { type: 'plain_text', text: '✅ Approved', emoji: false } },
      { type: 'context', elements: [{ type: 'plain_text', text: 'Approved by ann@example.test in Slack at 2026-03-02 09:01 UTC', emoji: false }] },
    ]);
    expect(blocks.some((b) => b.type === 'actions')).to.equal(false);
  });
});
