import { expect } from 'chai';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { escapeHtml } from '../../core/index.js';
import { WebInboxNotifier } from '../../adapters/chat-web/web-inbox-notifier.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { createLogger } from '../../core/host/logging.js';
import { startConcurSandbox, type ConcurSandbox, type SandboxUserInfo, type V3Report } from '../../plugins/concur/sandbox/index.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';

/** Debian's Chromium; never downloaded by the tests. */
const CHROMIUM = '/usr/bin/chromium';
/** The narrowest phone the inbox is made for, a common phone (the README's picture) and a laptop. */
const WIDTHS = [320, 390, 1280] as const;
/** A description squeezed narrower than this reads as a column of letters (issue 9.8). */
const MIN_TEXT_WIDTH = 120;
const KEY = 'e2e-web-inbox-signing-key-0123456789abcdef';

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}
interface Layout {
  texts: { text: string; width: number }[];
  scrollWidth: number;
  clientWidth: number;
  cardsLeft: number;
  cardsRight: number;
}
/** Run in the page: the width of every card title and line-item description, and whether anything sticks out sideways. */
const MEASURE = `(() => {
  const box = (e) => e.getBoundingClientRect();
  const cards = [...document.querySelectorAll('article.card')].map(box);
  return {
    texts: [...document.querySelectorAll('article.card .title, article.card .line-label')].map((e) => ({ text: e.textContent || '', width: box(e).width })),
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    cardsLeft: Math.min(...cards.map((b) => b.left)),
    cardsRight: Math.max(...cards.map((b) => b.right)),
  };
})()`;

/**
 * The web inbox end to end: a real host (the Concur plugin against its sandbox, an SQLite queue,
 * the web inbox plugin serving HTTP on loopback) and a real Chromium driven by playwright-core.
 * The steps build on each other, as one approver's morning would.
 */
