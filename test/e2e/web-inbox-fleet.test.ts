import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { get, type IncomingMessage } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Host } from '../../core/host/host.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { WebInboxNotifier, type InboxEvent } from '../../adapters/chat-web/web-inbox-notifier.js';
import { startConcurSandbox, type ConcurSandbox, type SandboxUserInfo } from '../../plugins/concur/sandbox/index.js';
import { dropSchema, freshSchema } from '../soak/soak.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';
import { ManualClock, ScriptedSource } from '../../core/testing/index.js';

const DATABASE_URL = process.env.APPROVALS_HUB_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const KEY = 'web-inbox-fleet-signing-key-0123456789abcdef';

/**
 * Two hosts on one PostgreSQL schema, both serving the web inbox: a page open on one host is
 * told what the other delivered. Host A never runs a cycle or a delivery pass, so whatever
 * reaches its page came through the queue's delivery feed.
 */
describe('web inbox across hosts (two hosts, one PostgreSQL schema)', function () {
  this.timeout(60_000);
  let sandbox: ConcurSandbox;
  let schema: string;
  let a: Host;
  let b: Host;
  let ann: SandboxUserInfo;

  beforeEach(async () => {
    sandbox = await startConcurSandbox(SMALL_COMPANY);
    schema = freshSchema('ah_inbox');
    const concur = sandboxSource(sandbox, { pollIntervalSeconds: 3600 });
    const env = { ...concur.env, AH_WEB_KEY: KEY };
    const raw = {
      queue: { adapter: 'postgres', config: { connectionString: DATABASE_URL, schema } },
      sources: [concur.source],
      credentials: concur.credentials,
      notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_WEB_KEY' } } }],
    };
    const clock = { now: () => new Date(sandbox.admin.now()) };
    const create = () => Host.create(loadDeployment(undefined, { raw: structuredClone(raw), env }), { clock, logger: pino({ level: 'silent' }) });
    a = await create();
    b = await create();
    ann = sandbox.admin.users().find((u) => u.isApprover)!;
  });

  afterEach(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    await sandbox?.close();
    await dropSchema(DATABASE_URL, schema).catch(() => undefined);
  });

  const webOf = (host: Host): WebInboxNotifier => {
    const notifier = host.notifiers.get('web');
    if (!(notifier instanceof WebInboxNotifier)) throw new Error('the web plugin did not bind a WebInboxNotifier');
    return notifier;
  };
  /** An open page of `email`'s on `host`: the events pushed to it. */
  const openPage = (host: Host, email: string): InboxEvent[] => {
    const events: InboxEvent[] = [];
    webOf(host).attach(email, { send: (event) => events.push(event), end: () => undefined });
    return events;
  };
  const keyOf = (event: InboxEvent | undefined) => (event?.type === 'approval' ? event.item.key : event?.key);

  it('shows a page on one host the card another host delivered, and takes it away when it is approved', async () => {
    const onA = openPage(a, ann.email);
    const report = sandbox.admin.submit({ approver: ann.loginId, name: 'Customer visits, March' });
    await b.runOnce();
    expect(onA, 'nothing pushed before host A reads the feed').to.deep.equal([]);

    await webOf(a).readFeed();
    expect(onA.map((e) => [e.type, keyOf(e)])).to.deep.equal([['approval', `acme:expense-report:${report.ID}`]]);

    sandbox.admin.approve(report.ID);
    sandbox.admin.advanceClock(60);
    await b.runOnce();
    await webOf(a).readFeed();
    await webOf(a).readFeed(); // read twice: nothing is pushed twice
    expect(onA.map((e) => e.type)).to.deep.equal(['approval', 'closed']);
    expect(onA[1]).to.deep.include({ key: `acme:expense-report:${report.ID}`, outcome: 'approved' });
  });

  it('follows the feed by itself while a page is open, and pushes what it delivered itself only once', async () => {
    const onA = openPage(a, ann.email);
    const onB = openPage(b, ann.email);
    const report = sandbox.admin.submit({ approver: ann.loginId });
    await b.runOnce();
    const deadline = Date.now() + 5_000;
    while (onA.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    await webOf(b).readFeed();

    expect(onA.map(keyOf), 'pushed by the timer on host A').to.deep.equal([`acme:expense-report:${report.ID}`]);
    expect(onB.map(keyOf), 'host B pushed it when it delivered, and skips it in the feed').to.deep.equal([`acme:expense-report:${report.ID}`]);
  });

  it('pushes nothing to a page of someone else', async () => {
    const bob = sandbox.admin.users().filter((u) => u.isApprover)[1]!;
    const onBob = openPage(a, bob.email);
    sandbox.admin.submit({ approver: ann.loginId });
    await b.runOnce();
    await webOf(a).readFeed();
    expect(onBob).to.deep.equal([]);
  });
});

