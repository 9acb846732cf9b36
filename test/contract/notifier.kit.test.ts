import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { ConsoleNotifier } from '../../adapters/chat-console/console-notifier.js';
import slackModule from '../../adapters/chat-slack/module.js';
import { SlackNotifier } from '../../adapters/chat-slack/slack-notifier.js';
import { BotConnector, TeamsDirectory, TeamsNotifier } from '../../adapters/chat-teams/teams-notifier.js';
import { InboxSessions } from '../../adapters/chat-web/inbox-sessions.js';
import { WebInboxNotifier, type InboxEvent } from '../../adapters/chat-web/web-inbox-notifier.js';
import { WebhookNotifier } from '../../adapters/chat-webhook/webhook-notifier.js';
import { MemoryApprovalQueue } from '../../adapters/queue-memory/memory-approval-queue.js';
import { ApprovalLookup, Clock, Container, Logger, PluginContext, systemClock } from '../../core/index.js';
import { ManualClock, checkNotifier, describeNotifier, type ChannelDriver } from '../../core/testing/index.js';
import { startFakeBotConnector, type FakeConnectorFault, type FakeTeamsUser } from '../support/fake-bot-connector.js';
import { FakeSlack } from '../support/fake-slack.js';

const silent = (): Logger => pino({ level: 'silent' });
const GRACE = { id: 'U0GRACE001', email: 'grace@acme.test', name: 'Grace Hopper' };
const recipient = { sourceUserId: 'grace', email: GRACE.email };

describeNotifier(
  'console (captured stream)',
  async () => {
    const printed: string[] = [];
    const driver: ChannelDriver = {
      messages: async () => [...printed],
      failPermanently: async () => undefined,
      failTemporarily: async () => undefined,
      recover: async () => undefined,
    };
    return { notifier: new ConsoleNotifier('console', (text) => printed.push(text)), driver, recipient };
  },
  {
    editsInPlace: false,
    skip: {
      idempotency: 'a terminal cannot take a printed block back or look one up: a re-sent entry is printed again',
      'permanent error': 'writing to a stream has no refusal',
      'retryable error': 'writing to a stream has no temporary refusal',
      'retry after': 'writing to a stream has no temporary refusal',
    },
  },
);

describeNotifier('slack (fake Slack Web API on loopback)', async () => {
  const fake = await FakeSlack.start();
  fake.addUser(GRACE);
  const root = new Container({ defaultScope: 'Singleton' });
  root.bind(ApprovalLookup).toConstantValue({ waitingOn: async () => [], forApprover: async () => undefined });
  root.bind(Clock).toConstantValue(systemClock);
  root.bind(Logger).toConstantValue(silent());
  const child = new Container({ parent: root, defaultScope: 'Singleton' });
  const context = {
    instanceId: 'slack',
    config: { botToken: FakeSlack.TOKEN, signingSecret: 'fake-signing-secret-0123456789', apiUrl: fake.apiUrl },
    baseDir: '.',
  };
  child.bind(PluginContext).toConstantValue(context);
  await child.loadAsync(slackModule(context));
  const driver: ChannelDriver = {
    messages: async () => fake.messagesTo(GRACE.id).map((m) => JSON.stringify(m)),
    // Slack answers users_not_found for an e-mail no member has: the permanent refusal a DM meets.
    failPermanently: async () => fake.hideEmail(GRACE.email),
    failTemporarily: async () => fake.fail({ kind: 'rate-limited', retryAfter: 1 }),
    recover: async () => fake.recover(),
  };
  return { notifier: child.get(SlackNotifier), driver, recipient, close: () => fake.close() };
});

const ANN: FakeTeamsUser = { id: '29:1ann-7Qx9', aadObjectId: '11111111-aaaa-4aaa-8aaa-111111111111', email: 'ann@example.test', name: 'Ann Approver' };
const TEAMS_TOKEN = 'fake-bot-token';

describeNotifier('teams (fake Bot Connector on loopback)', async () => {
  const fake = await startFakeBotConnector({ tenantId: '6e3b0f5c-1f0a-4c52-9a6e-3d8f3c0e9a11', users: [ANN], botToken: TEAMS_TOKEN });
  const connector = new BotConnector(fake.serviceUrl, async () => TEAMS_TOKEN);
  const directory = new TeamsDirectory(connector, { [ANN.email]: ANN.id }, undefined, systemClock);
  const notifier = new TeamsNotifier(
    'teams',
    { appId: '0f8b7a52-93c1-4d7e-bb6a-2a3c4d5e6f70', tenantId: '6e3b0f5c-1f0a-4c52-9a6e-3d8f3c0e9a11' },
    connector,
    directory,
    silent(),
  );
  // The fake fails its next N calls and cannot be told to stop, so each failure is one call: the
  // kit makes one delivery while the channel fails, and the notifier makes no retry of its own.
  const driver: ChannelDriver = {
    messages: async () => fake.messagesIn(fake.personalConversation(ANN.id)).map((a) => JSON.stringify(a)),
    // The fake answers any status it is given; 403 is what Teams answers when the user blocked the bot.
    failPermanently: async () => fake.failNext(1, { status: 403 } as unknown as FakeConnectorFault),
    failTemporarily: async () => fake.failNext(1, { status: 429, retryAfter: 1 }),
    recover: async () => undefined,
  };
  return { notifier, driver, recipient: { sourceUserId: 'ann', email: ANN.email }, close: () => fake.close() };
});

