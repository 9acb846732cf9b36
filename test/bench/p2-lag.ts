import { setTimeout as sleep } from 'node:timers/promises';
import type { DeliveryReceipt, Notifier, OutboundMessage } from '../../core/index.js';
import { startConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { hostOnSandbox } from './bench-host.js';
import { progress, round, summarise } from './bench-util.js';

/** P2: submission → notification lag at a short poll interval, in units of that interval. */
export async function p2Lag(samples = 40, intervalSeconds = 1): Promise<Record<string, unknown>> {
  const sandbox = await startConcurSandbox({ seed: 5, reports: 0, otherReports: 0, approvers: 5, employees: 30, clock: Date.now() });
  const deliveredAt = new Map<string, number>();
  const timing: Notifier = {
    id: 'chat',
    async deliver(m: OutboundMessage): Promise<DeliveryReceipt> {
      if (m.action === 'notify' && !deliveredAt.has(m.card.approvalKey)) deliveredAt.set(m.card.approvalKey, performance.now());
      return { ref: m.idempotencyKey };
    },
  };
  const host = await hostOnSandbox(sandbox, { pollIntervalSeconds: intervalSeconds, notifiers: [timing] });
  const submittedAt = new Map<string, number>();
  try {
    await host.start();
    await sleep(1500); // first sync and identity warm-up done
    progress(`P2: submitting ${samples} reports at random moments, poll interval ${intervalSeconds}s`);
    for (let i = 0; i < samples; i++) {
      const r = sandbox.admin.submit({ entries: 2 });
      submittedAt.set(`acme:expense-report:${r.ID}`, performance.now());
      await sleep(Math.random() * intervalSeconds * 1000);
    }
    const deadline = performance.now() + 30_000;
    while ([...submittedAt.keys()].some((k) => !deliveredAt.has(k)) && performance.now() < deadline) await sleep(100);
    const lags = [...submittedAt].filter(([k]) => deliveredAt.has(k)).map(([k, t]) => (deliveredAt.get(k)! - t) / 1000);
    const s = summarise(lags);
    return {
      intervalSeconds,
      samples: s.n,
      missing: samples - s.n,
      p50Seconds: round(s.p50),
      p99Seconds: round(s.p99),
      p50Intervals: round(s.p50 / intervalSeconds, 2),
      p99Intervals: round(s.p99 / intervalSeconds, 2),
      target: 'p99 <= interval + 1 s',
      met: s.p99 <= intervalSeconds + 1 && s.n === samples,
    };
  } finally {
    await host.stop();
    await sandbox.close();
  }
}
