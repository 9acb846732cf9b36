import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Card, Logger } from '../../core/index.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { ManualClock, ScriptedSource } from '../../core/testing/index.js';
import { ACT_VERB, CONNECT_TITLE, REFRESH_VERB, approvalCard } from '../../adapters/chat-teams/adaptive-card.js';
import { BotConnector, PersonalConversations, TeamsDirectory, TeamsNotifier } from '../../adapters/chat-teams/teams-notifier.js';
import { TeamsRoutes, botFrameworkAuthenticator } from '../../adapters/chat-teams/teams-routes.js';
import { cardActionInvoke, startFakeBotConnector, validInvokeResponse, type FakeBotConnector, type FakeTeamsUser } from '../support/fake-bot-connector.js';

const TENANT = '6e3b0f5c-1f0a-4c52-9a6e-3d8f3c0e9a11';
const APP_ID = '0f8b7a52-93c1-4d7e-bb6a-2a3c4d5e6f70';
const BOT_TOKEN = 'fake-bot-token';

const ANN: FakeTeamsUser = { id: '29:1ann-7Qx9', aadObjectId: '11111111-aaaa-4aaa-8aaa-111111111111', email: 'ann@example.test', name: 'Ann Approver' };
const BOB: FakeTeamsUser = { id: '29:1bob-3Kp2', aadObjectId: '22222222-bbbb-4bbb-8bbb-222222222222', email: 'bob@example.test', name: 'Bob Boss' };
const APPROVER = { sourceUserId: 'ann', name: 'Ann Approver', email: ANN.email };

const silent = (): Logger => pino({ level: 'silent' });

type Json = Record<string, unknown>;

/** Every action object of a card, ShowCards' inner cards included, depth first. */
function actionsOf(card: unknown): Json[] {
  if (typeof card !== 'object' || card === null) return [];
  const c = card as Json;
  const own = [...((c.actions as Json[] | undefined) ?? []), ...((c.body as Json[] | undefined) ?? []).flatMap((e) => (e.actions as Json[] | undefined) ?? [])];
  const items = ((c.body as Json[] | undefined) ?? []).flatMap((e) => (e.type === 'Container' ? actionsOf({ body: e.items }) : []));
  return [...own, ...own.flatMap((a) => (a.type === 'Action.ShowCard' ? actionsOf(a.card) : [])), ...items];
}

/** Every TextBlock text of a card, depth first. */
function texts(element: unknown): string[] {
  if (Array.isArray(element)) return element.flatMap(texts);
  if (typeof element !== 'object' || element === null) return [];
  const e = element as Json;
  if (e.type === 'TextBlock' && typeof e.text === 'string') return [e.text];
  return [...texts(e.body), ...texts(e.items)];
}

/**
 * Acting from Teams end to end: a real Host on a SQLite queue with a source that acts, the Teams
 * notifier posting cards to the fake Bot Connector on loopback, and the bot's messaging endpoint on
 * loopback receiving `adaptiveCard/action` invokes signed like the channel's.
 */
