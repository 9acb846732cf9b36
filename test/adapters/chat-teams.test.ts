import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import {
  ApprovalActions,
  ApprovalLookup,
  Clock,
  Container,
  HttpRoutes,
  Logger,
  MAX_RETRY_AFTER_MS,
  Notifier,
  PermanentDeliveryError,
  PluginContext,
  systemClock,
  type Card,
  type OutboundMessage,
  type QueuedApproval,
} from '../../core/index.js';
import { ConfigError, loadDeployment } from '../../core/host/deployment.js';
import { PluginCatalog } from '../../core/host/plugin-catalog.js';
import { approvalCard, escapeMarkdown } from '../../adapters/chat-teams/adaptive-card.js';
import teamsModule from '../../adapters/chat-teams/module.js';
import {
  BotConnector,
  PersonalConversations,
  TeamsDirectory,
  TeamsNotifier,
  TeamsRetryableError,
  connectorFailure,
} from '../../adapters/chat-teams/teams-notifier.js';
import { TeamsRoutes, botFrameworkAuthenticator } from '../../adapters/chat-teams/teams-routes.js';
import { startFakeBotConnector, type FakeBotConnector, type FakeTeamsUser } from '../support/fake-bot-connector.js';

const TENANT = '6e3b0f5c-1f0a-4c52-9a6e-3d8f3c0e9a11';
const APP_ID = '0f8b7a52-93c1-4d7e-bb6a-2a3c4d5e6f70';
const BOT_TOKEN = 'fake-bot-token';
const DEEP_LINK = 'https://www.concursolutions.com/goto/expense-report/R1?companyUUID=acme&context=MANAGER';

const ANN: FakeTeamsUser = { id: '29:1ann-7Qx9', aadObjectId: '11111111-aaaa-4aaa-8aaa-111111111111', email: 'ann@example.test', name: 'Ann Approver' };
const BOB: FakeTeamsUser = { id: '29:1bob-3Kp2', aadObjectId: '22222222-bbbb-4bbb-8bbb-222222222222', email: 'bob@example.test', name: 'Bob Boss' };
const CAROL: FakeTeamsUser = { id: '29:1carol-8Zr4', aadObjectId: '33333333-cccc-4ccc-8ccc-333333333333', email: 'carol@example.test', name: 'Carol Chief' };
const TEAM = '19:approvers@thread.tacv2';
const USERS = { [ANN.email]: ANN.id, [BOB.email]: BOB.aadObjectId };

const silent = (): Logger => pino({ level: 'silent' });

function card(overrides: Partial<Card> = {}): Card {
  return {
    approvalKey: 'concur-acme:expense-report:R1',
    kind: 'expense-report',
    revision: 1,
    title: 'Q3 customer visits',
    requester: { name: 'Rick Requester', email: 'rick@example.test' },
    amount: { value: '1234.50', currency: 'EUR' },
    submittedAt: '2025-03-04T05:06:07Z',
    fields: [{ label: 'Policy', value: 'Travel' }],
    lineItems: [{ label: 'Hotel', amount: { value: '800.00', currency: 'EUR' } }],
    flags: [],
    actions: [{ type: 'link', label: 'View Expense Report', url: DEEP_LINK }],
    ...overrides,
  };
}

function message(action: OutboundMessage['action'], shown: Card, email = ANN.email, previous?: { ref: string }): OutboundMessage {
  return {
    idempotencyKey: `${shown.approvalKey}#g1.${shown.revision}:${email}:teams:${action}`,
    action,
    recipient: { sourceUserId: email.split('@')[0]!, email },
    card: shown,
    previous,
  };
}

function queued(key: string, title: string, approverEmail: string): QueuedApproval {
  return {
    key,
    source: 'concur-acme',
    kind: 'expense-report',
    externalId: key.split(':')[2]!,
    title,
    status: 'pending',
    requester: { name: 'Rick Requester' },
    approvers: [{ sourceUserId: approverEmail.split('@')[0]!, email: approverEmail }],
    amount: { value: '10.00', currency: 'EUR' },
    submittedAt: '2025-03-04T05:06:07Z',
    sourceUpdatedAt: '2025-03-04T05:06:07Z',
    links: { view: `https://www.concursolutions.com/goto/expense-report/${key.split(':')[2]!}` },
    revision: 1,
    fingerprint: 'f',
    queuedAt: '2025-03-04T05:06:07Z',
    generation: 'g1',
  };
}

