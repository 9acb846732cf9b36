import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleNotifier } from '../../adapters/chat-console/console-notifier.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { createLogger } from '../../core/host/logging.js';
import { PermanentDeliveryError, type Notifier, type OutboundMessage } from '../../core/index.js';
import { startConcurSandbox, type ConcurSandbox, type SandboxUserInfo } from '../../plugins/concur/sandbox/index.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';

const KEY = 'test-web-inbox-signing-key-0123456789';
const PUBLIC_URL = 'https://inbox.example.test';
const FORM = '<form class="request" method="post" action="/inbox/link-request">';

/** What the console channel printed: one entry per sign-in link, with its recipient and URL. */
interface SentLink {
  readonly email: string;
  readonly url: string;
}

interface LinkRequestHost {
  readonly sandbox: ConcurSandbox;
  readonly host: Host;
  readonly base: string;
  readonly ann: string;
  readonly bob: string;
  /** Sign-in links the console channel printed, oldest first. */
  readonly sent: SentLink[];
  /** Messages the channel that refuses links was asked to deliver. */
  readonly refused: OutboundMessage[];
  readonly logs: string[];
  /** POSTs the form as a browser on this host's own page does (same origin), unless `headers` say otherwise. */
  request(email: string, headers?: Record<string, string>): Promise<Response>;
  /** Resolves once the console printed a link for `email`, `count` links in all to it. */
  linkFor(email: string, count?: number): Promise<SentLink>;
  close(): Promise<void>;
}

/**
 * A real host on loopback: the Concur plugin against its sandbox (frozen clock, the host's too),
 * an SQLite queue, the web inbox, a console channel that prints what it is sent, and a channel
 * that refuses `link` for good (as a notifier written before the action would).
 */
