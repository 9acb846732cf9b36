import { expect } from 'chai';
import { pino } from 'pino';
import { Host } from '../../core/host/host.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { WebInboxNotifier, type InboxEvent } from '../../adapters/chat-web/web-inbox-notifier.js';
import { startConcurSandbox, type ConcurSandbox, type SandboxUserInfo } from '../../plugins/concur/sandbox/index.js';
import { dropSchema, freshSchema } from '../soak/soak.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';

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