/** A tiny in-memory lookup: two people with their own approvals. */
const APPROVALS = [
  queued('concur-acme:expense-report:A1', 'Ann report one', ANN.email),
  queued('concur-acme:expense-report:A2', 'Ann report two', ANN.email),
  queued('concur-acme:expense-report:B1', 'Bob secret offsite', BOB.email),
];
const lookup: ApprovalLookup = {
  waitingOn: async (email) => APPROVALS.filter((a) => a.approvers.some((p) => p.email === email)),
  forApprover: async (key, email) => APPROVALS.find((a) => a.key === key && a.approvers.some((p) => p.email === email)),
};

/** The messages route's action service where no test acts: a click is refused. */
const NO_ACTIONS: ApprovalActions = {
  act: async () => ({ outcome: 'refused', message: 'no actions here' }),
  peek: async () => undefined,
  withTokens: async (c) => c,
  connections: async () => [],
  disconnect: async () => false,
  actionsOf: () => [],
};

/** Every string of an Adaptive Card's TextBlocks, depth first. */
function texts(element: unknown): string[] {
  if (Array.isArray(element)) return element.flatMap(texts);
  if (typeof element !== 'object' || element === null) return [];
  const e = element as Record<string, unknown>;
  if (e.type === 'TextBlock' && typeof e.text === 'string') return [e.text];
  return [...texts(e.body), ...texts(e.items)];
}

function adaptiveOf(activity: Record<string, unknown> | undefined): Record<string, unknown> {
  const attachments = activity?.attachments as { contentType: string; content: Record<string, unknown> }[] | undefined;
  expect(attachments?.[0]?.contentType).to.equal('application/vnd.microsoft.card.adaptive');
  return attachments![0]!.content;
}

describe('Teams Adaptive Card', () => {
  it('escapes Markdown, HTML and date functions in source text so it shows literally', () => {
    expect(escapeMarkdown('**bold** [x](https://evil)')).to.equal('\\*\\*bold\\*\\* \\[x\\]\\(https://evil\\)');
    expect(escapeMarkdown('- not a bullet')).to.equal('\\- not a bullet');
    expect(escapeMarkdown('1. not a list')).to.equal('1\\. not a list');
    expect(escapeMarkdown('# not a heading')).to.equal('\\# not a heading');
    expect(escapeMarkdown('`code` <b>x</b> &amp; > quote')).to.equal('\\`code\\` \\<b\\>x\\</b\\> \\&amp; \\> quote');
    expect(escapeMarkdown('{{DATE(2017-02-14T06:08:00Z, SHORT)}}')).to.equal('\\{\\{DATE\\(2017-02-14T06:08:00Z, SHORT\\)\\}\\}');
    expect(escapeMarkdown('snake_case\nsecond line\u202eevil')).to.equal('snake\\_case second line evil');
  });

  it('shows an outcome on a closed card and gives it no actions', () => {
    const closed = approvalCard(card({ outcome: 'approved', actions: [] }));
    expect(closed.actions).to.equal(undefined);
    expect(texts(closed)).to.include('✅ Approved');
  });
});

