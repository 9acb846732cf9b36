import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { ActionResult } from '../../core/index.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { ManualClock, ScriptedSource } from '../../core/testing/index.js';
import { WebInboxNotifier, type InboxItem } from '../../adapters/chat-web/web-inbox-notifier.js';

const KEY = 'test-web-inbox-act-signing-key-0123456789';
const ANN = { sourceUserId: 'ann', name: 'Ann', email: 'ann@example.test' };
const BOB = { sourceUserId: 'bob', name: 'Bob', email: 'bob@example.test' };

type Json = Record<string, unknown>;

/** The events of one page's stream, read as an EventSource would; `next` waits for one that passes `test`. */
function tapEvents(base: string, cookie: string): Promise<{ next(type: string, test: (d: Json) => boolean): Promise<Json>; close(): void }> {
  return new Promise((resolve, reject) => {
    const request = get(`${base}/inbox/api/events`, { headers: { accept: 'text/event-stream', cookie } }, (response) => {
      const events: { type: string; data: Json }[] = [];
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
          if (type && data) events.push({ type, data: JSON.parse(data) as Json });
        }
        for (const wake of waiters) wake();
      });
      resolve({
        next: (type, test) =>
          new Promise((found, fail) => {
            const check = () => {
              const hit = events.find((e) => e.type === type && test(e.data));
              if (!hit) return;
              waiters.delete(check);
              clearTimeout(timer);
              found(hit.data);
            };
            const timer = setTimeout(() => fail(new Error(`no "${type}" event; got ${JSON.stringify(events)}`)), 5000);
            waiters.add(check);
            check();
          }),
        close: () => request.destroy(),
      });
    });
    request.on('error', reject);
  });
}

/**
 * The web inbox's act API on a real host: a ScriptedSource that acts, an SQLite queue, and the
 * web inbox plugin serving HTTP on loopback. Every click goes through the core's action path.
 */
