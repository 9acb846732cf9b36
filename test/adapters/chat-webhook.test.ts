import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { pino } from 'pino';
import {
  MAX_RETRY_AFTER_MS,
  PermanentDeliveryError,
  isPermanentDeliveryError,
  isRetryLaterError,
  type OutboundMessage,
  type OutboxAction,
} from '../../core/index.js';
import { Host } from '../../core/host/host.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { WebhookNotifier, webhookSignature } from '../../adapters/chat-webhook/webhook-notifier.js';

const SECRET = 'webhook-test-secret';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  valid: boolean;
}

/** A receiver as a customer would write it: verifies the signature over the raw body. */
async function receiver(
  status: () => number,
  headers: () => Record<string, string> = () => ({}),
): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const expected = Buffer.from(webhookSignature(SECRET, String(req.headers['x-approvals-timestamp']), body));
      const given = Buffer.from(String(req.headers['x-approvals-signature']));
      received.push({ headers: req.headers, body, valid: expected.length === given.length && timingSafeEqual(expected, given) });
      res.writeHead(status(), { 'content-type': 'application/json', ...headers() });
      res.end(JSON.stringify({ ref: `msg-${received.length}` }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
}

const message = (title: string): OutboundMessage => ({
  idempotencyKey: 'k#g.1:ann:hook:notify',
  action: 'notify',
  recipient: { sourceUserId: 'ann', email: 'ann@example.test' },
  card: { approvalKey: 'src:request:1', kind: 'request', revision: 1, title, requester: { name: 'Bob' }, fields: [], lineItems: [], flags: [], actions: [] },
});

describe('webhook notifier', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('posts the card as JSON with a signature the receiver can verify', async () => {
    const r = await receiver(() => 200);
    server = r.server;
    const receipt = await new WebhookNotifier('hook', r.url, SECRET, 5000).deliver(message('<b>Q3</b> *travel* <!channel>'));
    expect(receipt).to.deep.equal({ ref: 'msg-1' });
    expect(r.received[0]!.valid).to.equal(true);
    expect(r.received[0]!.headers['idempotency-key']).to.equal('k#g.1:ann:hook:notify');
    expect(JSON.parse(r.received[0]!.body).card.title).to.equal('<b>Q3</b> *travel* <!channel>');
  });

  it('posts a reminder naming the message it reminds of, and a digest with the cards it lists', async () => {
    const r = await receiver(() => 200);
    server = r.server;
    const notifier = new WebhookNotifier('hook', r.url, SECRET, 5000);
    await notifier.deliver({ ...message('One'), idempotencyKey: 'k#g.1:ann:hook:remind-1', action: 'remind', previous: { ref: 'msg-0' } });
    const listed = [message('One').card, { ...message('Two').card, approvalKey: 'src:request:2' }];
    await notifier.deliver({
      ...message('2 approvals are waiting on you'),
      idempotencyKey: 'digest:ann@example.test:hook:2026-01-05',
      action: 'digest',
      digest: listed,
    });

    const [remind, digest] = r.received.map((d) => JSON.parse(d.body) as Record<string, unknown>);
    expect(remind).to.deep.include({ action: 'remind', previous: { ref: 'msg-0' } });
    expect(remind).not.to.have.property('digest');
    expect(digest).to.deep.include({ action: 'digest', digest: listed });
  });

  it("posts a sign-in link with action 'link': the card's one action is the link, and there is no approval behind it", async () => {
    const r = await receiver(() => 200);
    server = r.server;
    const url = 'https://inbox.example.test/inbox/login?token=abc.def';
    const link = {
      ...message('Your new sign-in link to the approvals inbox').card,
      approvalKey: 'sign-in:ann@example.test',
      kind: 'sign-in-link',
      requester: {},
      actions: [{ type: 'link' as const, label: 'Open your approvals', url }],
    };
    await new WebhookNotifier('hook', r.url, SECRET, 5000).deliver({
      ...message(''),
      idempotencyKey: 'sign-in:ann@example.test:hook:1',
      action: 'link',
      card: link,
    });

    const [sent, ...more] = r.received;
    expect(more).to.deep.equal([]);
    expect(sent!.valid).to.equal(true);
    const body = JSON.parse(sent!.body) as { action: string; card: { actions: unknown[] }; previous: unknown };
    expect(body).to.deep.include({ action: 'link', previous: null });
    expect(body.card.actions).to.deep.equal([{ type: 'link', label: 'Open your approvals', url }]);
  });

  it('throws a retryable error on 5xx and 429, and a permanent one on other 4xx', async () => {
    let status = 503;
    const r = await receiver(() => status);
    server = r.server;
    const notifier = new WebhookNotifier('hook', r.url, SECRET, 5000);
    const failure = await notifier.deliver(message('x')).catch((e: unknown) => e);
    expect(failure).to.be.instanceOf(Error).and.not.be.instanceOf(PermanentDeliveryError);
    status = 429;
    expect(await notifier.deliver(message('x')).catch((e: unknown) => e)).not.to.be.instanceOf(PermanentDeliveryError);
    status = 404;
    expect(await notifier.deliver(message('x')).catch((e: unknown) => e)).to.be.instanceOf(PermanentDeliveryError);
  });

  it('waits the Retry-After a 429 gives as an HTTP date, measured from its own clock', async () => {
    const now = new Date('2026-03-02T09:00:00.000Z');
    const r = await receiver(
      () => 429,
      () => ({ 'retry-after': new Date(now.getTime() + 90_000).toUTCString() }),
    );
    server = r.server;
    const failure = await new WebhookNotifier('hook', r.url, SECRET, 5000, () => now).deliver(message('x')).catch((e: unknown) => e);
    expect(isRetryLaterError(failure), String(failure)).to.equal(true);
    expect(isPermanentDeliveryError(failure)).to.equal(false);
    expect((failure as { retryAfterMs: unknown }).retryAfterMs).to.equal(90_000);
    expect((failure as Error).message).to.include('HTTP 429, Retry-After 90s');
  });

  it('waits the Retry-After a 503 gives in seconds, at most an hour', async () => {
    let wait = '7';
    const r = await receiver(
      () => 503,
      () => ({ 'retry-after': wait }),
    );
    server = r.server;
    const notifier = new WebhookNotifier('hook', r.url, SECRET, 5000);
    expect(await notifier.deliver(message('x')).catch((e: unknown) => e)).to.have.property('retryAfterMs', 7_000);
    wait = String(30 * 24 * 3600);
    expect(await notifier.deliver(message('x')).catch((e: unknown) => e)).to.have.property('retryAfterMs', MAX_RETRY_AFTER_MS);
  });

  it('retries 408, a 5xx without Retry-After and a receiver that does not answer, with the usual backoff', async () => {
    let status = 408;
    const r = await receiver(() => status);
    server = r.server;
    const notifier = new WebhookNotifier('hook', r.url, SECRET, 5000);
    for (status of [408, 500, 502]) {
      const failure = await notifier.deliver(message('x')).catch((e: unknown) => e);
      expect(isRetryLaterError(failure), `HTTP ${status}: ${String(failure)}`).to.equal(true);
      expect(failure).to.have.property('retryAfterMs', 0);
    }
    r.server.closeAllConnections();
    await new Promise<void>((done) => r.server.close(() => done()));
    server = undefined;
    const refused = await notifier.deliver(message('x')).catch((e: unknown) => e);
    expect(isRetryLaterError(refused), String(refused)).to.equal(true);
    expect((refused as Error).message, (refused as Error).message).to.match(/^webhook hook: request failed \(fetch failed: [A-Z_]+\)$/);
    expect((refused as Error).message).not.to.include(r.url);
  });

  it('refuses an action it does not know for good, sending nothing to the receiver', async () => {
    const r = await receiver(() => 200);
    server = r.server;
    const failure = await new WebhookNotifier('hook', r.url, SECRET, 5000)
      .deliver({ ...message('x'), action: 'escalate' as OutboxAction })
      .catch((e: unknown) => e);
    expect(isPermanentDeliveryError(failure), String(failure)).to.equal(true);
    expect((failure as Error).message).to.include('"escalate"');
    expect(r.received).to.deep.equal([]);
  });

  for (const status of [307, 308]) {
    it(`does not follow a ${status} redirect: the signed body never reaches the other server and the delivery is permanent`, async () => {
      const target = await receiver(() => 200);
      const redirecting = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(status, { location: target.url });
          res.end();
        });
      });
      await new Promise<void>((r) => redirecting.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}/hook`;
      try {
        const failure = await new WebhookNotifier('hook', url, SECRET, 5000).deliver(message('x')).catch((e: unknown) => e);
        expect(failure).to.be.instanceOf(PermanentDeliveryError);
        expect((failure as Error).message)
          .to.include(`HTTP ${status}`)
          .and.include(target.url);
        expect(target.received).to.deep.equal([]);
      } finally {
        redirecting.close();
        target.server.close();
      }
    });
  }

  it('dead-letters a delivery answered with a redirect at the first attempt, through a host', async () => {
    const target = await receiver(() => 200);
    const redirecting = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(308, { location: target.url });
        res.end();
      });
    });
    await new Promise<void>((r) => redirecting.listen(0, '127.0.0.1', r));
    server = redirecting;
    const dir = mkdtempSync(join(tmpdir(), 'ah-webhook-'));
    writeFileSync(
      join(dir, 'truth.json'),
      JSON.stringify({
        approvals: [
          {
            externalId: '1',
            title: 'One',
            status: 'pending',
            approvers: [{ sourceUserId: 'ann', email: 'ann@example.test' }],
            seq: 1,
            updatedAt: new Date().toISOString(),
          },
        ],
      }),
    );
    const deployment = loadDeployment(undefined, {
      env: { HOOK_SECRET: SECRET },
      raw: {
        plugins: [resolve(process.cwd(), 'test/fixtures/file-source-plugin')],
        queue: { adapter: 'memory' },
        sources: [{ id: 'files', plugin: 'file-source', config: { path: join(dir, 'truth.json') } }],
        notifiers: [
          {
            id: 'hook',
            plugin: 'webhook',
            config: { url: `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}/hook`, signingSecret: { env: 'HOOK_SECRET' } },
          },
        ],
        delivery: { maxAttempts: 10 },
      },
    });
    const host = await Host.create(deployment, { logger: pino({ level: 'silent' }) });
    try {
      await host.runOnce();
      const dead = await host.queue.listOutbox('dead');
      expect(dead.map((e) => e.approver.email)).to.deep.equal(['ann@example.test']);
      expect(dead[0]!.lastError).to.include('HTTP 308');
      expect(target.received).to.deep.equal([]);
    } finally {
      await host.stop();
      target.server.close();
    }
  });

  it('delivers once per approver through a host once the receiver recovers', async () => {
    let up = false;
    const r = await receiver(() => (up ? 200 : 500));
    server = r.server;
    const dir = mkdtempSync(join(tmpdir(), 'ah-webhook-'));
    const now = new Date().toISOString();
    writeFileSync(
      join(dir, 'truth.json'),
      JSON.stringify({
        approvals: [
          { externalId: '1', title: 'One', status: 'pending', approvers: [{ sourceUserId: 'ann', email: 'ann@example.test' }], seq: 1, updatedAt: now },
          { externalId: '2', title: 'Two', status: 'pending', approvers: [{ sourceUserId: 'bob', email: 'bob@example.test' }], seq: 2, updatedAt: now },
        ],
      }),
    );
    const deployment = loadDeployment(undefined, {
      env: { HOOK_SECRET: SECRET },
      raw: {
        plugins: [resolve(process.cwd(), 'test/fixtures/file-source-plugin')],
        queue: { adapter: 'memory' },
        sources: [{ id: 'files', plugin: 'file-source', config: { path: join(dir, 'truth.json') } }],
        notifiers: [{ id: 'hook', plugin: 'webhook', config: { url: r.url, signingSecret: { env: 'HOOK_SECRET' } } }],
        delivery: { maxAttempts: 10 },
      },
    });
    let clock = Date.now();
    const host = await Host.create(deployment, { logger: pino({ level: 'silent' }), clock: { now: () => new Date(clock) } });
    try {
      await host.runOnce();
      expect(r.received.length).to.equal(2);
      up = true;
      clock += 60_000; // past every backoff
      await host.drain();
      const delivered = r.received.slice(2);
      expect(delivered.map((d) => JSON.parse(d.body).recipient.email).sort()).to.deep.equal(['ann@example.test', 'bob@example.test']);
      expect(delivered.every((d) => d.valid)).to.equal(true);
      clock += 60_000;
      await host.drain();
      expect(r.received.length).to.equal(4);
    } finally {
      await host.stop();
    }
  });
});
