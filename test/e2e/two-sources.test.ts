import { expect } from 'chai';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Host } from '../../core/host/host.js';
import { loadDeployment } from '../../core/host/deployment.js';
import type { InboxEvent, InboxItem, WebInboxNotifier } from '../../adapters/chat-web/web-inbox-notifier.js';
import { startConcurSandbox, type ConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { startServiceNowSandbox, type ServiceNowSandbox } from '../../plugins/servicenow/sandbox/index.js';
import { FAKE_TEAM_ID, FakeSlack, slackSignatureHeaders, type FakeSlackMessage } from '../support/fake-slack.js';
import { CHROMIUM, launchChromium, signInPage } from '../support/inbox-browser.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';
import { EMPTY_INSTANCE, serviceNowSource } from '../support/servicenow-harness.js';

/**
 * Issue 12's "both sources side by side": one host (real Concur and ServiceNow plugins, each on its
 * sandbox over loopback HTTP, a real SQLite queue) with Slack (its fake on loopback) and the web inbox.
 * One person approves in both systems under the same e-mail; every place they look lists both, each
 * card with its own source's link, and a decision in one system closes only that system's card.
 */

const CONCUR = 'acme';
const SNOW = 'snow';
const SLACK_SECRET = 'slack-signing-secret-for-two-sources';
const WEB_KEY = 'test-web-inbox-two-sources-signing-key-0123456';
const SLACK_ID = 'U0BOTH0001';
const DAY_S = 86_400;

type Json = Record<string, unknown>;

/** Every object in a JSON tree (Block Kit blocks), depth first. */
function nodes(value: unknown): Json[] {
  if (Array.isArray(value)) return value.flatMap(nodes);
  if (typeof value !== 'object' || value === null) return [];
  return [value as Json, ...Object.values(value).flatMap(nodes)];
}

/** The URLs of the link buttons in some blocks, in order. */
const buttonUrls = (blocks: unknown): string[] =>
  nodes(blocks)
    .filter((n) => n.type === 'button' && typeof n.url === 'string')
    .map((n) => String(n.url));

/** Every text string in some blocks, one a line. */
const texts = (blocks: unknown): string =>
  nodes(blocks)
    .filter((n) => typeof n.text === 'string')
    .map((n) => String(n.text))
    .join('\n');

describe('two sources side by side: Concur and ServiceNow for one approver in Slack, its App Home, the web inbox and the digest', function () {
  this.timeout(120_000);
  let concur: ConcurSandbox;
  let snow: ServiceNowSandbox;
  let slack: FakeSlack;
  let host: Host;
  let web: WebInboxNotifier;
  /** The one approver: a Concur approver's login and the ServiceNow user given the same e-mail. */
  let login: string;
  let email: string;
  let snowUser: string;

  beforeEach(async () => {
    concur = await startConcurSandbox(SMALL_COMPANY);
    snow = await startServiceNowSandbox(EMPTY_INSTANCE);
    slack = await FakeSlack.start();
    const approver = concur.admin.users().find((u) => u.isApprover)!;
    login = approver.loginId;
    email = approver.email;
    // ServiceNow's sys_user record of the same person carries the same e-mail (a form save, through the sandbox's back door).
    snowUser = snow.admin.users()[1]!.sysId; // [0] is the integration user
    snow.admin.touch([snowUser], { email }, 'sys_user');
    expect(snow.admin.users().find((u) => u.sysId === snowUser)!.email).to.equal(email);
    slack.addUser({ id: SLACK_ID, email, name: login });

    const concurSource = sandboxSource(concur, { id: CONCUR, pollIntervalSeconds: 60, config: { timeoutSeconds: 2, maxAttempts: 3 } });
    const snowSource = serviceNowSource(snow, { id: SNOW, pollIntervalSeconds: 60, config: { timeoutSeconds: 2, maxAttempts: 3 } });
    const deployment = loadDeployment(undefined, {
      env: { ...concurSource.env, ...snowSource.env, AH_SLACK_TOKEN: FakeSlack.TOKEN, AH_SLACK_SIGNING: SLACK_SECRET, AH_WEB_KEY: WEB_KEY },
      raw: {
        queue: { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-two-sources-')), 'queue.db') } },
        sources: [concurSource.source, snowSource.source],
        credentials: snowSource.credentials,
        notifiers: [
          {
            id: 'slack',
            plugin: 'slack',
            config: { botToken: { env: 'AH_SLACK_TOKEN' }, signingSecret: { env: 'AH_SLACK_SIGNING' }, apiUrl: slack.apiUrl, teamId: FAKE_TEAM_ID },
          },
          { id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_WEB_KEY' }, publicUrl: 'https://inbox.example.test' } },
        ],
        reminders: { digest: { at: '09:00' } },
        http: { host: '127.0.0.1', port: 0 },
      },
    });
    // One clock for the host and both sandboxes: they start at the same frozen instant and move together.
    expect(snow.admin.now()).to.equal(concur.admin.now().slice(0, 19).replace('T', ' '));
    host = await Host.create(deployment, { logger: pino({ level: 'silent' }), clock: { now: () => new Date(concur.admin.now()) } });
    await host.start();
    web = host.notifiers.get('web') as WebInboxNotifier;
  });

  afterEach(async () => {
    await host?.stop().catch(() => undefined);
    await Promise.all([concur?.close(), snow?.close(), slack?.close()]);
  });

  const advance = (seconds: number) => {
    concur.admin.advanceClock(seconds);
    snow.admin.advanceClock(seconds);
  };

  /** One detection + processing + delivery cycle of both sources; throws if either failed. */
  async function cycle(): Promise<void> {
    const report = await host.runOnce();
    expect(report.failures.map((f) => f.error)).to.deep.equal([]);
  }

  /** Drains the outbox until `check` passes (a delivery can need a pass or two); its value. */
  async function delivered<T>(what: string, check: () => T | undefined | false): Promise<T> {
    for (let pass = 0; pass < 10; pass++) {
      await host.drain();
      const value = check();
      if (value) return value;
    }
    throw new Error(`not delivered: ${what}`);
  }

  const concurKey = (id: string) => `${CONCUR}:expense-report:${id}`;
  const concurLink = (id: string) => `https://www.concursolutions.com/goto/expense-report/${id}?companyUUID=${concur.companyId}&context=MANAGER`;
  const snowLink = (approvalId: string) => `${snow.url}/nav_to.do?uri=sysapproval_approver.do%3Fsys_id%3D${approvalId}`;

  /** Two Concur reports and two ServiceNow approvals (a requested item and a change request) waiting on the one person; each key with its link. */
  async function bothWaiting(): Promise<{ key: string; link: string; source: string }[]> {
    const reports = [concur.admin.submit({ approver: login, entries: 1 }), concur.admin.submit({ approver: login, entries: 1 })];
    const [item] = snow.admin.createApprovals({ count: 1, approvers: [snowUser], shortDescription: 'Standard laptop' }).approvals;
    const [change] = snow.admin.createApprovals({
      count: 1,
      table: 'change_request',
      approvers: [snowUser],
      shortDescription: 'Patch database cluster',
    }).approvals;
    await cycle();
    return [
      ...reports.map((r) => ({ key: concurKey(r.ID), link: concurLink(r.ID), source: CONCUR })),
      { key: `${SNOW}:requested-item:${item!}`, link: snowLink(item!), source: SNOW },
      { key: `${SNOW}:change-request:${change!}`, link: snowLink(change!), source: SNOW },
    ];
  }

  // Slack: the DMs in the fake, and App Home opened as Slack's Events API tells it.

  const dmAbout = (key: string): FakeSlackMessage | undefined => slack.messagesTo(SLACK_ID).find((m) => m.metadata?.event_payload.approval_key === key);

  async function openHome(): Promise<Json> {
    const body = JSON.stringify({
      token: 'deprecated-verification-token',
      team_id: FAKE_TEAM_ID,
      api_app_id: 'A0FAKEAPP1',
      type: 'event_callback',
      event_id: `Ev${slack.callsTo('views.publish').length}`,
      event_time: Math.floor(Date.parse(concur.admin.now()) / 1000),
      event: { type: 'app_home_opened', user: SLACK_ID, channel: slack.dmChannelOf(SLACK_ID), tab: 'home', event_ts: '1700000000.000300' },
    });
    // Signed at the host's time: the route refuses a timestamp five minutes off its clock.
    const headers = { 'content-type': 'application/json', ...slackSignatureHeaders(SLACK_SECRET, body, Math.floor(Date.parse(concur.admin.now()) / 1000)) };
    const published = slack.callsTo('views.publish').length;
    const res = await fetch(`${host.url!}/slack/events`, { method: 'POST', headers, body });
    expect(res.status).to.equal(200);
    expect(slack.callsTo('views.publish'), 'the Home tab published again').to.have.length(published + 1);
    return slack.homeViews.get(SLACK_ID)!;
  }

  // The web inbox: a signed-in session and its JSON API.

  async function signIn(): Promise<string> {
    const token = new URL((await web.signInUrl(email, { baseUrl: host.url! })).url).searchParams.get('token')!;
    const res = await fetch(`${host.url!}/inbox/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: host.url!, 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(res.status).to.equal(303);
    return res.headers.get('set-cookie')!.split(';')[0]!;
  }

  async function inbox(cookie: string): Promise<InboxItem[]> {
    const res = await fetch(`${host.url!}/inbox/api/approvals`, { headers: { cookie } });
    expect(res.status).to.equal(200);
    const body = (await res.json()) as { email: string; approvals: InboxItem[] };
    expect(body.email).to.equal(email);
    return body.approvals;
  }

  /** What the page counts per source ("acme (2)"), worked out as the page does from the items' `source`. */
  const perSource = (items: readonly InboxItem[]) =>
    items.reduce<Record<string, number>>((n, i) => ({ ...n, [i.source ?? '']: (n[i.source ?? ''] ?? 0) + 1 }), {});

  it('lists both sources in the web inbox, each item with its source and its own link, and counts two per source', async () => {
    const waiting = await bothWaiting();
    const items = await inbox(await signIn());

    expect(items.map((i) => i.key).sort()).to.deep.equal(waiting.map((w) => w.key).sort());
    for (const w of waiting) {
      const item = items.find((i) => i.key === w.key)!;
      expect(item.source, w.key).to.equal(w.source);
      expect(
        item.links.map((l) => l.url),
        w.key,
      ).to.deep.equal([w.link]);
    }
    expect(items.find((i) => i.key === waiting[0]!.key)!.links[0]!.label).to.equal('View Expense Report');
    expect(items.find((i) => i.key === waiting[2]!.key)!.links[0]!.label).to.equal('View Requested Item');
    expect(perSource(items)).to.deep.equal({ [CONCUR]: 2, [SNOW]: 2 });
  });

  it('shows both on the inbox page in Chromium: per-source counts in the Source filter, each card linking to its own system, live after a ServiceNow approval', async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium package for the browser tests`);
      this.skip();
    }
    const waiting = await bothWaiting();
    const browser = await launchChromium();
    try {
      const page = await (await browser.newContext({ locale: 'en-US', timezoneId: 'UTC' })).newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      await signInPage(page, web, host.url!, email);
      const options = () => page.locator('#source option').allTextContents();
      expect(await options()).to.deep.equal(['All sources (4)', `${CONCUR} (2)`, `${SNOW} (2)`]);
      for (const w of waiting) {
        const hrefs = await page.locator(`article.card[data-key="${w.key}"] a[href]`).evaluateAll((as) => as.map((a) => a.getAttribute('href')));
        expect(hrefs, w.key).to.deep.equal([w.link]);
      }

      await page.selectOption('#source', SNOW);
      expect((await page.locator('article.card').evaluateAll((cs) => cs.map((c) => c.getAttribute('data-key')))).sort()).to.deep.equal(
        waiting
          .filter((w) => w.source === SNOW)
          .map((w) => w.key)
          .sort(),
      );
      await page.selectOption('#source', '');

      advance(60);
      snow.admin.approve(waiting[2]!.key.split(':').at(-1)!, 'ok');
      await cycle();
      await host.drain();
      await page.locator(`article.card[data-key="${waiting[2]!.key}"]`).waitFor({ state: 'detached' });
      expect(await options()).to.deep.equal(['All sources (3)', `${CONCUR} (2)`, `${SNOW} (1)`]);
      expect(problems).to.deep.equal([]);
    } finally {
      await browser.close();
    }
  });

  it('sends a Slack DM for each approval of either source with its own link, and the App Home tab lists all four with their links', async () => {
    const waiting = await bothWaiting();
    const dms = await delivered('four DMs', () => {
      const found = waiting.map((w) => dmAbout(w.key));
      return found.every(Boolean) ? (found as FakeSlackMessage[]) : undefined;
    });
    expect(slack.messagesTo(SLACK_ID), 'one DM an approval, nothing else').to.have.length(4);
    waiting.forEach((w, i) => expect(buttonUrls(dms[i]!.blocks), w.key).to.deep.equal([w.link]));

    const home = await openHome();
    expect(home.type).to.equal('home');
    expect(texts(home.blocks)).to.include('Waiting on you (4)');
    // Each listed approval carries its own key and its own source's link on its View button.
    const views = nodes(home.blocks).filter((n) => n.type === 'button');
    expect(views.map((b) => [b.value, b.url]).sort()).to.deep.equal(waiting.map((w) => [w.key, w.link]).sort());
  });

  it("sends one digest a day listing both sources' approvals, each with its own link, in Slack and to the open web inbox", async () => {
    const waiting = await bothWaiting();
    await delivered('four DMs', () => waiting.every((w) => dmAbout(w.key)));
    const events: InboxEvent[] = [];
    web.attach(email, { send: (e) => void events.push(e), end: () => undefined });

    advance(DAY_S + 30 * 60); // 2026-03-03 09:30 UTC: a day pending, past the digest's 09:00
    await cycle();
    const digest = await delivered('the digest', () => slack.messagesTo(SLACK_ID).find((m) => m.text === '4 approvals are waiting on you'));
    expect(slack.messagesTo(SLACK_ID), 'one digest, no single reminders').to.have.length(5);
    const listed = nodes(digest.blocks).filter((n) => n.type === 'button');
    expect(listed.map((b) => [b.value, b.url]).sort()).to.deep.equal(waiting.map((w) => [w.key, w.link]).sort());

    const reminded = await delivered('the web digest', () => {
      const r = events.filter((e) => e.type === 'reminder');
      return r.length >= 4 ? r : undefined;
    });
    expect(reminded.map((e) => (e as { key: string }).key).sort()).to.deep.equal(waiting.map((w) => w.key).sort());

    advance(2 * 3600); // later the same day: no second digest
    await cycle();
    await host.drain();
    expect(slack.messagesTo(SLACK_ID).filter((m) => m.text?.endsWith('waiting on you'))).to.have.length(1);
  });

  it('closes only the ServiceNow card when it is approved in ServiceNow: the Concur ones stay in Slack, App Home and the web inbox', async () => {
    const waiting = await bothWaiting();
    await delivered('four DMs', () => waiting.every((w) => dmAbout(w.key)));
    const cookie = await signIn();
    const [approved, ...open] = [waiting[2]!, waiting[0]!, waiting[1]!, waiting[3]!];
    const approvalId = approved.key.split(':').at(-1)!;

    advance(60);
    snow.admin.approve(approvalId, 'ok');
    await cycle();

    const closed = await delivered('the ServiceNow card closed', () => {
      const dm = dmAbout(approved.key)!;
      return dm.edited && /Approved/.test(JSON.stringify(dm.blocks)) ? dm : undefined;
    });
    expect(
      nodes(closed.blocks).filter((n) => n.type === 'button' && !n.url),
      'no act button left',
    ).to.deep.equal([]);
    for (const o of open) expect(dmAbout(o.key)!.edited, o.key).to.equal(undefined);

    const items = await inbox(cookie);
    expect(items.map((i) => i.key).sort()).to.deep.equal(open.map((o) => o.key).sort());
    expect(perSource(items)).to.deep.equal({ [CONCUR]: 2, [SNOW]: 1 });
    expect(
      concur.admin
        .state()
        .reports.filter((r) => r.approverLoginID === login)
        .map((r) => r.status),
    ).to.deep.equal(['A_PEND', 'A_PEND']);

    const home = await openHome();
    expect(texts(home.blocks)).to.include('Waiting on you (3)');
    expect(buttonUrls(home.blocks).sort()).to.deep.equal(open.map((o) => o.link).sort());
  });
});
