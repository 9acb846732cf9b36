import { expect } from 'chai';
import { constants, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { MemoryApprovalQueue } from '../../adapters/queue-memory/memory-approval-queue.js';
import type { ClaimedTrigger, SourceTrigger, SourceTriggers, TriggerSubmission } from '../../core/index.js';
import { startHttpServer, type HttpServer, type TlsSettings } from '../../core/host/http-server.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { ManualClock } from '../../core/testing/index.js';
import { EventAuthenticator, eventsAuthConfig, parseSubject, type EventsAuthSettings } from '../../plugins/concur/events/event-auth.js';
import { EventEnvelopeError, parseEvent } from '../../plugins/concur/events/event-envelope.js';
import { EventRoutes, eventsPath, type ProfileEvent } from '../../plugins/concur/events/event-routes.js';

/**
 * The Concur event webhook (docs/concur-api.md 6.5) through real fastify on 127.0.0.1: HTTPS with
 * client certificates from a test CA for the `tls` mode, plain HTTP for `proxy` and `off`, and
 * triggers stored in the real memory queue. Keys and certificates: test/fixtures/ess (test-only).
 */

const ESS = resolve(process.cwd(), 'test/fixtures/ess');
const SAMPLES = resolve(process.cwd(), 'test/fixtures/concur');
const SOURCE = 'acme';
const NOW = '2026-03-02T10:00:00.000Z';
const fixture = (name: string): Buffer => readFileSync(join(ESS, name));
const privateKey = (name: 'signing' | 'rotated' | 'unknown'): KeyObject => createPrivateKey(fixture(`${name}-private.pem`));
const KEY_FILES = [join(ESS, 'signing-public.pem'), join(ESS, 'rotated-public.pem')];
const TLS: TlsSettings = { certFile: join(ESS, 'server.pem'), keyFile: join(ESS, 'server-key.pem'), clientCaFile: join(ESS, 'ca.pem') };

/** The real SourceTriggers contract over the real memory queue, recording refusals. */
class QueueTriggers implements SourceTriggers {
  readonly refusals: string[] = [];
  constructor(
    readonly queue: MemoryApprovalQueue,
    private readonly clock: ManualClock,
  ) {}
  async submit(triggers: readonly Omit<SourceTrigger, 'receivedAt'>[]): Promise<TriggerSubmission> {
    const receivedAt = this.clock.now().toISOString();
    return this.queue.addTriggers(
      SOURCE,
      triggers.map((t) => ({ ...t, receivedAt })),
    );
  }
  refused(reason: string): void {
    this.refusals.push(reason);
  }
  async stored(): Promise<ClaimedTrigger[]> {
    return this.queue.claimTriggers(SOURCE, 100, this.clock.now(), 1);
  }
}

/** A statusChanged event like Concur's sample, issued now, with `id`. */
function statusChanged(id: string, clock: ManualClock, overrides: Record<string, unknown> = {}): Buffer {
  const sample = JSON.parse(readFileSync(join(SAMPLES, 'ess-expense-status-changed-pending-manager.json'), 'utf8')) as Record<string, unknown>;
  return Buffer.from(JSON.stringify({ ...sample, id, timeStamp: clock.now().toISOString(), ...overrides }));
}

function signature(body: Buffer, key: KeyObject, hash = 'sha256', pss = false): string {
  return sign(hash, body, pss ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : key).toString('base64');
}

interface Res {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** One HTTPS request with Node's own client (fetch cannot present a client certificate). */
function post(
  url: string,
  body: Buffer,
  headers: Record<string, string>,
  client?: 'client' | 'wrong-client' | 'untrusted-client',
  method = 'POST',
): Promise<Res> {
  return new Promise((done, fail) => {
    const tls = { ca: fixture('ca.pem'), ...(client ? { cert: fixture(`${client}.pem`), key: fixture(`${client}-key.pem`) } : {}) };
    const req = httpsRequest(
      url,
      { method, headers: { 'content-type': 'application/json', ...(method === 'POST' ? { 'content-length': String(body.length) } : {}), ...headers }, ...tls },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          done({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
        });
      },
    );
    req.on('error', fail);
    if (method === 'POST') req.end(body);
    else req.end();
  });
}

/** Plain HTTP through fetch (the proxy and off modes). */
async function postPlain(url: string, body: Buffer | string, headers: Record<string, string>): Promise<Res> {
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('Concur event webhook: authentication, parsing and storing triggers', function () {
  this.timeout(60_000);
  let clock: ManualClock;
  let triggers: QueueTriggers;
  let server: HttpServer | undefined;
  let routes: EventRoutes;
  let profiles: ProfileEvent[];
  let logs: string[];

  beforeEach(async () => {
    clock = new ManualClock(NOW);
    const queue = new MemoryApprovalQueue();
    await queue.init();
    triggers = new QueueTriggers(queue, clock);
    profiles = [];
    logs = [];
  });
  afterEach(async () => {
    await server?.app.close();
    server = undefined;
  });

  /** The route with `settings` over the test keys, served over HTTPS (`tls`) or plain HTTP; resolves its URL. */
  async function serve(settings: EventsAuthSettings, tls: boolean): Promise<string> {
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _enc, next) {
          logs.push(chunk.toString('utf8'));
          next();
        },
      }),
    );
    const config = eventsAuthConfig({
      ...settings,
      signature: { publicKeyFiles: KEY_FILES, ...settings.signature },
      clientCertificate: { mode: 'tls', ...settings.clientCertificate },
    });
    routes = new EventRoutes(SOURCE, new EventAuthenticator(config), triggers, logger, clock, (e) => {
      profiles.push(e);
    });
    server = await startHttpServer([routes], { host: '127.0.0.1', port: 0, ...(tls ? { tls: TLS } : {}) }, undefined, logger);
    return `${server.url}${eventsPath(SOURCE)}`;
  }

  const signed = (body: Buffer, key: 'signing' | 'rotated' | 'unknown' = 'signing') => ({ 'concur-signature': signature(body, privateKey(key)) });

  describe('over HTTPS with Concur client certificates (mode tls)', () => {
    it('stores a signed event from Concur’s certificate as a trigger and answers 200', async () => {
      const url = await serve({}, true);
      expect(url).to.match(/^https:\/\/127\.0\.0\.1:\d+\/concur\/acme\/events$/);
      const body = statusChanged('evt-1', clock);
      const res = await post(url, body, { ...signed(body), 'concur-correlationid': 'corr-h' }, 'client');
      expect(res).to.deep.equal({ status: 200, body: { accepted: true, duplicate: false } });
      const stored = await triggers.stored();
      expect(stored).to.have.length(1);
      expect(stored[0]).to.include({ id: 'evt-1', externalId: 'CB899F7D9F73420A8D8B', receivedAt: NOW });
      expect(stored[0]!.data).to.deep.equal({
        eventType: 'statusChanged',
        lastModifiedDate: '2023-04-07T22:10:57.817Z',
        correlationId: '7e38939d-62f1-4bb4-9eef-5ea71fcbb1d8',
        assignedUserIds: ['45afdc31-0593-4e95-ba75-b094e9326b6d'],
        timeStamp: NOW,
      });
      expect(triggers.refusals).to.deep.equal([]);
    });

    it('accepts a duplicate delivery with 200 both times and keeps one trigger', async () => {
      const url = await serve({}, true);
      const body = statusChanged('evt-dup', clock);
      const first = await post(url, body, signed(body), 'client');
      const second = await post(url, body, signed(body), 'client');
      expect(first.body).to.deep.equal({ accepted: true, duplicate: false });
      expect(second).to.deep.equal({ status: 200, body: { accepted: true, duplicate: true } });
      expect(await triggers.stored()).to.have.length(1);
      expect(routes.counts).to.include({ accepted: 1, duplicates: 1 });
    });

    it('accepts signatures by either key of a rotation', async () => {
      const url = await serve({}, true);
      const a = statusChanged('evt-old-key', clock);
      const b = statusChanged('evt-new-key', clock);
      expect((await post(url, a, signed(a, 'signing'), 'client')).status).to.equal(200);
      expect((await post(url, b, signed(b, 'rotated'), 'client')).status).to.equal(200);
      expect((await triggers.stored()).map((t) => t.id)).to.deep.equal(['evt-old-key', 'evt-new-key']);
    });

    const refusals: [string, (body: Buffer) => Record<string, string>, number, RegExp][] = [
      ['a forged signature (the key’s signature over other bytes)', (b) => signed(Buffer.concat([b, Buffer.from(' ')])), 401, /^bad signature/],
      ['a signature by an unknown key', (b) => signed(b, 'unknown'), 401, /^unknown key/],
      ['an unsigned event', () => ({}), 401, /^unsigned/],
      ['a malformed signature header', () => ({ 'concur-signature': 'not*base64!' }), 401, /^malformed signature header/],
      ['a signature of the wrong length', () => ({ 'concur-signature': Buffer.alloc(17, 1).toString('base64') }), 401, /^malformed signature header: 17 bytes/],
    ];
    for (const [what, headers, status, reason] of refusals) {
      it(`refuses ${what} with ${status}, stores nothing and counts the refusal`, async () => {
        const url = await serve({}, true);
        const body = statusChanged('evt-bad', clock);
        const res = await post(url, body, headers(body), 'client');
        expect(res.status).to.equal(status);
        expect(res.body['error']).to.match(reason);
        expect(await triggers.stored()).to.deep.equal([]);
        expect(triggers.refusals).to.have.length(1);
        expect(triggers.refusals[0]).to.match(reason);
        const warn = logs.find((l) => l.includes('refused a Concur event push'));
        expect(warn, 'a warning is logged').to.be.a('string');
        expect(logs.join('\n')).not.to.include('CB899F7D9F73420A8D8B');
      });
    }

    it('refuses a replayed event older than 73 hours with 401, though its signature is good', async () => {
      const url = await serve({}, true);
      const body = statusChanged('evt-old', clock, { timeStamp: new Date(Date.parse(NOW) - 74 * 3_600_000).toISOString() });
      const res = await post(url, body, signed(body), 'client');
      expect(res.status).to.equal(401);
      expect(res.body['error']).to.match(/^too old or replayed/);
      expect(await triggers.stored()).to.deep.equal([]);
      expect(triggers.refusals).to.have.length(1);
      // 72 hours old is inside the window Concur still retries in.
      const retry = statusChanged('evt-72h', clock, { timeStamp: new Date(Date.parse(NOW) - 72 * 3_600_000).toISOString() });
      expect((await post(url, retry, signed(retry), 'client')).status).to.equal(200);
    });

    it('refuses an event stamped more than 5 minutes in the future', async () => {
      const url = await serve({}, true);
      const body = statusChanged('evt-future', clock, { timeStamp: new Date(Date.parse(NOW) + 6 * 60_000).toISOString() });
      const res = await post(url, body, signed(body), 'client');
      expect(res.status).to.equal(401);
      expect(res.body['error']).to.match(/in the future/);
    });

    it('refuses an oversized body with 413 before reading it', async () => {
      const url = await serve({ maxBodyBytes: 2048 }, true);
      const body = statusChanged('evt-big', clock, { padding: 'x'.repeat(4096) });
      const res = await post(url, body, signed(body), 'client');
      expect(res.status).to.equal(413);
      expect(res.body['error']).to.match(/^oversized/);
      expect(await triggers.stored()).to.deep.equal([]);
      expect(triggers.refusals).to.have.length(1);
    });

    it('refuses a client certificate with another CN with 403', async () => {
      const url = await serve({}, true);
      const body = statusChanged('evt-cn', clock);
      const res = await post(url, body, signed(body), 'wrong-client');
      expect(res.status).to.equal(403);
      expect(res.body['error']).to.equal('wrong client certificate CN: "attacker.example.com", expected "webhook.api.concursolutions.com"');
      expect(await triggers.stored()).to.deep.equal([]);
      expect(triggers.refusals).to.have.length(1);
    });

    it('refuses Concur’s subject on a certificate the client CA did not sign with 403', async () => {
      const url = await serve({}, true);
      const body = statusChanged('evt-self-signed', clock);
      const res = await post(url, body, signed(body), 'untrusted-client');
      expect(res.status).to.equal(403);
      expect(res.body['error']).to.match(/^client certificate not trusted: /);
      expect(await triggers.stored()).to.deep.equal([]);
      expect(triggers.refusals).to.have.length(1);
    });

    it('refuses a request without a client certificate with 403, while other routes need none', async () => {
      const url = await serve({}, true);
      const body = statusChanged('evt-nocert', clock);
      const res = await post(url, body, signed(body));
      expect(res).to.deep.equal({ status: 403, body: { error: 'no client certificate' } });
      expect(await triggers.stored()).to.deep.equal([]);
      expect(triggers.refusals).to.deep.equal(['no client certificate']);
      // The listener asks for a certificate but does not require one: /healthz answers without.
      const health = await post(`${server!.url}/healthz`, Buffer.alloc(0), {}, undefined, 'GET');
      expect(health).to.deep.equal({ status: 200, body: { status: 'ok' } });
    });

    it('answers 503 and acknowledges nothing when the store cannot take the trigger, then 200 once it can', async () => {
      const url = await serve({}, true);
      const body = statusChanged('evt-503', clock);
      const real = triggers.queue.addTriggers.bind(triggers.queue);
      triggers.queue.addTriggers = () => Promise.reject(new Error('database is locked'));
      const res = await post(url, body, signed(body), 'client');
      expect(res.status).to.equal(503);
      expect(triggers.refusals).to.deep.equal([]);
      triggers.queue.addTriggers = real;
      expect(await triggers.stored()).to.deep.equal([]);
      const retry = await post(url, body, signed(body), 'client');
      expect(retry).to.deep.equal({ status: 200, body: { accepted: true, duplicate: false } });
    });

    it('answers 400 to a body that is not JSON, and to an event without facts.reportId', async () => {
      const url = await serve({}, true);
      const junk = Buffer.from('{"id": "evt-x", ');
      const res = await post(url, junk, signed(junk), 'client');
      expect(res.status).to.equal(400);
      expect(res.body['error']).to.match(/^\(body\): is not UTF-8 JSON/);
      const noReport = statusChanged('evt-y', clock, { facts: { userId: 'u1' } });
      const res2 = await post(url, noReport, signed(noReport), 'client');
      expect(res2).to.deep.equal({ status: 400, body: { error: 'facts.reportId: is missing' } });
      expect(await triggers.stored()).to.deep.equal([]);
      expect(triggers.refusals).to.deep.equal([]);
    });

    it('hands identity and spend events to the profile callback and stores no trigger', async () => {
      const url = await serve({}, true);
      const identity = Buffer.from(
        JSON.stringify({
          id: 'updated-fc48-24681',
          correlationId: 'c1',
          eventType: 'IdentityProfileUpdated',
          topic: 'public.concur.user.profile.identity',
          timeStamp: NOW,
          facts: { companyId: 'co', userId: 'fc48f42d-724e-46e5-a35a-552d7b70996a', attributes: ['active'] },
        }),
      );
      const spend = Buffer.from(
        JSON.stringify({
          id: 's1',
          correlationId: 'c2',
          eventType: 'SpendProfileDeleted',
          topic: 'public.concur.user.profile.spend',
          timeStamp: NOW,
          facts: { userId: 'u2' },
        }),
      );
      expect((await post(url, identity, signed(identity), 'client')).status).to.equal(200);
      expect((await post(url, spend, signed(spend), 'client')).status).to.equal(200);
      expect(profiles).to.deep.equal([
        { kind: 'identity', userId: 'fc48f42d-724e-46e5-a35a-552d7b70996a', eventType: 'IdentityProfileUpdated' },
        { kind: 'spend', userId: 'u2', eventType: 'SpendProfileDeleted' },
      ]);
      expect(await triggers.stored()).to.deep.equal([]);
    });

    it('acknowledges an event of an unknown topic and ignores it', async () => {
      const url = await serve({}, true);
      const body = Buffer.from(JSON.stringify({ id: 't1', eventType: 'requestSubmitted', topic: 'public.concur.travel.request', timeStamp: NOW, facts: {} }));
      const res = await post(url, body, signed(body), 'client');
      expect(res).to.deep.equal({ status: 200, body: { accepted: false, ignored: true } });
      expect(routes.counts.ignored).to.equal(1);
      expect(await triggers.stored()).to.deep.equal([]);
    });
  });

  describe('behind a TLS-terminating proxy (mode proxy) and with no certificate check (mode off)', () => {
    it('accepts the subject the proxy passes, in RFC 4514 or OpenSSL form, and refuses another or none with 403', async () => {
      const url = await serve({ clientCertificate: { mode: 'proxy' } }, false);
      const ok = async (id: string, subject: string | undefined) => {
        const body = statusChanged(id, clock);
        return postPlain(url, body, { ...signed(body), ...(subject !== undefined ? { 'x-client-cert-subject': subject } : {}) });
      };
      expect((await ok('p1', 'CN=webhook.api.concursolutions.com,O=SAP SE,L=Walldorf,ST=Baden-Württemberg,C=DE')).status).to.equal(200);
      expect((await ok('p2', '/C=DE/ST=Baden-Wuerttemberg/L=Walldorf/O=SAP SE/CN=webhook.api.concursolutions.com')).status).to.equal(200);
      const wrongO = await ok('p3', 'CN=webhook.api.concursolutions.com,O=Evil Corp');
      expect(wrongO).to.deep.equal({ status: 403, body: { error: 'wrong client certificate O: "Evil Corp", expected "SAP SE"' } });
      const none = await ok('p4', undefined);
      expect(none.status).to.equal(403);
      expect(none.body['error']).to.match(/^no client certificate: the proxy sent no x-client-cert-subject header/);
      expect((await triggers.stored()).map((t) => t.id)).to.deep.equal(['p1', 'p2']);
      expect(triggers.refusals).to.have.length(2);
    });

    it('in tls mode on a plain listener, refuses every event saying HTTPS is not served', async () => {
      const url = await serve({}, false);
      const body = statusChanged('evt-plain', clock);
      const res = await postPlain(url, body, signed(body));
      expect(res.status).to.equal(403);
      expect(res.body['error']).to.match(/listener does not serve HTTPS/);
    });

    it('with mode off and signature.required false, lets an unsigned event through with a warning', async () => {
      const url = await serve({ clientCertificate: { mode: 'off' }, signature: { required: false } }, false);
      const body = statusChanged('evt-lax', clock);
      expect((await postPlain(url, body, {})).status).to.equal(200);
      expect(logs.some((l) => l.includes('Concur event signature not verified'))).to.equal(true);
      expect(await triggers.stored()).to.have.length(1);
    });
  });
});