describeNotifier(
  'web inbox (an open page attached to its event stream)',
  async () => {
    const clock = new ManualClock(new Date());
    const queue = new MemoryApprovalQueue();
    await queue.init();
    const settings = {
      instanceId: 'web',
      signingKey: 'k'.repeat(48),
      linkTtlMs: 60_000,
      linkRequestIntervalMs: 60_000,
      sessionTtlMs: 60_000,
      publicUrl: 'https://inbox.example.test',
    };
    const feed = { shared: false, deliveredSince: async () => [] };
    const web = new WebInboxNotifier(settings, clock, silent(), feed, new InboxSessions(settings, queue, clock));
    // What the page shows: one card per approval (its latest version), then each highlight a reminder added.
    const cards = new Map<string, InboxEvent>();
    const reminders: InboxEvent[] = [];
    const detach = web.attach(recipient.email, {
      send: (event) => {
        if (event.type === 'approval') cards.set(event.item.key, event);
        else if (event.type === 'closed') cards.set(event.key, event);
        else reminders.push(event);
      },
      end: () => undefined,
    });
    const driver: ChannelDriver = {
      messages: async () => [...cards.values(), ...reminders].map((e) => JSON.stringify(e)),
      failPermanently: async () => undefined,
      failTemporarily: async () => undefined,
      recover: async () => undefined,
    };
    return {
      notifier: web,
      driver,
      recipient,
      close: async () => {
        detach();
        await queue.close();
      },
    };
  },
  {
    skip: {
      digest: 'the inbox page lists every pending approval already: a digest highlights those cards (one reminder event each) instead of posting a message',
      'permanent error': 'a delivery is a push to the pages open now; nothing refuses it',
      'retryable error': 'a delivery is a push to the pages open now; nothing refuses it',
      'retry after': 'a delivery is a push to the pages open now; nothing refuses it',
    },
  },
);

/** A customer's receiver on loopback that applies each event once per Idempotency-Key, as the README asks of one. */
async function webhookReceiver() {
  const events = new Map<string, string>();
  let answer: { status: number; headers?: Record<string, string> } = { status: 200 };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const key = (req.headers as IncomingHttpHeaders)['idempotency-key'];
      if (answer.status === 200 && typeof key === 'string' && !events.has(key)) events.set(key, body);
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.status === 200 ? JSON.stringify({ ref: `msg-${events.size}` }) : '{"error":"refused"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const driver: ChannelDriver = {
    messages: async () => [...events.values()],
    failPermanently: async () => void (answer = { status: 400 }),
    failTemporarily: async () => void (answer = { status: 503, headers: { 'retry-after': '1' } }),
    recover: async () => void (answer = { status: 200 }),
  };
  return { url, driver, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describeNotifier(
  'webhook (a receiver on loopback)',
  async () => {
    const receiver = await webhookReceiver();
    return {
      notifier: new WebhookNotifier('hook', receiver.url, 'webhook-secret-0123456789abcdef', 5_000),
      driver: receiver.driver,
      recipient,
      close: receiver.close,
    };
  },
  { editsInPlace: false },
);

describe('Notifier contract kit, run on a broken notifier', () => {
  /** A channel whose notifier reports every refusal as a plain Error and posts every re-send again. */
  async function broken() {
    const printed: string[] = [];
    let refusing = false;
    const notifier = {
      id: 'broken',
      async deliver(m: { idempotencyKey: string; card: { title: string } }) {
        if (refusing) throw new Error('HTTP 403 from the chat API');
        printed.push(m.card.title);
        return { ref: `broken-${printed.length}` };
      },
    };
    const driver: ChannelDriver = {
      messages: async () => [...printed],
      failPermanently: async () => void (refusing = true),
      failTemporarily: async () => void (refusing = true),
      recover: async () => void (refusing = false),
    };
    return { notifier, driver, recipient };
  }

  it('reports a permanent refusal the outbox would retry forever, and a re-sent key posted twice', async () => {
    const results = await checkNotifier(broken, {}, ['permanent error', 'idempotency', 'retry after']);
    const problems = results.flatMap((r) => r.problems).join('\n');

    assert.match(problems, /permanent error: the error is not recognised by isPermanentDeliveryError/);
    assert.match(problems, /idempotency: the same idempotency key delivered twice left 2 new messages/);
    assert.match(problems, /retry after: the error is not recognised by isRetryLaterError/);
  });
});
