import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { pino } from 'pino';
import slackModule from '../../adapters/chat-slack/module.js';
import { actionKind } from '../../adapters/chat-slack/block-kit.js';
import { SlackNotifier, SlackRetryableError, type SlackConfig } from '../../adapters/chat-slack/slack-notifier.js';
import { Container } from '../../core/di.js';
import { ConfigError, loadDeployment } from '../../core/host/deployment.js';
import { PluginCatalog } from '../../core/host/plugin-catalog.js';
import {
  ApprovalActions,
  ApprovalLookup,
  Clock,
  HttpRoutes,
  Logger,
  MAX_RETRY_AFTER_MS,
  Notifier,
  PermanentDeliveryError,
  PluginContext,
  type Card,
  type OutboundMessage,
  type QueuedApproval,
} from '../../core/index.js';
import { FAKE_TEAM_ID, FakeSlack, slackSignatureHeaders } from '../support/fake-slack.js';
import { approval, approver } from '../support/queue-fixtures.js';

const SECRET = 'fake-signing-secret-8f14e45fceea167a';
const GRACE = { id: 'U0GRACE001', email: 'grace@acme.test', name: 'Grace Hopper' };
const ALAN = { id: 'U0ALAN0001', email: 'alan@acme.test', name: 'Alan Turing' };
const NOBODY = { id: 'U0NOBODY01', email: 'nobody@elsewhere.test' };
const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';

function queued(externalId: string, approverId: string, title: string, value: string): QueuedApproval {
  const a = approval(externalId, { title, approvers: [approver(approverId)], amount: { value, currency: 'EUR' } });
  return { ...a, revision: 1, fingerprint: externalId, queuedAt: a.sourceUpdatedAt, generation: 'g1' };
}

const G1 = queued('G1', 'grace', 'Berlin offsite', '120.00');
const G2 = queued('G2', 'grace', 'Client dinner in Lisbon', '86.40');
const A1 = queued('A1', 'alan', 'Bletchley acquisition', '99999.00');

/** The queue as ApprovalLookup sees it: two people, each with their own approvals. */
class TwoPeopleLookup implements ApprovalLookup {
  constructor(private readonly approvals: readonly QueuedApproval[]) {}
  async waitingOn(email: string): Promise<QueuedApproval[]> {
    const wanted = email.toLowerCase();
    return this.approvals.filter((a) => a.approvers.some((p) => p.email?.toLowerCase() === wanted));
  }
  async forApprover(key: string, email: string): Promise<QueuedApproval | undefined> {
    return (await this.waitingOn(email)).find((a) => a.key === key);
  }
}

function card(overrides: Partial<Card> = {}): Card {
  return {
    approvalKey: G1.key,
    kind: 'expense-report',
    revision: 1,
    title: 'Berlin offsite',
    requester: { name: 'Ada Lovelace', email: 'ada@acme.test' },
    amount: { value: '120.00', currency: 'EUR' },
    submittedAt: '2025-06-01T09:00:00.000Z',
    fields: [{ label: 'Report number', value: 'R-0001' }],
    lineItems: [{ label: 'Hotel', amount: { value: '100.00', currency: 'EUR' } }],
    flags: ['missing receipt'],
    actions: [{ type: 'link', label: 'View Expense Report', url: 'https://www.concursolutions.com/goto/expense-report/G1' }],
    ...overrides,
  };
}

function outbound(action: OutboundMessage['action'], overrides: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    idempotencyKey: `${G1.key}#g1.1:grace:slack:${action}`,
    action,
    recipient: { sourceUserId: 'grace', email: GRACE.email },
    card: card(),
    ...overrides,
  };
}

/** Every text object in a Block Kit tree. */
function textObjects(node: unknown, out: { type: string; text: string }[] = []): { type: string; text: string }[] {
  if (Array.isArray(node)) node.forEach((n) => textObjects(n, out));
  else if (typeof node === 'object' && node !== null) {
    const o = node as Record<string, unknown>;
    if ((o.type === 'plain_text' || o.type === 'mrkdwn') && typeof o.text === 'string') out.push({ type: o.type, text: o.text });
    else Object.values(o).forEach((v) => textObjects(v, out));
  }
  return out;
}

