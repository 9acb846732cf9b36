import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { ActionResult } from '../../core/index.js';
import type { InboxEvent, InboxItem, WebInboxNotifier } from '../../adapters/chat-web/web-inbox-notifier.js';
import { callsTo, startConcurSandbox, type CallCounts } from '../../plugins/concur/sandbox/index.js';
import { cardActionInvoke, startFakeBotConnector, validInvokeResponse, type FakeBotConnector, type FakeTeamsUser } from '../support/fake-bot-connector.js';
import { FAKE_TEAM_ID, FakeSlack, slackSignatureHeaders, type FakeSlackMessage } from '../support/fake-slack.js';
import { concurHarness, SOURCE, type ConcurHarness } from '../support/concur-harness.js';
import { connectAs } from '../support/concur-consent.js';
import { SMALL_COMPANY } from '../support/sandbox-deployment.js';

/**
 * Issue 13's first "must show", on the real Concur plugin and sandbox: one host with Slack and Teams
 * (each against its fake on loopback) and the web inbox (over HTTP and in Chromium), where approvers
 * connect their Concur account from the channel they clicked in, approve, send back with a comment
 * and bulk approve 20; the report's state in the sandbox changes and every channel's card tells the outcome.
 */

const PUBLIC_URL = 'https://approvals.example.test';
const SLACK_SECRET = 'slack-signing-secret-for-channel-actions';
const WEB_KEY = 'test-web-inbox-concur-actions-signing-key-0123';
const TENANT = '6e3b0f5c-1f0a-4c52-9a6e-3d8f3c0e9a11';
const GUARD = 'GET /expensereports/v4/users/:userId/context/:contextType/reportsToApprove';
const APPROVE = 'PATCH /expensereports/v4/users/:userId/context/:contextType/reports/:reportId/approve';
const TOKEN = 'POST /oauth2/v0/token';
const CHROMIUM = '/usr/bin/chromium';

type Json = Record<string, unknown>;

interface Approver {
  readonly login: string;
  readonly email: string;
  readonly slackId: string;
  readonly teams: FakeTeamsUser;
}