/**
 * Act buttons on a card another host delivered: the feed holds the card as queued, without the
 * per-recipient tokens the delivering host added, so the host serving the page makes them for
 * the page's person, and they act.
 */
describe('web inbox act buttons across hosts (two hosts, one PostgreSQL schema)', function () {
  this.timeout(60_000);
  const ANN = { sourceUserId: 'ann', name: 'Ann', email: 'ann@example.test' };
  let schema: string;
  let a: Host;
  let b: Host;

  afterEach(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    await dropSchema(DATABASE_URL, schema).catch(() => undefined);
  });

  it('gives a card from the feed the page person’s tokens, and they act through either host', async () => {
    schema = freshSchema('ah_inbox_act');
    const clock = new ManualClock('2026-03-02T09:00:00.000Z');
    const source = new ScriptedSource('src', clock, 100, 'expense-report', ['approve', 'sendBack']);
    const raw = {
      queue: { adapter: 'postgres', config: { connectionString: DATABASE_URL, schema } },
      credentials: { key: { env: 'AH_CREDENTIALS_KEY' } },
      notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_WEB_KEY' } } }],
    };
    const env = { AH_WEB_KEY: KEY, AH_CREDENTIALS_KEY: randomBytes(32).toString('base64') };
    const create = () =>
      Host.create(loadDeployment(undefined, { raw: structuredClone(raw), env }), { clock, logger: pino({ level: 'silent' }), sources: [source] });
    a = await create();
    b = await create();
    const onA: InboxEvent[] = [];
    const web = a.notifiers.get('web') as WebInboxNotifier;
    web.attach(ANN.email, { send: (event) => onA.push(event), end: () => undefined });

    source.submit('r1', { approvers: [ANN] });
    clock.advance(60_000);
    await b.runOnce();
    await web.readFeed();
    const [pushed] = onA;
    expect(pushed?.type).to.equal('approval');
    const actions = pushed?.type === 'approval' ? pushed.item.actions : [];
    expect(actions.map((x) => x.action)).to.deep.equal(['approve', 'sendBack']);
    const approve = actions.find((x) => x.action === 'approve')!;
    expect(await b.actions.peek(approve.token)).to.include({ approverEmail: ANN.email, action: 'approve' });
    expect((await b.actions.act(approve.token, { email: ANN.email, channel: 'web' })).outcome).to.equal('done');
    expect(source.acted).to.deep.equal([{ externalId: 'r1', action: 'approve', by: ANN.email, comment: undefined }]);
  });
});

/**
 * Sign-in links and sessions with two hosts on one PostgreSQL schema, each serving the inbox over
 * HTTP: what one host (or the CLI) records, the other honours, because it lives in the queue's store.
 */
