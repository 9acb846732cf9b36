import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { createLogger } from '../../core/host/logging.js';
import { normaliseEmail, signToken, verifyToken } from '../../adapters/chat-web/signed-links.js';
import { WebInboxNotifier, type InboxItem } from '../../adapters/chat-web/web-inbox-notifier.js';
import { InboxSessions } from '../../adapters/chat-web/inbox-sessions.js';
import { startConcurSandbox, type ConcurSandbox, type SandboxUserInfo } from '../../plugins/concur/sandbox/index.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';
import { SqliteApprovalQueue } from '../../adapters/queue-sqlite/sqlite-approval-queue.js';
import { ManualClock } from '../../core/testing/index.js';
import { approval, batch, commitContext } from '../support/queue-fixtures.js';

const KEY = 'test-web-inbox-signing-key-0123456789';
const NOW = new Date('2026-03-02T09:00:00.000Z');
const minutes = (n: number) => n * 60_000;
const TOKEN_ID = 'AAAAAAAAAAAAAAAAAAAAAA';
const claims = (email: string, expiresAt: Date, generation = 0) => ({ email, expiresAt, id: TOKEN_ID, generation });

describe('web inbox: signed links', () => {
  const expiry = new Date(NOW.getTime() + minutes(60));

  it('verifies a link it signed, for that e-mail, until it expires', () => {
    const token = signToken(KEY, 'link', claims('Ann.Approver@Example.com ', expiry));
    const verified = verifyToken(KEY, 'link', token, new Date(expiry.getTime() - 1000));
    expect(verified).to.deep.equal({ ok: true, email: 'ann.approver@example.com', expiresAt: expiry, id: TOKEN_ID, generation: 0 });
  });

  it('refuses a link from the second it expires', () => {
    const token = signToken(KEY, 'link', claims('ann@example.com', expiry));
    expect(verifyToken(KEY, 'link', token, expiry)).to.deep.equal({ ok: false, reason: 'expired' });
  });

  it('refuses a link whose e-mail or expiry was changed', () => {
    const token = signToken(KEY, 'link', claims('ann@example.com', expiry));
    const mac = token.split('.')[1]!;
    const otherPerson = `${Buffer.from(`bob@example.com|${expiry.getTime() / 1000}|${TOKEN_ID}|0`).toString('base64url')}.${mac}`;
    const later = `${Buffer.from(`ann@example.com|${expiry.getTime() / 1000 + 86_400}|${TOKEN_ID}|0`).toString('base64url')}.${mac}`;
    const olderGeneration = `${Buffer.from(`ann@example.com|${expiry.getTime() / 1000}|${TOKEN_ID}|1`).toString('base64url')}.${mac}`;
    expect(verifyToken(KEY, 'link', otherPerson, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
    expect(verifyToken(KEY, 'link', later, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
    expect(verifyToken(KEY, 'link', olderGeneration, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
  });

  it('refuses a link signed with another key', () => {
    const token = signToken('another-key-of-the-same-length-0123', 'link', claims('ann@example.com', expiry));
    expect(verifyToken(KEY, 'link', token, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
  });

  it('never takes a session cookie for a link, nor a link for a session cookie', () => {
    const session = signToken(KEY, 'session', claims('ann@example.com', expiry));
    const link = signToken(KEY, 'link', claims('ann@example.com', expiry));
    expect(verifyToken(KEY, 'link', session, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
    expect(verifyToken(KEY, 'session', link, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
  });

  it('refuses malformed tokens without throwing', () => {
    const token = signToken(KEY, 'link', claims('ann@example.com', expiry));
    for (const bad of ['', '.', 'abc', 'a.b.c', `${token}x`, `${token.split('.')[0]}.`, 'x'.repeat(5000), `${token}.${token}`]) {
      expect(verifyToken(KEY, 'link', bad, NOW).ok, bad.slice(0, 40)).to.equal(false);
    }
  });

  it('accepts only e-mail addresses, in one canonical form', () => {
    expect(normaliseEmail('  Ann@Example.COM ')).to.equal('ann@example.com');
    for (const bad of ['ann', 'ann@', '@example.com', 'ann example@example.com', 'ann|x@example.com', 'ann@exa\u0000mple.com']) {
      expect(normaliseEmail(bad), bad).to.equal(undefined);
    }
    expect(() => signToken(KEY, 'link', claims('not an e-mail', expiry))).to.throw(/not an e-mail address/);
  });
});

/** A server-sent event stream read by hand, as a page's EventSource would read it. */
interface EventTap {
  readonly response: IncomingMessage;
  readonly events: { type: string; data: Record<string, unknown> }[];
  next(type: string, test?: (data: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  readonly ended: Promise<void>;
  close(): void;
}

function tapEvents(base: string, cookie: string | undefined): Promise<EventTap> {
  return new Promise((resolve, reject) => {
    const request = get(`${base}/inbox/api/events`, { headers: { accept: 'text/event-stream', ...(cookie ? { cookie } : {}) } }, (response) => {
      const events: EventTap['events'] = [];
      const waiters = new Set<() => void>();
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          const type = frame.find((l) => l.startsWith('event: '))?.slice(7);
          const data = frame.find((l) => l.startsWith('data: '))?.slice(6);
          if (type && data) events.push({ type, data: JSON.parse(data) as Record<string, unknown> });
        }
        for (const wake of waiters) wake();
      });
      const ended = new Promise<void>((done) => response.on('close', done));
      resolve({
        response,
        events,
        ended,
        next(type, test = () => true, timeoutMs = 5000) {
          return new Promise((found, fail) => {
            const check = () => {
              const hit = events.find((e) => e.type === type && test(e.data));
              if (!hit) return;
              waiters.delete(check);
              clearTimeout(timer);
              found(hit.data);
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`no "${type}" event within ${timeoutMs} ms; got ${JSON.stringify(events)}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
        close: () => request.destroy(),
      });
    });
    request.on('error', reject);
  });
}

interface InboxHost {
  readonly sandbox: ConcurSandbox;
  readonly host: Host;
  readonly web: WebInboxNotifier;
  readonly base: string;
  /** Two approvers of the seeded company. */
  readonly ann: SandboxUserInfo;
  readonly bob: SandboxUserInfo;
  cycle(): Promise<Awaited<ReturnType<Host['runOnce']>>>;
  /** A fresh sign-in link for `email` on this host's address. */
  link(email: string): Promise<string>;
  /** POSTs a form to `path` as a browser on `origin` does (default: this host's own page). */
  post(path: string, form: Record<string, string>, headers?: Record<string, string>): Promise<Response>;
  /** Presses Continue on a link's page: POSTs its token, same-origin. */
  redeem(url: string, headers?: Record<string, string>): Promise<Response>;
  /** Signs in through a fresh link (GET its page, then Continue); returns the `Cookie` header value for the session. */
  signIn(email: string): Promise<string>;
  approvals(cookie: string | undefined): Promise<{ status: number; body: { email: string; approvals: InboxItem[] } }>;
  close(): Promise<void>;
}

const tokenOf = (url: string) => new URL(url).searchParams.get('token')!;
const cookieOf = (res: Response) => res.headers.get('set-cookie')?.split(';')[0];

/**
 * A real host on loopback: the Concur plugin against its sandbox (frozen clock, which is also the
 * host's), a queue (memory unless told), and the web inbox plugin as the only channel, its routes served.
 */
async function inboxHost(options: { queue?: unknown; sandbox?: ConcurSandbox; config?: Record<string, unknown> } = {}): Promise<InboxHost> {
  const sandbox = options.sandbox ?? (await startConcurSandbox({ ...SMALL_COMPANY, clock: NOW }));
  const concur = sandboxSource(sandbox, {
    // Cycles run when the test says (runOnce); the loop's own timer would race them.
    pollIntervalSeconds: 3600,
    config: { timeoutSeconds: 2, ...options.config },
  });
  const env = { ...concur.env, AH_TEST_WEB_KEY: KEY };
  const raw = {
    queue: options.queue ?? { adapter: 'memory' },
    sources: [concur.source],
    notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_TEST_WEB_KEY' }, publicUrl: 'https://inbox.example.test' } }],
    http: { host: '127.0.0.1', port: 0 },
  };
  const logs: string[] = [];
  const host = await Host.create(loadDeployment(undefined, { raw, env }), {
    clock: { now: () => new Date(sandbox.admin.now()) },
    logger: createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } as never }),
  });
  await host.start();
  await host.runOnce();
  const web = host.notifiers.get('web');
  if (!(web instanceof WebInboxNotifier)) throw new Error('the web plugin did not bind a WebInboxNotifier');
  const [ann, bob] = sandbox.admin.users().filter((u) => u.isApprover);
  const base = host.url!;
  const h: InboxHost = {
    sandbox,
    host,
    web,
    base,
    ann: ann!,
    bob: bob!,
    async cycle() {
      const report = await host.runOnce();
      if (report.failures.length) throw new Error(report.failures.map((f) => f.error).join('; '));
      return report;
    },
    async link(email) {
      return (await web.signInUrl(email, { baseUrl: base })).url;
    },
    post(path, form, headers = { origin: base, 'sec-fetch-site': 'same-origin' }) {
      return fetch(`${base}${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams(form).toString(),
      });
    },
    redeem(url, headers) {
      return h.post('/inbox/login', { token: tokenOf(url) }, headers);
    },
    async signIn(email) {
      const url = await h.link(email);
      expect((await fetch(url)).status).to.equal(200);
      const res = await h.redeem(url);
      expect(res.status).to.equal(303);
      const cookie = cookieOf(res);
      expect(cookie).to.be.a('string');
      return cookie!;
    },
    async approvals(cookie) {
      const res = await fetch(`${base}/inbox/api/approvals`, { headers: cookie ? { cookie } : {} });
      return { status: res.status, body: (await res.json()) as { email: string; approvals: InboxItem[] } };
    },
    async close() {
      await host.stop().catch(() => undefined);
      if (!options.sandbox) await sandbox.close();
    },
  };
  return h;
}

describe('web inbox over HTTP (real host, Concur sandbox, memory queue)', function () {
  this.timeout(30_000);
  let h: InboxHost;
  const email = (u: SandboxUserInfo) => u.email.toLowerCase();
  const submitFor = (u: SandboxUserInfo, name: string) => h.sandbox.admin.submit({ approver: u.loginId, name, entries: 3 });

  beforeEach(async () => {
    h = await inboxHost();
  });
  afterEach(async () => h?.close());

  it('signs in through a link: its page posts it back, and the POST sets an HttpOnly, SameSite=Lax cookie scoped to /inbox', async () => {
    const url = await h.link(email(h.ann));
    expect(url).to.match(new RegExp(`^${h.base}/inbox/login\\?token=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$`));
    const page = await fetch(url);
    expect(page.status).to.equal(200);
    const html = await page.text();
    expect(html).to.include('<form method="post" action="/inbox/login">');
    expect(html).to.include(`<input type="hidden" name="token" value="${tokenOf(url)}">`);
    expect(html).to.include(`You are signing in as <strong>${email(h.ann)}</strong>.`);
    expect(page.headers.get('content-security-policy')).to.include("form-action 'self'");

    const res = await h.redeem(url);
    expect(res.status).to.equal(303);
    expect(res.headers.get('location')).to.equal('/inbox');
    // Secure because publicUrl is https, though this request came over plain http.
    expect(res.headers.get('set-cookie')).to.match(
      /^ah_inbox_session=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; Path=\/inbox; Max-Age=43200; HttpOnly; SameSite=Lax; Secure$/,
    );
    const inbox = await fetch(`${h.base}/inbox`, { headers: { cookie: cookieOf(res)! } });
    expect(inbox.status).to.equal(200);
    expect(await inbox.text()).to.include('<script src="/inbox/app.js" defer></script>');
  });

  it('sets no session on a GET of a link alone (a chat unfurler or a link scanner opening it)', async () => {
    const url = await h.link(email(h.ann));
    for (let i = 0; i < 3; i++) {
      const res = await fetch(url, { headers: { 'user-agent': 'Slackbot-LinkExpanding 1.0' } });
      expect(res.status).to.equal(200);
      expect(res.headers.get('set-cookie')).to.equal(null);
    }
    // …and the link still works for its person afterwards.
    expect((await h.redeem(url)).status).to.equal(303);
  });

  it('signs in once per link: a link used twice signs in once', async () => {
    const url = await h.link(email(h.ann));
    const first = await h.redeem(url);
    expect(first.status).to.equal(303);
    const second = await h.redeem(url);
    expect(second.status).to.equal(410);
    expect(second.headers.get('set-cookie')).to.equal(null);
    expect(await second.text())
      .to.include('already been used')
      .and.include('Ask whoever sent you the link');
    const page = await fetch(url);
    expect(page.status).to.equal(410);
    expect(await page.text()).not.to.include('<form');
    // The same person, signed in, tapping the link again is told so rather than shown an error.
    const again = await fetch(url, { headers: { cookie: cookieOf(first)! } });
    expect(again.status).to.equal(200);
    expect(await again.text()).to.include('You are signed in');
  });

  it('signs in once when the same link is posted many times at once', async () => {
    const url = await h.link(email(h.ann));
    const results = await Promise.all(Array.from({ length: 8 }, () => h.redeem(url)));
    expect(results.map((r) => r.status).sort()).to.deep.equal([303, 410, 410, 410, 410, 410, 410, 410]);
  });

  it('refuses a link after linkTtlMinutes (15 by default), with a page saying how to get a new one', async () => {
    const url = await h.link(email(h.ann));
    h.sandbox.admin.advanceClock(15 * 60);
    for (const res of [await fetch(url), await h.redeem(url)]) {
      expect(res.status).to.equal(410);
      expect(res.headers.get('set-cookie')).to.equal(null);
      const text = await res.text();
      expect(text).to.include('This sign-in link has expired').and.include('Ask whoever sent you the link');
    }
  });

  it('refuses a sign-in posted from another site or without an origin, and sets no cookie', async () => {
    const url = await h.link(email(h.ann));
    const crossSite: Record<string, string>[] = [
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      { origin: 'https://evil.example' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: h.base },
      { origin: 'null' },
      {},
    ];
    for (const headers of crossSite) {
      const res = await h.redeem(url, headers);
      expect(res.status, JSON.stringify(headers)).to.equal(403);
      expect(res.headers.get('set-cookie')).to.equal(null);
      expect(await res.text()).to.include('Sign-in refused');
    }
    // None of them spent the link; a same-origin post (by Origin alone, or by Sec-Fetch-Site alone) does.
    expect((await h.redeem(url, { origin: h.base })).status).to.equal(303);
    expect((await h.redeem(await h.link(email(h.ann)), { 'sec-fetch-site': 'same-origin' })).status).to.equal(303);
    expect((await h.redeem(await h.link(email(h.ann)), { origin: 'https://inbox.example.test' })).status, 'the publicUrl origin').to.equal(303);
  });

  it('builds links on the configured publicUrl unless told otherwise', async () => {
    expect((await h.web.signInUrl('Ann@Example.com')).url).to.match(/^https:\/\/inbox\.example\.test\/inbox\/login\?token=/);
    expect((await h.web.signInUrl('ann@example.com')).expiresAt.toISOString()).to.equal('2026-03-02T09:15:00.000Z');
  });

  it('refuses a forged, malformed or missing link, and sets no cookie', async () => {
    const good = tokenOf(await h.link(email(h.ann)));
    const claim = Buffer.from(good.split('.')[0]!, 'base64url').toString().replace(email(h.ann), email(h.bob));
    const forged = `${Buffer.from(claim).toString('base64url')}.${good.split('.')[1]}`;
    const oldFormat = signToken(KEY, 'link', claims(email(h.ann), new Date(NOW.getTime() + 60_000))).replace(
      /^[^.]+/,
      Buffer.from(`${email(h.ann)}|${NOW.getTime() / 1000 + 60}`).toString('base64url'),
    );
    for (const token of [forged, oldFormat, '', 'garbage']) {
      const res = await fetch(`${h.base}/inbox/login?token=${encodeURIComponent(token)}`, { redirect: 'manual' });
      expect(res.status, token).to.equal(401);
      expect(res.headers.get('set-cookie')).to.equal(null);
      expect(await res.text()).to.include('not valid');
      expect((await h.post('/inbox/login', { token })).status).to.equal(401);
    }
    expect((await fetch(`${h.base}/inbox/login`)).status).to.equal(401);
  });

  it('answers 401 to the page, the list and the event stream without a good session', async () => {
    const forgedSession = `ah_inbox_session=${signToken('some-other-key-of-sufficient-length', 'session', claims(email(h.ann), new Date(NOW.getTime() + 3600_000)))}`;
    for (const cookie of [undefined, forgedSession, 'ah_inbox_session=garbage']) {
      expect((await fetch(`${h.base}/inbox`, { headers: cookie ? { cookie } : {} })).status).to.equal(401);
      expect((await h.approvals(cookie)).status).to.equal(401);
      const tap = await tapEvents(h.base, cookie);
      expect(tap.response.statusCode).to.equal(401);
      tap.close();
    }
  });

  it('signs out: ends that session (and its open stream) and clears the cookie, leaving the person’s other sessions', async () => {
    const phone = await h.signIn(email(h.ann));
    const laptop = await h.signIn(email(h.ann));
    const tap = await tapEvents(h.base, phone);
    const res = await h.post('/inbox/logout', {}, { origin: h.base, cookie: phone });
    expect(res.status).to.equal(200);
    expect(res.headers.get('set-cookie')).to.match(/^ah_inbox_session=; Path=\/inbox; Max-Age=0; HttpOnly; SameSite=Lax; Secure$/);
    expect(await res.text()).to.include('You are signed out');
    await tap.ended;
    expect((await h.approvals(phone)).status).to.equal(401);
    expect((await h.approvals(laptop)).status).to.equal(200);
  });

  it('refuses a sign-out posted from another site', async () => {
    const cookie = await h.signIn(email(h.ann));
    const res = await h.post('/inbox/logout', {}, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', cookie });
    expect(res.status).to.equal(403);
    expect(res.headers.get('set-cookie')).to.equal(null);
    expect((await h.approvals(cookie)).status).to.equal(200);
  });

  it("revokes every session of one person, and links made for them, and no one else's", async () => {
    const annPhone = await h.signIn(email(h.ann));
    const annLaptop = await h.signIn(email(h.ann));
    const bob = await h.signIn(email(h.bob));
    const unusedLink = await h.link(email(h.ann));
    const annTap = await tapEvents(h.base, annLaptop);
    const bobTap = await tapEvents(h.base, bob);

    await h.web.revokeSessions(email(h.ann));
    await annTap.ended;
    expect((await h.approvals(annPhone)).status).to.equal(401);
    expect((await h.approvals(annLaptop)).status).to.equal(401);
    const refused = await h.redeem(unusedLink);
    expect(refused.status).to.equal(410);
    expect(await refused.text()).to.include('no longer valid');
    expect((await h.approvals(bob)).status).to.equal(200);
    expect(h.web.openPages(email(h.bob))).to.equal(1);
    bobTap.close();
    // A new link works again.
    expect((await h.approvals(await h.signIn(email(h.ann)))).status).to.equal(200);
  });

  it('ends a session after sessionTtlMinutes (12 hours by default)', async () => {
    const cookie = await h.signIn(email(h.ann));
    h.sandbox.admin.advanceClock(12 * 3600 - 1);
    expect((await h.approvals(cookie)).status).to.equal(200);
    h.sandbox.admin.advanceClock(1);
    expect((await h.approvals(cookie)).status).to.equal(401);
    expect((await fetch(`${h.base}/inbox`, { headers: { cookie } })).status).to.equal(401);
  });

  it("lists only the signed-in person's approvals, with title, requester, amount, line items and the View link", async () => {
    const annReport = submitFor(h.ann, 'Berlin customer visit');
    const bobReport = submitFor(h.bob, 'Team offsite Lisbon');
    await h.cycle();
    const ann = await h.approvals(await h.signIn(email(h.ann)));
    const bob = await h.approvals(await h.signIn(email(h.bob)));
    expect(ann.body.email).to.equal(email(h.ann));
    expect(ann.body.approvals.map((a) => a.title)).to.deep.equal(['Berlin customer visit']);
    expect(bob.body.approvals.map((a) => a.title)).to.deep.equal(['Team offsite Lisbon']);
    const item = ann.body.approvals[0]!;
    expect(item.key).to.equal(`acme:expense-report:${annReport.ID}`);
    expect(item.requester).to.equal(annReport.OwnerName);
    expect(item.amount).to.deep.equal({ value: annReport.Total.toFixed(2), currency: annReport.CurrencyCode });
    expect(item.submittedAt).to.equal(NOW.toISOString());
    expect(item.lineItems).to.have.length(3);
    expect(item.links).to.deep.equal([
      {
        label: 'View Expense Report',
        url: `https://www.concursolutions.com/goto/expense-report/${annReport.ID}?companyUUID=${h.sandbox.companyId}&context=MANAGER`,
      },
    ]);
    expect(bob.body.approvals[0]!.key).to.equal(`acme:expense-report:${bobReport.ID}`);
  });

  it("pushes a new approval to its approver's open pages only, and counts it delivered", async () => {
    const annTap = await tapEvents(h.base, await h.signIn(email(h.ann)));
    const bobTap = await tapEvents(h.base, await h.signIn(email(h.bob)));
    expect(h.web.openPages(email(h.ann))).to.equal(1);
    const annReport = submitFor(h.ann, 'Berlin customer visit');
    const bobReport = submitFor(h.bob, 'Team offsite Lisbon');
    const { delivery } = await h.cycle();
    expect(delivery.delivered).to.equal(2);
    const pushed = await annTap.next('approval');
    await bobTap.next('approval');
    expect(pushed).to.include({ key: `acme:expense-report:${annReport.ID}`, title: 'Berlin customer visit', revision: 1 });
    expect((pushed.links as InboxItem['links'])[0]!.label).to.equal('View Expense Report');
    await new Promise((r) => setTimeout(r, 200));
    expect(annTap.events.map((e) => e.data.key)).to.deep.equal([`acme:expense-report:${annReport.ID}`]);
    expect(bobTap.events.map((e) => e.data.key)).to.deep.equal([`acme:expense-report:${bobReport.ID}`]);
    annTap.close();
    bobTap.close();
  });

  it('pushes "closed" when an approval leaves the queue', async () => {
    const report = submitFor(h.ann, 'Berlin customer visit');
    await h.cycle();
    const tap = await tapEvents(h.base, await h.signIn(email(h.ann)));
    h.sandbox.admin.advanceClock(60);
    h.sandbox.admin.approve(report.ID);
    await h.cycle();
    expect(await tap.next('closed')).to.include({ key: `acme:expense-report:${report.ID}`, title: 'Berlin customer visit', outcome: 'approved' });
    tap.close();
  });

  it('pushes "reminder" for a reminder, and for each approval of a digest, to the approver\'s open pages', async () => {
    const report = submitFor(h.ann, 'Berlin customer visit');
    await h.cycle();
    const key = `acme:expense-report:${report.ID}`;
    const tap = await tapEvents(h.base, await h.signIn(email(h.ann)));
    const shown = {
      approvalKey: key,
      kind: 'expense-report',
      revision: 1,
      title: 'Berlin customer visit',
      requester: {},
      fields: [],
      lineItems: [],
      flags: [],
      actions: [],
    };
    const recipient = { sourceUserId: h.ann.loginId, email: email(h.ann) };

    await h.web.deliver({ idempotencyKey: `${key}#g.1:x:web:remind-1`, action: 'remind', recipient, card: shown, previous: { ref: 'web:x' } });
    await h.web.deliver({
      idempotencyKey: 'digest:x:web:2026-03-03',
      action: 'digest',
      recipient,
      card: { ...shown, approvalKey: 'digest:x', title: '1 approval is waiting on you' },
      digest: [shown],
    });

    await tap.next('reminder', (d) => d.key === key);
    await new Promise((r) => setTimeout(r, 200));
    expect(tap.events.map((e) => [e.type, e.data])).to.deep.equal([
      ['reminder', { key, revision: 1, title: 'Berlin customer visit' }],
      ['reminder', { key, revision: 1, title: 'Berlin customer visit' }],
    ]);
    tap.close();
  });

  it('delivers with nobody signed in: the page reads the queue when it opens', async () => {
    submitFor(h.ann, 'Berlin customer visit');
    const { delivery } = await h.cycle();
    expect(delivery).to.include({ delivered: 1, retried: 0, dead: 0 });
    expect(h.web.openPages(email(h.ann))).to.equal(0);
    expect((await h.approvals(await h.signIn(email(h.ann)))).body.approvals).to.have.length(1);
  });

  it('serves the page under a strict Content-Security-Policy, with no inline script and no data in the HTML', async () => {
    submitFor(h.ann, '<img src=x onerror=alert(1)>');
    await h.cycle();
    const res = await fetch(`${h.base}/inbox`, { headers: { cookie: await h.signIn(email(h.ann)) } });
    const html = await res.text();
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).to.include("default-src 'none'").and.include("script-src 'self'").and.include("frame-ancestors 'none'");
    expect(csp).not.to.include('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(res.headers.get('cache-control')).to.equal('no-store');
    expect(html).not.to.match(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.to.include('onerror');
    expect(html).not.to.include(email(h.ann));
    const js = await fetch(`${h.base}/inbox/app.js`);
    expect(js.headers.get('content-type')).to.match(/^text\/javascript/);
    expect(await js.text()).not.to.include('innerHTML');
  });

  it('ends open event streams when the host stops', async () => {
    const tap = await tapEvents(h.base, await h.signIn(email(h.ann)));
    const started = Date.now();
    await h.host.stop();
    await tap.ended;
    expect(Date.now() - started).to.be.below(5000);
  });
});

describe('web inbox sessions across a restart (real SQLite queue)', function () {
  this.timeout(30_000);

  it('keeps a used link used, a signed-out session out and a revocation in force after the host restarts', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ah-web-restart-')), 'queue.db');
    const sandbox = await startConcurSandbox({ ...SMALL_COMPANY, clock: NOW });
    const queue = { adapter: 'sqlite', config: { path } };
    try {
      let h = await inboxHost({ queue, sandbox });
      const ann = h.ann.email.toLowerCase();
      const bob = h.bob.email.toLowerCase();
      const used = await h.link(ann);
      expect((await h.redeem(used)).status).to.equal(303);
      const signedOut = await h.signIn(bob);
      expect((await h.post('/inbox/logout', {}, { origin: h.base, cookie: signedOut })).status).to.equal(200);
      const kept = await h.signIn(bob);
      const revoked = await h.signIn(ann);
      await h.web.revokeSessions(ann);
      await h.close();

      h = await inboxHost({ queue, sandbox });
      try {
        expect((await h.redeem(used)).status).to.equal(410);
        expect((await h.approvals(signedOut)).status).to.equal(401);
        expect((await h.approvals(revoked)).status).to.equal(401);
        expect((await h.approvals(kept)).status).to.equal(200);
      } finally {
        await h.close();
      }
    } finally {
      await sandbox.close();
    }
  });
});

describe('web inbox delivery feed (real SQLite queue)', function () {
  this.timeout(30_000);

  it('pushes every delivery another host made, across pages of the feed, and each only once', async () => {
    const queue = new SqliteApprovalQueue(join(mkdtempSync(join(tmpdir(), 'ah-web-feed-')), 'queue.db'));
    await queue.init();
    try {
      const count = 1_234; // more than two pages of the feed
      await queue.commit(batch(Array.from({ length: count }, (_, i) => approval(`F${i}`))), commitContext({ channels: ['web'] }));
      const claimed = await queue.claimOutbox(count, NOW, 60_000);
      expect(claimed).to.have.length(count);
      // Another host settles them a millisecond apart, as one worker does.
      for (const [i, entry] of claimed.entries())
        await queue.settleOutbox(entry.id, { state: 'delivered', receipt: { ref: `r${i}` } }, new Date(NOW.getTime() + i));

      const settings = {
        instanceId: 'web',
        signingKey: KEY,
        linkTtlMs: 60_000,
        linkRequestIntervalMs: 60_000,
        sessionTtlMs: 60_000,
        publicUrl: 'https://inbox.example.test',
      };
      const feed = { shared: true, deliveredSince: (channel: string, after: Date, limit: number) => queue.deliveredSince(channel, after, limit) };
      const clock = new ManualClock(NOW);
      const web = new WebInboxNotifier(settings, clock, createLogger({ level: 'silent' }), feed, new InboxSessions(settings, queue, clock));
      const events: string[] = [];
      const detach = web.attach('grace@acme.test', { send: (e) => events.push(e.type === 'approval' ? e.item.key : e.key), end: () => undefined });
      await web.readFeed();
      await web.readFeed();
      detach();

      expect(events).to.have.length(count);
      expect(new Set(events).size).to.equal(count);
    } finally {
      await queue.close();
    }
  });
});

describe('web inbox plugin configuration', function () {
  this.timeout(30_000);

  it('refuses to start with a signing key shorter than 32 characters', () => {
    const raw = {
      queue: { adapter: 'memory' },
      notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_TEST_WEB_KEY' } } }],
    };
    // Refused by validation already (config validate says so too), so nothing starts.
    expect(() => loadDeployment(undefined, { raw, env: { AH_TEST_WEB_KEY: 'short-key' } })).to.throw(
      /^notifiers\[0\]\.config\.signingKey: the secret must be at least 32 characters long/,
    );
  });

  it('refuses a literal signing key and a publicUrl with a path, naming the setting', () => {
    const raw = {
      queue: { adapter: 'memory' },
      notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: KEY, publicUrl: 'https://inbox.example.test/approvals' } }],
    };
    expect(() => loadDeployment(undefined, { raw, env: {} }))
      .to.throw()
      .that.has.property('problems')
      .that.satisfies(
        (p: string[]) =>
          p.some((l) => l.startsWith('notifiers[0].config.signingKey: must be a secret reference')) &&
          p.some((l) => l.startsWith('notifiers[0].config.publicUrl:')),
      );
  });
});

describe('approvals-hub inbox link (CLI)', function () {
  this.timeout(60_000);
  const cli = fileURLToPath(new URL('../../core/host/cli.js', import.meta.url));

  function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((done, fail) => {
      const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', fail);
      child.on('close', (code) => done({ code, stdout, stderr }));
    });
  }

  function deploymentFile(notifiers: unknown[]): string {
    const dir = mkdtempSync(join(tmpdir(), 'ah-web-cli-'));
    const file = join(dir, 'approvals.config.json');
    writeFileSync(file, JSON.stringify({ queue: { adapter: 'memory' }, sources: [], notifiers }));
    return file;
  }

  it('prints a sign-in link for that person on the configured publicUrl', async () => {
    const file = deploymentFile([{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_TEST_WEB_KEY' }, publicUrl: 'https://inbox.example.test' } }]);
    const before = Date.now();
    const r = await run(['inbox', 'link', 'Ann.Approver@Example.com', '--config', file], { AH_TEST_WEB_KEY: KEY });
    expect(r.stderr).to.equal('');
    expect(r.code).to.equal(0);
    const url = new URL(r.stdout.trim());
    expect(`${url.origin}${url.pathname}`).to.equal('https://inbox.example.test/inbox/login');
    const verified = verifyToken(KEY, 'link', url.searchParams.get('token')!, new Date());
    expect(verified).to.include({ ok: true, email: 'ann.approver@example.com' });
    const ttl = (verified as { expiresAt: Date }).expiresAt.getTime() - before;
    expect(ttl).to.be.within(minutes(15) - 2000, minutes(15) + 60_000);
  });

  it('inbox revoke ends every session of that person, on a host that shares the queue, and no one else’s', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ah-web-revoke-')), 'queue.db');
    const h = await inboxHost({ queue: { adapter: 'sqlite', config: { path } } });
    try {
      const ann = h.ann.email.toLowerCase();
      const annCookie = await h.signIn(ann);
      const bobCookie = await h.signIn(h.bob.email.toLowerCase());
      const dir = mkdtempSync(join(tmpdir(), 'ah-web-cli-'));
      const file = join(dir, 'approvals.config.json');
      writeFileSync(
        file,
        JSON.stringify({
          queue: { adapter: 'sqlite', config: { path } },
          sources: [],
          notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_TEST_WEB_KEY' } } }],
        }),
      );

      const r = await run(['inbox', 'revoke', h.ann.email, '--config', file], { AH_TEST_WEB_KEY: KEY });
      expect(r.stderr).to.equal('');
      expect(r.code).to.equal(0);
      expect(r.stdout).to.include(`revoked every web inbox session of ${ann}`);
      expect((await h.approvals(annCookie)).status).to.equal(401);
      expect((await h.approvals(bobCookie)).status).to.equal(200);
    } finally {
      await h.close();
    }
  });

  it('inbox revoke refuses something that is not an e-mail address', async () => {
    const r = await run(['inbox', 'revoke', 'ann', '--config', deploymentFile([])], {});
    expect(r.code).not.to.equal(0);
    expect(r.stderr).to.include('must be an e-mail address');
  });

  it('says so when the deployment has no web inbox', async () => {
    const r = await run(['inbox', 'link', 'ann@example.com', '--config', deploymentFile([{ id: 'console', plugin: 'console' }])], {});
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('the deployment has no web inbox');
  });

  it('refuses something that is not an e-mail address', async () => {
    const r = await run(['inbox', 'link', 'ann', '--config', deploymentFile([])], {});
    expect(r.code).not.to.equal(0);
    expect(r.stderr).to.include('must be an e-mail address');
  });
});

describe('web inbox: a Concur expense delegate sees the approvals they may act on, saying for whom', function () {
  this.timeout(30_000);
  let h: InboxHost | undefined;
  afterEach(async () => h?.close());

  it("lists the approver's report for the delegate with “As delegate of <approver>”, and for the approver without", async () => {
    const sandbox = await startConcurSandbox({ ...SMALL_COMPANY, clock: NOW });
    const [ann, bob] = sandbox.admin.users().filter((u) => u.isApprover);
    sandbox.admin.setDelegates(ann!.loginId, [{ delegate: bob!.loginId, canApprove: true, canReceiveApprovalEmail: true }]);
    h = await inboxHost({ sandbox, config: { delegates: { notify: true } } });
    const report = sandbox.admin.submit({ approver: ann!.loginId, name: 'Trade fair Hanover', entries: 1 });
    await h.cycle();

    const forBob = (await h.approvals(await h.signIn(bob!.email.toLowerCase()))).body.approvals.find((a) => a.title === report.Name);
    const forAnn = (await h.approvals(await h.signIn(ann!.email.toLowerCase()))).body.approvals.find((a) => a.title === report.Name);
    expect(forBob?.onBehalfOf).to.equal(`As delegate of ${ann!.displayName}`);
    expect(forAnn?.onBehalfOf).to.equal(null);
    await sandbox.close();
  });
});