function blocksOf(call: { args: Record<string, unknown> }): Record<string, unknown>[] {
  return JSON.parse(String(call.args.blocks)) as Record<string, unknown>[];
}

interface Harness {
  readonly child: Container;
  readonly notifier: SlackNotifier;
  /** Base URL of a fastify server serving the plugin's routes. */
  readonly url: string;
}

describe('Slack notifier plugin (adapters/chat-slack) against a fake Slack on loopback', function () {
  this.timeout(30_000);
  let fake: FakeSlack;
  const apps: FastifyInstance[] = [];

  beforeEach(async () => {
    fake = await FakeSlack.start();
    fake.addUser(GRACE);
    fake.addUser(ALAN);
  });

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await fake.close();
  });

  /** The module loaded like the host does: a child container under a root with ApprovalLookup, Clock and Logger. */
  async function harness(config: Partial<SlackConfig> = {}): Promise<Harness> {
    const root = new Container({ defaultScope: 'Singleton' });
    root.bind(ApprovalLookup).toConstantValue(new TwoPeopleLookup([G1, G2, A1]));
    // Acting from Slack is tested with a real host in chat-slack-actions.test.ts; nothing here acts.
    root.bind(ApprovalActions).toConstantValue({
      act: () => Promise.reject(new Error('no action expected')),
      peek: () => Promise.resolve(undefined),
      withTokens: (c: Card) => Promise.resolve(c),
      connections: () => Promise.resolve([]),
      disconnect: () => Promise.resolve(false),
      actionsOf: () => [],
    });
    root.bind(Clock).toConstantValue({ now: () => new Date() });
    root.bind(Logger).toConstantValue(pino({ level: 'silent' }));
    const child = new Container({ parent: root, defaultScope: 'Singleton' });
    const context = { instanceId: 'slack', config: { botToken: FakeSlack.TOKEN, signingSecret: SECRET, apiUrl: fake.apiUrl, ...config }, baseDir: '.' };
    child.bind(PluginContext).toConstantValue(context);
    await child.loadAsync(slackModule(context));

    const app = Fastify({ logger: false });
    for (const routes of child.getAll(HttpRoutes)) await app.register(async (scope) => routes.register(scope));
    await app.listen({ host: '127.0.0.1', port: 0 });
    apps.push(app);
    const { port } = app.server.address() as AddressInfo;
    return { child, notifier: child.get(SlackNotifier), url: `http://127.0.0.1:${port}` };
  }

  /** A request as Slack sends it: signed over the exact body, unless `headers` says otherwise. */
  async function post(h: Harness, path: string, body: string, contentType: string, headers = slackSignatureHeaders(SECRET, body)) {
    const res = await fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body });
    const text = await res.text();
    return { status: res.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
  }

  /** A `/approvals` slash command body (docs.slack.dev/interactivity/implementing-slash-commands). */
  function command(userId: string, team = FAKE_TEAM_ID): string {
    return new URLSearchParams({
      token: 'deprecated-verification-token',
      team_id: team,
      team_domain: 'fake',
      channel_id: fake.dmChannelOf(userId),
      channel_name: 'directmessage',
      user_id: userId,
      user_name: 'someone',
      command: '/approvals',
      text: '',
      api_app_id: 'A0FAKEAPP1',
      is_enterprise_install: 'false',
      response_url: fake.responseUrl('commands/T0FAKE0001/1/fake'),
      trigger_id: '1.2.abc',
    }).toString();
  }

  /** A `block_actions` payload for a button click in a DM, form-encoded as Slack posts it. */
  function blockActions(userId: string, actionId: string, value?: string, team = FAKE_TEAM_ID): string {
    const payload = {
      type: 'block_actions',
      user: { id: userId, username: 'someone', name: 'someone', team_id: team },
      api_app_id: 'A0FAKEAPP1',
      token: 'deprecated-verification-token',
      container: { type: 'message', message_ts: '1700000000.000100', channel_id: fake.dmChannelOf(userId), is_ephemeral: false },
      trigger_id: '1.2.abc',
      team: { id: team, domain: 'fake' },
      channel: { id: fake.dmChannelOf(userId), name: 'directmessage' },
      response_url: fake.responseUrl(),
      actions: [
        {
          action_id: actionId,
          block_id: 'b1',
          text: { type: 'plain_text', text: 'View Expense Report', emoji: true },
          ...(value ? { value } : {}),
          type: 'button',
          action_ts: '1700000001.000200',
        },
      ],
    };
    return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  }

  describe('delivery', () => {
    it('posts one direct message per notify and returns <channel>/<ts> as the receipt', async () => {
      const { notifier } = await harness();
      const receipt = await notifier.deliver(outbound('notify'));

      const posts = fake.callsTo('chat.postMessage');
      expect(posts).to.have.length(1);
      expect(posts[0]!.args.channel).to.equal(GRACE.id);
      const messages = fake.messagesTo(GRACE.id);
      expect(messages).to.have.length(1);
      expect(receipt.ref).to.equal(`${fake.dmChannelOf(GRACE.id)}/${messages[0]!.ts}`);
    });

    it('renders the card as Block Kit with a fallback text and a View Expense Report link button', async () => {
      const { notifier } = await harness();
      await notifier.deliver(outbound('notify'));

      const post = fake.callsTo('chat.postMessage')[0]!;
      expect(String(post.args.text)).to.include('Berlin offsite');
      const blocks = blocksOf(post);
      expect(blocks[0]).to.deep.include({ type: 'header' });
      const actions = blocks.filter((b) => b.type === 'actions');
      expect(actions).to.have.length(1);
      expect(actions[0]!.elements).to.deep.equal([
        {
          type: 'button',
          text: { type: 'plain_text', text: 'View Expense Report', emoji: false },
          url: 'https://www.concursolutions.com/goto/expense-report/G1',
          action_id: 'approvals.open',
          value: G1.key,
        },
      ]);
      const shown = textObjects(blocks)
        .map((t) => t.text)
        .join('\n');
      for (const fact of ['Ada Lovelace', 'EUR 120.00', '2025-06-01', 'R-0001', 'Hotel', 'missing receipt']) expect(shown).to.include(fact);
    });

    it('escapes Slack control characters everywhere, so a report name cannot mention @channel or carry a link', async () => {
      const { notifier } = await harness();
      const hostile = card({
        title: '<!channel> *bold* <https://evil.example|click> & Co',
        requester: { name: '<@U0ALAN0001>' },
        fields: [{ label: 'Purpose', value: '<!here> _urgent_' }],
        flags: ['<script>alert(1)</script>'],
      });
      await notifier.deliver(outbound('notify', { card: hostile }));

      const post = fake.callsTo('chat.postMessage')[0]!;
      const sent = `${String(post.args.text)}\n${String(post.args.blocks)}`;
      for (const raw of ['<!channel>', '<!here>', '<https://evil', '<@U0ALAN0001>', '<script>']) expect(sent).not.to.include(raw);
      const texts = textObjects(blocksOf(post));
      expect(
        texts.map((t) => t.type),
        'source text only in plain_text objects',
      ).to.satisfy((types: string[]) => types.every((t) => t === 'plain_text'));
      expect(texts.map((t) => t.text)).to.include('&lt;!channel&gt; *bold* &lt;https://evil.example|click&gt; &amp; Co');
      expect(String(post.args.text)).to.include('&lt;!channel&gt;');
    });

    it('carries the idempotency key, approval key and revision in the message metadata', async () => {
      const { notifier } = await harness();
      const message = outbound('notify');
      await notifier.deliver(message);

      expect(fake.messagesTo(GRACE.id)[0]!.metadata).to.deep.equal({
        event_type: 'approvals_hub_card',
        event_payload: { idempotency_key: message.idempotencyKey, approval_key: G1.key, revision: 1 },
      });
    });

    it('updates the delivered message in place with chat.update on its ts', async () => {
      const { notifier } = await harness();
      const receipt = await notifier.deliver(outbound('notify'));
      const [channel, ts] = receipt.ref.split('/');

      const again = await notifier.deliver(outbound('update', { card: card({ revision: 2, title: 'Berlin offsite (revised)' }), previous: receipt }));

      expect(again).to.deep.equal(receipt);
      const updates = fake.callsTo('chat.update');
      expect(updates).to.have.length(1);
      expect(updates[0]!.args).to.deep.include({ channel, ts });
      expect(fake.callsTo('chat.postMessage')).to.have.length(1);
      const [message] = fake.messagesTo(GRACE.id);
      expect(textObjects(message!.blocks).map((t) => t.text)).to.include('Berlin offsite (revised)');
      expect(message!.metadata?.event_payload.revision).to.equal(2);
    });

    it('closes a card with its outcome and without any actions block', async () => {
      const { notifier } = await harness();
      const receipt = await notifier.deliver(outbound('notify'));

      await notifier.deliver(outbound('close', { card: card({ revision: 2, outcome: 'approved' }), previous: receipt }));

      const [message] = fake.messagesTo(GRACE.id);
      expect(message!.blocks!.map((b) => (b as { type: string }).type)).not.to.include('actions');
      expect(
        textObjects(message!.blocks)
          .map((t) => t.text)
          .join('\n'),
      ).to.include('Approved');
      expect(message!.text).to.match(/^✅ Approved: Berlin offsite/);
    });

    it("reminds in the card's thread with plain text and no buttons, leaving the card as it was", async () => {
      const { notifier } = await harness();
      const receipt = await notifier.deliver(outbound('notify'));
      const [channel, ts] = receipt.ref.split('/');
      const before = structuredClone(fake.messagesTo(GRACE.id)[0]);

      await notifier.deliver(outbound('remind', { idempotencyKey: `${G1.key}#g1.1:grace:slack:remind-1`, previous: receipt }));

      const reply = fake.callsTo('chat.postMessage')[1]!;
      expect(reply.args).to.deep.include({ channel, thread_ts: ts });
      expect(String(reply.args.reply_broadcast)).to.equal('true');
      expect(reply.args.blocks).to.equal(undefined);
      expect(String(reply.args.text)).to.match(/^⏰ Reminder: .*Berlin offsite/);
      expect(fake.callsTo('chat.update')).to.deep.equal([]);
      expect(fake.messagesTo(GRACE.id)[0]).to.deep.equal(before);
      expect(fake.messagesTo(GRACE.id).filter((m) => m.blocks?.some((b) => (b as { type: string }).type === 'actions'))).to.have.length(1);
    });

    it('posts a digest as one message with a View link per approval and no other buttons', async () => {
      const { notifier } = await harness();
      const listed = [
        card(),
        card({
          approvalKey: G2.key,
          title: 'Client dinner in Lisbon',
          actions: [{ type: 'link', label: 'View Expense Report', url: 'https://www.concursolutions.com/goto/expense-report/G2' }],
        }),
      ];
      const summary = card({ approvalKey: 'digest:grace@acme.test', kind: 'digest', revision: 0, title: '2 approvals are waiting on you', actions: [] });

      await notifier.deliver(outbound('digest', { idempotencyKey: 'digest:grace@acme.test:slack:2025-06-02', card: summary, digest: listed }));

      const [post, ...more] = fake.callsTo('chat.postMessage');
      expect(more).to.deep.equal([]);
      expect(post!.args.channel).to.equal(GRACE.id);
      const blocks = blocksOf(post!);
      expect(blocks.filter((b) => b.type === 'actions')).to.deep.equal([]);
      expect(blocks.flatMap((b) => (b.accessory ? [(b.accessory as { url: string }).url] : []))).to.deep.equal([
        'https://www.concursolutions.com/goto/expense-report/G1',
        'https://www.concursolutions.com/goto/expense-report/G2',
      ]);
      expect(
        textObjects(blocks)
          .map((t) => t.text)
          .join('\n'),
      )
        .to.include('2 approvals are waiting on you')
        .and.include('Client dinner in Lisbon');
    });

    it('posts a sign-in link (`link`) as one DM whose only button is the link, and no approval facts', async () => {
      const { notifier } = await harness();
      const url = 'https://inbox.acme.test/inbox/login?token=abc.def';
      const link = card({
        approvalKey: 'sign-in:grace@acme.test',
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

      await notifier.deliver(outbound('link', { idempotencyKey: 'sign-in:grace@acme.test:slack:1', card: link }));

      const [post, ...more] = fake.callsTo('chat.postMessage');
      expect(more).to.deep.equal([]);
      expect(post!.args.channel).to.equal(GRACE.id);
      const buttons = blocksOf(post!).flatMap((b) => (b.type === 'actions' ? (b.elements as { url?: string; action_id: string }[]) : []));
      expect(buttons.map((b) => b.url)).to.deep.equal([url]);
      // Not an "open approval" button: the interactivity route ignores its click.
      expect(actionKind(buttons[0]!.action_id)).to.equal(undefined);
      const shown = textObjects(blocksOf(post!))
        .map((t) => t.text)
        .join('\n');
      expect(shown).to.include('Your new sign-in link to the approvals inbox').and.include('Works: once, for 15 minutes');
      expect(shown).not.to.include('Requester');
      expect(String(post!.args.text)).to.equal('Your new sign-in link to the approvals inbox');
    });

    it('dead-letters a recipient Slack does not know: users_not_found is a PermanentDeliveryError', async () => {
      const { notifier } = await harness();
      fake.hideEmail(GRACE.email);

      const error = await notifier.deliver(outbound('notify')).then(
        () => undefined,
        (e: unknown) => e,
      );

      expect(error).to.be.instanceOf(PermanentDeliveryError);
      expect((error as Error).message).to.include('users_not_found');
      expect(fake.callsTo('chat.postMessage')).to.have.length(0);
    });

    it('throws a retryable error naming Retry-After when rate limited, without sleeping, and posts once after Slack recovers', async () => {
      const { notifier } = await harness();
      fake.fail({ kind: 'rate-limited', retryAfter: 1 }, { methods: ['chat.postMessage'] });

      const started = performance.now();
      const error = await notifier.deliver(outbound('notify')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(performance.now() - started, 'the client must not wait out Retry-After itself').to.be.below(900);
      expect(error).to.be.instanceOf(SlackRetryableError).and.not.to.be.instanceOf(PermanentDeliveryError);
      expect((error as SlackRetryableError).message).to.match(/rate limited, Retry-After 1s/);
      expect((error as SlackRetryableError).retryAfterMs).to.equal(1000);

      fake.recover();
      await notifier.deliver(outbound('notify'));
      expect(fake.messagesTo(GRACE.id)).to.have.length(1);
    });

    it('throws a retryable error on a 5xx, and a retry after Slack recovers delivers exactly once', async () => {
      const { notifier } = await harness();
      fake.fail({ kind: 'http', status: 503 }, { methods: ['chat.postMessage'] });

      const error = await notifier.deliver(outbound('notify')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(Error).and.not.to.be.instanceOf(PermanentDeliveryError);
      expect((error as Error).message).to.include('HTTP 503');
      expect(fake.messagesTo(GRACE.id)).to.have.length(0);

      fake.recover();
      await notifier.deliver(outbound('notify'));
      expect(fake.callsTo('chat.postMessage')).to.have.length(2);
      expect(fake.messagesTo(GRACE.id)).to.have.length(1);
    });

    it('reads a Retry-After a 5xx gives as an HTTP date, and waits at most an hour', async () => {
      const { notifier } = await harness();
      fake.fail({ kind: 'http', status: 503, retryAfter: 'Fri, 01 Jan 2100 00:00:00 GMT' }, { methods: ['chat.postMessage'] });

      const error = await notifier.deliver(outbound('notify')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(SlackRetryableError);
      expect((error as SlackRetryableError).retryAfterMs).to.equal(MAX_RETRY_AFTER_MS);
      expect((error as Error).message).to.include('HTTP 503, Retry-After 3600s');
      fake.recover();
    });

    it('refuses an action it does not know for good, calling no Slack method', async () => {
      const { notifier } = await harness();
      const before = fake.calls.length;
      const error = await notifier.deliver({ ...outbound('notify'), action: 'escalate' as OutboundMessage['action'] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(PermanentDeliveryError);
      expect((error as Error).message).to.include('"escalate"');
      expect(fake.calls.slice(before)).to.deep.equal([]);
    });

    it('finds a message Slack accepted before the reply was lost, so the outbox does not post it twice', async () => {
      const { notifier } = await harness();
      const message = outbound('notify');
      fake.fail({ kind: 'lost-reply', status: 502 }, { methods: ['chat.postMessage'], times: 1 });
      await notifier.deliver(message).then(
        () => expect.fail('the reply was lost'),
        () => undefined,
      );

      const found = await notifier.findDelivered(message.idempotencyKey);

      const [posted] = fake.messagesTo(GRACE.id);
      expect(found).to.deep.equal({ ref: `${fake.dmChannelOf(GRACE.id)}/${posted!.ts}` });
      expect(await notifier.findDelivered(`${G2.key}#g1.1:grace:slack:notify`)).to.equal(undefined);
      expect(fake.callsTo('conversations.history')[0]!.args).to.deep.include({ include_all_metadata: 'true' });
    });

    it('does not search the DM for a post Slack refused outright (429), since nothing was posted', async () => {
      const { notifier } = await harness();
      const message = outbound('notify');
      fake.fail({ kind: 'rate-limited', retryAfter: 1 }, { methods: ['chat.postMessage'], times: 1 });
      await notifier.deliver(message).then(
        () => expect.fail('rate limited'),
        () => undefined,
      );

      expect(await notifier.findDelivered(message.idempotencyKey)).to.equal(undefined);
      expect(fake.callsTo('conversations.history')).to.have.length(0);
    });

    it('keeps a refused bot token retryable, so an operator can fix it before the outbox dead-letters', async () => {
      const { notifier } = await harness({ botToken: 'xoxb-not-the-right-token' });

      const error = await notifier.deliver(outbound('notify')).then(
        () => undefined,
        (e: unknown) => e,
      );

      expect(error).to.be.instanceOf(SlackRetryableError);
      expect((error as Error).message)
        .to.include('invalid_auth')
        .and.not.to.include('xoxb-');
    });
  });

  describe('request signatures', () => {
    it('accepts a request signed with the signing secret over its raw body', async () => {
      const h = await harness();
      expect((await post(h, '/slack/commands', command(GRACE.id), FORM)).status).to.equal(200);
    });

    it('refuses a forged signature with 401 and does nothing', async () => {
      const h = await harness();
      const body = command(GRACE.id);
      const res = await post(h, '/slack/commands', body, FORM, slackSignatureHeaders('not-the-secret', body));
      expect(res.status).to.equal(401);
      expect(fake.calls).to.have.length(0);
    });

    it('refuses a timestamp older than five minutes with 401', async () => {
      const h = await harness();
      const body = command(GRACE.id);
      const res = await post(h, '/slack/commands', body, FORM, slackSignatureHeaders(SECRET, body, Math.floor(Date.now() / 1000) - 301));
      expect(res.status).to.equal(401);
    });

    it('refuses the same signed request replayed with 401', async () => {
      const h = await harness();
      const body = command(GRACE.id);
      const headers = slackSignatureHeaders(SECRET, body);
      expect((await post(h, '/slack/commands', body, FORM, headers)).status).to.equal(200);
      expect((await post(h, '/slack/commands', body, FORM, headers)).status).to.equal(401);
    });

    it('verifies the bytes sent, not the parsed fields: the same fields re-encoded are refused', async () => {
      const h = await harness();
      const body = command(GRACE.id);
      const reordered = [...new URLSearchParams(body)]
        .reverse()
        .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
        .join('&');
      expect((await post(h, '/slack/commands', reordered, FORM, slackSignatureHeaders(SECRET, body))).status).to.equal(401);
    });
  });

  describe('workspace', () => {
    const OTHER_TEAM = 'T0OTHER001';
    /** An `app_home_opened` event envelope (docs.slack.dev/apis/events-api/#callback-field). */
    const homeOpened = (userId: string, team: string) =>
      JSON.stringify({
        token: 'deprecated-verification-token',
        team_id: team,
        api_app_id: 'A0FAKEAPP1',
        type: 'event_callback',
        event_id: `Ev${team}`,
        event_time: 1700000000,
        event: { type: 'app_home_opened', user: userId, tab: 'home', event_ts: '1700000000.000300' },
      });

    /** The three routes, each with a correctly signed request naming `team`. */
    async function everyRoute(h: Harness, team: string): Promise<number[]> {
      return [
        (await post(h, '/slack/commands', command(GRACE.id, team), FORM)).status,
        (await post(h, '/slack/interactivity', blockActions(GRACE.id, 'approvals.open', G1.key, team), FORM)).status,
        (await post(h, '/slack/events', homeOpened(GRACE.id, team), JSON_TYPE)).status,
      ];
    }

    it('refuses a correctly signed request from another workspace with 403 on every route, telling it nothing', async () => {
      const h = await harness();
      expect(await everyRoute(h, OTHER_TEAM)).to.deep.equal([403, 403, 403]);
      expect(fake.callsTo('users.info')).to.have.length(0);
      expect(fake.callsTo('views.publish')).to.have.length(0);
      expect(fake.responses).to.have.length(0);
      // The served workspace was learned from the bot token (auth.test), once.
      expect(await everyRoute(h, FAKE_TEAM_ID)).to.deep.equal([200, 200, 200]);
      expect(fake.callsTo('auth.test')).to.have.length(1);
    });

    it('serves only the configured teamId, even when the bot token belongs to another workspace', async () => {
      const h = await harness({ teamId: OTHER_TEAM });
      expect(await everyRoute(h, FAKE_TEAM_ID)).to.deep.equal([403, 403, 403]);
      expect(fake.callsTo('users.info')).to.have.length(0);
      expect(await everyRoute(h, OTHER_TEAM)).to.deep.equal([200, 200, 200]);
      expect(fake.callsTo('auth.test')).to.have.length(0);
    });

    it('refuses with 503 while auth.test cannot say which workspace is served, and serves once it can', async () => {
      const h = await harness();
      fake.fail({ kind: 'http', status: 500 }, { methods: ['auth.test'], times: 1 });
      expect((await post(h, '/slack/commands', command(GRACE.id), FORM)).status).to.equal(503);
      expect(fake.callsTo('users.info')).to.have.length(0);
      // Slack's retry is signed anew (a new timestamp): the first signature is spent.
      const body = command(GRACE.id);
      expect((await post(h, '/slack/commands', body, FORM, slackSignatureHeaders(SECRET, body, Math.floor(Date.now() / 1000) - 1))).status).to.equal(200);
    });
  });

  describe('what is waiting on me', () => {
    it("/approvals lists only the caller's approvals, ephemerally", async () => {
      const h = await harness();
      const res = await post(h, '/slack/commands', command(GRACE.id), FORM);

      const reply = res.json();
      expect(reply.response_type).to.equal('ephemeral');
      const shown = textObjects(reply.blocks)
        .map((t) => t.text)
        .join('\n');
      expect(shown).to.include(G1.title).and.include(G2.title);
      expect(res.text).not.to.include(A1.title).and.not.to.include('99999.00');
      expect(fake.callsTo('users.info')[0]!.args.user).to.equal(GRACE.id);
    });

    it('/approvals shows nothing to a Slack user whose e-mail is not known', async () => {
      const h = await harness();
      const res = await post(h, '/slack/commands', command(NOBODY.id), FORM);

      expect(res.json().text).to.match(/cannot match your Slack account/);
      for (const a of [G1, G2, A1]) expect(res.text).not.to.include(a.title);
    });

    it("publishes the App Home tab with only the user's approvals when they open it", async () => {
      const h = await harness();
      const event = {
        token: 'deprecated-verification-token',
        team_id: FAKE_TEAM_ID,
        api_app_id: 'A0FAKEAPP1',
        event: { type: 'app_home_opened', user: ALAN.id, channel: fake.dmChannelOf(ALAN.id), tab: 'home', event_ts: '1700000000.000300' },
        type: 'event_callback',
        event_id: 'Ev0001',
        event_time: 1700000000,
      };
      const res = await post(h, '/slack/events', JSON.stringify(event), JSON_TYPE);

      expect(res.status).to.equal(200);
      const view = fake.homeViews.get(ALAN.id);
      expect(view?.type).to.equal('home');
      const shown = textObjects(view?.blocks)
        .map((t) => t.text)
        .join('\n');
      expect(shown).to.include(A1.title);
      expect(shown).not.to.include(G1.title).and.not.to.include(G2.title);
    });

    it('does not publish an App Home tab when appHome is off', async () => {
      const h = await harness({ appHome: false });
      const event = {
        type: 'event_callback',
        team_id: FAKE_TEAM_ID,
        event: { type: 'app_home_opened', user: GRACE.id, tab: 'home', event_ts: '1700000000.000300' },
      };
      expect((await post(h, '/slack/events', JSON.stringify(event), JSON_TYPE)).status).to.equal(200);
      expect(fake.callsTo('views.publish')).to.have.length(0);
    });

    it('answers the Events API url_verification challenge', async () => {
      const h = await harness();
      const body = JSON.stringify({
        token: 'deprecated-verification-token',
        challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P',
        type: 'url_verification',
      });
      const res = await post(h, '/slack/events', body, JSON_TYPE);
      expect(res.json()).to.deep.equal({ challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P' });
    });

    it('offers the other approvals waiting on a person after they open one', async () => {
      const h = await harness();
      const res = await post(h, '/slack/interactivity', blockActions(GRACE.id, 'approvals.open', G1.key), FORM);

      expect(res.status).to.equal(200);
      expect(fake.responses).to.have.length(1);
      const reply = fake.responses[0]!.body as Record<string, unknown>;
      expect(reply).to.deep.include({ response_type: 'ephemeral', replace_original: false });
      const shown = textObjects(reply.blocks)
        .map((t) => t.text)
        .join('\n');
      expect(shown).to.include(G2.title).and.not.to.include(G1.title).and.not.to.include(A1.title);
    });

    it("gives no details for an action naming someone else's approval key", async () => {
      const h = await harness();
      const res = await post(h, '/slack/interactivity', blockActions(GRACE.id, 'approvals.more', A1.key), FORM);

      expect(res.status).to.equal(200);
      const reply = fake.responses[0]!.body as Record<string, unknown>;
      expect(reply.text).to.equal('That approval is not waiting on you.');
      expect(reply.blocks).to.equal(undefined);
      const said = JSON.stringify(fake.responses);
      for (const detail of [A1.title, '99999.00', 'Ada Lovelace', G1.title]) expect(said).not.to.include(detail);
    });
  });

  describe('plugin module and manifest', () => {
    it("binds the Notifier and its HttpRoutes in the plugin's child container", async () => {
      const { child } = await harness();
      const notifier = child.get(Notifier);
      expect(notifier).to.be.instanceOf(SlackNotifier);
      expect(notifier.id).to.equal('slack');
      expect(child.getAll(HttpRoutes).map((r) => r.id)).to.deep.equal(['slack:callbacks']);
    });

    /** The built-in catalog, plus the source folders when the manifests were not copied next to the compiled code. */
    function catalog(): PluginCatalog {
      const problems: string[] = [];
      const c = PluginCatalog.builtIn(problems);
      if (!c.get('slack', 'notifier')) c.addLocation(resolve('adapters/chat-slack'), process.cwd(), 'slack', problems);
      if (!c.get('memory', 'queue')) c.addLocation(resolve('adapters/queue-memory'), process.cwd(), 'memory', problems);
      expect(problems).to.deep.equal([]);
      return c;
    }

    it('takes its secrets as references and fills in the defaults', () => {
      const deployment = loadDeployment(undefined, {
        catalog: catalog(),
        env: { SLACK_BOT_TOKEN: 'xoxb-from-env', SLACK_SIGNING_SECRET: 'from-env' },
        raw: {
          queue: { adapter: 'memory' },
          notifiers: [{ id: 'slack', plugin: 'slack', config: { botToken: { env: 'SLACK_BOT_TOKEN' }, signingSecret: { env: 'SLACK_SIGNING_SECRET' } } }],
        },
      });
      expect(deployment.notifiers[0]!.config).to.deep.equal({
        botToken: 'xoxb-from-env',
        signingSecret: 'from-env',
        apiUrl: 'https://slack.com/api/',
        callbackPath: '/slack',
        appHome: true,
      });
    });

    it('refuses a literal token and a plain-http API URL off loopback, naming each path', () => {
      let error: unknown;
      try {
        loadDeployment(undefined, {
          catalog: catalog(),
          env: { SLACK_SIGNING_SECRET: 'from-env' },
          raw: {
            queue: { adapter: 'memory' },
            notifiers: [
              {
                id: 'slack',
                plugin: 'slack',
                config: { botToken: 'xoxb-literal', signingSecret: { env: 'SLACK_SIGNING_SECRET' }, apiUrl: 'http://slack.example/api/' },
              },
            ],
          },
        });
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(ConfigError);
      const problems = (error as ConfigError).problems;
      expect(problems.some((p) => p.startsWith('notifiers[0].config.botToken: must be a secret reference'))).to.equal(true);
      expect(problems.some((p) => p.startsWith('notifiers[0].config.apiUrl: must be an https URL'))).to.equal(true);
    });
  });
});