describe('Teams notifier', () => {
  let fake: FakeBotConnector;
  let notifier: TeamsNotifier;

  beforeEach(async () => {
    fake = await startFakeBotConnector({ tenantId: TENANT, users: [ANN, BOB, CAROL], rosters: { [TEAM]: [ANN.id, CAROL.id] }, botToken: BOT_TOKEN });
    const connector = new BotConnector(fake.serviceUrl, async () => BOT_TOKEN);
    const directory = new TeamsDirectory(connector, USERS, undefined, systemClock);
    notifier = new TeamsNotifier('teams', { appId: APP_ID, tenantId: TENANT }, connector, directory, silent());
  });
  afterEach(() => fake.close());

  const posts = () => fake.calls.filter((c) => c.method === 'POST' && c.segments[3] === 'activities' && c.status === 201);

  it('creates the 1:1 conversation and posts one Adaptive Card per notify', async () => {
    const receipt = await notifier.deliver(message('notify', card()));

    const create = fake.calls.find((c) => c.path === 'v3/conversations');
    expect(create?.body).to.deep.equal({
      isGroup: false,
      bot: { id: `28:${APP_ID}` },
      members: [{ id: ANN.id }],
      tenantId: TENANT,
      channelData: { tenant: { id: TENANT } },
    });
    expect(posts()).to.have.length(1);
    const conversationId = fake.personalConversation(ANN.id);
    const [activity] = [...fake.activities.values()];
    expect(receipt).to.deep.equal({ ref: `${conversationId}/${activity!.id}` });
    expect(activity!.conversationId).to.equal(conversationId);
    expect(fake.calls.every((c) => c.authorization === `Bearer ${BOT_TOKEN}`)).to.equal(true);
  });

  it('reuses the conversation for the next card to the same approver', async () => {
    await notifier.deliver(message('notify', card()));
    await notifier.deliver(message('notify', card({ approvalKey: 'concur-acme:expense-report:R2', title: 'Second' })));
    expect(fake.calls.filter((c) => c.path === 'v3/conversations')).to.have.length(1);
    expect(posts()).to.have.length(2);
  });

  it('escapes markup in every text of the card and opens the deep link with Action.OpenUrl', async () => {
    await notifier.deliver(
      message(
        'notify',
        card({
          title: '**bold** [x](https://evil)',
          requester: { name: '_Mallory_ <at>Everyone</at>' },
          fields: [{ label: '# Policy', value: '- free money' }],
          lineItems: [{ label: '[click](https://evil)', flags: ['`late`'] }],
          flags: ['> quoted'],
        }),
      ),
    );
    const adaptive = adaptiveOf([...fake.activities.values()][0]!.versions[0]);
    const shown = texts(adaptive);
    expect(shown[0]).to.equal('\\*\\*bold\\*\\* \\[x\\]\\(https://evil\\)');
    expect(shown).to.include('Requester: \\_Mallory\\_ \\<at\\>Everyone\\</at\\>');
    expect(shown).to.include('\\# Policy: \\- free money');
    expect(shown).to.include('• \\[click\\]\\(https://evil\\) (\\`late\\`)');
    expect(shown).to.include('⚠️ \\> quoted');
    for (const t of shown) expect(t).not.to.match(/(^|[^\\])\[[^\]]*\]\(/, `unescaped link in "${t}"`);
    expect(adaptive.actions).to.deep.equal([{ type: 'Action.OpenUrl', title: 'View Expense Report', url: DEEP_LINK }]);
  });

  it('updates the delivered activity in place with PUT', async () => {
    const receipt = await notifier.deliver(message('notify', card()));
    const updated = await notifier.deliver(message('update', card({ revision: 2, title: 'Q3 customer visits (amended)' }), ANN.email, receipt));

    expect(updated).to.deep.equal(receipt);
    const [conversationId, activityId] = [receipt.ref.slice(0, receipt.ref.lastIndexOf('/')), receipt.ref.slice(receipt.ref.lastIndexOf('/') + 1)];
    const put = fake.calls.filter((c) => c.method === 'PUT');
    expect(put.map((c) => c.segments)).to.deep.equal([['v3', 'conversations', conversationId, 'activities', activityId]]);
    expect(posts()).to.have.length(1);
    expect(texts(adaptiveOf(fake.activities.get(activityId)!.versions[1]))[0]).to.equal('Q3 customer visits \\(amended\\)');
  });

  it('closes the card with the outcome shown and no actions left', async () => {
    const receipt = await notifier.deliver(message('notify', card()));
    await notifier.deliver(message('close', card({ revision: 2, outcome: 'approved', actions: [] }), ANN.email, receipt));

    const activityId = receipt.ref.slice(receipt.ref.lastIndexOf('/') + 1);
    const closed = adaptiveOf(fake.activities.get(activityId)!.versions[1]);
    expect(closed).not.to.have.property('actions');
    expect(texts(closed)).to.include('✅ Approved');
  });

  it('replies to the card with a text-only reminder, leaving the card as it was', async () => {
    const receipt = await notifier.deliver(message('notify', card()));
    const activityId = receipt.ref.slice(receipt.ref.lastIndexOf('/') + 1);

    await notifier.deliver(message('remind', card(), ANN.email, receipt));

    const reply = fake.calls.filter((c) => c.method === 'POST' && c.segments[3] === 'activities').at(-1)!;
    expect(reply.segments.slice(4)).to.deep.equal([activityId]);
    expect(reply.body).to.deep.include({ type: 'message', textFormat: 'plain', replyToId: activityId });
    expect((reply.body as { attachments?: unknown }).attachments).to.equal(undefined);
    expect(String((reply.body as { text: string }).text)).to.match(/^⏰ Reminder: .*Q3 customer visits/);
    expect(fake.calls.filter((c) => c.method === 'PUT')).to.deep.equal([]);
    expect(fake.activities.get(activityId)!.versions).to.have.length(1);
  });

  it('posts a digest as one Adaptive Card with View links only', async () => {
    const listed = [card(), card({ approvalKey: 'concur-acme:expense-report:R2', title: 'Second report' })];
    const summary = card({ approvalKey: 'digest:ann@example.test', kind: 'digest', revision: 0, title: '2 approvals are waiting on you', actions: [] });

    await notifier.deliver({ ...message('digest', summary), digest: listed });

    expect(posts()).to.have.length(1);
    const adaptive = adaptiveOf([...fake.activities.values()][0]!.versions[0]);
    expect(adaptive.actions).to.equal(undefined);
    expect(texts(adaptive)).to.include.members(['2 approvals are waiting on you', 'Q3 customer visits', 'Second report']);
    const links = JSON.stringify(adaptive.body).match(/"type":"Action\.[A-Za-z]+"/g);
    expect(links).to.deep.equal(['"type":"Action.OpenUrl"', '"type":"Action.OpenUrl"']);
  });

  it('posts a sign-in link (`link`) as one Adaptive Card whose only action is the link, and no approval facts', async () => {
    const url = 'https://inbox.example.test/inbox/login?token=abc.def';
    const link = card({
      approvalKey: 'sign-in:ann@example.test',
      kind: 'sign-in-link',
      title: 'Your new sign-in link to the approvals inbox',
      requester: {},
      amount: undefined,
      submittedAt: undefined,
      fields: [{ label: 'Works', value: 'once, for 15 minutes' }],
      lineItems: [],
      flags: [],
      actions: [{ type: 'link', label: 'Open your approvals', url }],
    });

    await notifier.deliver(message('link', link));

    expect(posts()).to.have.length(1);
    const activity = [...fake.activities.values()][0]!.versions[0] as { summary?: string };
    expect(activity.summary).to.equal('Your new sign-in link to the approvals inbox');
    const adaptive = adaptiveOf(activity);
    expect(adaptive.actions).to.deep.equal([{ type: 'Action.OpenUrl', title: 'Open your approvals', url }]);
    expect(JSON.stringify(adaptive.body)).not.to.match(/"type":"Action\./);
    expect(texts(adaptive).join('\n'))
      .to.include('Your new sign-in link to the approvals inbox')
      .and.include('once, for 15 minutes')
      .and.not.include('Requester');
  });

  it('refuses an approver with no Teams user as a permanent failure, without calling Teams', async () => {
    const failure = await notifier.deliver(message('notify', card(), 'nobody@example.test')).catch((e: unknown) => e);
    expect(failure).to.be.instanceOf(PermanentDeliveryError);
    expect(fake.calls).to.have.length(0);
  });

  it('finds an approver missing from the map in the team roster, and refuses one the roster lacks', async () => {
    const connector = new BotConnector(fake.serviceUrl, async () => BOT_TOKEN);
    const roster = new TeamsNotifier('teams', { appId: APP_ID, tenantId: TENANT }, connector, new TeamsDirectory(connector, {}, TEAM, systemClock), silent());

    await roster.deliver(message('notify', card(), 'Carol@Example.test'));
    expect(fake.calls[0]?.segments).to.deep.equal(['v3', 'conversations', TEAM, 'members', 'carol@example.test']);
    expect(fake.messagesIn(fake.personalConversation(CAROL.id))).to.have.length(1);

    const failure = await roster.deliver(message('notify', card(), BOB.email)).catch((e: unknown) => e);
    expect(failure).to.be.instanceOf(PermanentDeliveryError);
  });

  it('throws a retryable error with Retry-After on 429, then delivers once the connector recovers', async () => {
    fake.failNext(1, { status: 429, retryAfter: 7 });
    const failure = await notifier.deliver(message('notify', card())).catch((e: unknown) => e);
    expect(failure).to.be.instanceOf(TeamsRetryableError).and.not.be.instanceOf(PermanentDeliveryError);
    expect((failure as TeamsRetryableError).retryAfterMs).to.equal(7000);
    expect((failure as Error).message)
      .to.contain('HTTP 429')
      .and.contain('Retry-After 7s');

    await notifier.deliver(message('notify', card()));
    expect(posts()).to.have.length(1);
  });

  it('reads a Retry-After given as an HTTP date, and waits at most an hour', () => {
    const failure = connectorFailure('send', 503, 'Fri, 01 Jan 2100 00:00:00 GMT', {}, '');
    expect(failure).to.be.instanceOf(TeamsRetryableError);
    expect((failure as TeamsRetryableError).retryAfterMs).to.equal(MAX_RETRY_AFTER_MS);
    expect(failure.message).to.include('HTTP 503, Retry-After 3600s');
  });

  it('throws retryable errors on 5xx while the connector is down, then delivers the card once', async () => {
    fake.failNext(2, { status: 503 });
    for (let attempt = 0; attempt < 2; attempt++) {
      const failure = await notifier.deliver(message('notify', card())).catch((e: unknown) => e);
      expect(failure).to.be.instanceOf(Error).and.not.be.instanceOf(PermanentDeliveryError);
      expect((failure as Error).message).to.contain('HTTP 503');
    }
    const receipt = await notifier.deliver(message('notify', card()));
    expect(posts()).to.have.length(1);
    expect(await notifier.findDelivered(message('notify', card()).idempotencyKey)).to.deep.equal(receipt);
  });
});

describe('Teams messages route', () => {
  let fake: FakeBotConnector;
  let app: FastifyInstance;

  beforeEach(async () => {
    fake = await startFakeBotConnector({ tenantId: TENANT, users: [ANN, BOB, CAROL], rosters: { [TEAM]: [ANN.id, BOB.id] }, botToken: BOT_TOKEN });
    const connector = new BotConnector(fake.serviceUrl, async () => BOT_TOKEN);
    const directory = new TeamsDirectory(connector, USERS, undefined, systemClock);
    const conversations = new PersonalConversations(connector, { appId: APP_ID, tenantId: TENANT });
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
      lookup,
      NO_ACTIONS,
      silent(),
    );
    app = Fastify();
    await app.register(async (scope) => routes.register(scope));
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await fake.close();
  });

  /** A message activity as Teams posts it to the bot's messaging endpoint (`conversationId`: a replay edited to name another). */
  function activity(
    user: FakeTeamsUser,
    text: string,
    conversationType = 'personal',
    conversationId = fake.personalConversation(user.id),
  ): Record<string, unknown> {
    return {
      type: 'message',
      id: `1700000${Math.floor(Math.random() * 1e6)}`,
      timestamp: new Date().toISOString(),
      channelId: 'msteams',
      serviceUrl: fake.serviceUrl,
      from: { id: user.id, name: user.name, aadObjectId: user.aadObjectId },
      recipient: { id: `28:${APP_ID}`, name: 'Approvals' },
      conversation: { id: conversationId, conversationType, tenantId: TENANT },
      channelData: { tenant: { id: TENANT } },
      text,
    };
  }

  async function send(body: Record<string, unknown>, token: string | null = fake.channelToken({ appId: APP_ID, serviceUrl: fake.serviceUrl })) {
    return app.inject({ method: 'POST', url: '/teams/messages', payload: body, headers: token ? { authorization: `Bearer ${token}` } : {} });
  }

  function replyIn(user: FakeTeamsUser): Record<string, unknown> | undefined {
    return fake.messagesIn(fake.personalConversation(user.id)).at(-1);
  }

  it('answers "approvals" with the approvals waiting on the caller and no one else', async () => {
    const asked = activity(ANN, 'approvals');
    const response = await send(asked);

    expect(response.statusCode).to.equal(200);
    const reply = fake.calls.find((c) => c.method === 'POST' && c.segments[3] === 'activities')!;
    expect(reply.segments).to.deep.equal(['v3', 'conversations', fake.personalConversation(ANN.id), 'activities', asked.id]);
    expect(reply.authorization).to.equal(`Bearer ${BOT_TOKEN}`);
    const shown = texts(adaptiveOf(replyIn(ANN))).join('\n');
    expect(shown).to.contain('Ann report one').and.contain('Ann report two');
    expect(shown).not.to.contain('Bob secret offsite');
  });

  it('answers "What’s waiting on me?" from the other person with their own approvals', async () => {
    expect((await send(activity(BOB, '<at>Approvals</at> What’s waiting on me?'))).statusCode).to.equal(200);
    const shown = texts(adaptiveOf(replyIn(BOB))).join('\n');
    expect(shown).to.contain('Bob secret offsite');
    expect(shown).not.to.contain('Ann report');
  });

  it('refuses a request without a token and answers nothing', async () => {
    const response = await send(activity(ANN, 'approvals'), null);
    expect(response.statusCode).to.equal(401);
    expect(fake.calls).to.have.length(0);
  });

  it('refuses a token not signed by the channel, and one issued for another service URL', async () => {
    const forged = fake.channelToken({ appId: APP_ID, serviceUrl: fake.serviceUrl, untrusted: true });
    const elsewhere = fake.channelToken({ appId: APP_ID, serviceUrl: 'https://evil.example/teams/' });
    const otherBot = fake.channelToken({ appId: '99999999-0000-4000-8000-000000000000', serviceUrl: fake.serviceUrl });
    const originalError = console.error;
    console.error = () => undefined; // botbuilder prints the available keys when a signature fails
    try {
      for (const token of [forged, elsewhere, otherBot]) expect((await send(activity(ANN, 'approvals'), token)).statusCode).to.equal(401);
    } finally {
      console.error = originalError;
    }
    expect(fake.calls).to.have.length(0);
  });

  it('lists nothing in a group chat, where others would read it', async () => {
    const asked = activity(ANN, 'approvals', 'groupChat');
    expect((await send(asked)).statusCode).to.equal(200);
    const reply = replyIn(ANN)!;
    expect(reply.attachments).to.equal(undefined);
    expect(reply.text).to.contain('1:1 chat');
  });

  describe('a channel token replayed with an edited body', () => {
    /** Every activity the bot posted, in any conversation. */
    const posted = () => fake.calls.filter((c) => c.method === 'POST' && c.segments[3] === 'activities');

    it("does not answer Bob into Ann's chat: no list of Bob's lands there, or anywhere", async () => {
      expect((await send(activity(BOB, 'approvals', 'personal', fake.personalConversation(ANN.id)))).statusCode).to.equal(200);
      expect(fake.messagesIn(fake.personalConversation(ANN.id))).to.deep.equal([]);
      expect(posted()).to.deep.equal([]);
    });

    it("never sends Ann's list into Bob's chat when the edited sender is Ann", async () => {
      expect((await send(activity(ANN, 'approvals', 'personal', fake.personalConversation(BOB.id)))).statusCode).to.equal(200);
      expect(fake.messagesIn(fake.personalConversation(BOB.id))).to.deep.equal([]);
      expect(JSON.stringify(fake.calls)).not.to.contain('Ann report');
    });

    it('answers no text into a conversation the sender is not a member of, whatever its type says', async () => {
      for (const edited of [
        activity(BOB, 'hello', 'personal', fake.personalConversation(ANN.id)),
        activity(BOB, 'approvals', 'groupChat', fake.personalConversation(ANN.id)),
      ]) {
        expect((await send(edited)).statusCode).to.equal(200);
      }
      expect(fake.messagesIn(fake.personalConversation(ANN.id))).to.deep.equal([]);
      expect(posted()).to.deep.equal([]);
    });

    it('lists nothing in a team that the edited activity calls personal, even to one of its members', async () => {
      expect((await send(activity(BOB, 'approvals', 'personal', TEAM))).statusCode).to.equal(200);
      expect(fake.messagesIn(TEAM)).to.deep.equal([]);
      expect(JSON.stringify(fake.calls)).not.to.contain('Bob secret offsite');
    });
  });

  it('tells a sender it cannot map to an e-mail that it has nothing to show', async () => {
    expect((await send(activity(CAROL, 'approvals'))).statusCode).to.equal(200);
    const reply = replyIn(CAROL)!;
    expect(reply.attachments).to.equal(undefined);
    expect(reply.text).to.contain('cannot match your Teams account');
  });
});

