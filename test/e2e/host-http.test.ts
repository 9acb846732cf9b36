import { expect } from 'chai';
import { resolve } from 'node:path';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { createLogger } from '../../core/host/logging.js';
import { concurHarness, type ConcurHarness } from '../support/concur-harness.js';

describe('host HTTP: health, readiness and Prometheus metrics', function () {
  this.timeout(30_000);
  let h: ConcurHarness;
  afterEach(async () => h?.close());

  it('serves /healthz, /readyz and /metrics with Concur calls by endpoint and status, queue size and lag', async () => {
    h = await concurHarness({ http: true });
    for (let i = 0; i < 3; i++) h.sandbox.admin.submit({ entries: 2 });
    await h.host.start();
    const url = h.host.url!;
    expect(await (await fetch(`${url}/healthz`)).json()).to.deep.equal({ status: 'ok' });
    await h.cycle();
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).to.equal(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).to.match(/approvals_hub_source_calls_total\{source="acme",endpoint="GET \/api\/v3\.0\/expense\/reports",status="200"\} [1-9]/);
    expect(metrics).to.match(/approvals_hub_source_calls_total\{source="acme",endpoint="GET \/api\/v3\.0\/expense\/entries",status="200"\} 3/);
    expect(metrics).to.match(/approvals_hub_queue_size 3/);
    expect(metrics).to.match(/approvals_hub_outbox_depth\{state="pending"\} 0/);
    expect(metrics).to.match(/approvals_hub_detection_lag_seconds_count\{source="acme",stage="queued"\} 3/);
    expect(metrics).to.match(/approvals_hub_detection_lag_seconds_count\{source="acme",stage="delivered"\} 3/);
    expect(metrics).to.match(/approvals_hub_poll_duration_seconds_count\{source="acme",outcome="ok"\} [1-9]/);
  });

  it('reports not ready while a source is failing', async () => {
    h = await concurHarness({ http: true });
    await h.host.start();
    h.sandbox.setFaults({ rate503: 1, scope: ['reports'] });
    await h.host.runOnce();
    const ready = await fetch(`${h.host.url!}/readyz`);
    expect(ready.status).to.equal(503);
    const body = (await ready.json()) as { sources: Record<string, { ok: boolean; error?: string }> };
    expect(body.sources.acme!.ok).to.equal(false);
    expect(body.sources.acme!.error).to.match(/HTTP 503/);
  });
});

describe('host HTTP: the admin listener and what the public one shows', function () {
  this.timeout(30_000);
  let host: Host | undefined;
  afterEach(async () => {
    await host?.stop();
    host = undefined;
  });

  const start = async (raw: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<Host> => {
    host = await Host.create(loadDeployment(undefined, { raw: { queue: { adapter: 'memory' }, notifiers: [], ...raw }, env }), {
      logger: createLogger({ level: 'silent' }),
    });
    await host.start();
    return host;
  };

  it('serves /metrics and /readyz on the admin port, and 404 for them on the public one (which keeps /healthz)', async () => {
    const h = await start({ http: { host: '127.0.0.1', port: 0, admin: { port: 0 } } });
    expect(h.adminUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const metrics = await fetch(`${h.adminUrl!}/metrics`);
    expect(metrics.status).to.equal(200);
    expect(await metrics.text()).to.match(/approvals_hub_queue_size 0/);
    expect((await fetch(`${h.adminUrl!}/readyz`)).status).to.equal(200);
    expect((await fetch(`${h.url!}/metrics`)).status).to.equal(404);
    expect((await fetch(`${h.url!}/readyz`)).status).to.equal(404);
    expect(await (await fetch(`${h.url!}/healthz`)).json()).to.deep.equal({ status: 'ok' });
  });

  it('keeps /metrics and /readyz on the public listener when no admin listener is configured', async () => {
    const h = await start({ http: { host: '127.0.0.1', port: 0 } });
    expect(h.adminUrl).to.equal(undefined);
    expect((await fetch(`${h.url!}/metrics`)).status).to.equal(200);
  });

  it('scrubs a registered secret from the error a failing source reports in /readyz', async () => {
    const token = 'tok-5e8a0c41f7-readyz-secret';
    const h = await start(
      {
        plugins: [resolve(process.cwd(), 'test/fixtures/failing-source-plugin')],
        sources: [{ id: 'leaky', plugin: 'failing-source', config: { token: { env: 'AH_TEST_READYZ_TOKEN' }, failAt: 'cycle' } }],
        http: { host: '127.0.0.1', port: 0 },
      },
      { AH_TEST_READYZ_TOKEN: token },
    );
    const report = await h.runOnce();
    expect(report.failures[0]?.error).to.include(token); // the error did carry it
    const ready = await fetch(`${h.url!}/readyz`);
    expect(ready.status).to.equal(503);
    const body = await ready.text();
    expect(body).to.include('Bearer [REDACTED]');
    expect(body).not.to.include(token);
  });
});
