import AxeBuilder from '@axe-core/playwright';
import { expect } from 'chai';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { WebInboxNotifier } from '../../adapters/chat-web/web-inbox-notifier.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { ManualClock, RecordingNotifier, ScriptedSource } from '../../core/testing/index.js';
import { Host } from '../../core/host/host.js';
import { createLogger } from '../../core/host/logging.js';
import { startConcurSandbox, type ConcurSandbox, type SandboxUserInfo, type V3Report } from '../../plugins/concur/sandbox/index.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';
import { CHROMIUM, launchChromium, signInPage } from '../support/inbox-browser.js';

/** The README's pictures are refreshed only on request (UPDATE_SCREENSHOT=1), so a test run leaves the tree clean. */
const SHOTS = process.env.UPDATE_SCREENSHOT ? resolve(process.cwd(), 'docs') : mkdtempSync(join(tmpdir(), 'ah-a11y-shot-'));
/** The widths the issue names: the narrowest phone, a common phone, a tablet and a laptop. */
const WIDTHS = [320, 390, 768, 1280] as const;
const SCHEMES = ['light', 'dark'] as const;
const KEY = 'e2e-web-inbox-a11y-signing-key-0123456789';

/** Each slot of the list, by approval key: [left, top, width, height] in page coordinates. */
type Rects = Record<string, [number, number, number, number]>;
const RECTS = `(() => Object.fromEntries([...document.querySelectorAll('#approvals > li.slot')].map((li) => {
  const r = li.getBoundingClientRect();
  return [li.dataset.key, [Math.round(r.left + scrollX), Math.round(r.top + scrollY), Math.round(r.width), Math.round(r.height)]];
})))()`;
/** Chromium's own measure: the layout shift score not caused by input, since the observer was installed. */
const WATCH_SHIFTS = `(() => {
  window.__shift = 0;
  new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value; }).observe({ type: 'layout-shift' });
})()`;
/**
 * Chromium's layout shifts of anything in the list of cards, described. (The "Recently closed"
 * list below it takes each closed card at its top, which moves its older entries when in view.)
 */
