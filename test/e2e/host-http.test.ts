import { expect } from 'chai';
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
