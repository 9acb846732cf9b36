import type { CardAction } from '../../core/index.js';
import { concurHarness, SOURCE } from '../support/concur-harness.js';
import { connectAs } from '../support/concur-consent.js';
import { progress, round, summarise } from './bench-util.js';

type Act = Extract<CardAction, { type: 'act' }>;
const PUBLIC_URL = 'https://approvals.example.test';

/**
 * P6: a click on Approve, through the core's checks and the Concur plugin, to Concur's answer,
 * on the sandbox over loopback HTTP: latency p50/p99 (with Concur answering at once, which is our
 * own cost, and with the sandbox's 'slow' profile of 200–400 ms per call, nearer a real company),
 * and Concur calls per action (target: one guard read and one write). Each approver connects
 * once first, as they do the first time; their access tokens are then warm.
 */
export async function p6Actions(reports: number): Promise<Record<string, unknown>> {
  const rows: Record<string, unknown>[] = [];
  for (const profile of ['none', 'slow'] as const) {
    const h = await concurHarness({ http: true, config: { actions: ['approve', 'sendBack'], consent: { publicUrl: PUBLIC_URL } } });
    try {
      await h.host.start();
      const local = (url: string) => {
        const u = new URL(url);
        return `${h.host.url!}${u.pathname}${u.search}`;
      };
      const submitted = Array.from({ length: reports }, () => h.sandbox.admin.submit({ entries: 1 }));
      await h.cycle();
      const users = h.sandbox.admin.users();
      const approverOf = (id: string) => users.find((u) => u.loginId === h.sandbox.admin.report(id)!.ApproverLoginID)!;
      const tokenOf = (id: string, email: string) => {
        const card = h.notifier.for(email, `${SOURCE}:expense-report:${id}`).at(-1)!.card;
        return card.actions.find((a): a is Act => a.type === 'act' && a.action === 'approve')!.token!;
      };
      // Each approver's first click asks them to connect; they do, once.
      const connected = new Set<string>();
      for (const r of submitted) {
        const approver = approverOf(r.ID);
        const email = approver.email.toLowerCase();
        if (connected.has(email)) continue;
        const first = await h.host.actions.act(tokenOf(r.ID, email), { email, channel: 'chat' });
        if (first.outcome !== 'consent_needed') throw new Error(`expected consent_needed, got ${JSON.stringify(first)}`);
        await connectAs(h.sandbox, first.url, approver.loginId, local);
        connected.add(email);
      }
      h.sandbox.admin.setFaults(profile);
      progress(`P6: ${reports} approvals with the sandbox's '${profile}' latency profile`);
      const before = h.sandbox.calls();
      const samples: number[] = [];
      let done = 0;
      for (const r of submitted) {
        const email = approverOf(r.ID).email.toLowerCase();
        const token = tokenOf(r.ID, email);
        const started = performance.now();
        const result = await h.host.actions.act(token, { email, channel: 'chat' });
        samples.push(performance.now() - started);
        if (result.outcome === 'done') done++;
      }
      const after = h.sandbox.calls();
      // Which endpoints the actions cost, so a figure above 2 says what it was (a token refresh, a retry).
      const byEndpoint = Object.fromEntries(
        Object.entries(after.byEndpoint)
          .map(([key, e]) => [key, e.total - (before.byEndpoint[key]?.total ?? 0)] as const)
          .filter(([, n]) => n > 0),
      );
      // The host keeps polling meanwhile (its 60 s timer runs during the slow run): those company reads are not the actions'.
      const ofActions = (key: string) => key.startsWith('GET /expensereports/v4/') || key.startsWith('PATCH ') || key.startsWith('POST /oauth2/');
      const calls = Object.entries(byEndpoint).reduce((n, [key, count]) => n + (ofActions(key) ? count : 0), 0);
      const s = summarise(samples);
      rows.push({
        profile,
        actions: reports,
        done,
        clickToAnswerMs: { p50: round(s.p50, 1), p99: round(s.p99, 1), max: round(s.max, 1) },
        concurCallsPerAction: round(calls / reports, 2),
        byEndpoint,
        target: 'one guard read + one write = 2',
        met: calls / reports <= 2,
      });
    } finally {
      await h.close();
    }
  }
  return { rows };
}
