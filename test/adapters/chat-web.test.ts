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
import { startConcurSandbox, type ConcurSandbox, type SandboxUserInfo } from '../../plugins/concur/sandbox/index.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';
import { SqliteApprovalQueue } from '../../adapters/queue-sqlite/sqlite-approval-queue.js';
import { ManualClock } from '../../core/testing/index.js';
import { approval, batch, commitContext } from '../support/queue-fixtures.js';

const KEY = 'test-web-inbox-signing-key-0123456789';
const NOW = new Date('2026-03-02T09:00:00.000Z');
const minutes = (n: number) => n * 60_000;

describe('web inbox: signed links', () => {
  const expiry = new Date(NOW.getTime() + minutes(60));

  it('verifies a link it signed, for that e-mail, until it expires', () => {
    const token = signToken(KEY, 'link', 'Ann.Approver@Example.com ', expiry);
    const verified = verifyToken(KEY, 'link', token, new Date(expiry.getTime() - 1000));
    expect(verified).to.deep.equal({ ok: true, email: 'ann.approver@example.com', expiresAt: expiry });
  });

  it('refuses a link from the second it expires', () => {
    const token = signToken(KEY, 'link', 'ann@example.com', expiry);
    expect(verifyToken(KEY, 'link', token, expiry)).to.deep.equal({ ok: false, reason: 'expired' });
  });

  it('refuses a link whose e-mail or expiry was changed', () => {
    const token = signToken(KEY, 'link', 'ann@example.com', expiry);
    const mac = token.split('.')[1]!;
    const otherPerson = `${Buffer.from(`bob@example.com|${expiry.getTime() / 1000}`).toString('base64url')}.${mac}`;
    const later = `${Buffer.from(`ann@example.com|${expiry.getTime() / 1000 + 86_400}`).toString('base64url')}.${mac}`;
    expect(verifyToken(KEY, 'link', otherPerson, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
    expect(verifyToken(KEY, 'link', later, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
  });

  it('refuses a link signed with another key', () => {
    const token = signToken('another-key-of-the-same-length-0123', 'link', 'ann@example.com', expiry);
    expect(verifyToken(KEY, 'link', token, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
  });

  it('never takes a session cookie for a link, nor a link for a session cookie', () => {
    const session = signToken(KEY, 'session', 'ann@example.com', expiry);
    const link = signToken(KEY, 'link', 'ann@example.com', expiry);
    expect(verifyToken(KEY, 'link', session, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
    expect(verifyToken(KEY, 'session', link, NOW)).to.deep.equal({ ok: false, reason: 'forged' });
  });

  it('refuses malformed tokens without throwing', () => {
    const token = signToken(KEY, 'link', 'ann@example.com', expiry);
    for (const bad of ['', '.', 'abc', 'a.b.c', `${token}x`, `${token.split('.')[0]}.`, 'x'.repeat(5000), `${token}.${token}`]) {
      expect(verifyToken(KEY, 'link', bad, NOW).ok, bad.slice(0, 40)).to.equal(false);
    }
  });

  it('accepts only e-mail addresses, in one canonical form', () => {
    expect(normaliseEmail('  Ann@Example.COM ')).to.equal('ann@example.com');
    for (const bad of ['ann', 'ann@', '@example.com', 'ann example@example.com', 'ann|x@example.com', 'ann@exa\u0000mple.com']) {
      expect(normaliseEmail(bad), bad).to.equal(undefined);
    }
    expect(() => signToken(KEY, 'link', 'not an e-mail', expiry)).to.throw(/not an e-mail address/);
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
  /** Signs in through a fresh link; returns the `Cookie` header value for the session. */
  signIn(email: string): Promise<string>;
  approvals(cookie: string | undefined): Promise<{ status: number; body: { email: string; approvals: InboxItem[] } }>;
  close(): Promise<void>;
}

/**
 * A real host on loopback: the Concur plugin against its sandbox (frozen clock, which is also the
 * host's), a memory queue, and the web inbox plugin as the only channel, its routes served.
 */
async function inboxHost(): Promise<InboxHost> {
  const sandbox = await startConcurSandbox({ ...SMALL_COMPANY, clock: NOW });
  const concur = sandboxSource(sandbox, {
    // Cycles run when the test says (runOnce); the loop's own timer would race them.
    pollIntervalSeconds: 3600,
    config: { timeoutSeconds: 2 },
  });
  const env = { ...concur.env, AH_TEST_WEB_KEY: KEY };
  const raw = {
    queue: { adapter: 'memory' },
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
    async signIn(email) {
      const res = await fetch(web.signInUrl(email, { baseUrl: base }).url, { redirect: 'manual' });
      expect(res.status).to.equal(200);
      const cookie = res.headers.get('set-cookie');
      expect(cookie).to.be.a('string');
      return cookie!.split(';')[0]!;
    },
    async approvals(cookie) {
      const res = await fetch(`${base}/inbox/api/approvals`, { headers: cookie ? { cookie } : {} });
      return { status: res.status, body: (await res.json()) as { email: string; approvals: InboxItem[] } };
    },
    async close() {
      await host.stop().catch(() => undefined);
      await sandbox.close();
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

  it('signs in through a link with an HttpOnly, SameSite=Strict session cookie scoped to /inbox, then opens the inbox', async () => {
    const link = h.web.signInUrl(email(h.ann), { baseUrl: h.base });
    expect(link.url).to.match(new RegExp(`^${h.base}/inbox/login\\?token=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$`));
    const res = await fetch(link.url, { redirect: 'manual' });
    expect(res.status).to.equal(200);
    expect(await res.text()).to.include('<meta http-equiv="refresh" content="0; url=/inbox">');
    const cookie = res.headers.get('set-cookie')!;
    // Secure because publicUrl is https, though this request came over plain http.
    expect(cookie).to.match(/^ah_inbox_session=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; Path=\/inbox; Max-Age=43200; HttpOnly; SameSite=Strict; Secure$/);
    const page = await fetch(`${h.base}/inbox`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(page.status).to.equal(200);
    expect(await page.text()).to.include('<script src="/inbox/app.js" defer></script>');
  });

  it('builds links on the configured publicUrl unless told otherwise', () => {
    expect(h.web.signInUrl('Ann@Example.com').url).to.match(/^https:\/\/inbox\.example\.test\/inbox\/login\?token=/);
    expect(h.web.signInUrl('ann@example.com').expiresAt.toISOString()).to.equal('2026-03-09T09:00:00.000Z');
  });

  it('answers 401 to a forged, expired or missing link, and sets no cookie', async () => {
    const good = new URL(h.web.signInUrl(email(h.ann), { baseUrl: h.base }).url).searchParams.get('token')!;
    const forged = `${Buffer.from(`${email(h.bob)}|${Math.floor(NOW.getTime() / 1000) + 3600}`).toString('base64url')}.${good.split('.')[1]}`;
    const expired = signToken(KEY, 'link', email(h.ann), new Date(NOW.getTime() - 1000));
    for (const [token, title] of [[forged, 'not valid'], [expired, 'has expired'], ['', 'not valid']] as const) {
      const res = await fetch(`${h.base}/inbox/login?token=${encodeURIComponent(token)}`, { redirect: 'manual' });
      expect(res.status, token).to.equal(401);
      expect(res.headers.get('set-cookie')).to.equal(null);
      expect(await res.text()).to.include(title);
    }
    expect((await fetch(`${h.base}/inbox/login`)).status).to.equal(401);
  });

  it('answers 401 to the page, the list and the event stream without a good session', async () => {
    const forgedSession = `ah_inbox_session=${signToken('some-other-key-of-sufficient-length', 'session', email(h.ann), new Date(NOW.getTime() + 3600_000))}`;
    for (const cookie of [undefined, forgedSession, 'ah_inbox_session=garbage']) {
      expect((await fetch(`${h.base}/inbox`, { headers: cookie ? { cookie } : {} })).status).to.equal(401);
      expect((await h.approvals(cookie)).status).to.equal(401);
      const tap = await tapEvents(h.base, cookie);
      expect(tap.response.statusCode).to.equal(401);
      tap.close();
    }
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
      { label: 'View Expense Report', url: `https://www.concursolutions.com/goto/expense-report/${annReport.ID}?companyUUID=${h.sandbox.companyId}&context=MANAGER` },
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
    const shown = { approvalKey: key, kind: 'expense-report', revision: 1, title: 'Berlin customer visit', requester: {}, fields: [], lineItems: [], flags: [], actions: [] };
    const recipient = { sourceUserId: h.ann.loginId, email: email(h.ann) };

    await h.web.deliver({ idempotencyKey: `${key}#g.1:x:web:remind-1`, action: 'remind', recipient, card: shown, previous: { ref: 'web:x' } });
    await h.web.deliver({ idempotencyKey: 'digest:x:web:2026-03-03', action: 'digest', recipient, card: { ...shown, approvalKey: 'digest:x', title: '1 approval is waiting on you' }, digest: [shown] });

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
      for (const [i, entry] of claimed.entries()) await queue.settleOutbox(entry.id, { state: 'delivered', receipt: { ref: `r${i}` } }, new Date(NOW.getTime() + i));

      const settings = { instanceId: 'web', signingKey: KEY, linkTtlMs: 60_000, sessionTtlMs: 60_000, publicUrl: 'https://inbox.example.test' };
      const feed = { shared: true, deliveredSince: (channel: string, after: Date, limit: number) => queue.deliveredSince(channel, after, limit) };
      const web = new WebInboxNotifier(settings, new ManualClock(NOW), createLogger({ level: 'silent' }), feed);
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
    expect(() => loadDeployment(undefined, { raw, env: { AH_TEST_WEB_KEY: 'short-key' } })).to.throw(/^notifiers\[0\]\.config\.signingKey: the secret must be at least 32 characters long/);
  });

  it('refuses a literal signing key and a publicUrl with a path, naming the setting', () => {
    const raw = {
      queue: { adapter: 'memory' },
      notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: KEY, publicUrl: 'https://inbox.example.test/approvals' } }],
    };
    expect(() => loadDeployment(undefined, { raw, env: {} }))
      .to.throw()
      .that.has.property('problems')
      .that.satisfies((p: string[]) => p.some((l) => l.startsWith('notifiers[0].config.signingKey: must be a secret reference')) && p.some((l) => l.startsWith('notifiers[0].config.publicUrl:')));
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
    expect(ttl).to.be.within(minutes(60 * 24 * 7) - 2000, minutes(60 * 24 * 7) + 60_000);
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