describe('Teams: acting on an approval from its card (Universal Actions)', function () {
  this.timeout(30_000);
  let fake: FakeBotConnector;
  let clock: ManualClock;
  let source: ScriptedSource;
  let host: Host;
  let app: FastifyInstance;
  let endpoint: string;

  beforeEach(async () => {
    fake = await startFakeBotConnector({ tenantId: TENANT, users: [ANN, BOB], botToken: BOT_TOKEN });
    clock = new ManualClock('2026-03-02T09:00:00.000Z');
    source = new ScriptedSource('src', clock, 100, 'expense-report', ['approve', 'sendBack']);
    const connector = new BotConnector(fake.serviceUrl, async () => BOT_TOKEN);
    const directory = new TeamsDirectory(connector, { [ANN.email]: ANN.id, [BOB.email]: BOB.id }, undefined, clock);
    const conversations = new PersonalConversations(connector, { appId: APP_ID, tenantId: TENANT });
    const notifier = new TeamsNotifier('teams', { appId: APP_ID, tenantId: TENANT }, connector, directory, silent(), conversations);
    const queue = { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-teams-act-')), 'queue.db') } };
    host = await Host.create(loadDeployment(undefined, { raw: { queue, notifiers: [] }, env: {} }), {
      logger: silent(),
      clock,
      notifiers: [notifier],
      sources: [source],
    });
    const authenticate = botFrameworkAuthenticator({
      appId: APP_ID,
      appPassword: 'not-used-for-verification',
      appType: 'SingleTenant',
      tenantId: TENANT,
      openIdMetadataUrl: fake.openIdMetadataUrl,
    });
    const routes = new TeamsRoutes(
      'teams',
      { callbackPath: '/teams', tenantId: TENANT, serviceUrl: fake.serviceUrl },
      authenticate,
      directory,
      conversations,
      connector,
      host.lookupService,
      host.actions,
      silent(),
    );
    app = Fastify();
    await app.register(async (scope) => routes.register(scope));
    endpoint = `${await app.listen({ port: 0, host: '127.0.0.1' })}/teams/messages`;
    await host.runOnce();
  });

  afterEach(async () => {
    await app?.close();
    await host?.stop();
    await fake?.close();
  });

  async function submitted(externalId: string): Promise<void> {
    source.submit(externalId, { title: `Report ${externalId}`, approvers: [APPROVER] });
    clock.advance(60_000);
    await host.runOnce();
  }

  /** The newest version of the newest card in a person's 1:1 chat with the bot. */
  function cardIn(user: FakeTeamsUser): Json {
    const activity = fake.messagesIn(fake.personalConversation(user.id)).at(-1) as { attachments: { content: Json }[] } | undefined;
    return activity!.attachments[0]!.content;
  }

  function button(card: Json, action: string): Json {
    return actionsOf(card).find((a) => a.type === 'Action.Execute' && (a.data as Json | undefined)?.action === action)!;
  }

  /** Posts a click on `action` as `user` in `conversationId` (their own chat unless said), signed like the channel's request. */
  async function click(
    user: FakeTeamsUser,
    action: Json,
    options: { inputs?: Record<string, string>; conversationId?: string; token?: string; trigger?: 'manual' | 'automatic' } = {},
  ): Promise<{ status: number; body: Json | undefined }> {
    const invoke = cardActionInvoke({
      user,
      action,
      conversationId: options.conversationId ?? fake.personalConversation(user.id),
      tenantId: TENANT,
      serviceUrl: fake.serviceUrl,
      inputs: options.inputs,
      trigger: options.trigger,
    });
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${options.token ?? fake.channelToken({ appId: APP_ID, serviceUrl: fake.serviceUrl })}`,
      },
      body: JSON.stringify(invoke),
    });
    const raw = await response.text();
    const body = raw ? (JSON.parse(raw) as Json) : undefined;
    if (response.status === 200) expect(validInvokeResponse(body), raw).to.equal(true);
    return { status: response.status, body };
  }

  it('draws act buttons as Action.Execute with a token, Send back behind a required comment, and a refresh for the approver', async () => {
    await submitted('r1');
    const card = cardIn(ANN);
    expect(card.version).to.equal('1.5');
    const approve = button(card, 'approve');
    expect(approve).to.include({ verb: ACT_VERB, title: 'Approve' });
    expect((approve.data as Json).token)
      .to.be.a('string')
      .with.length.above(40);
    expect((card.actions as Json[]).map((a) => [a.type, a.title])).to.deep.equal([
      ['Action.Execute', 'Approve'],
      ['Action.ShowCard', 'Approve with comment'],
      ['Action.ShowCard', 'Send Back'],
      ['Action.OpenUrl', 'View Expense Report'],
    ]);
    const withComment = (card.actions as Json[]).find((a) => a.title === 'Approve with comment')!;
    const optional = withComment.card as { body: Json[]; actions: Json[] };
    expect(optional.body[0]).to.include({ type: 'Input.Text', id: 'optionalComment', isRequired: false });
    expect(optional.actions[0]).to.include({ type: 'Action.Execute', verb: ACT_VERB, title: 'Approve' });
    expect(optional.actions[0]!.data).to.deep.equal(approve.data);
    const showCard = (card.actions as Json[]).find((a) => a.title === 'Send Back')!;
    const inner = showCard.card as { body: Json[]; actions: Json[] };
    expect(inner.body[0]).to.include({ type: 'Input.Text', id: 'comment', isRequired: true });
    expect(inner.actions[0]).to.include({ type: 'Action.Execute', verb: ACT_VERB });
    expect(card.refresh).to.deep.include({ userIds: [ANN.id] });
    expect((card.refresh as { action: Json }).action).to.include({ type: 'Action.Execute', verb: REFRESH_VERB });
  });

  it('approves: the source acts once, the answer is the card with the outcome, and the outbox closes the posted card with who acted', async () => {
    await submitted('r1');
    const { status, body } = await click(ANN, button(cardIn(ANN), 'approve'));
    expect(status).to.equal(200);
    expect(body!.type).to.equal('application/vnd.microsoft.card.adaptive');
    const answered = body!.value as Json;
    expect(texts(answered)).to.include('✅ Approved');
    expect(texts(answered).join('\n')).to.match(/By you in Teams at 2026-03-02 09:01 UTC/);
    expect(actionsOf(answered)).to.deep.equal([]);
    expect(answered.refresh).to.equal(undefined);
    expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'approve', by: ANN.email, comment: undefined }]);

    await host.drain();
    const closed = cardIn(ANN);
    expect(texts(closed)).to.include('✅ Approved');
    expect(texts(closed).join('\n')).to.contain('Approved by ann@example.test in Teams at 2026-03-02 09:01 UTC');
    expect(actionsOf(closed)).to.deep.equal([]);
    expect(closed.refresh).to.equal(undefined);
  });

  it('approves with the optional comment: the comment reaches the source, the answer card and the closed card', async () => {
    await submitted('r1');
    const withComment = (cardIn(ANN).actions as Json[]).find((a) => a.title === 'Approve with comment')!;
    const execute = (withComment.card as { actions: Json[] }).actions[0]!;
    const { body } = await click(ANN, execute, { inputs: { optionalComment: ' Fine, thanks ' } });
    expect(texts(body!.value)).to.include('✅ Approved');
    expect(texts(body!.value).join('\n')).to.contain('By you in Teams at 2026-03-02 09:01 UTC: “Fine, thanks”');
    expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'approve', by: ANN.email, comment: 'Fine, thanks' }]);
    await host.drain();
    expect(texts(cardIn(ANN)).join('\n')).to.contain('Approved by ann@example.test in Teams at 2026-03-02 09:01 UTC: “Fine, thanks”');
  });

  it('approves without a comment when the optional comment box is left empty', async () => {
    await submitted('r1');
    const withComment = (cardIn(ANN).actions as Json[]).find((a) => a.title === 'Approve with comment')!;
    const execute = (withComment.card as { actions: Json[] }).actions[0]!;
    const { body } = await click(ANN, execute, { inputs: { optionalComment: '  ' } });
    expect(texts(body!.value)).to.include('✅ Approved');
    expect(texts(body!.value).join('\n')).to.not.contain('“');
    expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'approve', by: ANN.email, comment: undefined }]);
  });

  it('sends back only with a comment: without one the refusal is shown, with one it is done', async () => {
    await submitted('r1');
    const sendBack = button(cardIn(ANN), 'sendBack');
    const refused = await click(ANN, sendBack);
    expect(refused.body).to.deep.include({ type: 'application/vnd.microsoft.activity.message' });
    expect(refused.body!.value).to.match(/comment is required/);
    expect(source.acted).to.deep.equal([]);

    const long = await click(ANN, sendBack, { inputs: { comment: 'x'.repeat(501) } });
    expect(long.body!.value).to.match(/at most 500 characters/);
    expect(source.calls.act).to.equal(1);

    const done = await click(ANN, sendBack, { inputs: { comment: '  Receipt for the taxi is missing ' } });
    expect(done.body!.type).to.equal('application/vnd.microsoft.card.adaptive');
    expect(texts(done.body!.value)).to.include('↩️ Sent back');
    expect(texts(done.body!.value).join('\n')).to.contain('“Receipt for the taxi is missing”');
    expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'sendBack', by: ANN.email, comment: 'Receipt for the taxi is missing' }]);
  });

  it('does not act for someone else: not with the approver’s button in their own chat, nor in the approver’s chat', async () => {
    await submitted('r1');
    const approve = button(cardIn(ANN), 'approve');
    // An e-mail in the card's data is not who clicked: the verified sender is.
    const own = await click(BOB, approve, { inputs: { email: ANN.email } });
    expect(own.body!.type).to.equal('application/vnd.microsoft.activity.message');
    expect(own.body!.value).to.match(/only its approver can act/);
    const theirs = await click(BOB, approve, { conversationId: fake.personalConversation(ANN.id) });
    expect(theirs.body!.value).to.match(/your own chat/);
    expect(source.calls.act).to.equal(0);
  });

  it('answers a click from another tenant with an error and acts on nothing', async () => {
    await submitted('r1');
    const invoke = cardActionInvoke({
      user: ANN,
      action: button(cardIn(ANN), 'approve'),
      conversationId: fake.personalConversation(ANN.id),
      tenantId: 'another-tenant',
      serviceUrl: fake.serviceUrl,
    });
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${fake.channelToken({ appId: APP_ID, serviceUrl: fake.serviceUrl })}` },
      body: JSON.stringify(invoke),
    });
    const body = (await response.json()) as Json;
    expect(validInvokeResponse(body)).to.equal(true);
    expect(body).to.include({ statusCode: 400, type: 'application/vnd.microsoft.error' });
    expect(source.calls.act).to.equal(0);
  });

  it('refuses a click with an invalid channel token with 401 and acts on nothing', async () => {
    await submitted('r1');
    const approve = button(cardIn(ANN), 'approve');
    const untrusted = await click(ANN, approve, { token: fake.channelToken({ appId: APP_ID, serviceUrl: fake.serviceUrl, untrusted: true }) });
    expect(untrusted.status).to.equal(401);
    const otherAudience = await click(ANN, approve, { token: fake.channelToken({ appId: 'another-app', serviceUrl: fake.serviceUrl }) });
    expect(otherAudience.status).to.equal(401);
    expect(source.calls.act).to.equal(0);
  });

  it('answers a replayed click after it was done with "already", without a second call to the source', async () => {
    await submitted('r1');
    const approve = button(cardIn(ANN), 'approve');
    expect((await click(ANN, approve)).body!.type).to.equal('application/vnd.microsoft.card.adaptive');
    const replay = await click(ANN, approve);
    expect(replay.body!.type).to.equal('application/vnd.microsoft.activity.message');
    expect(replay.body!.value).to.match(/already approved/);
    expect(source.calls.act).to.equal(1);
  });

  it('answers consent_needed with the card under a "Connect your account" link (the source names none), and the button works once connected', async () => {
    await submitted('r1');
    source.needsConsent.add(ANN.email);
    const approve = button(cardIn(ANN), 'approve');
    const { body } = await click(ANN, approve);
    expect(body!.type).to.equal('application/vnd.microsoft.card.adaptive');
    const answered = body!.value as Json;
    const connect = actionsOf(answered).find((a) => a.type === 'Action.OpenUrl' && a.title === CONNECT_TITLE);
    expect(connect?.url).to.match(/^https:\/\/consent\.example\.test\//);
    expect(texts(answered)).to.include('Report r1');
    expect(source.acted).to.deep.equal([]);

    source.needsConsent.clear();
    expect((await click(ANN, button(answered, 'approve'))).body!.type).to.equal('application/vnd.microsoft.card.adaptive');
    expect(source.calls.act).to.equal(2);
    expect(source.acted).to.have.length(1);
  });

  it('answers a refresh with the card as the queue has it now, with fresh buttons, and a closed note once it is decided', async () => {
    await submitted('r1');
    const refresh = (cardIn(ANN).refresh as { action: Json }).action;
    source.modify('r1', 'Report r1 (v2)');
    clock.advance(60_000);
    await host.runOnce();
    const { body } = await click(ANN, refresh, { trigger: 'automatic' });
    const current = body!.value as Json;
    // Source text is Markdown-escaped on the card.
    expect(texts(current)).to.include('Report r1 \\(v2\\)');
    expect((await click(ANN, button(current, 'approve'))).body!.type).to.equal('application/vnd.microsoft.card.adaptive');
    expect(source.acted).to.have.length(1);

    const after = await click(ANN, refresh, { trigger: 'automatic' });
    expect(actionsOf(after.body!.value)).to.deep.equal([]);
    expect(texts(after.body!.value).join(' ')).to.match(/no longer waits on you/);
    // Bob's own refresh of a card that is not his shows him nothing of it.
    const bobs = await click(BOB, refresh, { trigger: 'automatic' });
    expect(texts(bobs.body!.value).join(' ')).not.to.contain('Report r1');
  });

  it('draws a card without act buttons exactly as before: version 1.4, link buttons, no refresh', () => {
    const card: Card = {
      approvalKey: 'src:expense-report:r9',
      kind: 'expense-report',
      revision: 1,
      title: 'Links only',
      requester: { name: 'Rick' },
      fields: [],
      lineItems: [],
      flags: [],
      actions: [{ type: 'link', label: 'View Expense Report', url: 'https://example.test/r9' }],
    };
    const drawn = approvalCard(card, { refreshUserId: ANN.id });
    expect(drawn.version).to.equal('1.4');
    expect(drawn.refresh).to.equal(undefined);
    expect(drawn.actions).to.deep.equal([{ type: 'Action.OpenUrl', title: 'View Expense Report', url: 'https://example.test/r9' }]);
    // A user id that is not an MRI (an Entra object id from `users`) is left out of `userIds`: in a
    // chat of 60 or fewer, such as the 1:1 chat, Teams refreshes automatically for everyone.
    const acting = approvalCard({ ...card, actions: [{ type: 'act', label: 'Approve', action: 'approve', token: 't.1' }] }, { refreshUserId: ANN.aadObjectId });
    expect(acting.refresh).to.not.have.property('userIds');
    expect(acting.version).to.equal('1.5');
    // An act button the outbox has not put a token on yet is not drawn.
    expect(approvalCard({ ...card, actions: [...card.actions, { type: 'act', label: 'Approve', action: 'approve' }] })).to.deep.equal(drawn);
  });
});
