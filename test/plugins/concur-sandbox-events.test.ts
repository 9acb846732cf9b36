import { expect } from 'chai';
import { createVerify, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { defaultSubscriptionId } from '../../plugins/concur/commands.js';
import { ConcurEventsClient, ConcurEventsError, EXPENSE_REPORT_TOPIC } from '../../plugins/concur/client/events-client.js';
import {
  startConcurSandbox,
  TEST_SIGNING_PRIVATE_KEY,
  TEST_SIGNING_PUBLIC_KEY,
  type ConcurSandbox,
  type ConcurSandboxOptions,
  type SandboxUserInfo,
} from '../../plugins/concur/sandbox/index.js';
import { runCli } from '../support/cli.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';
import { call, tokenRequest, type Json } from '../support/sandbox-http.js';

/**
 * The Concur sandbox's Event Subscription Service over real HTTP on 127.0.0.1: the management API
 * with an App token (client_credentials), and the webhook sender pushing signed events to a real
 * receiver in this test, with Concur's retry rules, the delivery faults, an outage, and mutual TLS.
 */

const KEYS = resolve(process.cwd(), 'plugins/concur/sandbox/test-keys');
const CERTS = resolve(process.cwd(), 'test/fixtures/ess-sender');
/** "Concur's public key" as a receiver would be configured with it: the committed TEST-ONLY one. */
const PUBLIC_KEY = readFileSync(join(KEYS, 'signing-public-key.pem'), 'utf8');
const cert = (name: string): string => readFileSync(join(CERTS, name), 'utf8');

interface Received {
  readonly raw: Buffer;
  readonly event: { id: string; correlationId: string; eventType: string; topic: string; route: string; timeStamp: string; facts: Json };
  readonly headers: IncomingHttpHeaders;
  readonly signatureOk: boolean;
  readonly clientCertSubject: string | undefined;
}

/** A webhook endpoint: records every POST and answers the next scripted status (200 when the script is empty). */
class Receiver {
  readonly received: Received[] = [];
  readonly script: number[] = [];
  requests = 0;
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(tls?: { key: string; cert: string; ca: string }): Promise<Receiver> {
    let self: Receiver | undefined;
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => self!.record(req, Buffer.concat(chunks), res));
    };
    const server = tls ? createHttpsServer({ ...tls, requestCert: true, rejectUnauthorized: true }, handler) : createHttpServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    self = new Receiver(server, `${tls ? 'https' : 'http'}://127.0.0.1:${port}/concur/acme/events`);
    return self;
  }

  private record(req: IncomingMessage, raw: Buffer, res: ServerResponse): void {
    this.requests++;
    const signature = String(req.headers['concur-signature'] ?? '');
    const signatureOk = createVerify('RSA-SHA256').update(raw).verify(PUBLIC_KEY, signature, 'base64');
    const peer = (req.socket as Partial<TLSSocket>).getPeerX509Certificate?.();
    this.received.push({
      raw,
      event: JSON.parse(raw.toString('utf8')) as Received['event'],
      headers: req.headers,
      signatureOk,
      clientCertSubject: peer ? new X509Certificate(peer.raw).subject : undefined,
    });
    res.statusCode = this.script.shift() ?? 200;
    res.end();
  }

  types(): string[] {
    return this.received.map((r) => r.event.eventType);
  }

  close(): Promise<void> {
    this.server.closeAllConnections?.();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const FAST_RETRIES = { retryInitialMs: 5, retryMaxMs: 40 };

async function start(options: ConcurSandboxOptions = {}): Promise<ConcurSandbox> {
  return startConcurSandbox({ ...SMALL_COMPANY, ...options, events: { ...FAST_RETRIES, ...options.events } });
}

function clientFor(sb: ConcurSandbox): ConcurEventsClient {
  return new ConcurEventsClient({
    clientId: sb.credentials.clientId,
    clientSecret: sb.credentials.clientSecret,
    authBaseUrl: 'https://us2.api.concursolutions.com',
    baseUrl: sb.baseUrl,
  });
}

/** An owner and an approver of the small company: an employee and their manager. */
function people(sb: ConcurSandbox): { owner: SandboxUserInfo; approver: SandboxUserInfo; next: SandboxUserInfo | undefined } {
  const users = sb.admin.users();
  const owner = users.find((u) => !u.isApprover && u.managerLoginId !== null)!;
  const approver = users.find((u) => u.loginId === owner.managerLoginId)!;
  const next = users.find((u) => u.loginId === approver.managerLoginId);
  return { owner, approver, next };
}

/** Waits (without a deadline of its own: mocha's timeout is the limit) until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}

describe('Concur sandbox: ESS management API with an App token', function () {
  this.timeout(60_000);
  let sb: ConcurSandbox;
  afterEach(async () => sb?.close());

  it('issues App tokens by client_credentials (no refresh token) that open ESS and nothing else', async () => {
    sb = await start();
    const token = await tokenRequest(sb, { grant_type: 'client_credentials' });
    expect(token.status).to.equal(200);
    expect(token.body).to.include({ expires_in: '3600', token_type: 'Bearer', geolocation: sb.baseUrl });
    expect(token.body).to.not.have.property('refresh_token');
    expect(String(token.body['scope']).split(' ')).to.include('events.topic.read');
    const auth = { authorization: `Bearer ${String(token.body['access_token'])}` };
    const topics = await call<string[]>(`${sb.baseUrl}/events/v4/topics`, { headers: auth });
    expect(topics.body).to.deep.equal([EXPENSE_REPORT_TOPIC]);
    const reports = await call(`${sb.baseUrl}/api/v3.0/expense/reports?user=ALL`, { headers: auth });
    expect(reports.status, 'an App token is for ESS only').to.equal(403);

    const company = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: sb.credentials.refreshToken });
    const refused = await call(`${sb.baseUrl}/events/v4/subscriptions`, { headers: { authorization: `Bearer ${String(company.body['access_token'])}` } });
    expect(refused.status, 'a company token has no events.topic.read').to.equal(403);
    expect(refused.body['message']).to.include('events.topic.read');
    expect((await call(`${sb.baseUrl}/events/v4/topics`)).status).to.equal(401);
  });

  it('creates, replaces, reads, lists and deletes subscriptions, refusing bad ids, filters, endpoints and a sixth one', async () => {
    sb = await start();
    const client = clientFor(sb);
    const sub = (id: string, extra: Record<string, string> = {}) => ({
      id,
      topic: EXPENSE_REPORT_TOPIC,
      filter: '.*',
      endpoint: 'http://127.0.0.1:9/e',
      ...extra,
    });
    expect(await client.subscribe(sub('acme.test'))).to.equal("Subscription 'acme.test' saved successfully");
    expect(await client.subscribe(sub('acme.test', { filter: 'statusChanged' })), 'PUT again replaces').to.include('saved');
    const one = await client.subscription('acme.test');
    expect(one).to.deep.include({ id: 'acme.test', topic: EXPENSE_REPORT_TOPIC, filter: 'statusChanged', webHookConfig: { endpoint: 'http://127.0.0.1:9/e' } });
    expect(one?.applicationId).to.equal(sb.credentials.clientId);
    expect(one?.companyIds).to.deep.equal([sb.companyId]);
    expect(await client.subscription('nope')).to.equal(undefined);

    const failure = async (p: Promise<unknown>): Promise<ConcurEventsError> => {
      try {
        await p;
      } catch (e) {
        expect(e).to.be.instanceOf(ConcurEventsError);
        return e as ConcurEventsError;
      }
      throw new Error('expected a refusal');
    };
    expect((await failure(client.subscribe(sub('Upper_Case')))).message).to.match(/HTTP 400.*lower-case/);
    expect((await failure(client.subscribe(sub('bad.filter', { filter: '(' })))).message).to.include('not a valid regular expression');
    expect((await failure(client.subscribe(sub('bad.url', { endpoint: 'not a url' })))).message).to.include('webHookConfig.endpoint');
    expect((await failure(client.subscribe(sub('bad.topic', { topic: 'public.concur.travel.request' })))).message).to.include('not available');
    for (const n of [2, 3, 4, 5]) await client.subscribe(sub(`acme.${n}`));
    const sixth = await failure(client.subscribe(sub('acme.6')));
    expect(sixth.status).to.equal(400);
    expect(sixth.message).to.include('5 subscriptions');
    expect((await client.subscriptions()).map((s) => s.id)).to.have.members(['acme.test', 'acme.2', 'acme.3', 'acme.4', 'acme.5']);
    expect(await client.unsubscribe('acme.5')).to.equal("Subscription 'acme.5' marked for deletion");
    expect(await client.unsubscribe('acme.5')).to.equal(undefined);
    expect(await client.subscribe(sub('acme.6'))).to.include('saved');
  });

  it('lists no topic to an app holding only events.topic.read, and names the missing scope on a 403', async () => {
    sb = await start({ appScopes: ['events.topic.read'] });
    expect(await clientFor(sb).topics()).to.deep.equal([]);
    await sb.close();
    sb = await start({ appScopes: ['expense.report.read'] });
    const error = await clientFor(sb)
      .topics()
      .then(
        () => undefined,
        (e: unknown) => e as ConcurEventsError,
      );
    expect(error?.status).to.equal(403);
    expect(error?.message).to.include('events.topic.read');
  });
});

describe('Concur sandbox: ESS webhook delivery to a real receiver', function () {
  this.timeout(60_000);
  let sb: ConcurSandbox;
  let receiver: Receiver;
  afterEach(async () => {
    await sb?.close();
    await receiver?.close();
  });

  async function subscribed(options: ConcurSandboxOptions = {}, filter = '.*'): Promise<void> {
    sb = await start(options);
    await clientFor(sb).subscribe({ id: 'approvals-hub.acme', topic: EXPENSE_REPORT_TOPIC, filter, endpoint: receiver.url });
  }

  it('the committed test key pair is the one the sandbox signs with by default', () => {
    expect(readFileSync(join(KEYS, 'signing-private-key.pem'), 'utf8')).to.equal(TEST_SIGNING_PRIVATE_KEY);
    expect(PUBLIC_KEY).to.equal(TEST_SIGNING_PUBLIC_KEY);
  });

  it('submit, approve to the next step and send back arrive as signed events with the documented facts', async () => {
    receiver = await Receiver.start();
    await subscribed({ approvalLevels: 2 });
    const { owner, approver, next } = people(sb);
    expect(next, 'the approver has a manager for the second step').to.not.equal(undefined);
    const report = sb.admin.submit({ owner: owner.loginId });
    await sb.events.idle();
    expect(receiver.types()).to.deep.equal(['reportCreated', 'statusChanged']);
    for (const r of receiver.received) {
      expect(r.signatureOk, 'Concur-Signature verifies with the public key over the raw body').to.equal(true);
      expect(r.headers['content-type']).to.equal('application/json');
      expect(r.headers['concur-correlationid']).to.equal(r.event.correlationId);
      expect(r.event).to.include({ route: 'stable', topic: EXPENSE_REPORT_TOPIC });
      expect(r.event.facts).to.include({ companyId: sb.companyId, reportId: report.ID, reportType: 'Regular' });
    }
    const submitted = receiver.received[1]!.event.facts;
    expect(submitted).to.include({ previousApprovalStatus: 'A_NOTF', currentApprovalStatus: 'A_PEND', userId: owner.id, actingUserId: null });
    expect(submitted['href']).to.equal(`${sb.baseUrl}/expensereports/v4/users/${owner.id}/context/TRAVELER/reports/${report.ID}`);
    expect(submitted['startingStep']).to.deep.include({ roleCode: 'MANAGER' });
    expect((submitted['startingStep'] as { stepInstances: Json[] }).stepInstances.map((s) => s['assignedUserId'])).to.deep.equal([approver.id]);
    // The JSON keys are exactly the docs' sample's.
    expect(Object.keys(submitted)).to.have.members([
      'currentApprovalStatus',
      'reportId',
      'stepCode',
      'lastModifiedDate',
      'userId',
      'reportType',
      'previousPaymentStatus',
      'companyId',
      'processId',
      'currentPaymentStatus',
      'startingStep',
      'previousApprovalStatus',
      'actingUserId',
      'href',
    ]);

    sb.admin.approve(report.ID);
    await sb.events.idle();
    const moved = receiver.received[2]!.event;
    expect(moved.eventType).to.equal('statusChanged');
    expect(moved.facts).to.include({ previousApprovalStatus: 'A_PEND', currentApprovalStatus: 'A_PEND', userId: approver.id });
    expect((moved.facts['startingStep'] as { stepInstances: Json[] }).stepInstances[0]!['assignedUserId']).to.equal(next!.id);
    expect(moved.facts['processId'], 'one workflow process per report').to.equal(submitted['processId']);

    sb.admin.sendBack(report.ID, 'Receipt missing');
    await sb.events.idle();
    const back = receiver.received[3]!.event;
    expect(back.facts).to.include({ stepCode: 'SENDBACK', previousApprovalStatus: 'A_PEND', currentApprovalStatus: 'A_RESU', userId: next!.id });

    sb.admin.resubmit(report.ID);
    sb.admin.recall(report.ID);
    sb.admin.edit(report.ID, { name: 'Renamed' });
    sb.admin.delete(report.ID);
    await sb.events.idle();
    const tail = receiver.received.slice(4).map((r) => r.event);
    expect(tail.map((e) => e.eventType)).to.deep.equal(['statusChanged', 'statusChanged', 'reportUpdated', 'reportDeleted']);
    expect(tail[0]!.facts).to.include({ previousApprovalStatus: 'A_RESU', currentApprovalStatus: 'A_PEND' });
    expect(tail[1]!.facts).to.include({ stepCode: 'RECALL', currentApprovalStatus: 'A_RESU', userId: owner.id });
    expect(tail[3]!.facts).to.not.have.property('href');
    expect(new Set(receiver.received.map((r) => r.event.id)).size, 'every event has its own id').to.equal(receiver.received.length);
    expect(sb.events.counts()).to.include({ delivered: 8, retried: 0, lost: 0 });
  });

  it('delivers only the event types the filter matches, and mid-workflow approvals only with stepNotifications', async () => {
    receiver = await Receiver.start();
    await subscribed({ approvalLevels: 2, events: { stepNotifications: false } }, 'statusChanged');
    const { owner } = people(sb);
    const report = sb.admin.submit({ owner: owner.loginId });
    sb.admin.approve(report.ID);
    sb.admin.sendBack(report.ID, 'no');
    await sb.events.idle();
    expect(receiver.received.map((r) => r.event.facts['currentApprovalStatus'])).to.deep.equal(['A_PEND', 'A_RESU']);
    expect(receiver.received[0]!.event.facts['stepCode'], 'submit to a step not configured for notifications').to.equal(null);
  });

  it('an approver approving through the v4 API (their own token) publishes the same event as the admin back door', async () => {
    receiver = await Receiver.start();
    await subscribed({}, 'statusChanged');
    const { owner, approver } = people(sb);
    const report = sb.admin.submit({ owner: owner.loginId });
    const { refreshToken } = sb.admin.consent(approver.loginId);
    const token = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: refreshToken });
    const url = `${sb.baseUrl}/expensereports/v4/users/${approver.id}/context/MANAGER/reports/${report.ID}/approve`;
    const approved = await call(url, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${String(token.body['access_token'])}`, 'content-type': 'application/json' },
      body: JSON.stringify({ comment: 'ok' }),
    });
    expect(approved.status).to.equal(204);
    await sb.events.idle();
    expect(receiver.received.map((r) => r.event.facts)).to.have.length(2);
    expect(receiver.received[1]!.event.facts).to.include({ previousApprovalStatus: 'A_PEND', currentApprovalStatus: 'A_APPR', userId: approver.id });
  });

  it('retries 5xx, 401, 403 and 429 with the same body, and never a 400', async () => {
    receiver = await Receiver.start();
    await subscribed({}, 'statusChanged');
    const { owner } = people(sb);
    receiver.script.push(500, 401, 403, 429, 200);
    sb.admin.submit({ owner: owner.loginId });
    await sb.events.idle();
    expect(receiver.requests).to.equal(5);
    expect(new Set(receiver.received.map((r) => r.raw.toString('base64'))).size, 'the same bytes each time').to.equal(1);
    expect(receiver.received.every((r) => r.signatureOk)).to.equal(true);
    expect(sb.events.counts()).to.include({ sent: 1, attempts: 5, retried: 4, delivered: 1, rejected: 0 });

    receiver.script.push(400);
    sb.admin.submit({ owner: owner.loginId });
    await sb.events.idle();
    expect(receiver.requests, 'a 400 is not retried').to.equal(6);
    expect(sb.events.counts()).to.include({ sent: 2, delivered: 1, rejected: 1 });
    expect(sb.events.deliveries().map((d) => d.outcome)).to.deep.equal([500, 401, 403, 429, 200, 400]);
  });

  it('dropped attempts (dropRate 1) are retried until the faults stop, then every event arrives', async () => {
    receiver = await Receiver.start();
    await subscribed({ events: { faults: { dropRate: 1 } } }, 'statusChanged');
    const { owner } = people(sb);
    const ids = [1, 2, 3].map(() => sb.admin.submit({ owner: owner.loginId }).ID);
    await until(() => sb.events.counts().dropped >= 9);
    expect(receiver.requests, 'a dropped attempt never reaches the endpoint').to.equal(0);
    sb.events.setFaults({});
    await sb.events.idle();
    expect(receiver.received.map((r) => r.event.facts['reportId'])).to.have.members(ids);
    expect(sb.events.counts()).to.include({ delivered: 3 });
  });

  it('duplicates carry the same event id, and reordered deliveries all arrive', async () => {
    receiver = await Receiver.start();
    await subscribed({ events: { faults: { duplicateRate: 1, reorder: 20 } } }, 'statusChanged');
    const { owner } = people(sb);
    const ids = [1, 2, 3, 4].map(() => sb.admin.submit({ owner: owner.loginId }).ID);
    await sb.events.idle();
    expect(receiver.received).to.have.length(8);
    const byId = new Map<string, number>();
    for (const r of receiver.received) byId.set(r.event.id, (byId.get(r.event.id) ?? 0) + 1);
    expect([...byId.values()]).to.deep.equal([2, 2, 2, 2]);
    expect(receiver.received.map((r) => r.event.facts['reportId'])).to.have.members([...ids, ...ids]);
    expect(sb.events.counts()).to.include({ duplicated: 4, sent: 8, delivered: 8 });
  });

  it('an outage loses the events published during it, for good; pause(minutes) ends with the sandbox clock', async () => {
    receiver = await Receiver.start();
    await subscribed({}, 'statusChanged');
    const { owner } = people(sb);
    sb.events.pause();
    sb.admin.submit({ owner: owner.loginId });
    sb.admin.submit({ owner: owner.loginId });
    await sb.events.idle();
    sb.events.resume();
    const after = sb.admin.submit({ owner: owner.loginId });
    await sb.events.idle();
    expect(receiver.received.map((r) => r.event.facts['reportId'])).to.deep.equal([after.ID]);
    expect(sb.events.counts()).to.include({ lost: 2, delivered: 1 });

    sb.events.pause(10);
    sb.admin.submit({ owner: owner.loginId });
    sb.admin.advanceClock(601);
    const later = sb.admin.submit({ owner: owner.loginId });
    await sb.events.idle();
    expect(receiver.received.map((r) => r.event.facts['reportId'])).to.deep.equal([after.ID, later.ID]);
    expect(sb.events.counts().lost).to.equal(3);
  });

  it('gives up a delivery once its retention (sandbox clock) has passed', async () => {
    receiver = await Receiver.start();
    await subscribed({ events: { retentionSeconds: 60 } }, 'statusChanged');
    const { owner } = people(sb);
    receiver.script.push(...Array.from({ length: 1000 }, () => 503));
    sb.admin.submit({ owner: owner.loginId });
    await until(() => receiver.requests >= 3);
    sb.admin.advanceClock(61);
    await sb.events.idle();
    expect(sb.events.counts()).to.include({ delivered: 0, expired: 1 });
  });

  it('serves the counters, faults and outage over the admin API', async () => {
    receiver = await Receiver.start();
    await subscribed({}, 'statusChanged');
    const admin = (path: string, init: RequestInit = {}) =>
      call(`${sb.baseUrl}/_admin/events${path}`, { ...init, headers: init.body === undefined ? {} : { 'content-type': 'application/json' } });
    expect((await admin('/faults', { method: 'PUT', body: JSON.stringify({ dropRate: 2 }) })).status).to.equal(400);
    expect((await admin('/faults', { method: 'PUT', body: JSON.stringify({ duplicateRate: 1 }) })).body).to.deep.equal({ duplicateRate: 1 });
    await call(`${sb.baseUrl}/_admin/reports`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({}) });
    const settled = await admin('/idle', { method: 'POST' });
    expect(settled.body).to.include({ delivered: 2, duplicated: 1 });
    expect((await admin('/pause', { method: 'POST', body: JSON.stringify({}) })).body['losing']).to.equal(true);
    expect((await admin('/resume', { method: 'POST' })).body['losing']).to.equal(false);
    const made = await admin('/subscriptions', { method: 'POST', body: JSON.stringify({ endpoint: receiver.url, id: 'second', filter: 'reportDeleted' }) });
    expect(made.status).to.equal(201);
    expect((await admin('/subscriptions', { method: 'POST', body: JSON.stringify({ endpoint: 'nope' }) })).status).to.equal(400);
    const status = await admin('');
    expect((status.body['subscriptions'] as Json[]).map((s) => s['id'])).to.deep.equal(['approvals-hub.acme', 'second']);
    expect((await admin('/deliveries')).body).to.have.length(2);
  });

  it('delivers over mutual TLS with the configured client certificate, and retries while the TLS handshake fails', async () => {
    const tls = { key: cert('server.key'), cert: cert('server.pem'), ca: cert('ca.pem') };
    receiver = await Receiver.start(tls);
    await subscribed({ events: { tls: { cert: cert('client.pem'), key: cert('client.key'), ca: cert('ca.pem') } } }, 'statusChanged');
    const { owner } = people(sb);
    sb.admin.submit({ owner: owner.loginId });
    await sb.events.idle();
    expect(receiver.received).to.have.length(1);
    expect(receiver.received[0]!.signatureOk).to.equal(true);
    expect(receiver.received[0]!.clientCertSubject).to.include('CN=webhook.api.concursolutions.com');
    await sb.close();

    // Without a client certificate the receiver refuses the handshake: an I/O error, retried until the retention ends.
    sb = await start({ events: { tls: { ca: cert('ca.pem') }, retentionSeconds: 60 } });
    await clientFor(sb).subscribe({ id: 'approvals-hub.acme', topic: EXPENSE_REPORT_TOPIC, filter: 'statusChanged', endpoint: receiver.url });
    sb.admin.submit({ owner: owner.loginId });
    await until(() => sb.events.counts().failed >= 2);
    sb.admin.advanceClock(61);
    await sb.events.idle();
    expect(receiver.received, 'nothing got through without the client certificate').to.have.length(1);
    expect(sb.events.counts()).to.include({ delivered: 0, expired: 1 });
    expect(String(sb.events.deliveries()[0]!.outcome)).to.match(/^I\/O error/);
  });
});

describe('approvals-hub concur events (CLI, a fresh process each)', function () {
  this.timeout(120_000);
  let sb: ConcurSandbox;
  afterEach(async () => sb?.close());

  function deployment(extra: Record<string, unknown> = {}): { config: string; env: Record<string, string>; dir: string } {
    const dir = mkdtempSync(join(tmpdir(), 'ah-ess-cli-'));
    const { source, env } = sandboxSource(sb, { config: { consent: { publicUrl: 'http://127.0.0.1:9/hub/' }, ...extra } });
    const config = join(dir, 'approvals.config.json');
    writeFileSync(config, JSON.stringify({ queue: { adapter: 'sqlite', config: { path: 'queue.db' } }, sources: [source] }));
    return { config, env, dir };
  }

  it('subscribes this host (idempotently), shows the status, and unsubscribes', async () => {
    sb = await start({ clock: new Date(), freezeClock: false });
    const { config, env, dir } = deployment();
    const cli = (...args: string[]) => runCli(['concur', 'events', ...args, '--config', config], { cwd: dir, env });
    const url = 'http://127.0.0.1:9/hub/concur/acme/events';
    const id = defaultSubscriptionId('acme', sb.credentials.clientId);
    expect(id).to.match(/^approvals-hub\.acme\.[a-z0-9]{8}$/);

    const before = await cli('status');
    expect(before.code, before.stderr).to.equal(0);
    expect(before.stdout).to.include(`acme\ttopics: ${EXPENSE_REPORT_TOPIC}`);
    expect(before.stdout).to.include('subscriptions: none');
    expect(before.stdout).to.include(`this host's events URL: ${url}\tNOT subscribed`);

    for (const attempt of [1, 2]) {
      const r = await cli('subscribe', '--filter', 'statusChanged|reportDeleted');
      expect(r.code, `attempt ${attempt}: ${r.stderr}`).to.equal(0);
      expect(r.stdout).to.include(`Subscription '${id}' saved successfully`);
    }
    expect(sb.events.list()).to.have.length(1);
    expect(sb.events.list()[0]).to.deep.include({ id, filter: 'statusChanged|reportDeleted', webHookConfig: { endpoint: url } });

    const after = await cli('status');
    expect(after.stdout).to.include(`subscription ${id}\ttopic ${EXPENSE_REPORT_TOPIC}\tfilter statusChanged|reportDeleted\t-> ${url}\t(this host)`);
    expect(after.stdout).to.include(`${url}\tsubscribed`);

    const gone = await cli('unsubscribe');
    expect(gone.code, gone.stderr).to.equal(0);
    expect(gone.stdout).to.include(`Subscription '${id}' marked for deletion`);
    expect(sb.events.list()).to.deep.equal([]);
    expect((await cli('unsubscribe')).stdout).to.include('nothing to delete');
  });

  it('names what is wrong: no public URL, and Concur refusing the app the ESS scope', async () => {
    sb = await start({ clock: new Date(), freezeClock: false, appScopes: ['expense.report.read'] });
    const noUrl = deployment({ consent: {} });
    const r = await runCli(['concur', 'events', 'subscribe', '--config', noUrl.config], { cwd: noUrl.dir, env: noUrl.env });
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.include('set events.publicUrl (or consent.publicUrl)');

    const { config, env, dir } = deployment();
    const s = await runCli(['concur', 'events', 'status', '--config', config], { cwd: dir, env });
    expect(s.code).to.not.equal(0);
    expect(s.stderr).to.match(/HTTP 403.*events\.topic\.read/);
  });
});
