import { expect } from 'chai';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import { WebInboxNotifier } from '../../adapters/chat-web/web-inbox-notifier.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { ManualClock, ScriptedSource } from '../../core/testing/index.js';
import { CHROMIUM, launchChromium, signInPage } from '../support/inbox-browser.js';

const KEY = 'e2e-web-inbox-actions-signing-key-0123456789';
const ANN = { sourceUserId: 'ann', name: 'Ann', email: 'ann@example.test' };
const BULK = Array.from({ length: 20 }, (_, i) => `b${String(i + 1).padStart(2, '0')}`);

/** The focused element, described: its tag, and whether it sits in the open dialog. */
const FOCUS = `(() => {
  const e = document.activeElement;
  return { tag: e?.tagName ?? null, id: e?.id ?? null, inDialog: Boolean(e?.closest('dialog[open]')), label: e?.getAttribute('aria-label') ?? e?.textContent ?? null };
})()`;
type Focus = { tag: string | null; id: string | null; inDialog: boolean; label: string | null };

/**
 * Acting from the web inbox in Chromium: a real host with a ScriptedSource that acts (approve,
 * send back), an SQLite queue and the web inbox plugin on loopback. Approve one card, send one
 * back with a comment through the dialog, and approve 20 selected cards at once; every click
 * goes through the core's action path and the source records what it did.
 */