describe('web inbox in Chromium (real host, Concur sandbox, SQLite queue)', function () {
  this.timeout(120_000);

  let sandbox: ConcurSandbox;
  let host: Host;
  let web: WebInboxNotifier;
  let browser: Browser;
  let mail: Server;
  let mailUrl: string;
  let ann: SandboxUserInfo;
  let bob: SandboxUserInfo;
  const annReports: V3Report[] = [];
  let bobReport: V3Report;
  let annContext: BrowserContext;
  let annPage: Page;
  let live: V3Report;
  const problems: string[] = [];
  const refusalsExpected = new Set<string>();

  const email = (u: SandboxUserInfo) => u.email.toLowerCase();
  const viewUrl = (r: V3Report) => `https://www.concursolutions.com/goto/expense-report/${r.ID}?companyUUID=${sandbox.companyId}&context=MANAGER`;
  const card = (page: Page, r: V3Report) => page.locator(`article.card[data-key="acme:expense-report:${r.ID}"]`);
  const signInUrl = async (u: SandboxUserInfo) => (await web.signInUrl(email(u), { baseUrl: host.url })).url;
  /** The link the "mail client" showed last. */
  let mailedLink = '';
  /** What a cross-site page may post: set per test. */
  let mailForm = '';

  /** Opens a sign-in link and presses Continue on the page it shows, as a person does. */
  async function signIn(page: Page, url: string): Promise<void> {
    await page.goto(url);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${host.url}/inbox`);
    // The page's script fills in whom it shows once it has loaded the list; wait for that, not for a lucky read.
    await page.locator('#who', { hasText: '@' }).waitFor();
  }

  async function cycle(): Promise<void> {
    const report = await host.runOnce();
    if (report.failures.length) throw new Error(report.failures.map((f) => f.error).join('; '));
  }

  /** A context as a person's own browser: its own cookies, a fixed locale and zone for stable text. */
  async function personBrowser(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, locale: 'en-US', timezoneId: 'UTC' });
    const page = await context.newPage();
    const watch = (what: string) => (msg: ConsoleMessage | Error) => {
      if ('type' in msg && msg.type() !== 'error' && msg.type() !== 'warning') return;
      // The host has no favicon; Chromium asks for one anyway.
      if ('location' in msg && msg.location().url.endsWith('/favicon.ico')) return;
      // A page the test expects to be refused (Chromium logs every 4xx document).
      if ('location' in msg && refusalsExpected.has(msg.location().url) && msg.text().startsWith('Failed to load resource')) return;
      problems.push(`${what}: ${'text' in msg ? msg.text() : msg.message}`);
    };
    page.on('console', watch('console'));
    page.on('pageerror', watch('page error'));
    return { context, page };
  }

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium package for the browser tests`);
      this.skip();
    }
    sandbox = await startConcurSandbox(SMALL_COMPANY);
    const concur = sandboxSource(sandbox, {
      // Cycles run when the test says (runOnce); the loop's own timer would race them.
      pollIntervalSeconds: 3600,
      config: { timeoutSeconds: 2 },
    });
    const env = { ...concur.env, AH_TEST_WEB_KEY: KEY };
    const raw = {
      queue: { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-web-e2e-')), 'queue.db') } },
      sources: [concur.source],
      notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_TEST_WEB_KEY' } } }],
      http: { host: '127.0.0.1', port: 0 },
    };
    const logs: string[] = [];
    host = await Host.create(loadDeployment(undefined, { raw, env }), {
      clock: { now: () => new Date(sandbox.admin.now()) },
      logger: createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } as never }),
    });
    await host.start();
    // Let the cycle start() begins finish before the seeding below, so a cycle reads all of it.
    await host.runOnce();
    const notifier = host.notifiers.get('web');
    if (!(notifier instanceof WebInboxNotifier)) throw new Error('the web plugin did not bind a WebInboxNotifier');
    web = notifier;

    [ann, bob] = sandbox.admin.users().filter((u) => u.isApprover) as [SandboxUserInfo, SandboxUserInfo];
    annReports.push(
      sandbox.admin.submit({ approver: ann.loginId, name: 'Customer visits Berlin, February', entries: 4 }),
      sandbox.admin.submit({
        approver: ann.loginId,
        name: 'Cloud conference Las Vegas',
        // A line item with two flags: the one a 390 px phone squeezed to a letter per line.
        entries: [
          { expenseTypeCode: 'CARRT', amount: 312.4, vendorDescription: 'Hertz', isImageRequired: true, hasImage: false, hasExceptions: true },
          { expenseTypeCode: 'LODNG', amount: 689.0, vendorDescription: 'Marriott' },
          { expenseTypeCode: 'BUSML', amount: 86.5, vendorDescription: 'Blue Bottle' },
        ],
      }),
    );
    sandbox.admin.edit(annReports[1]!.ID, { hasException: true });
    bobReport = sandbox.admin.submit({ approver: bob.loginId, name: '<img src=x onerror="window.__pwned=1">', entries: 2 });
    await cycle();

    // A "mail client" on another site (localhost vs 127.0.0.1), so the sign-in click is cross-site
    // as it is from a real inbox or chat: SameSite=Strict cookies must still work after it.
    mail = createServer((req, res) => {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      if (req.url === '/form') return res.end(`<!doctype html><title>Not the inbox</title>${mailForm}`);
      if (req.url !== '/') return res.writeHead(404).end();
      void signInUrl(ann).then((url) => {
        mailedLink = url;
        res.end(`<!doctype html><title>Mail</title><a id="signin" href="${escapeHtml(url)}">Open your approvals</a>`);
      });
    });
    await new Promise<void>((done) => mail.listen(0, '127.0.0.1', done));
    mailUrl = `http://localhost:${(mail.address() as AddressInfo).port}/`;

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    ({ context: annContext, page: annPage } = await personBrowser());
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await host?.stop().catch(() => undefined);
    await sandbox?.close().catch(() => undefined);
    await new Promise((done) => (mail ? mail.close(done) : done(undefined)));
  });

  it('signs in from a link clicked in a mail client and shows exactly that person’s pending approvals, with details', async () => {
    await annPage.goto(mailUrl);
    await annPage.click('#signin');
    await annPage.waitForURL(/\/inbox\/login\?token=/);
    expect(await annContext.cookies(`${host.url}/inbox`), 'opening the link alone signs nobody in').to.deep.equal([]);
    expect(await annPage.textContent('main')).to.include(`You are signing in as ${email(ann)}.`);
    await annPage.getByRole('button', { name: 'Continue' }).click();
    await annPage.waitForURL(`${host.url}/inbox`);
    await annPage.locator('article.card').nth(1).waitFor();

    const [session] = await annContext.cookies(`${host.url}/inbox`);
    expect(session).to.include({ name: 'ah_inbox_session', path: '/inbox', httpOnly: true, sameSite: 'Lax' });
    expect(await annPage.textContent('#who')).to.equal(email(ann));
    expect(await annPage.textContent('#count')).to.equal('2');
    expect(await annPage.locator('article.card').count()).to.equal(2);
    expect(await annPage.locator('article.card .title').allTextContents()).to.have.members(annReports.map((r) => r.Name));

    const exceptional = card(annPage, annReports[1]!);
    expect(await exceptional.locator('.flag').allTextContents()).to.include('exceptions');
    for (const report of annReports) {
      const c = card(annPage, report);
      expect(await c.locator('.requester').textContent()).to.equal(report.OwnerName);
      const amount = new Intl.NumberFormat('en-US', { style: 'currency', currency: String(report.CurrencyCode) }).format(report.Total);
      expect(await c.locator('.amount').textContent(), 'the amount, labelled for screen readers').to.equal(`Total: ${amount}`);
      expect(await c.locator('.submitted').textContent()).to.equal('submitted Mar 2, 2026');
      expect(await c.locator('.lines li').count()).to.be.greaterThan(0);
      const view = c.getByRole('link', { name: 'View Expense Report' });
      expect(await view.getAttribute('href')).to.equal(viewUrl(report));
      expect(await view.getAttribute('target')).to.equal('_blank');
      expect(await view.getAttribute('rel')).to.equal('noopener noreferrer');
    }
    expect(await annPage.locator(`text=${bobReport.Name}`).count()).to.equal(0);
  });

  it('shows a report submitted in Concur as soon as a cycle delivers it, without a reload', async () => {
    await annPage.locator('#live[data-state="live"]').waitFor();
    await annPage.evaluate(() => ((globalThis as unknown as { __sameDocument: boolean }).__sameDocument = true));
    sandbox.admin.advanceClock(60);
    live = sandbox.admin.submit({ approver: ann.loginId, name: 'Client dinner Munich', entries: 2 });
    await cycle();

    await card(annPage, live).waitFor({ timeout: 10_000 });
    expect(await card(annPage, live).locator('.badge.new:not(.is-faded)').textContent()).to.equal('New');
    expect(await annPage.textContent('#count')).to.equal('3');
    // Oldest first (the default): the newest arrival goes at the end, and no card before it moves.
    expect(await annPage.locator('article.card .title').last().textContent()).to.equal('Client dinner Munich');
    expect(await card(annPage, live).getByRole('link', { name: 'View Expense Report' }).getAttribute('href')).to.equal(viewUrl(live));
    expect(await annPage.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).to.equal(true);
  });

  it('reads well from 320 px up: no description squeezed, flags below it on a phone, nothing scrolls sideways', async () => {
    const flagged = card(annPage, annReports[1]!).locator('.lines li', { hasText: 'Car Rental · Hertz' });
    expect(await flagged.locator('.line-flag').allTextContents()).to.deep.equal(['exceptions', 'missing receipt']);
    const measured: string[] = [];
    for (const width of WIDTHS) {
      await annPage.setViewportSize({ width, height: 844 });
      const layout = await annPage.evaluate<Layout>(MEASURE);
      const narrowest = layout.texts.reduce((a, b) => (b.width < a.width ? b : a));
      measured.push(`${width}px: narrowest ${Math.round(narrowest.width)}px ("${narrowest.text}")`);
      expect(layout.texts.length, `${width}px`).to.be.greaterThan(5);
      expect(narrowest.width, `${width}px: "${narrowest.text}" is ${Math.round(narrowest.width)}px wide`).to.be.at.least(MIN_TEXT_WIDTH);
      expect(layout.scrollWidth, `${width}px: the page scrolls sideways`).to.be.at.most(layout.clientWidth);
      expect(layout.cardsLeft, `${width}px`).to.be.at.least(0);
      expect(layout.cardsRight, `${width}px`).to.be.at.most(width);

      // On a phone the flags sit on their own row below the description; on a laptop, beside it.
      const [label, flags, amount] = (await Promise.all(
        ['.line-label', '.line-flags', '.line-amount'].map(async (c) => (await flagged.locator(c).boundingBox())!),
      )) as [Box, Box, Box];
      if (width < 640) {
        expect(flags.y, `${width}px: flags below the description`).to.be.at.least(label.y + label.height - 1);
        expect(amount.y, `${width}px: amount beside the description`).to.be.below(label.y + label.height);
      } else {
        expect(flags.y, `${width}px: flags beside the description`).to.be.below(label.y + label.height);
        expect(flags.x).to.be.at.least(label.x + label.width);
      }
    }
    console.log(`      text widths: ${measured.join('; ')}`);
    await annPage.setViewportSize({ width: 1200, height: 800 });
  });

  it('takes a report away as soon as it is approved in Concur, and says why', async () => {
    sandbox.admin.advanceClock(60);
    sandbox.admin.approve(live.ID);
    await cycle();

    await card(annPage, live).waitFor({ state: 'detached', timeout: 10_000 });
    expect(await annPage.textContent('#count')).to.equal('2');
    expect(await annPage.locator(`li.slot.is-closed[data-key="acme:expense-report:${live.ID}"]`).textContent()).to.equal(
      '“Client dinner Munich” was approved and left your queue.',
    );
    await annPage.locator('#announcer', { hasText: '“Client dinner Munich” was approved and left your queue.' }).waitFor();
    expect(await annPage.locator('#closed-list li').first().textContent()).to.match(/^Approved Client dinner Munich \(acme, /);
    expect(await annPage.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).to.equal(true);
  });

  it('never shows one person’s approvals to another, and shows a hostile title as plain text', async () => {
    const { context, page } = await personBrowser();
    await signIn(page, await signInUrl(bob));
    await card(page, bobReport).waitFor();
    expect(await page.textContent('#who')).to.equal(email(bob));
    expect(await page.locator('article.card').count()).to.equal(1);
    expect(await card(page, bobReport).locator('.title').textContent()).to.equal(bobReport.Name);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).to.equal(undefined);
    expect(await page.locator('article.card img').count()).to.equal(0);

    // A new report for Ann reaches Ann's open page and not Bob's.
    await page.locator('#live[data-state="live"]').waitFor();
    sandbox.admin.advanceClock(60);
    const another = sandbox.admin.submit({ approver: ann.loginId, name: 'Hotel Hamburg', entries: 1 });
    await cycle();
    await card(annPage, another).waitFor({ timeout: 10_000 });
    await page.waitForTimeout(300);
    expect(await card(page, another).count()).to.equal(0);
    expect(await page.locator('article.card').count()).to.equal(1);

    // Bob's session reads Bob's list, whatever he asks for.
    const list = await page.evaluate(async () => (await fetch('/inbox/api/approvals')).json() as Promise<{ approvals: { key: string }[] }>);
    expect(list.approvals.map((a) => a.key)).to.deep.equal([`acme:expense-report:${bobReport.ID}`]);
    await context.close();
  });

  it('points out a card its approver is reminded of, without a reload', async () => {
    const report = annReports[0]!;
    const shown = {
      approvalKey: `acme:expense-report:${report.ID}`,
      kind: 'expense-report',
      revision: 1,
      title: report.Name,
      requester: {},
      fields: [],
      lineItems: [],
      flags: [],
      actions: [],
    };
    await web.deliver({
      idempotencyKey: `${shown.approvalKey}#g.1:${ann.loginId}:web:remind-1`,
      action: 'remind',
      recipient: { sourceUserId: ann.loginId, email: email(ann) },
      card: shown,
      previous: { ref: 'web' },
    });

    await card(annPage, report).locator('.badge.reminder:not([hidden])').waitFor({ timeout: 10_000 });
    expect(await card(annPage, report).getAttribute('class')).to.include('is-reminded');
    expect(await card(annPage, annReports[1]!).locator('.badge.reminder:not([hidden])').count()).to.equal(0);
    expect(await annPage.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument)).to.equal(true);
  });

  it('signs in once per link: the link clicked in the mail client no longer works in another browser', async () => {
    const { context, page } = await personBrowser();
    refusalsExpected.add(mailedLink);
    const res = await page.goto(mailedLink);
    expect(res?.status()).to.equal(410);
    expect(await page.textContent('h1')).to.equal('This sign-in link has already been used');
    expect(await page.textContent('main')).to.include('Ask whoever sent you the link');
    expect(await page.getByRole('button', { name: 'Continue' }).count()).to.equal(0);
    expect(await context.cookies(host.url)).to.deep.equal([]);
    await context.close();
  });

  it('refuses a sign-in posted from another site (login CSRF), and sets no cookie', async () => {
    const { context, page } = await personBrowser();
    // An attacker's own, fresh, valid link, posted by a page on another site into the victim's browser.
    const token = new URL(await signInUrl(bob)).searchParams.get('token')!;
    mailForm = `<form id="f" method="post" action="${host.url}/inbox/login"><input type="hidden" name="token" value="${escapeHtml(token)}"><button>Go</button></form>`;
    await page.goto(`${mailUrl}form`);
    refusalsExpected.add(`${host.url}/inbox/login`);
    const [response] = await Promise.all([page.waitForResponse(`${host.url}/inbox/login`), page.click('#f button')]);
    expect(response.status()).to.equal(403);
    expect(await page.textContent('h1')).to.equal('Sign-in refused');
    expect(await context.cookies(host.url)).to.deep.equal([]);
    // The link itself is not spent by the refused post: its owner can still use it.
    await signIn(page, `${host.url}/inbox/login?token=${encodeURIComponent(token)}`);
    expect(await page.textContent('#who')).to.equal(email(bob));
    await context.close();
  });

  it('signs out: the session ends, the cookie goes, and the page no longer opens', async () => {
    await annPage.getByRole('button', { name: 'Sign out' }).click();
    await annPage.waitForURL(`${host.url}/inbox/logout`);
    expect(await annPage.textContent('h1')).to.equal('You are signed out');
    expect(await annContext.cookies(`${host.url}/inbox`)).to.deep.equal([]);
    refusalsExpected.add(`${host.url}/inbox`);
    expect((await annPage.goto(`${host.url}/inbox`))?.status()).to.equal(401);
  });

  it('ran without script errors or Content-Security-Policy violations', () => {
    expect(problems).to.deep.equal([]);
  });
});