describe('web inbox act API: Approve, Send back and bulk approve over HTTP (real host, SQLite queue)', function () {
  this.timeout(30_000);
  let clock: ManualClock;
  let source: ScriptedSource;
  let plain: ScriptedSource;
  let host: Host;
  let web: WebInboxNotifier;
  let base: string;
  const sameOrigin = () => ({ origin: base, 'sec-fetch-site': 'same-origin' });

  beforeEach(async () => {
    clock = new ManualClock('2026-03-02T09:00:00.000Z');
    source = new ScriptedSource('src', clock, 100, 'expense-report', ['approve', 'sendBack']);
    plain = new ScriptedSource('plain', clock, 100, 'expense-report');
    const raw = {
      queue: { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-web-act-')), 'queue.db') } },
      notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_TEST_WEB_KEY' }, publicUrl: 'https://inbox.example.test' } }],
      http: { host: '127.0.0.1', port: 0 },
    };
    host = await Host.create(loadDeployment(undefined, { raw, env: { AH_TEST_WEB_KEY: KEY } }), {
      logger: pino({ level: 'silent' }),
      clock,
      sources: [source, plain],
    });
    await host.start();
    await host.runOnce();
    web = host.notifiers.get('web') as WebInboxNotifier;
    base = host.url!;
  });
  afterEach(async () => host?.stop());

  async function submitted(externalIds: string[], approvers = [ANN], into = source): Promise<void> {
    for (const id of externalIds) into.submit(id, { title: `Report ${id}`, approvers });
    clock.advance(60_000);
    const report = await host.runOnce();
    expect(report.failures).to.deep.equal([]);
    await host.drain();
  }

  async function signIn(email: string): Promise<string> {
    const token = new URL((await web.signInUrl(email, { baseUrl: base })).url).searchParams.get('token')!;
    const res = await fetch(`${base}/inbox/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...sameOrigin() },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(res.status).to.equal(303);
    return res.headers.get('set-cookie')!.split(';')[0]!;
  }

  async function list(cookie: string): Promise<InboxItem[]> {
    const res = await fetch(`${base}/inbox/api/approvals`, { headers: { cookie } });
    expect(res.status).to.equal(200);
    return ((await res.json()) as { approvals: InboxItem[] }).approvals;
  }

  const tokenOf = (items: InboxItem[], externalId: string, action: string) =>
    items.find((i) => i.key === `src:expense-report:${externalId}`)!.actions.find((a) => a.action === action)!.token;

  function act(path: string, body: unknown, headers: Record<string, string>): Promise<Response> {
    return fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  }

  it('lists each card with its act buttons and tokens for the signed-in person, and none for a source without actions', async () => {
    await submitted(['r1'], [ANN, BOB]);
    await submitted(['p1'], [ANN], plain);
    const [annItems, bobItems] = [await list(await signIn(ANN.email)), await list(await signIn(BOB.email))];
    const annR1 = annItems.find((i) => i.key === 'src:expense-report:r1')!;
    expect(annR1.actions.map((a) => [a.action, a.label])).to.deep.equal([
      ['approve', 'Approve'],
      ['sendBack', 'Send Back'],
    ]);
    expect(annR1.links.map((l) => l.label)).to.deep.equal(['View Expense Report']);
    expect(annR1.actions.every((a) => a.token.length > 40)).to.equal(true);
    expect(bobItems[0]!.actions.map((a) => a.token)).to.not.deep.equal(annR1.actions.map((a) => a.token));
    expect(annItems.find((i) => i.key === 'plain:expense-report:p1')!.actions).to.deep.equal([]);
  });

  it('pushes a new card to an open page with the recipient’s tokens on it, and they act', async () => {
    const cookie = await signIn(ANN.email);
    const tap = await tapEvents(base, cookie);
    try {
      await submitted(['r1']);
      const item = (await tap.next('approval', (d) => d.key === 'src:expense-report:r1')) as unknown as InboxItem;
      const approve = item.actions.find((a) => a.action === 'approve')!;
      const res = await act('/inbox/api/act', { token: approve.token }, { cookie, ...sameOrigin() });
      expect(((await res.json()) as ActionResult).outcome).to.equal('done');
    } finally {
      tap.close();
    }
  });

  it('refuses an action without a session (401), and one posted cross-site, as a form or as plain text (403), before the source is called', async () => {
    await submitted(['r1']);
    const cookie = await signIn(ANN.email);
    const token = tokenOf(await list(cookie), 'r1', 'approve');

    expect((await act('/inbox/api/act', { token }, sameOrigin())).status).to.equal(401);
    expect((await act('/inbox/api/act-bulk', { tokens: [token] }, sameOrigin())).status).to.equal(401);
    const crossSite = await act('/inbox/api/act', { token }, { cookie, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).to.equal(403);
    expect((await act('/inbox/api/act-bulk', { tokens: [token] }, { cookie, origin: 'https://evil.example' })).status).to.equal(403);
    expect((await act('/inbox/api/act', { token }, { cookie })).status, 'no Origin nor Sec-Fetch-Site').to.equal(403);
    // What a form on another page can send without a preflight: never JSON.
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await fetch(`${base}/inbox/api/act`, {
        method: 'POST',
        headers: { cookie, 'content-type': type, ...sameOrigin() },
        body: type === 'text/plain' ? JSON.stringify({ token }) : new URLSearchParams({ token }).toString(),
      });
      // Multipart has no parser here at all: fastify refuses it before the route (415).
      expect(res.status, type).to.be.oneOf([403, 415]);
    }
    expect(source.calls.act).to.equal(0);
    expect(source.acted).to.deep.equal([]);
  });

  it('refuses a forged token, and another person’s, without acting', async () => {
    await submitted(['r1'], [ANN, BOB]);
    const annCookie = await signIn(ANN.email);
    const bobCookie = await signIn(BOB.email);
    const annToken = tokenOf(await list(annCookie), 'r1', 'approve');
    const [payload, mac] = annToken.split('.') as [string, string];
    const forged = `${Buffer.from(Buffer.from(payload, 'base64url').toString().replace('"approve"', '"sendBack"')).toString('base64url')}.${mac}`;

    const results = [];
    for (const [token, cookie] of [
      [forged, annCookie],
      ['not-a-token', annCookie],
      [annToken, bobCookie],
    ] as const) {
      const res = await act('/inbox/api/act', { token }, { cookie, ...sameOrigin() });
      expect(res.status).to.equal(200);
      results.push(((await res.json()) as ActionResult).outcome);
    }
    expect(results).to.deep.equal(['refused', 'refused', 'not_yours']);
    expect(source.acted).to.deep.equal([]);
    const bad = await act('/inbox/api/act', { token: 42 }, { cookie: annCookie, ...sameOrigin() });
    expect(bad.status).to.equal(400);
  });

  it('approves as the signed-in person: the answer, then the card closes on the open page with who acted where', async () => {
    await submitted(['r1']);
    const cookie = await signIn(ANN.email);
    const token = tokenOf(await list(cookie), 'r1', 'approve');
    const tap = await tapEvents(base, cookie);
    try {
      const res = await act('/inbox/api/act', { token }, { cookie, ...sameOrigin() });
      expect(res.status).to.equal(200);
      expect(await res.json()).to.include({ outcome: 'done', action: 'approve', message: 'Approved.' });
      expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'approve', by: ANN.email, comment: undefined }]);
      const closed = await tap.next('closed', (d) => d.key === 'src:expense-report:r1');
      expect(closed).to.include({ outcome: 'approved', note: 'Approved by ann@example.test in the web inbox at 2026-03-02 09:01 UTC' });
    } finally {
      tap.close();
    }
    const [audit] = await host.queue.listAudit(5);
    expect(audit).to.include({ actor: ANN.email, action: 'action.approve' });
    expect(JSON.parse(audit!.detail!)).to.include({ channel: 'web' });
    // The same button again does nothing more.
    const again = (await (await act('/inbox/api/act', { token }, { cookie, ...sameOrigin() })).json()) as ActionResult;
    expect(again.outcome).to.equal('already_decided');
    expect(source.acted).to.have.length(1);
  });

  it('sends back only with a comment, and the closed card carries it', async () => {
    await submitted(['r1']);
    const cookie = await signIn(ANN.email);
    const token = tokenOf(await list(cookie), 'r1', 'sendBack');
    const tap = await tapEvents(base, cookie);
    try {
      const blank = (await (await act('/inbox/api/act', { token, comment: '   ' }, { cookie, ...sameOrigin() })).json()) as ActionResult;
      expect(blank.outcome).to.equal('refused');
      const res = await act('/inbox/api/act', { token, comment: ' Taxi receipt missing ' }, { cookie, ...sameOrigin() });
      expect(((await res.json()) as ActionResult).outcome).to.equal('done');
      expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'sendBack', by: ANN.email, comment: 'Taxi receipt missing' }]);
      const closed = await tap.next('closed', (d) => d.key === 'src:expense-report:r1');
      expect(closed.outcome).to.equal('sent_back');
      expect(closed.note).to.match(/^Sent back by ann@example.test in the web inbox at .*: “Taxi receipt missing”$/);
    } finally {
      tap.close();
    }
    const tooLong = await act('/inbox/api/act', { token, comment: 'x'.repeat(2001) }, { cookie, ...sameOrigin() });
    expect(tooLong.status).to.equal(400);
  });

  it('answers consent_needed with the link that starts it', async () => {
    await submitted(['r1']);
    source.needsConsent.add(ANN.email);
    const cookie = await signIn(ANN.email);
    const res = await act('/inbox/api/act', { token: tokenOf(await list(cookie), 'r1', 'approve') }, { cookie, ...sameOrigin() });
    expect(await res.json()).to.deep.include({ outcome: 'consent_needed', url: 'https://consent.example.test/connect?user=ann%40example.test' });
    expect(source.acted).to.deep.equal([]);
  });

  it('lists the approver’s connected accounts, and their own Disconnect (same-origin JSON only) makes the next press ask to connect', async () => {
    await submitted(['r1']);
    source.connected.set(ANN.email, '2026-03-01T10:00:00.000Z');
    source.connected.set(BOB.email, '2026-03-01T11:00:00.000Z');
    const cookie = await signIn(ANN.email);
    const connections = async () =>
      ((await (await fetch(`${base}/inbox/api/connections`, { headers: { cookie } })).json()) as { connections: unknown[] }).connections;
    expect(await connections()).to.deep.equal([{ source: 'src', connectedAt: '2026-03-01T10:00:00.000Z' }]);
    expect((await fetch(`${base}/inbox/api/connections`)).status).to.equal(401);

    expect((await act('/inbox/api/disconnect', { source: 'src' }, { cookie })).status, 'no origin: refused').to.equal(403);
    expect(await connections()).to.have.length(1);
    const res = await act('/inbox/api/disconnect', { source: 'src' }, { cookie, ...sameOrigin() });
    expect(await res.json()).to.deep.equal({ disconnected: true });
    expect(await connections()).to.deep.equal([]);
    expect(source.connected.has(BOB.email), 'only the signed-in person’s own').to.equal(true);
    const next = await act('/inbox/api/act', { token: tokenOf(await list(cookie), 'r1', 'approve') }, { cookie, ...sameOrigin() });
    expect(((await next.json()) as { outcome: string }).outcome).to.equal('consent_needed');
  });

  it('approves in bulk: one action per token, a result per token, send back and forged tokens refused singly', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `b${i + 1}`);
    await submitted([...ids, 'keep']);
    const cookie = await signIn(ANN.email);
    const items = await list(cookie);
    const tokens = ids.map((id) => tokenOf(items, id, 'approve'));
    const sendBack = tokenOf(items, 'keep', 'sendBack');
    const res = await act('/inbox/api/act-bulk', { tokens: [...tokens, sendBack, 'forged.token'] }, { cookie, ...sameOrigin() });
    expect(res.status).to.equal(200);
    const { results } = (await res.json()) as { results: { token: string; result: ActionResult }[] };
    expect(results.map((r) => r.token)).to.deep.equal([...tokens, sendBack, 'forged.token']);
    expect(results.slice(0, 20).map((r) => r.result.outcome)).to.deep.equal(ids.map(() => 'done'));
    expect(results.slice(20).map((r) => r.result.outcome)).to.deep.equal(['refused', 'refused']);
    expect(source.acted.map((a) => a.externalId).sort()).to.deep.equal([...ids].sort());
    expect(source.acted.every((a) => a.action === 'approve' && a.by === ANN.email)).to.equal(true);

    const tooMany = await act('/inbox/api/act-bulk', { tokens: Array.from({ length: 51 }, (_, i) => `t${i}.x`) }, { cookie, ...sameOrigin() });
    expect(tooMany.status).to.equal(400);
    expect((await act('/inbox/api/act-bulk', { tokens: [] }, { cookie, ...sameOrigin() })).status).to.equal(400);
  });
});