/** Every object in a JSON tree (a Block Kit message, an Adaptive Card), depth first. */
function nodes(value: unknown): Json[] {
  if (Array.isArray(value)) return value.flatMap(nodes);
  if (typeof value !== 'object' || value === null) return [];
  return [value as Json, ...Object.values(value).flatMap(nodes)];
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('Concur actions through Slack, Teams and the web inbox (sandbox, real plugins, fakes on loopback)', function () {
  this.timeout(60_000);
  let h: ConcurHarness;
  let slack: FakeSlack;
  let teams: FakeBotConnector;
  let web: WebInboxNotifier;
  let approvers: Approver[];
  let seq = 0;

  beforeEach(async () => {
    // Teams' `users` config names the approvers before the host starts, and the harness starts its
    // sandbox with the host: SMALL_COMPANY is seeded, so a first sandbox names the same approvers.
    const probe = await startConcurSandbox(SMALL_COMPANY);
    const people = probe.admin.users();
    await probe.close();
    approvers = people
      .filter((u) => u.isApprover)
      .map((u, i) => {
        const email = u.email.toLowerCase();
        const teamsUser = { id: `29:1approver-${i}`, aadObjectId: `0000000${i}-aaaa-4aaa-8aaa-00000000000${i}`, email, name: u.displayName };
        return { login: u.loginId, email, slackId: `U0APPR000${i}`, teams: teamsUser };
      });
    expect(approvers).to.have.length(3);
    slack = await FakeSlack.start();
    teams = await startFakeBotConnector({ tenantId: TENANT, users: approvers.map((a) => a.teams) });
    for (const a of approvers) slack.addUser({ id: a.slackId, email: a.email, name: a.login });

    h = await concurHarness({
      http: true,
      config: { actions: ['approve', 'sendBack'], consent: { publicUrl: PUBLIC_URL } },
      notifiers: [
        {
          id: 'slack',
          plugin: 'slack',
          config: { botToken: { env: 'AH_SLACK_TOKEN' }, signingSecret: { env: 'AH_SLACK_SIGNING' }, apiUrl: slack.apiUrl, teamId: FAKE_TEAM_ID },
        },
        // No appId: against a connector on loopback the plugin neither signs nor verifies (chat-teams-actions covers the JWTs).
        {
          id: 'teams',
          plugin: 'teams',
          config: { tenantId: TENANT, serviceUrl: teams.serviceUrl, users: Object.fromEntries(approvers.map((a) => [a.email, a.teams.id])) },
        },
        { id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_WEB_KEY' }, publicUrl: 'https://inbox.example.test' } },
      ],
      env: { AH_SLACK_TOKEN: FakeSlack.TOKEN, AH_SLACK_SIGNING: SLACK_SECRET, AH_WEB_KEY: WEB_KEY },
    });
    expect(h.sandbox.admin.users().map((u) => u.email.toLowerCase())).to.include.members(approvers.map((a) => a.email));
    await h.host.start();
    web = h.host.notifiers.get('web') as WebInboxNotifier;
  });

  afterEach(async () => {
    await h?.close();
    await slack?.close();
    await teams?.close();
  });

  const key = (id: string) => `${SOURCE}:expense-report:${id}`;
  const reportState = (id: string) => h.sandbox.admin.state().reports.find((r) => r.id === id)!;
  const local = (url: string) => {
    const u = new URL(url);
    return `${h.host.url!}${u.pathname}${u.search}`;
  };
  const delta = (before: CallCounts, endpoint: string, status?: number) => callsTo(h.sandbox.calls(), endpoint, status) - callsTo(before, endpoint, status);

  /** Reports submitted in Concur to `approver`, then carded and delivered in Slack and Teams (the web inbox reads the queue). */
  async function submitted(approver: Approver, count = 1): Promise<string[]> {
    const ids = Array.from({ length: count }, () => h.sandbox.admin.submit({ approver: approver.login, entries: 1 }).ID);
    await h.cycle();
    await delivered(`${count} cards to ${approver.email}`, () => {
      const inSlack = slack.messagesTo(approver.slackId).filter((m) => ids.some((id) => m.metadata?.event_payload.approval_key === key(id)));
      return inSlack.length === count && teams.messagesIn(teams.personalConversation(approver.teams.id)).length === count;
    });
    return ids;
  }

  /** Drains the outbox until `check` passes (deliveries finish in a pass or two); its value. */
  async function delivered<T>(what: string, check: () => T | undefined | false): Promise<T> {
    for (let pass = 0; pass < 10; pass++) {
      await h.host.drain();
      const value = check();
      if (value) return value;
    }
    throw new Error(`not delivered: ${what}`);
  }

  /** Follows a consent link as the approver's browser would, and checks the host's callback page. */
  async function connect(url: string, approver: Approver): Promise<void> {
    expect(url.startsWith(`${PUBLIC_URL}/concur/${SOURCE}/connect?state=`), url).to.equal(true);
    const answer = await connectAs(h.sandbox, url, approver.login, local);
    expect(answer.status, answer.html).to.equal(200);
    expect(answer.html).to.contain('Go back and press Approve or Send back again');
  }

  // Slack: cards as the fake holds them, and clicks signed as Slack signs them.

  function slackCard(approver: Approver, id: string): FakeSlackMessage {
    const card = slack.messagesTo(approver.slackId).find((m) => m.metadata?.event_payload.approval_key === key(id));
    if (!card) throw new Error(`no Slack card about ${id}`);
    return card;
  }

  function slackButton(card: FakeSlackMessage, label: string): Json {
    const found = nodes(card.blocks).find((n) => n.type === 'button' && (n.text as Json | undefined)?.text === label);
    if (!found) throw new Error(`no "${label}" button on ${JSON.stringify(card.blocks)}`);
    return found;
  }

  /** A signed `block_actions` click by `approver` on `label` of their card about `id`; the ephemeral reply to it. */
  async function slackClick(approver: Approver, id: string, label: string): Promise<Json> {
    const card = slackCard(approver, id);
    const responseUrl = slack.responseUrl(`actions/${FAKE_TEAM_ID}/${++seq}/click`);
    const channel = slack.dmChannelOf(approver.slackId);
    const payload = {
      type: 'block_actions',
      user: { id: approver.slackId, username: approver.login, name: approver.login, team_id: FAKE_TEAM_ID },
      api_app_id: 'A0FAKEAPP1',
      container: { type: 'message', message_ts: card.ts, channel_id: channel, is_ephemeral: false },
      trigger_id: slack.triggerId(),
      team: { id: FAKE_TEAM_ID, domain: 'fake' },
      channel: { id: channel, name: 'directmessage' },
      message: { type: 'message', ts: card.ts, text: card.text, blocks: card.blocks },
      response_url: responseUrl,
      actions: [{ ...slackButton(card, label), block_id: 'b1', action_ts: `${Math.floor(Date.parse(h.sandbox.admin.now()) / 1000)}.${seq}` }],
    };
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const headers = {
      'content-type': 'application/x-www-form-urlencoded',
      ...slackSignatureHeaders(SLACK_SECRET, body, Math.floor(Date.parse(h.sandbox.admin.now()) / 1000)),
    };
    const res = await fetch(`${h.host.url!}/slack/interactivity`, { method: 'POST', headers, body });
    expect(res.status).to.equal(200);
    return slack.until(() => slack.responses.find((r) => responseUrl.endsWith(r.path))?.body as Json | undefined);
  }

  /** The approver's Slack card about `id` once `chat.update` has redrawn it with a note matching `note`. */
  const slackRedrawn = (approver: Approver, id: string, note: RegExp) =>
    delivered(`Slack card about ${id}`, () => {
      const card = slackCard(approver, id);
      return card.edited && note.test(JSON.stringify(card.blocks)) ? card : undefined;
    });

  // Teams: the approver's 1:1 chat with the bot in the fake connector, and invokes as Teams posts them.

  /** The newest version of the approver's newest Teams card. */
  function teamsCard(approver: Approver): Json {
    const activity = teams.messagesIn(teams.personalConversation(approver.teams.id)).at(-1) as { attachments?: { content: Json }[] } | undefined;
    if (!activity?.attachments) throw new Error(`no Teams card for ${approver.email}`);
    return activity.attachments[0]!.content;
  }

  const texts = (card: unknown) =>
    nodes(card)
      .filter((n) => n.type === 'TextBlock')
      .map((n) => String(n.text))
      .join('\n');

  function teamsButton(card: Json, action: string): Json {
    const found = nodes(card).find((n) => n.type === 'Action.Execute' && (n.data as Json | undefined)?.action === action);
    if (!found) throw new Error(`no ${action} Action.Execute on ${JSON.stringify(card)}`);
    return found;
  }

  async function teamsClick(approver: Approver, action: Json, inputs?: Record<string, string>): Promise<Json> {
    const conversationId = teams.personalConversation(approver.teams.id);
    const invoke = cardActionInvoke({ user: approver.teams, action, conversationId, tenantId: TENANT, serviceUrl: teams.serviceUrl, inputs });
    const res = await fetch(`${h.host.url!}/teams/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(invoke) });
    expect(res.status).to.equal(200);
    const body = (await res.json()) as Json;
    expect(validInvokeResponse(body), JSON.stringify(body)).to.equal(true);
    return body;
  }

  /** The approver's Teams card once the bot has replaced it (PUT) with one whose text matches `note`. */
  const teamsUpdated = (approver: Approver, note: RegExp) =>
    delivered(`Teams card of ${approver.email}`, () => {
      const conversation = teams.personalConversation(approver.teams.id);
      const put = teams.calls.some((c) => c.method === 'PUT' && c.segments.includes(conversation));
      return put && note.test(texts(teamsCard(approver))) ? teamsCard(approver) : undefined;
    });

  // The web inbox: a signed-in session, its JSON API, and an open page's events.

  const sameOrigin = () => ({ origin: h.host.url!, 'sec-fetch-site': 'same-origin' });

  async function signIn(approver: Approver): Promise<string> {
    const token = new URL((await web.signInUrl(approver.email, { baseUrl: h.host.url! })).url).searchParams.get('token')!;
    const res = await fetch(`${h.host.url!}/inbox/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...sameOrigin() },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(res.status).to.equal(303);
    return res.headers.get('set-cookie')!.split(';')[0]!;
  }

  async function inbox(cookie: string): Promise<InboxItem[]> {
    const res = await fetch(`${h.host.url!}/inbox/api/approvals`, { headers: { cookie } });
    expect(res.status).to.equal(200);
    return ((await res.json()) as { approvals: InboxItem[] }).approvals;
  }

  async function webAct<T>(cookie: string, path: string, body: unknown): Promise<T> {
    const res = await fetch(`${h.host.url!}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie, ...sameOrigin() },
      body: JSON.stringify(body),
    });
    expect(res.status).to.equal(200);
    return (await res.json()) as T;
  }

  const webToken = (items: InboxItem[], id: string, action: string) => items.find((i) => i.key === key(id))!.actions.find((a) => a.action === action)!.token;

  /** What an open inbox page of `approver`'s is pushed, as the events route relays it. */
  function openPage(approver: Approver): InboxEvent[] {
    const events: InboxEvent[] = [];
    web.attach(approver.email, { send: (e) => void events.push(e), end: () => undefined });
    return events;
  }

  it('Slack: asks to connect, then approves in Concur as the approver; the Slack, Teams and web cards all tell who approved', async () => {
    const ann = approvers[0]!;
    const [id] = (await submitted(ann)) as [string];
    const cookie = await signIn(ann);
    expect((await inbox(cookie)).map((i) => i.key)).to.deep.equal([key(id)]);
    expect(texts(teamsCard(ann))).to.not.match(/Approved by/);
    const page = openPage(ann);

    const first = await slackClick(ann, id, 'Approve');
    expect(first).to.include({ response_type: 'ephemeral' });
    expect(first.text).to.match(/^Connect your Concur account once/);
    const link = nodes(first.blocks).find((n) => n.type === 'button' && typeof n.url === 'string');
    expect(reportState(id)).to.include({ status: 'A_PEND' });
    await connect(String(link!.url), ann);

    await h.cycle(); // the host's own polling, done before counting
    const before = h.sandbox.calls();
    const answer = await slackClick(ann, id, 'Approve');
    expect(answer).to.include({ response_type: 'ephemeral', text: `Approved “${h.sandbox.admin.report(id)!.Name}” in Concur.` });
    expect(reportState(id)).to.include({ status: 'A_APPR' });
    expect([delta(before, GUARD, 200), delta(before, APPROVE, 204), delta(before, TOKEN)]).to.deep.equal([1, 1, 0]);

    const note = new RegExp(`Approved by ${escape(ann.email)} in Slack at 2026-03-02 \\d\\d:\\d\\d UTC`);
    const card = await slackRedrawn(ann, id, note);
    expect(nodes(card.blocks).filter((n) => n.type === 'button')).to.deep.equal([]);
    const closed = await teamsUpdated(ann, note);
    expect(nodes(closed).filter((n) => n.type === 'Action.Execute')).to.deep.equal([]);
    const event = await delivered('web closed event', () => page.find((e) => e.type === 'closed' && e.key === key(id)));
    expect(event).to.include({ outcome: 'approved' });
    expect((event as { note: string }).note).to.match(note);
    expect(await inbox(cookie)).to.deep.equal([]);
  });

  it('Teams: sends back with the comment typed on the card, once connected; Concur holds the comment and the Slack card says so too', async () => {
    const bob = approvers[1]!;
    const [id] = (await submitted(bob)) as [string];
    const comment = 'The taxi receipt is missing';

    const asked = await teamsClick(bob, teamsButton(teamsCard(bob), 'sendBack'), { comment });
    expect(asked.type).to.equal('application/vnd.microsoft.card.adaptive');
    const link = nodes(asked.value).find((n) => n.type === 'Action.OpenUrl' && n.title === 'Connect your Concur account');
    expect(link, JSON.stringify(asked.value)).to.not.equal(undefined);
    expect(reportState(id)).to.include({ status: 'A_PEND' });
    await connect(String(link!.url), bob);

    const done = await teamsClick(bob, teamsButton(asked.value as Json, 'sendBack'), { comment });
    expect(done.type).to.equal('application/vnd.microsoft.card.adaptive');
    expect(texts(done.value)).to.contain('↩️ Sent back');
    expect(reportState(id)).to.include({ status: 'A_RESU' });
    expect(h.sandbox.admin.report(id)!.LastComment).to.equal(comment);

    const note = new RegExp(`Sent back by ${escape(bob.email)} in Teams at .*: “${comment}”`);
    await teamsUpdated(bob, note);
    const card = await slackRedrawn(bob, id, note);
    expect(nodes(card.blocks).filter((n) => n.type === 'button')).to.deep.equal([]);
  });

  /** Twenty reports carded to `approver`, who connects from the web inbox's answer to a first press; their inbox items. */
  async function twentyConnected(approver: Approver): Promise<{ ids: string[]; cookie: string; items: InboxItem[] }> {
    const ids = await submitted(approver, 20);
    const cookie = await signIn(approver);
    const items = await inbox(cookie);
    expect(items.map((i) => i.key).sort()).to.deep.equal(ids.map(key).sort());
    const first = await webAct<ActionResult>(cookie, '/inbox/api/act', { token: webToken(items, ids[0]!, 'approve') });
    expect(first.outcome).to.equal('consent_needed');
    await connect((first as Extract<ActionResult, { outcome: 'consent_needed' }>).url, approver);
    await h.cycle(); // the host's own polling, done before counting
    return { ids, cookie, items };
  }

  /** The 20 reports left A_PEND in Concur through one guard read and one write each, and nothing else. */
  function approvedInConcur(ids: readonly string[], before: CallCounts): void {
    for (const id of ids) expect(reportState(id).status, id).to.equal('A_APPR');
    expect([delta(before, GUARD, 200), delta(before, APPROVE, 204)]).to.deep.equal([20, 20]);
    expect(h.sandbox.calls().total - before.total).to.equal(40);
  }

  /** Each of the 20 cards in Slack and Teams redrawn with who approved them in the web inbox. */
  async function chatCardsClosed(approver: Approver, ids: readonly string[]): Promise<void> {
    const note = new RegExp(`Approved by ${escape(approver.email)} in the web inbox at `);
    for (const id of ids) await slackRedrawn(approver, id, note);
    const conversation = teams.personalConversation(approver.teams.id);
    await delivered('20 closed Teams cards', () => {
      const all = teams.messagesIn(conversation).map((a) => texts((a as { attachments?: { content: Json }[] }).attachments?.[0]?.content));
      return all.length === 20 && all.every((t) => note.test(t));
    });
  }

  it('web inbox: bulk approves 20 reports of a connected approver with one guard read and one write each; every card closes', async () => {
    const cat = approvers[2]!;
    const { ids, cookie, items } = await twentyConnected(cat);
    const page = openPage(cat);

    const before = h.sandbox.calls();
    const tokens = ids.map((id) => webToken(items, id, 'approve'));
    const { results } = await webAct<{ results: { token: string; result: ActionResult }[] }>(cookie, '/inbox/api/act-bulk', { tokens });
    expect(results.map((r) => r.token)).to.deep.equal(tokens);
    expect(results.map((r) => r.result.outcome)).to.deep.equal(ids.map(() => 'done'));
    approvedInConcur(ids, before);

    const note = new RegExp(`^Approved by ${escape(cat.email)} in the web inbox at `);
    const closed = await delivered('20 web closed events', () => {
      const keys = new Set(page.flatMap((e) => (e.type === 'closed' && note.test(e.note ?? '') ? [e.key] : [])));
      return keys.size === 20 ? keys : undefined;
    });
    expect([...closed].sort()).to.deep.equal(ids.map(key).sort());
    expect(await inbox(cookie)).to.deep.equal([]);
    await chatCardsClosed(cat, ids);
  });

  it('web inbox in Chromium: selects 20 cards and approves them after the confirmation; Concur and every card follow', async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium package for the browser tests`);
      this.skip();
    }
    const cat = approvers[2]!;
    const { ids } = await twentyConnected(cat);
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = await (await browser.newContext({ locale: 'en-US', timezoneId: 'UTC' })).newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto((await web.signInUrl(cat.email, { baseUrl: h.host.url! })).url);
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.waitForURL(`${h.host.url!}/inbox`);
      await page.locator('#main[aria-busy="false"]').waitFor();
      await page.locator('#live[data-state="live"]').waitFor();
      const slot = (id: string) => page.locator(`#approvals > li.slot[data-key="${key(id)}"]`);

      const before = h.sandbox.calls();
      for (const id of ids) await slot(id).getByRole('checkbox').check();
      await page.getByRole('button', { name: 'Approve selected (20)' }).click();
      await page.getByRole('dialog', { name: 'Approve 20 reports?' }).getByRole('button', { name: 'Approve 20' }).click();
      const done = page.getByRole('dialog', { name: 'Approved 20 of 20 reports.' });
      await done.waitFor({ timeout: 20_000 });
      expect(await done.locator('#bulk-list .result').allTextContents()).to.have.length(20);
      approvedInConcur(ids, before);
      await done.getByRole('button', { name: 'Close' }).click();
      for (const id of ids) {
        const tombstone = page.locator(`#approvals > li.slot.is-closed[data-key="${key(id)}"] .tombstone-note`);
        await tombstone.waitFor({ timeout: 10_000 });
        expect(await tombstone.textContent()).to.match(new RegExp(`^Approved by ${escape(cat.email)} in the web inbox at 2026-03-02 `));
      }
      expect(problems).to.deep.equal([]);
    } finally {
      await browser.close();
    }
    await chatCardsClosed(cat, ids);
  });
});