const WATCH_CARD_SHIFTS = `(() => {
  window.__cardShifts = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) for (const s of e.sources) {
      const node = s.node && (s.node.nodeType === 1 ? s.node : s.node.parentElement);
      if (node && node.closest('#approvals')) window.__cardShifts.push((node.closest('li.slot')?.dataset.key ?? '') + ' ' + node.className);
    }
  }).observe({ type: 'layout-shift' });
})()`;
/** The little of the DOM the page functions below use (the tests compile without the DOM library; the page's CSP forbids string predicates). */
interface InPage {
  document: { querySelectorAll(selector: string): { length: number }; querySelector(selector: string): unknown };
}
/** The approval key of the slot holding keyboard focus. */
const FOCUSED_KEY = `document.activeElement?.closest('li.slot')?.getAttribute('data-key') ?? null`;
/** The focused element's outline colour and its card's background, as computed. */
const FOCUS_COLOURS = `(() => {
  const e = document.activeElement;
  return [getComputedStyle(e).outlineColor, getComputedStyle(e.closest('article')).backgroundColor];
})()`;
/** WCAG's contrast ratio of a CSS `rgb()`/`rgba()` colour drawn over an opaque one (a translucent ring is blended first, as it is seen). */
function contrast(over: string, under: string): number {
  const parse = (css: string) => (css.match(/\d+(\.\d+)?/g) ?? []).map(Number);
  const [br, bg, bb] = parse(under) as [number, number, number];
  const [r, g, b, alpha = 1] = parse(over) as [number, number, number, number?];
  const seen = [r * alpha + br * (1 - alpha), g * alpha + bg * (1 - alpha), b * alpha + bb * (1 - alpha)];
  const luminance = ([red, green, blue]: number[]) => {
    const [lr, lg, lb] = [red!, green!, blue!].map((v) => {
      const c = v / 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * lr + 0.7152 * lg + 0.0722 * lb;
  };
  const [hi, lo] = [luminance(seen), luminance([br, bg, bb])].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}
/** WCAG 1.4.12's text spacing, set through the CSSOM (the page's CSP refuses a style element, as it should). */
const TEXT_SPACING = `(() => {
  for (const e of document.querySelectorAll('*')) {
    e.style.setProperty('line-height', '1.5', 'important');
    e.style.setProperty('letter-spacing', '0.12em', 'important');
    e.style.setProperty('word-spacing', '0.16em', 'important');
  }
  for (const p of document.querySelectorAll('p')) p.style.setProperty('margin-bottom', '2em', 'important');
})()`;

/** axe-core on the page as it is now, at every width and in both schemes; returns the violations found, described. */
async function axeEverywhere(p: Page, what: string): Promise<string[]> {
  const found: string[] = [];
  for (const scheme of SCHEMES) {
    await p.emulateMedia({ colorScheme: scheme });
    for (const width of WIDTHS) {
      await p.setViewportSize({ width, height: 900 });
      const result = await new AxeBuilder({ page: p }).analyze();
      for (const v of result.violations)
        found.push(`${what} @${width}px ${scheme}: ${v.id} (${v.help}) at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    }
  }
  await p.emulateMedia({ colorScheme: 'light' });
  await p.setViewportSize({ width: 1280, height: 900 });
  return found;
}

/**
 * The web inbox as its users meet it, checked in Chromium: axe-core on every page at four widths
 * in light and dark, keyboard focus across live updates, and the layout of cards nobody touched.
 * A real host serves two Concur sources (two sandboxes) into an SQLite queue; the steps build on
 * each other, as one approver's morning would.
 */
describe('web inbox accessibility and live updates in Chromium (two Concur sources, SQLite queue)', function () {
  this.timeout(180_000);

  let acme: ConcurSandbox;
  let globex: ConcurSandbox;
  let host: Host;
  let web: WebInboxNotifier;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let ann: SandboxUserInfo;
  let bob: SandboxUserInfo;
  let carl: SandboxUserInfo;
  const reports: { sandbox: ConcurSandbox; source: string; report: V3Report }[] = [];
  let focusedKey = '';
  const chat = new RecordingNotifier('chat');
  const moved: string[] = [];

  const email = (u: SandboxUserInfo) => u.email.toLowerCase();
  const keyOf = (source: string, r: V3Report) => `${source}:expense-report:${r.ID}`;
  const slot = (key: string) => page.locator(`#approvals > li.slot[data-key="${key}"]`);
  const signInUrl = async (u: SandboxUserInfo) => (await web.signInUrl(email(u), { baseUrl: host.url })).url;

  async function cycle(): Promise<void> {
    const report = await host.runOnce();
    if (report.failures.length) throw new Error(report.failures.map((f) => f.error).join('; '));
  }

  async function signIn(p: Page, u: SandboxUserInfo): Promise<void> {
    await p.goto(await signInUrl(u));
    await p.getByRole('button', { name: 'Continue' }).click();
    await p.waitForURL(`${host.url}/inbox`);
    await p.locator('#main[aria-busy="false"]').waitFor();
    await p.locator('#live[data-state="live"]').waitFor();
  }

  /**
   * One live update as the approver sees it: `act` changes Concur (or delivers), a cycle runs,
   * `arrived` waits for the page to show it. Records every slot other than `touched` that moved.
   */
  async function liveUpdate(label: string, touched: string | undefined, act: () => Promise<void> | void, arrived: () => Promise<void>): Promise<void> {
    const before = await page.evaluate<Rects>(RECTS);
    await act();
    await arrived();
    // The announcement is made 0.4 s after the change; nothing else should move meanwhile either.
    await page.waitForTimeout(500);
    const after = await page.evaluate<Rects>(RECTS);
    for (const [key, rect] of Object.entries(before)) {
      if (key === touched) continue;
      if (JSON.stringify(after[key]) !== JSON.stringify(rect)) moved.push(`${label}: ${key} ${JSON.stringify(rect)} -> ${JSON.stringify(after[key])}`);
    }
  }

  /** A minute passes in both companies: their clocks move together, so submissions order the same way across sources. */
  const tick = () => {
    for (const company of [acme, globex]) company.admin.advanceClock(60);
  };
  const submit = (sandbox: ConcurSandbox, source: string, name: string, entries = 2) => {
    tick();
    const report = sandbox.admin.submit({ approver: ann.loginId, name, entries });
    reports.push({ sandbox, source, report });
    return report;
  };
  /** Ann's reports still pending on her, from the `n`th on. */
  const pendingOf = (n: number) =>
    reports
      .filter((r) => {
        const now = r.sandbox.admin.report(r.report.ID);
        return now?.ApprovalStatusCode === 'A_PEND' && now.ApproverLoginID === ann.loginId;
      })
      .slice(n);

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium package for the browser tests`);
      this.skip();
    }
    // Two companies from one seed: the same people, so Ann approves in both.
    acme = await startConcurSandbox(SMALL_COMPANY);
    globex = await startConcurSandbox(SMALL_COMPANY);
    const one = sandboxSource(acme, { id: 'acme', pollIntervalSeconds: 3600, config: { timeoutSeconds: 2 } });
    const two = sandboxSource(globex, { id: 'globex', envPrefix: 'AH_TEST_GLOBEX', pollIntervalSeconds: 3600, config: { timeoutSeconds: 2 } });
    const raw = {
      queue: { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-a11y-e2e-')), 'queue.db') } },
      sources: [one.source, two.source],
      notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_TEST_WEB_KEY' } } }],
      http: { host: '127.0.0.1', port: 0 },
    };
    host = await Host.create(loadDeployment(undefined, { raw, env: { ...one.env, ...two.env, AH_TEST_WEB_KEY: KEY } }), {
      clock: { now: () => new Date(acme.admin.now()) },
      logger: createLogger({ level: 'warn', destination: { write: () => undefined } as never }),
      // A second channel, as in most deployments: the pages without an inbox then offer "Send me a new link".
      notifiers: [chat],
    });
    await host.start();
    await host.runOnce();
    web = host.notifiers.get('web') as WebInboxNotifier;

    [ann, bob, carl] = acme.admin.users().filter((u) => u.isApprover) as [SandboxUserInfo, SandboxUserInfo, SandboxUserInfo];
    const names = [
      'Customer visits Berlin',
      'Cloud conference Las Vegas',
      'Team offsite Lisbon',
      'Trade fair Hannover',
      'Client dinner Munich',
      'Training Zurich',
    ];
    names.forEach((name, i) => submit(acme, 'acme', name, (i % 4) + 1));
    ['Partner summit Vienna', 'Sales kickoff Madrid', 'Hotel Hamburg', 'Train tickets Paris'].forEach((name, i) => submit(globex, 'globex', name, (i % 3) + 1));
    acme.admin.edit(reports[1]!.report.ID, { hasException: true });
    globex.admin.edit(reports[7]!.report.ID, { hasException: true });
    await cycle();

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    page = await context.newPage();
    await signIn(page, ann);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await host?.stop().catch(() => undefined);
    await acme?.close().catch(() => undefined);
    await globex?.close().catch(() => undefined);
  });

  it('has no axe violations on the sign-in, refused-link and signed-out pages, at 320 to 1280 px in light and dark', async () => {
    const own = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC' });
    const p = await own.newPage();
    const found: string[] = [];
    await p.goto(await signInUrl(bob));
    found.push(...(await axeEverywhere(p, 'sign-in page')));
    await p.goto(`${host.url}/inbox/login?token=not-a-token`);
    found.push(...(await axeEverywhere(p, 'refused link page')));
    await p.goto(`${host.url}/inbox`);
    await p.getByRole('button', { name: 'Send me a new link' }).waitFor();
    found.push(...(await axeEverywhere(p, 'signed-out page with the new-link form')));
    await p.getByLabel('Your work e-mail').fill(email(ann));
    await p.getByRole('button', { name: 'Send me a new link' }).click();
    await p.waitForURL(`${host.url}/inbox/link-request`);
    found.push(...(await axeEverywhere(p, 'new-link answer page')));
    // Ann has approvals waiting, so her new link went out through the other channel.
    for (let i = 0; i < 100 && !chat.messages.some((m) => m.action === 'link'); i++) await p.waitForTimeout(50);
    const sent = chat.messages.filter((m) => m.action === 'link');
    expect(sent.map((m) => m.recipient.email)).to.deep.equal([email(ann)]);
    expect(sent[0]!.card.actions[0]).to.include({ type: 'link' });
    await own.close();
    expect(found).to.deep.equal([]);
  });

  it('has no axe violations on the inbox and on the empty state, at 320 to 1280 px in light and dark', async () => {
    expect(await page.locator('article.card').count()).to.equal(10);
    const found = await axeEverywhere(page, 'inbox');
    const other = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC' });
    const empty = await other.newPage();
    await signIn(empty, carl);
    expect(await empty.locator('#empty').isVisible(), 'the empty state shows').to.equal(true);
    expect(await empty.locator('main #empty').count(), 'inside main').to.equal(1);
    found.push(...(await axeEverywhere(empty, 'empty inbox')));
    await other.close();
    expect(found).to.deep.equal([]);
  });

  it('names each card by its title, each link by its report, and labels amounts and flags', async () => {
    const flagged = reports[1]!;
    const article = page.getByRole('article', { name: flagged.report.Name });
    expect(await article.count()).to.equal(1);
    await article.getByRole('link', { name: `View Expense Report: ${flagged.report.Name} (opens in a new tab)` }).waitFor();
    expect(await article.getByRole('heading', { level: 3 }).textContent(), 'the heading is the title alone').to.equal(flagged.report.Name);
    expect(await article.locator('.amount').textContent()).to.match(/^Total: \$/);
    expect(await article.getByRole('list', { name: 'Warnings' }).locator('li').allTextContents()).to.include('exceptions');
    const lines = await article.getByRole('list', { name: 'Line items' }).locator('li').allTextContents();
    expect(lines.length).to.be.greaterThan(0);
    for (const line of lines) expect(line, 'each line item reads "description, amount …"').to.match(/, amount /);
  });

  it('sorts, filters by source and flags, searches, and counts per source', async () => {
    const titles = () => page.locator('article.card .title').allTextContents();
    expect(await page.locator('#source option').allTextContents()).to.deep.equal(['All sources (10)', 'acme (6)', 'globex (4)']);

    await page.selectOption('#sort', 'amount');
    const amounts = await page.locator('article.card .amount').allTextContents();
    const values = amounts.map((a) => Number(a.replace(/[^0-9.]/g, '')));
    expect(values).to.deep.equal([...values].sort((a, b) => b - a));
    await page.selectOption('#sort', 'newest');
    expect((await titles())[0]).to.equal('Train tickets Paris');
    await page.selectOption('#sort', 'oldest');
    expect((await titles())[0]).to.equal('Customer visits Berlin');

    await page.selectOption('#source', 'globex');
    expect(await titles()).to.have.members(['Partner summit Vienna', 'Sales kickoff Madrid', 'Hotel Hamburg', 'Train tickets Paris']);
    expect(await page.textContent('#summary')).to.equal('4 of 10 shown');
    await page.check('#flagged');
    expect(await titles()).to.deep.equal([reports[7]!.report.Name]);
    await page.selectOption('#source', '');
    await page.uncheck('#flagged');

    const requester = String(reports[3]!.report.OwnerName);
    await page.fill('#search', requester.split(' ')[0]!.toUpperCase());
    await page.waitForFunction(() => (globalThis as unknown as InPage).document.querySelectorAll('article.card').length < 10);
    for (const card of await page.locator('article.card').all()) {
      expect(((await card.locator('.title').textContent()) + ' ' + (await card.locator('.requester').textContent())).toLowerCase()).to.include(
        requester.split(' ')[0]!.toLowerCase(),
      );
    }
    await page.fill('#search', 'Lisbon');
    await page.waitForFunction(() => (globalThis as unknown as InPage).document.querySelectorAll('article.card').length === 1);
    expect(await titles()).to.deep.equal(['Team offsite Lisbon']);
    await page.fill('#search', '');
    await page.waitForFunction(() => (globalThis as unknown as InPage).document.querySelectorAll('article.card').length === 10);
    // Each card says how old it is.
    expect(await page.locator('article.card .age').count()).to.equal(10);
  });

  it('keyboard: focus stays on the same card across 10 live updates that do not touch it, and untouched cards do not move', async () => {
    await page.evaluate(WATCH_SHIFTS);
    // Tab from the top of the page to the fifth card's link, as a keyboard user does.
    const target = (await page.locator('#approvals > li.slot').nth(4).getAttribute('data-key'))!;
    await page.locator('body').focus();
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate<string | null>(FOCUSED_KEY)) === target) break;
    }
    focusedKey = target;
    await page.evaluate('window.__focused = document.activeElement, true');
    expect(await page.evaluate<string | undefined>('document.activeElement?.tagName')).to.equal('A');

    const others = () => pendingOf(0).filter((r) => keyOf(r.source, r.report) !== target);
    const isFocusKept = () => page.evaluate<boolean>('document.activeElement === window.__focused');
    type Pending = ReturnType<typeof pendingOf>[number];
    /** A report submitted in `company` reaches the page: a card at the end of the list. */
    const insert = (label: string, company: ConcurSandbox, source: string, name: string) => async () => {
      const r = submit(company, source, name);
      await liveUpdate(label, undefined, cycle, () => slot(keyOf(source, r)).waitFor());
    };
    /** Something happens to another card's report in Concur, and the page shows `shows` on that card. */
    const change = (label: string, pick: () => Pending, act: (r: Pending) => void, shows: (key: string) => Locator) => async () => {
      const r = pick();
      const key = keyOf(r.source, r.report);
      await liveUpdate(
        label,
        key,
        () => (tick(), act(r), cycle()),
        () => shows(key).waitFor(),
      );
    };
    /** Another card's approver is reminded of it. */
    const nudge = (label: string, pick: () => Pending) => async () => {
      const r = pick();
      const key = keyOf(r.source, r.report);
      await liveUpdate(
        label,
        key,
        () => remind(key, r.report.Name),
        () => slot(key).locator('.badge.reminder:not([hidden])').waitFor(),
      );
    };
    const closed = (key: string) => slot(key).and(page.locator('.is-closed'));
    const steps: [string, () => Promise<void>][] = [
      ['insert', insert('insert', acme, 'acme', 'Workshop Oslo')],
      [
        'approve',
        change(
          'approve',
          () => others()[0]!,
          (r) => r.sandbox.admin.approve(r.report.ID),
          closed,
        ),
      ],
      ['reminder', nudge('reminder', () => others()[1]!)],
      [
        'rename',
        change(
          'rename',
          () => others()[2]!,
          (r) => r.sandbox.admin.edit(r.report.ID, { name: `${r.report.Name} (v2)` }),
          (k) => slot(k).locator('.title', { hasText: '(v2)' }),
        ),
      ],
      ['insert globex', insert('insert globex', globex, 'globex', 'Customer workshop Prague')],
      [
        'send back',
        change(
          'send back',
          () => others()[3]!,
          (r) => r.sandbox.admin.sendBack(r.report.ID, 'receipt missing'),
          closed,
        ),
      ],
      [
        'new total',
        change(
          'new total',
          () => others()[4]!,
          (r) => r.sandbox.admin.edit(r.report.ID, { total: 4321.5 }),
          (k) => slot(k).locator('.amount', { hasText: '4,321.50' }),
        ),
      ],
      ['reminder 2', nudge('reminder 2', () => others()[5]!)],
      ['insert 3', insert('insert 3', acme, 'acme', 'Site visit Gdansk')],
      [
        'reassign',
        change(
          'reassign',
          () => others().find((o) => o.sandbox === acme)!,
          (r) => acme.admin.reassign(r.report.ID, bob.loginId),
          closed,
        ),
      ],
    ];
    const kept: string[] = [];
    for (const [label, step] of steps) {
      await step();
      if (!(await isFocusKept())) kept.push(label);
    }
    expect(kept, 'updates after which focus left the card').to.deep.equal([]);
    expect(await page.evaluate<string | null>(FOCUSED_KEY)).to.equal(focusedKey);
    // The "New" badges expire 15 s after their arrival; they fade where they are.
    await liveUpdate(
      'badge expiry',
      undefined,
      () => undefined,
      () =>
        page
          .waitForFunction(() => !(globalThis as unknown as InPage).document.querySelector('.badge.new:not(.is-faded)'), undefined, { timeout: 20_000 })
          .then(() => undefined),
    );
    const shift = await page.evaluate<number>('window.__shift');
    console.log(`      untouched slots moved: ${moved.length}; Chromium layout-shift score over the updates: ${shift.toFixed(4)}`);
    expect(moved, 'untouched cards that moved').to.deep.equal([]);
    expect(shift, 'layout shift score').to.equal(0);
  });

  it('moves focus to the next card when the focused card is closed, and says what happened', async () => {
    const r = reports.find((o) => keyOf(o.source, o.report) === focusedKey)!;
    const next = await page.evaluate<string | null>(`(() => {
      for (let li = document.querySelector('li.slot[data-key=${JSON.stringify(focusedKey)}]')?.nextElementSibling; li; li = li.nextElementSibling) {
        if (!li.classList.contains('is-closed')) return li.getAttribute('data-key');
      }
      return null;
    })()`);
    tick();
    r.sandbox.admin.approve(r.report.ID);
    await cycle();
    await slot(focusedKey).and(page.locator('.is-closed')).waitFor();
    expect(next).to.be.a('string');
    expect(await page.evaluate<string | null>(FOCUSED_KEY)).to.equal(next);
    expect(await page.evaluate<string | undefined>('document.activeElement?.tagName')).to.equal('A');
    await page.locator('#announcer', { hasText: `“${r.report.Name}” was approved and left your queue.` }).waitFor();
    expect(await page.locator('#closed-list li').first().textContent()).to.match(new RegExp(`^Approved ${r.report.Name} \\(${r.source}, `));
  });

  it('announces arrivals, closures and reminders in one polite live region that is always there', async () => {
    const region = page.locator('[aria-live]');
    expect(await region.count(), 'one live region').to.equal(1);
    expect(await region.getAttribute('aria-live')).to.equal('polite');
    expect(await region.getAttribute('role')).to.equal('status');
    const r = submit(acme, 'acme', 'Conference Dublin');
    await cycle();
    await page.locator('#announcer', { hasText: 'New approval: Conference Dublin' }).waitFor();
    const key = keyOf('acme', r);
    await remind(key, r.Name);
    await page.locator('#announcer', { hasText: 'Reminder: Conference Dublin is still waiting on you.' }).waitFor();
  });

  it('has no axe violations after a live insert, a live removal and a reminder, at every width in light and dark', async () => {
    const found: string[] = [];
    const inserted = submit(globex, 'globex', 'Board meeting Oslo');
    await cycle();
    await slot(keyOf('globex', inserted)).waitFor();
    found.push(...(await axeEverywhere(page, 'after an insert')));
    const gone = pendingOf(0)[0]!;
    tick();
    gone.sandbox.admin.approve(gone.report.ID);
    await cycle();
    await slot(keyOf(gone.source, gone.report)).and(page.locator('.is-closed')).waitFor();
    found.push(...(await axeEverywhere(page, 'after a removal')));
    const nudged = pendingOf(0)[1]!;
    await remind(keyOf(nudged.source, nudged.report), nudged.report.Name);
    await slot(keyOf(nudged.source, nudged.report)).locator('.badge.reminder:not([hidden])').waitFor();
    found.push(...(await axeEverywhere(page, 'after a reminder')));
    expect(found).to.deep.equal([]);
  });

  it('draws focus rings at 3:1 or more against the card in light and dark, and keeps button boxes in forced colours', async () => {
    const link = page.locator('article.card a.button').first();
    const ratios: string[] = [];
    for (const scheme of SCHEMES) {
      await page.emulateMedia({ colorScheme: scheme });
      await link.focus();
      await page.keyboard.press('Shift+Tab');
      await page.keyboard.press('Tab');
      const [ring, card] = await page.evaluate<[string, string]>(FOCUS_COLOURS);
      const ratio = contrast(ring, card);
      ratios.push(`${scheme} ${ratio.toFixed(2)}:1`);
      expect(ratio, `${scheme}: focus ring ${ring} on card ${card}`).to.be.at.least(3);
    }
    console.log(`      focus ring contrast against the card: ${ratios.join(', ')}`);
    await page.emulateMedia({ colorScheme: 'light', forcedColors: 'active' });
    const border = await link.evaluate((e) =>
      (globalThis as unknown as { getComputedStyle(e: unknown): { borderTopStyle: string; borderTopWidth: string } }).getComputedStyle(e),
    );
    expect(border.borderTopStyle).to.equal('solid');
    expect(parseFloat(border.borderTopWidth)).to.be.at.least(1);
    await page.emulateMedia({ colorScheme: 'light', forcedColors: 'none' });
  });

  it('holds from 320 px with WCAG text spacing raised: nothing scrolls sideways', async () => {
    const p = await context.newPage();
    await p.goto(`${host.url}/inbox`);
    await p.locator('#main[aria-busy="false"]').waitFor();
    const wide: string[] = [];
    for (const width of [320, 390]) {
      await p.setViewportSize({ width, height: 900 });
      await p.evaluate(TEXT_SPACING);
      const { scroll, client } = await p.evaluate<{ scroll: number; client: number }>(
        '({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })',
      );
      if (scroll > client) wide.push(`${width}px: ${scroll} > ${client}`);
    }
    await p.close();
    expect(wide).to.deep.equal([]);
  });

  it('offers one button to take in what live updates left: notes of closed cards go, held arrivals show', async () => {
    const closed = await page.locator('li.slot.is-closed').count();
    expect(closed).to.be.greaterThan(0);
    const button = page.locator('#show-new');
    expect(await button.textContent()).to.equal(`Remove ${closed} closed`);
    await button.click();
    expect(await page.locator('li.slot.is-closed').count()).to.equal(0);
    expect(await page.locator('article.card').count()).to.equal(pendingOf(0).length);
    expect(await button.isDisabled()).to.equal(true);
  });

  it('takes the README pictures: desktop and phone, light and dark', async () => {
    // A fresh page, as the approver opens it in the morning.
    const p = await context.newPage();
    for (const scheme of SCHEMES) {
      await p.emulateMedia({ colorScheme: scheme });
      const suffix = scheme === 'dark' ? '-dark' : '';
      await p.setViewportSize({ width: 1280, height: 900 });
      await p.goto(`${host.url}/inbox`);
      await p.locator('#main[aria-busy="false"]').waitFor();
      await p.screenshot({ path: join(SHOTS, `web-inbox${suffix}.png`) });
      await p.setViewportSize({ width: 390, height: 844 });
      await p.screenshot({ path: join(SHOTS, `web-inbox-phone${suffix}.png`) });
    }
    await p.close();
    expect(existsSync(join(SHOTS, 'web-inbox-phone-dark.png'))).to.equal(true);
  });

  /** A reminder as the reminder scheduler delivers it (the page only points out the card it shows). */
  async function remind(key: string, title: string): Promise<void> {
    await web.deliver({
      idempotencyKey: `${key}#g.1:${ann.loginId}:web:remind-${Date.now()}`,
      action: 'remind',
      recipient: { sourceUserId: ann.loginId, email: email(ann) },
      card: { approvalKey: key, kind: 'expense-report', revision: 1, title, requester: {}, fields: [], lineItems: [], flags: [], actions: [] },
      previous: { ref: 'web' },
    });
  }
});

/**
 * The act controls (Approve, Send back, Select, Approve selected) and their dialogs, checked in
 * Chromium like the rest of the inbox: axe-core at four widths in light and dark with each dialog
 * open, focus across a live close of another card, no layout shift when selecting, and nothing
 * scrolling sideways at 320 px. A ScriptedSource acts; the Concur sandbox above has no actions yet.
 */
describe('web inbox act controls: accessibility in Chromium (ScriptedSource that acts, SQLite queue)', function () {
  this.timeout(180_000);
  const ANN = { sourceUserId: 'ann', name: 'Ann', email: 'ann@example.test' };
  let clock: ManualClock;
  let source: ScriptedSource;
  let host: Host;
  let browser: Browser;
  let page: Page;
  const slot = (id: string) => page.locator(`#approvals > li.slot[data-key="src:expense-report:${id}"]`);

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium package for the browser tests`);
      this.skip();
    }
    clock = new ManualClock('2026-03-02T09:00:00.000Z');
    source = new ScriptedSource('src', clock, 100, 'expense-report', ['approve', 'sendBack']);
    const raw = {
      queue: { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-a11y-act-')), 'queue.db') } },
      notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_TEST_WEB_KEY' } } }],
      http: { host: '127.0.0.1', port: 0 },
    };
    host = await Host.create(loadDeployment(undefined, { raw, env: { AH_TEST_WEB_KEY: KEY } }), {
      logger: createLogger({ level: 'warn', destination: { write: () => undefined } as never }),
      clock,
      sources: [source],
    });
    await host.start();
    await host.runOnce();
    const titles = [
      'Customer visits Berlin',
      'Cloud conference Las Vegas',
      'Team offsite Lisbon',
      'Trade fair Hannover',
      'Client dinner Munich',
      'Training Zurich',
    ];
    titles.forEach((title, i) => {
      clock.advance(1000);
      source.submit(`r${i + 1}`, {
        title,
        approvers: [ANN],
        amount: `${(i + 1) * 111}.50`,
        content: { fields: [{ label: 'Policy', value: 'Travel' }], lineItems: [{ label: 'Hotel · Marriott', amount: { value: '99.00', currency: 'USD' } }] },
      });
    });
    clock.advance(60_000);
    await host.runOnce();
    await host.drain();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    page = await context.newPage();
    const web = host.notifiers.get('web') as WebInboxNotifier;
    await signInPage(page, web, host.url!, ANN.email);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await host?.stop().catch(() => undefined);
  });

  it('has no axe violations with the act buttons, Select boxes and Approve selected, some ticked, at 320 to 1280 px in light and dark', async () => {
    expect(await page.locator('article.card button[data-act]').count()).to.equal(18);
    await page.getByRole('checkbox', { name: 'Select Customer visits Berlin' }).check();
    await page.getByRole('checkbox', { name: 'Select Team offsite Lisbon' }).check();
    expect(await page.locator('#approve-selected').textContent()).to.equal('Approve selected (2)');
    expect(await axeEverywhere(page, 'inbox with act controls')).to.deep.equal([]);
  });

  it('has no axe violations with the Send back dialog open, empty and with its error shown; nothing scrolls sideways at 320 px', async () => {
    await slot('r2').getByRole('button', { name: 'Send Back: Cloud conference Las Vegas' }).click();
    const dialog = page.getByRole('dialog', { name: 'Send Back' });
    await dialog.waitFor();
    const found = await axeEverywhere(page, 'send back dialog');
    await dialog.getByRole('button', { name: 'Send Back' }).click();
    await dialog.locator('#comment-error:not([hidden])').waitFor();
    found.push(...(await axeEverywhere(page, 'send back dialog with its error')));
    await page.setViewportSize({ width: 320, height: 700 });
    const { scroll, client } = await page.evaluate<{ scroll: number; client: number }>(
      '({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })',
    );
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(scroll, '320 px with the dialog open').to.be.at.most(client);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect(found).to.deep.equal([]);
  });

  it('has no axe violations with the Approve with comment dialog open', async () => {
    await slot('r2').getByRole('button', { name: 'Approve with comment: Cloud conference Las Vegas' }).click();
    const dialog = page.getByRole('dialog', { name: 'Approve with comment' });
    await dialog.waitFor();
    const found = await axeEverywhere(page, 'approve with comment dialog');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect(found).to.deep.equal([]);
  });

  it('has no axe violations in the bulk dialog, before and after approving, nor with an answer on a card', async () => {
    await page.getByRole('button', { name: 'Approve selected (2)' }).click();
    const dialog = page.getByRole('dialog', { name: 'Approve 2 reports?' });
    await dialog.waitFor();
    const found = await axeEverywhere(page, 'bulk dialog');
    await dialog.getByRole('button', { name: 'Approve 2' }).click();
    const done = page.getByRole('dialog', { name: 'Approved 2 of 2 reports.' });
    await done.waitFor({ timeout: 20_000 });
    found.push(...(await axeEverywhere(page, 'bulk dialog with results')));
    await done.getByRole('button', { name: 'Close' }).click();
    await slot('r1').and(page.locator('.is-closed')).waitFor();

    source.needsConsent.add(ANN.email);
    await slot('r4').getByRole('button', { name: 'Approve: Trade fair Hannover' }).click();
    await slot('r4').locator('.act-note').waitFor();
    source.needsConsent.delete(ANN.email);
    found.push(...(await axeEverywhere(page, 'card with an answer and closed cards with notes')));
    expect(found).to.deep.equal([]);
  });

  it('keeps focus on an Approve button, and untouched cards in place, while another card is approved elsewhere and closes', async () => {
    await page.evaluate(WATCH_CARD_SHIFTS);
    const button = slot('r5').getByRole('button', { name: 'Approve: Client dinner Munich' });
    await button.focus();
    await page.evaluate('window.__focused = document.activeElement, true');
    const before = await page.evaluate<Rects>(RECTS);
    // Approved in another channel: its token as the outbox put it on that channel's card.
    const row = (await host.queue.get('src:expense-report:r6'))!;
    const card = await host.actions.withTokens(
      {
        approvalKey: row.key,
        kind: row.kind,
        revision: row.revision,
        title: row.title,
        requester: {},
        fields: [],
        lineItems: [],
        flags: [],
        actions: [{ type: 'act', label: 'Approve', action: 'approve' }],
      },
      row.generation,
      ANN.email,
    );
    const token = (card.actions[0] as { token: string }).token;
    expect((await host.actions.act(token, { email: ANN.email, channel: 'chat', channelName: 'Chat' })).outcome).to.equal('done');
    await slot('r6').and(page.locator('.is-closed')).waitFor({ timeout: 10_000 });
    await slot('r6').locator('.tombstone-note', { hasText: 'in Chat at' }).waitFor();
    await page.waitForTimeout(500);
    const after = await page.evaluate<Rects>(RECTS);
    const moved = Object.keys(before).filter((k) => !k.endsWith(':r6') && JSON.stringify(before[k]) !== JSON.stringify(after[k]));
    expect(moved, 'untouched cards that moved').to.deep.equal([]);
    expect(await page.evaluate<boolean>('document.activeElement === window.__focused')).to.equal(true);
    expect(await page.evaluate<string[]>('window.__cardShifts'), 'what Chromium saw shift in the list').to.deep.equal([]);
  });

  it('draws the focus rings of the new controls at 3:1 or more against the card, and keeps their boxes in forced colours', async () => {
    const ratios: string[] = [];
    for (const scheme of SCHEMES) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const control of [slot('r5').getByRole('button', { name: 'Send Back: Client dinner Munich' }), slot('r5').getByRole('checkbox')]) {
        await control.focus();
        await page.keyboard.press('Shift+Tab');
        await page.keyboard.press('Tab');
        const [ring, card] = await page.evaluate<[string, string]>(FOCUS_COLOURS);
        ratios.push(`${scheme} ${contrast(ring, card).toFixed(2)}:1`);
        expect(contrast(ring, card), `${scheme}: focus ring ${ring} on card ${card}`).to.be.at.least(3);
      }
    }
    await page.emulateMedia({ colorScheme: 'light', forcedColors: 'active' });
    const border = await slot('r5')
      .getByRole('button', { name: 'Send Back: Client dinner Munich' })
      .evaluate((e) => (globalThis as unknown as { getComputedStyle(e: unknown): { borderTopStyle: string } }).getComputedStyle(e).borderTopStyle);
    expect(border).to.equal('solid');
    await page.emulateMedia({ colorScheme: 'light', forcedColors: 'none' });
  });
});