describe('web inbox actions in Chromium (ScriptedSource that acts, SQLite queue)', function () {
  this.timeout(120_000);
  let clock: ManualClock;
  let source: ScriptedSource;
  let plain: ScriptedSource;
  let host: Host;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  const slot = (id: string, from = 'src') => page.locator(`#approvals > li.slot[data-key="${from}:expense-report:${id}"]`);
  const closed = (id: string) => page.locator(`#approvals > li.slot.is-closed[data-key="src:expense-report:${id}"]`);

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium package for the browser tests`);
      this.skip();
    }
    clock = new ManualClock('2026-03-02T09:00:00.000Z');
    source = new ScriptedSource('src', clock, 100, 'expense-report', ['approve', 'sendBack']);
    plain = new ScriptedSource('plain', clock, 100, 'expense-report');
    const raw = {
      queue: { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-web-act-e2e-')), 'queue.db') } },
      notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_TEST_WEB_KEY' } } }],
      http: { host: '127.0.0.1', port: 0 },
    };
    host = await Host.create(loadDeployment(undefined, { raw, env: { AH_TEST_WEB_KEY: KEY } }), {
      logger: pino({ level: 'silent' }),
      clock,
      sources: [source, plain],
    });
    await host.start();
    await host.runOnce();
    for (const id of ['one', 'back', ...BULK, 'consent', 'noted', 'unnoted']) {
      clock.advance(1000);
      source.submit(id, { title: `Report ${id}`, approvers: [ANN], amount: '120.00' });
    }
    plain.submit('view-only', { title: 'Report view-only', approvers: [ANN] });
    clock.advance(60_000);
    await host.runOnce();
    await host.drain();

    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
    page = await context.newPage();
    const watch = (what: string) => (msg: ConsoleMessage | Error) => {
      if ('type' in msg && msg.type() !== 'error' && msg.type() !== 'warning') return;
      if ('location' in msg && msg.location().url.endsWith('/favicon.ico')) return;
      problems.push(`${what}: ${'text' in msg ? msg.text() : msg.message}`);
    };
    page.on('console', watch('console'));
    page.on('pageerror', watch('page error'));
    const web = host.notifiers.get('web') as WebInboxNotifier;
    await signInPage(page, web, host.url!, ANN.email);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await host?.stop().catch(() => undefined);
  });

  it('shows Approve and Send Back after the View link, and a Select box, on cards whose source acts; a view-only card as before', async () => {
    expect(await page.locator('article.card').count()).to.equal(26);
    const card = slot('one').locator('article');
    expect(await card.locator('.actions > *').evaluateAll((es) => es.map((e) => (e as unknown as { textContent: string }).textContent))).to.deep.equal([
      'View Expense Report',
      'Approve',
      'Approve with comment…',
      'Send Back',
      'Select',
    ]);
    await card.getByRole('button', { name: 'Approve: Report one' }).waitFor();
    await card.getByRole('checkbox', { name: 'Select Report one' }).waitFor();
    const viewOnly = slot('view-only', 'plain').locator('article');
    expect(await viewOnly.locator('.actions > *').count()).to.equal(1);
    expect(await viewOnly.locator('button, input').count()).to.equal(0);
    expect(await page.locator('#approve-selected').textContent()).to.equal('Approve selected (0)');
    expect(await page.locator('#approve-selected').getAttribute('aria-disabled')).to.equal('true');
  });

  it('approves one card: the source approves it as the signed-in person, the card closes saying who acted where', async () => {
    await slot('one').getByRole('button', { name: 'Approve: Report one' }).click();
    await closed('one').waitFor({ timeout: 10_000 });
    expect(source.acted).to.deep.equal([{ externalId: 'one', action: 'approve', by: ANN.email, comment: undefined }]);
    expect(await closed('one').locator('.tombstone-note').textContent()).to.match(/^Approved by ann@example.test in the web inbox at 2026-03-02 /);
    expect(await page.locator('#closed-list li').first().textContent()).to.match(
      /^Approved Report one \(src, .*\)Approved by ann@example.test in the web inbox/,
    );
    await page.locator('#announcer', { hasText: '“Report one” was approved and left your queue.' }).waitFor();
  });

  it('sends one back through a modal dialog that requires a comment, keeps focus inside and returns it', async () => {
    const opener = slot('back').getByRole('button', { name: 'Send Back: Report back' });
    await opener.click();
    const dialog = page.getByRole('dialog', { name: 'Send Back' });
    await dialog.waitFor();
    expect(await page.evaluate<Focus>(FOCUS)).to.include({ tag: 'TEXTAREA', id: 'comment', inDialog: true });
    // Tab and Shift+Tab never leave the modal dialog.
    for (const key of ['Tab', 'Tab', 'Tab', 'Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab']) {
      await page.keyboard.press(key);
      const focus = await page.evaluate<Focus>(FOCUS);
      // Chromium may pass through the browser's own UI between the last and first control; never to the page behind.
      if (focus.tag !== 'BODY') expect(focus.inDialog, `${key}: ${JSON.stringify(focus)}`).to.equal(true);
    }
    // Sending with no comment is refused in the dialog, which stays open.
    await dialog.getByRole('button', { name: 'Send Back' }).click();
    await dialog.locator('#comment-error', { hasText: 'Enter a comment' }).waitFor();
    expect(await dialog.getByLabel('Comment for the requester (required)').getAttribute('aria-invalid')).to.equal('true');
    expect(source.acted).to.have.length(1);
    // Escape closes it, and focus is back on the button that opened it.
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect(await page.evaluate<Focus>(FOCUS)).to.include({ tag: 'BUTTON', label: 'Send Back: Report back' });

    await opener.click();
    await dialog.getByLabel('Comment for the requester (required)').fill('The hotel receipt is missing');
    await dialog.getByRole('button', { name: 'Send Back' }).click();
    await closed('back').waitFor({ timeout: 10_000 });
    expect(source.acted.at(-1)).to.deep.equal({ externalId: 'back', action: 'sendBack', by: ANN.email, comment: 'The hotel receipt is missing' });
    expect(await closed('back').locator('.tombstone-note').textContent()).to.match(
      /^Sent back by ann@example.test in the web inbox at .*: “The hotel receipt is missing”$/,
    );
    expect(await page.locator('#closed-list li').first().textContent()).to.include('“The hotel receipt is missing”');
  });

  it('approves 20 selected cards in bulk, after a confirmation, with a result per report', async () => {
    // In page coordinates: ticking the boxes scrolls the page.
    const listTop = () => page.evaluate<number>("document.getElementById('approvals').getBoundingClientRect().top + scrollY");
    const before = await listTop();
    for (const id of BULK) await page.getByRole('checkbox', { name: `Select Report ${id}` }).check();
    const button = page.getByRole('button', { name: 'Approve selected (20)' });
    await button.waitFor();
    expect(await listTop(), 'the list bar keeps its height while selecting').to.equal(before);
    await button.click();
    const dialog = page.getByRole('dialog', { name: 'Approve 20 reports?' });
    await dialog.waitFor();
    expect(await dialog.locator('#bulk-list li strong').allTextContents()).to.deep.equal(BULK.map((id) => `Report ${id}`));
    expect(source.acted).to.have.length(2);
    await dialog.getByRole('button', { name: 'Approve 20' }).click();
    // Named by its heading, which now tells the outcome.
    const done = page.getByRole('dialog', { name: 'Approved 20 of 20 reports.' });
    await done.waitFor({ timeout: 20_000 });
    expect(await page.evaluate<Focus>(FOCUS)).to.include({ id: 'bulk-heading', inDialog: true });
    expect(await done.locator('#bulk-list .result').allTextContents()).to.deep.equal(BULK.map(() => 'Approved.'));
    expect(
      source.acted
        .filter((a) => a.action === 'approve')
        .map((a) => a.externalId)
        .sort(),
    ).to.deep.equal(['one', ...BULK].sort());
    expect(source.acted.every((a) => a.by === ANN.email)).to.equal(true);
    await page.locator('#announcer', { hasText: 'Approved 20 of 20 reports.' }).waitFor();
    await done.getByRole('button', { name: 'Close' }).click();
    expect(await page.evaluate<Focus>(FOCUS)).to.include({ id: 'approve-selected' });
    for (const id of BULK) await closed(id).waitFor({ timeout: 10_000 });
    expect(await page.locator('#approve-selected').textContent()).to.equal('Approve selected (0)');
    expect(await listTop()).to.equal(before);
  });

  it('approves with an optional comment through the same modal dialog, which keeps focus inside and returns it', async () => {
    const opener = slot('noted').getByRole('button', { name: 'Approve with comment: Report noted' });
    await opener.click();
    const dialog = page.getByRole('dialog', { name: 'Approve with comment' });
    await dialog.waitFor();
    expect(await page.evaluate<Focus>(FOCUS)).to.include({ tag: 'TEXTAREA', id: 'comment', inDialog: true });
    const box = dialog.getByLabel('Comment for the requester (optional)');
    expect(await box.getAttribute('required')).to.equal(null);
    for (const key of ['Tab', 'Tab', 'Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab']) {
      await page.keyboard.press(key);
      const focus = await page.evaluate<Focus>(FOCUS);
      if (focus.tag !== 'BODY') expect(focus.inDialog, `${key}: ${JSON.stringify(focus)}`).to.equal(true);
    }
    // Cancel acts on nothing and gives focus back to the button that opened it.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await page.evaluate<Focus>(FOCUS)).to.include({ tag: 'BUTTON', label: 'Approve with comment: Report noted' });
    const before = source.acted.length;

    await opener.click();
    await box.fill('  All receipts are there, thanks ');
    await dialog.getByRole('button', { name: 'Approve' }).click();
    await closed('noted').waitFor({ timeout: 10_000 });
    expect(source.acted.slice(before)).to.deep.equal([{ externalId: 'noted', action: 'approve', by: ANN.email, comment: 'All receipts are there, thanks' }]);
    expect(await closed('noted').locator('.tombstone-note').textContent()).to.match(
      /^Approved by ann@example.test in the web inbox at .*: “All receipts are there, thanks”$/,
    );
    await page.locator('#announcer', { hasText: '“Report noted” was approved and left your queue.' }).waitFor();
  });

  it('approves without a comment when the optional comment is left empty, with no error shown', async () => {
    const before = source.acted.length;
    await slot('unnoted').getByRole('button', { name: 'Approve with comment: Report unnoted' }).click();
    const dialog = page.getByRole('dialog', { name: 'Approve with comment' });
    await dialog.waitFor();
    // The dialog opened afresh: nothing typed before is left in it.
    expect(await dialog.getByLabel('Comment for the requester (optional)').inputValue()).to.equal('');
    await dialog.getByRole('button', { name: 'Approve' }).click();
    await closed('unnoted').waitFor({ timeout: 10_000 });
    expect(await page.locator('#comment-error').isHidden()).to.equal(true);
    expect(source.acted.slice(before)).to.deep.equal([{ externalId: 'unnoted', action: 'approve', by: ANN.email, comment: undefined }]);
    expect(await closed('unnoted').locator('.tombstone-note').textContent()).to.match(/^Approved by ann@example.test in the web inbox at [^“]*$/);
  });

  it('shows "Connect your account" on the card when the source needs the approver’s consent first', async () => {
    source.needsConsent.add(ANN.email);
    await slot('consent').getByRole('button', { name: 'Approve: Report consent' }).click();
    const note = slot('consent').locator('.act-note');
    await note.waitFor();
    expect(await note.textContent()).to.equal('Connect your account first. Connect your account');
    expect(await note.getByRole('link', { name: 'Connect your account' }).getAttribute('href')).to.equal(
      'https://consent.example.test/connect?user=ann%40example.test',
    );
    await page.locator('#announcer', { hasText: '“Report consent”: Connect your account first.' }).waitFor();
    expect(source.acted.map((a) => a.externalId)).to.not.include('consent');
    source.needsConsent.delete(ANN.email);
  });

  it('lists the approver’s connected account with a Disconnect that works from the page', async () => {
    source.connected.set(ANN.email, '2026-03-01T10:00:00.000Z');
    await page.reload();
    await page.locator('#main[aria-busy="false"]').waitFor();
    const section = page.getByRole('region', { name: 'Connected accounts' });
    await section.getByRole('button', { name: 'Disconnect src' }).click();
    await page.locator('#announcer', { hasText: 'Disconnected from src.' }).waitFor();
    await section.waitFor({ state: 'hidden' });
    expect(source.connected.has(ANN.email)).to.equal(false);
    expect(source.needsConsent.has(ANN.email)).to.equal(true);
    source.needsConsent.delete(ANN.email);
  });

  it('ran without script errors or Content-Security-Policy violations', () => {
    expect(problems).to.deep.equal([]);
  });
});