describe('Teams plugin', () => {
  /** Where plugin.json is: next to the compiled module (npm test), or in the source tree (a scratch build). */
  function manifestDir(name: string): string {
    const candidates = [fileURLToPath(new URL(`../../adapters/${name}/`, import.meta.url)), resolve('adapters', name)];
    const found = candidates.find((d) => existsSync(resolve(d, 'plugin.json')));
    if (!found) throw new Error(`no plugin.json for ${name}`);
    return found;
  }

  function deployment(config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
    const problems: string[] = [];
    const catalog = PluginCatalog.builtIn(problems);
    if (!catalog.get('teams', 'notifier')) catalog.addLocation(manifestDir('chat-teams'), process.cwd(), 'teams', problems);
    if (!catalog.get('memory', 'queue')) catalog.addLocation(manifestDir('queue-memory'), process.cwd(), 'memory', problems);
    expect(problems).to.deep.equal([]);
    return loadDeployment(undefined, { raw: { queue: { adapter: 'memory' }, notifiers: [{ id: 'teams', plugin: 'teams', config }] }, env, catalog });
  }

  it('validates its config: a secret app password, an https service URL, e-mail keys', () => {
    const ok = deployment(
      { appId: APP_ID, appPassword: { env: 'TEAMS_APP_PASSWORD' }, tenantId: TENANT, users: { [ANN.email]: ANN.id } },
      { TEAMS_APP_PASSWORD: 's3cret' },
    );
    expect(ok.notifiers[0]!.config).to.include({
      appPassword: 's3cret',
      serviceUrl: 'https://smba.trafficmanager.net/teams/',
      callbackPath: '/teams',
      appType: 'SingleTenant',
    });

    let failure: unknown;
    try {
      deployment({ appId: APP_ID, appPassword: 'literal', tenantId: TENANT, serviceUrl: 'http://smba.example/teams/', users: { 'not-an-email': 'x' } });
    } catch (error) {
      failure = error;
    }
    expect(failure).to.be.instanceOf(ConfigError);
    const problems = (failure as ConfigError).problems.join('\n');
    expect(problems).to.contain('notifiers[0].config.appPassword: must be a secret reference');
    expect(problems).to.contain('notifiers[0].config.serviceUrl: must be an https URL');
    expect(problems).to.contain('notifiers[0].config.users');
    expect(() => deployment({ appId: APP_ID, tenantId: TENANT })).to.throw(ConfigError, /appPassword/);
  });

  it('binds a notifier and the messages route in the host container, against a connector on loopback', async () => {
    const fake = await startFakeBotConnector({ tenantId: TENANT, users: [ANN, BOB] });
    const app = Fastify();
    try {
      const root = new Container({ defaultScope: 'Singleton' });
      root.bind(Logger).toConstantValue(silent());
      root.bind(Clock).toConstantValue(systemClock);
      root.bind(ApprovalLookup).toConstantValue(lookup);
      root.bind(ApprovalActions).toConstantValue(NO_ACTIONS);
      const child = new Container({ parent: root, defaultScope: 'Singleton' });
      const config = { tenantId: TENANT, serviceUrl: fake.serviceUrl, users: USERS };
      child.bind(PluginContext).toConstantValue({ instanceId: 'teams', config, baseDir: '.' });
      await child.loadAsync(teamsModule({ instanceId: 'teams', config, baseDir: '.' }));

      const notifier = child.get(Notifier);
      expect(notifier.id).to.equal('teams');
      await notifier.deliver(message('notify', card(), BOB.email));
      expect(fake.messagesIn(fake.personalConversation(BOB.id))).to.have.length(1);
      expect(fake.calls.every((c) => c.authorization === undefined)).to.equal(true);

      const routes = child.getAll(HttpRoutes);
      expect(routes.map((r) => r.id)).to.deep.equal(['teams:teams']);
      await app.register(async (scope) => routes[0]!.register(scope));
      const asked = {
        type: 'message',
        id: '1700000000999',
        channelId: 'msteams',
        serviceUrl: 'https://evil.example/teams/',
        from: { id: ANN.id, aadObjectId: ANN.aadObjectId },
        recipient: { id: 'approvals-hub' },
        conversation: { id: fake.personalConversation(ANN.id), conversationType: 'personal', tenantId: TENANT },
        text: 'approvals',
      };
      expect((await app.inject({ method: 'POST', url: '/teams/messages', payload: asked })).statusCode).to.equal(200);
      // Unverified (no app id): the reply goes to the configured service URL, not the one in the request.
      expect(texts(adaptiveOf(fake.messagesIn(fake.personalConversation(ANN.id)).at(-1))).join('\n')).to.contain('Ann report one');
    } finally {
      await app.close();
      await fake.close();
    }
  });

  it('refuses to start without an app id unless the connector is on loopback', () => {
    expect(() => teamsModule({ instanceId: 'teams', config: { tenantId: TENANT }, baseDir: '.' })).to.throw(/appId and appPassword are required/);
  });
});