async function linkRequestHost(): Promise<LinkRequestHost> {
  const sandbox = await startConcurSandbox({ ...SMALL_COMPANY, clock: '2026-03-02T09:00:00.000Z' });
  const concur = sandboxSource(sandbox, { pollIntervalSeconds: 3600, config: { timeoutSeconds: 2 } });
  const raw = {
    queue: { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-link-request-')), 'queue.db') } },
    sources: [concur.source],
    notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_TEST_WEB_KEY' }, publicUrl: PUBLIC_URL } }],
    http: { host: '127.0.0.1', port: 0 },
  };
  const sent: SentLink[] = [];
  const waiters = new Set<() => void>();
  const printer = new ConsoleNotifier('console', (text) => {
    const [head = '', ...lines] = text.split('\n');
    const to = /^\[console\] SIGN-IN LINK for (\S+):/.exec(head)?.[1];
    const url = lines.map((l) => /^ {2}\[Open your approvals\] (\S+)$/.exec(l)?.[1]).find(Boolean);
    if (to && url) sent.push({ email: to, url });
    for (const wake of waiters) wake();
  });
  const refused: OutboundMessage[] = [];
  const legacy: Notifier = {
    id: 'legacy',
    async deliver(message) {
      refused.push(message);
      if (message.action === 'link') throw new PermanentDeliveryError('legacy: action "link" is not one it delivers');
      return { ref: `legacy-${refused.length}` };
    },
  };
  const logs: string[] = [];
  const host = await Host.create(loadDeployment(undefined, { raw, env: { ...concur.env, AH_TEST_WEB_KEY: KEY } }), {
    clock: { now: () => new Date(sandbox.admin.now()) },
    logger: createLogger({ level: 'debug', destination: { write: (line: string) => void logs.push(line) } as never }),
    // The refusing channel first: the console still gets the link after it is skipped.
    notifiers: [legacy, printer],
  });
  await host.start();
  const [ann, bob] = sandbox.admin.users().filter((u: SandboxUserInfo) => u.isApprover);
  // One approval waits on each: both are known approvers.
  for (const [u, name] of [
    [ann!, 'Berlin customer visit'],
    [bob!, 'Team offsite Lisbon'],
  ] as const) {
    sandbox.admin.submit({ approver: u.loginId, name, entries: 1 });
  }
  const report = await host.runOnce();
  if (report.failures.length) throw new Error(report.failures.map((f) => f.error).join('; '));
  const base = host.url!;
  return {
    sandbox,
    host,
    base,
    ann: ann!.email.toLowerCase(),
    bob: bob!.email.toLowerCase(),
    sent,
    refused,
    logs,
    request(email, headers = { origin: base, 'sec-fetch-site': 'same-origin' }) {
      return fetch(`${base}/inbox/link-request`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ email }).toString(),
      });
    },
    linkFor(email, count = 1) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const mine = sent.filter((s) => s.email === email);
          if (mine.length < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(mine[count - 1]!);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no sign-in link number ${count} for ${email} within 10 s; sent: ${JSON.stringify(sent.map((s) => s.email))}`));
        }, 10_000);
        waiters.add(check);
        check();
      });
    },
    async close() {
      await host.stop().catch(() => undefined);
      await sandbox.close();
    },
  };
}

/** The body with the address it names replaced, so two answers can be compared for everything else. */
const withoutAddress = (body: string, email: string) => body.replaceAll(email, '<address>');

describe('web inbox: "Send me a new link" (real host, Concur sandbox, SQLite queue, console channel)', function () {
  this.timeout(30_000);
  let h: LinkRequestHost;

  beforeEach(async () => {
    h = await linkRequestHost();
  });
  afterEach(async () => h?.close());

  it('offers the form on the signed-out page, on a refused link and after signing out', async () => {
    const signedOut = await fetch(`${h.base}/inbox`);
    expect(signedOut.status).to.equal(401);
    const refusedLink = await fetch(`${h.base}/inbox/login?token=garbage`);
    expect(refusedLink.status).to.equal(401);
    for (const res of [signedOut, refusedLink]) {
      const html = await res.text();
      expect(html).to.include(FORM);
      expect(html).to.include('<label for="request-email">Your work e-mail</label>');
      expect(html).to.include('<input id="request-email" type="email" name="email" autocomplete="email" required>');
      expect(html).to.include('<button type="submit" class="button">Send me a new link</button>');
      expect(html).not.to.include('Ask whoever sent you the link');
      expect(html.match(/<h1>/g)).to.have.length(1);
      expect(html).to.include('<main class="message">');
    }
    const loggedOut = await fetch(`${h.base}/inbox/logout`, { method: 'POST', headers: { origin: h.base } });
    expect(await loggedOut.text())
      .to.include('You are signed out')
      .and.include(FORM);
  });

  it('sends a known approver a link through their other channels, after answering; the link signs in once', async () => {
    const res = await h.request(h.ann.toUpperCase());
    expect(res.status).to.equal(200);
    const html = await res.text();
    expect(html).to.include(`If ${h.ann} has approvals waiting here, a new sign-in link is on its way to you through your chat or e-mail.`);
    expect(html).to.include('It works once, for 15 minutes.');

    const { url } = await h.linkFor(h.ann);
    // On the configured publicUrl, whatever Host the request named.
    expect(url).to.match(/^https:\/\/inbox\.example\.test\/inbox\/login\?token=[A-Za-z0-9_.-]+$/);
    // The channel that does not deliver links was asked, refused, and was skipped.
    expect(h.refused.filter((m) => m.action === 'link').map((m) => m.recipient.email)).to.deep.equal([h.ann]);
    expect(h.logs.some((l) => l.includes('channel does not deliver this link; skipped'))).to.equal(true);
    // The link itself is never logged: it signs in.
    const token = new URL(url).searchParams.get('token')!;
    expect(h.logs.filter((l) => l.includes(token))).to.deep.equal([]);

    const redeem = () =>
      fetch(`${h.base}/inbox/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: h.base },
        body: new URLSearchParams({ token }).toString(),
      });
    const first = await redeem();
    expect(first.status).to.equal(303);
    expect(first.headers.get('set-cookie')).to.match(/^ah_inbox_session=/);
    expect((await redeem()).status).to.equal(410);
  });

  it('answers an unknown address exactly as a known one, and sends it nothing', async () => {
    const unknown = 'nobody.here@example.test';
    const refused = await h.request(unknown);
    const accepted = await h.request(h.ann);
    expect(refused.status).to.equal(accepted.status);
    expect(withoutAddress(await refused.text(), unknown)).to.equal(withoutAddress(await accepted.text(), h.ann));
    // Requests are worked through in order: once Ann's link is out, the unknown address was dealt with.
    await h.linkFor(h.ann);
    expect(h.sent.map((s) => s.email)).to.deep.equal([h.ann]);
    expect(h.refused.filter((m) => m.action === 'link').map((m) => m.recipient.email)).to.deep.equal([h.ann]);
    expect(h.logs.filter((l) => l.includes(unknown))).to.deep.equal([]);
  });

  it('sends one address at most one link per linkRequestIntervalMinutes (5), with the same answer', async () => {
    const first = await h.request(h.ann);
    const again = await h.request(h.ann);
    expect(again.status).to.equal(first.status);
    expect(await again.text()).to.equal(await first.text());
    await h.request(h.bob);
    await h.linkFor(h.bob);
    expect(h.sent.filter((s) => s.email === h.ann)).to.have.length(1);

    h.sandbox.admin.advanceClock(5 * 60);
    await h.request(h.ann);
    await h.linkFor(h.ann, 2);
  });

  it('refuses a request posted from another site, and sends nothing', async () => {
    const crossSite: Record<string, string>[] = [
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: h.base },
      {},
    ];
    for (const headers of crossSite) {
      const res = await h.request(h.ann, headers);
      expect(res.status, JSON.stringify(headers)).to.equal(403);
    }
    await h.request(h.bob);
    await h.linkFor(h.bob);
    expect(h.sent.map((s) => s.email)).to.deep.equal([h.bob]);
  });

  it('answers a malformed address with 400, naming the problem, and the form again with what was typed, escaped', async () => {
    const bad = await h.request('<script>alert(1)</script>');
    expect(bad.status).to.equal(400);
    const html = await bad.text();
    expect(html).to.include('is not an e-mail address');
    expect(html).to.include(FORM);
    expect(html).to.include('value="&lt;script&gt;alert(1)&lt;/script&gt;"');
    expect(html).not.to.include('<script>');
    const empty = await h.request('');
    expect(empty.status).to.equal(400);
    expect(await empty.text()).to.include('Enter your work e-mail address.');
  });

  it('escapes the address it repeats', async () => {
    const res = await h.request('<b>x</b>@example.test');
    expect(res.status).to.equal(200);
    const html = await res.text();
    expect(html).to.include('If &lt;b&gt;x&lt;/b&gt;@example.test has approvals');
    expect(html).not.to.include('<b>');
  });

  it('answers 429 with a page once one client IP asked 10 times in 10 minutes; other clients still get through', async () => {
    const from = (ip: string) => ({ origin: h.base, 'sec-fetch-site': 'same-origin', 'x-forwarded-for': ip });
    for (let i = 0; i < 10; i++) expect((await h.request(`someone${i}@example.test`, from('203.0.113.7'))).status).to.equal(200);
    const limited = await h.request(h.ann, from('203.0.113.7'));
    expect(limited.status).to.equal(429);
    expect(limited.headers.get('content-type')).to.match(/^text\/html/);
    expect(limited.headers.get('retry-after')).to.match(/^\d+$/);
    expect(await limited.text()).to.include('<h1>Too many requests</h1>');
    expect((await h.request(h.bob, from('203.0.113.8'))).status).to.equal(200);
    await h.linkFor(h.bob);
    expect(h.sent.map((s) => s.email)).to.deep.equal([h.bob]);
  });
});