describe('Concur event authenticator and envelope, without HTTP', () => {
  const socket = new Socket();
  const at = new Date(NOW);
  const body = Buffer.from(
    JSON.stringify({ id: 'e', eventType: 'statusChanged', topic: 'public.concur.expense.report', timeStamp: NOW, facts: { reportId: 'R1' } }),
  );
  const auth = (settings: EventsAuthSettings) =>
    new EventAuthenticator(
      eventsAuthConfig({
        ...settings,
        clientCertificate: { mode: 'off' },
        signature: { publicKeyFiles: [join(ESS, 'signing-public.pem')], ...settings.signature },
      }),
    );

  it('verifies RSA-SHA512, RSA-PSS-SHA256 and hex signatures when configured so, and refuses the default reading of them', () => {
    const key = privateKey('signing');
    const sha512 = signature(body, key, 'sha512');
    expect(auth({ signature: { algorithm: 'RSA-SHA512' } }).authenticate({ body, headers: { 'concur-signature': sha512 }, socket })).to.deep.equal({
      ok: true,
    });
    expect(auth({}).authenticate({ body, headers: { 'concur-signature': sha512 }, socket })).to.deep.include({ ok: false, status: 401 });
    const pss = signature(body, key, 'sha256', true);
    expect(auth({ signature: { algorithm: 'RSA-PSS-SHA256' } }).authenticate({ body, headers: { 'concur-signature': pss }, socket })).to.deep.equal({
      ok: true,
    });
    const hex = Buffer.from(signature(body, key), 'base64').toString('hex');
    expect(auth({ signature: { encoding: 'hex' } }).authenticate({ body, headers: { 'concur-signature': hex }, socket })).to.deep.equal({ ok: true });
    expect(auth({}).authenticate({ body, headers: { 'concur-signature': hex }, socket })).to.deep.include({ ok: false, status: 401 });
  });

  it('names the file of a key that is not PEM, and refuses to start without keys while signatures are required', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ah-ess-'));
    const bad = join(dir, 'concur-2026.pem');
    writeFileSync(bad, '-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n');
    expect(() => auth({ signature: { publicKeyFiles: [bad] } })).to.throw(/concur-2026\.pem is not a PEM public key/);
    expect(() => auth({ signature: { publicKeyFiles: [join(dir, 'missing.pem')] } })).to.throw(/cannot read public key file .*missing\.pem \(ENOENT\)/);
    expect(() => new EventAuthenticator(eventsAuthConfig())).to.throw(/signature.required is true but signature.publicKeyFiles names no key/);
    // Concur's published keys are SubjectPublicKeyInfo PEM, like the fixtures; a certificate works too.
    expect(() => auth({ signature: { publicKeyFiles: [join(ESS, 'client.pem')] } })).not.to.throw();
  });

  it('reads both subject forms a proxy may pass', () => {
    expect(parseSubject('CN=a\\,b,O=SAP SE')).to.deep.equal({ CN: ['a,b'], O: ['SAP SE'] });
    expect(parseSubject('/C=DE/O=SAP SE/CN=x')).to.deep.equal({ C: ['DE'], O: ['SAP SE'], CN: ['x'] });
  });

  it('reads every Concur sample event, both topic spellings, and a null assignee as no one', () => {
    const samples = readdirSync(SAMPLES).filter((f) => /^ess-expense-.*\.json$/.test(f));
    expect(samples.length).to.be.greaterThan(4);
    for (const file of samples) {
      const event = parseEvent(readFileSync(join(SAMPLES, file)));
      expect(event.kind, file).to.equal('report');
      expect(event.reportId, file).to.match(/^[0-9A-F]{20}$/);
    }
    expect(parseEvent(readFileSync(join(SAMPLES, 'ess-expense-report-deleted.json'))).topic).to.equal('concur.expense.report');
    expect(parseEvent(readFileSync(join(SAMPLES, 'ess-expense-status-changed-accounting-review.json'))).assignedUserIds).to.deep.equal([]);
  });

  it('names the bad field of an event it cannot read', () => {
    const bad = (value: unknown) => () => parseEvent(Buffer.from(JSON.stringify(value)));
    expect(bad([1])).to.throw(EventEnvelopeError, '(body): must be a JSON object, not an array');
    expect(bad({ eventType: 'x', topic: 't', timeStamp: NOW })).to.throw(EventEnvelopeError, 'id: is missing');
    expect(bad({ id: 'e', eventType: 'x', topic: 't', timeStamp: 'yesterday' })).to.throw(EventEnvelopeError, 'timeStamp: is not a date and time');
    const report = { id: 'e', eventType: 'statusChanged', topic: 'public.concur.expense.report', timeStamp: NOW };
    expect(bad({ ...report, facts: { reportId: 7 } })).to.throw(EventEnvelopeError, 'facts.reportId: must be a string, not a number');
    expect(bad({ ...report, facts: { reportId: 'R', startingStep: { stepInstances: [{ assignedUserId: 5 }] } } })).to.throw(
      EventEnvelopeError,
      'facts.startingStep.stepInstances[0].assignedUserId: must be a string, not a number',
    );
    expect(bad({ id: 'e', eventType: 'IdentityProfileDeleted', topic: 'public.concur.profile.identity', timeStamp: NOW, facts: {} })).to.throw(
      EventEnvelopeError,
      'facts.userId: is missing',
    );
    // Unknown topics and types are not errors: they are acknowledged and ignored.
    expect(parseEvent(Buffer.from(JSON.stringify({ ...report, eventType: 'reportArchived' }))).kind).to.equal('unknown');
  });

  it('resolves http.tls paths against the deployment directory and names a missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ah-tls-'));
    writeFileSync(join(dir, 'cert.pem'), fixture('server.pem'));
    writeFileSync(join(dir, 'key.pem'), fixture('server-key.pem'));
    const raw = (tls: Record<string, string>) => ({ queue: { adapter: 'memory' }, http: { port: 0, tls } });
    const d = loadDeployment(undefined, { raw: raw({ certFile: 'cert.pem', keyFile: 'key.pem' }), baseDir: dir });
    expect(d.http?.tls).to.deep.equal({ certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') });
    expect(() => loadDeployment(undefined, { raw: raw({ certFile: 'cert.pem', keyFile: 'key.pem', clientCaFile: 'ca.pem' }), baseDir: dir })).to.throw(
      /http\.tls\.clientCaFile: no such file .*ca\.pem/,
    );
  });
});