describe('web inbox sessions across hosts (two hosts, one PostgreSQL schema)', function () {
  this.timeout(60_000);
  const ANN = 'ann.approver@example.test';
  const BOB = 'bob.approver@example.test';
  let schema: string;
  let file: string;
  let a: Host;
  let b: Host;

  const webOf = (host: Host): WebInboxNotifier => host.notifiers.get('web') as WebInboxNotifier;
  const post = (host: Host, path: string, form: Record<string, string>, cookie?: string) =>
    fetch(`${host.url}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: host.url!, 'sec-fetch-site': 'same-origin', ...(cookie ? { cookie } : {}) },
      body: new URLSearchParams(form).toString(),
    });
  const tokenFor = async (host: Host, email: string) => new URL((await webOf(host).signInUrl(email)).url).searchParams.get('token')!;
  const signIn = async (host: Host, email: string) => {
    const res = await post(host, '/inbox/login', { token: await tokenFor(host, email) });
    expect(res.status).to.equal(303);
    return res.headers.get('set-cookie')!.split(';')[0]!;
  };
  const status = async (host: Host, cookie: string) => (await fetch(`${host.url}/inbox/api/approvals`, { headers: { cookie } })).status;

  beforeEach(async () => {
    schema = freshSchema('ah_inbox_sessions');
    const raw = {
      queue: { adapter: 'postgres', config: { connectionString: DATABASE_URL, schema } },
      sources: [],
      notifiers: [{ id: 'web', plugin: 'web', config: { signingKey: { env: 'AH_WEB_KEY' } } }],
      http: { host: '127.0.0.1', port: 0 },
    };
    file = join(mkdtempSync(join(tmpdir(), 'ah-inbox-fleet-')), 'approvals.config.json');
    writeFileSync(file, JSON.stringify({ ...raw, http: undefined }));
    const create = async () => {
      const host = await Host.create(loadDeployment(undefined, { raw: structuredClone(raw), env: { AH_WEB_KEY: KEY } }), { logger: pino({ level: 'silent' }) });
      await host.start();
      return host;
    };
    a = await create();
    b = await create();
  });

  afterEach(async () => {
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    await dropSchema(DATABASE_URL, schema).catch(() => undefined);
  });

  it('signs in once per link across hosts: used on one host, refused on the other, and once when both take it at the same moment', async () => {
    const token = await tokenFor(a, ANN);
    expect((await post(a, '/inbox/login', { token })).status).to.equal(303);
    const again = await post(b, '/inbox/login', { token });
    expect(again.status).to.equal(410);
    expect(again.headers.get('set-cookie')).to.equal(null);

    for (let round = 0; round < 5; round++) {
      const raced = await tokenFor(b, ANN);
      const statuses = await Promise.all([a, b, a, b].map((host) => post(host, '/inbox/login', { token: raced }).then((r) => r.status)));
      expect(
        statuses.filter((s) => s === 303),
        `round ${round}: ${statuses.join(', ')}`,
      ).to.have.length(1);
      expect(
        statuses.filter((s) => s !== 303 && s !== 410 && s !== 503),
        `round ${round}`,
      ).to.deep.equal([]);
    }
  });

  it('ends a session signed out on one host on the other too', async () => {
    const cookie = await signIn(a, ANN);
    expect(await status(b, cookie)).to.equal(200);
    expect((await post(b, '/inbox/logout', {}, cookie)).status).to.equal(200);
    expect(await status(a, cookie)).to.equal(401);
  });

  it('approvals-hub inbox revoke ends every session of that person on every host, open pages included, and no one else’s', async () => {
    const onA = await signIn(a, ANN);
    const onB = await signIn(b, ANN);
    const bob = await signIn(a, BOB);
    const linkBefore = await tokenFor(b, ANN);
    // An open page of Ann's on host A: its event stream.
    const stream = await new Promise<IncomingMessage>((resolve, reject) =>
      get(`${a.url}/inbox/api/events`, { headers: { cookie: onA } }, resolve).on('error', reject),
    );
    expect(stream.statusCode).to.equal(200);
    const closed = new Promise<void>((done) => stream.on('close', done));
    stream.resume();
    expect(webOf(a).openPages(ANN)).to.equal(1);

    const cli = fileURLToPath(new URL('../../core/host/cli.js', import.meta.url));
    const r = spawnSync(process.execPath, [cli, 'inbox', 'revoke', 'Ann.Approver@Example.test', '--config', file], {
      env: { ...process.env, LOG_LEVEL: 'warn', AH_WEB_KEY: KEY },
      encoding: 'utf8',
    });
    expect(r.stderr).to.equal('');
    expect(r.status).to.equal(0);

    expect(await status(a, onA)).to.equal(401);
    expect(await status(b, onA)).to.equal(401);
    expect(await status(a, onB)).to.equal(401);
    expect(await status(b, bob)).to.equal(200);
    // Host A ends the stream it holds open at its next session check (every 15 s; run now).
    await webOf(a).recheckSessions();
    await closed;
    expect(webOf(a).openPages(ANN)).to.equal(0);
    // A link made before the revoke no longer works; one made after does.
    expect((await post(a, '/inbox/login', { token: linkBefore })).status).to.equal(410);
    expect(await status(a, await signIn(b, ANN))).to.equal(200);
  });
});
