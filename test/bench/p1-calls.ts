import { RecordingNotifier } from '../../core/testing/index.js';
import { callsTo, startConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { hostOnSandbox } from './bench-host.js';
import { progress, sandboxAccessToken } from './bench-util.js';

const LIST = 'GET /api/v3.0/expense/reports';
const ENTRIES = 'GET /api/v3.0/expense/entries';

/**
 * P1: Concur calls per quiet cycle and per k changed reports, against the minimum (1; ceil(k/100)
 * list calls + k entries calls) and against a naive poller that re-lists every pending report
 * (and reads its entries) every cycle.
 */
export async function p1Calls(pending = 1000): Promise<Record<string, unknown>> {
  progress(`P1: seeding ${pending} pending reports`);
  const sandbox = await startConcurSandbox({
    seed: 3,
    reports: pending,
    otherReports: 0,
    approvers: 20,
    employees: 200,
    clock: '2026-03-02T09:00:00.000Z',
    freezeClock: true,
  });
  // Sweeps (every 15 min by default: ceil(pending/100) list calls) are scheduled apart from the
  // incremental poll and are left out here, so each row counts one poll cycle.
  const host = await hostOnSandbox(sandbox, {
    notifiers: [new RecordingNotifier('chat')],
    clock: { now: () => new Date(sandbox.admin.now()) },
    sweepIntervalSeconds: 86_400,
    // The go-live backlog's line items are measured apart (P4 backfill); here each row is detection alone.
    config: { backfillCallsPerCycle: 0 },
  });
  try {
    await host.runOnce(); // first sync
    sandbox.admin.advanceClock(600);
    await host.runOnce(); // settles the overlap window
    const rows: Record<string, unknown>[] = [];
    sandbox.resetCalls();
    await host.runOnce();
    const quiet = sandbox.calls().total;
    rows.push({ case: 'quiet cycle', calls: quiet, minimum: 1, naive: Math.ceil(pending / 100) + pending });
    for (const k of [1, 100, 250]) {
      sandbox.admin.advanceClock(600);
      for (let i = 0; i < k; i++) sandbox.admin.submit({ entries: 2 });
      sandbox.resetCalls();
      const report = await host.runOnce();
      const c = sandbox.calls();
      const minimum = Math.ceil(k / 100) + k;
      // Reports the overlap window re-reads (changed within overlapSeconds of the cursor): listed again, not enriched again.
      const reread = report.cycles[0]?.committed.unchanged ?? 0;
      rows.push({
        case: `${k} changed`,
        calls: c.total,
        list: callsTo(c, LIST),
        entries: callsTo(c, ENTRIES),
        minimum,
        overlapReread: reread,
        minimumWithOverlap: Math.ceil((k + reread) / 100) + k,
        naive: Math.ceil((pending + k) / 100) + pending + k,
      });
      pending += k;
    }
    // The naive poller, measured: every pending report listed (and its entries read) each cycle.
    sandbox.resetCalls();
    const accessToken = await sandboxAccessToken(sandbox);
    const headers = { authorization: `Bearer ${accessToken}`, accept: 'application/json' };
    let url: string | undefined = `${sandbox.baseUrl}/api/v3.0/expense/reports?user=ALL&approvalStatusCode=A_PEND&limit=100`;
    let listed = 0;
    while (url) {
      const page = (await (await fetch(url, { headers })).json()) as { Items: { ID: string }[]; NextPage?: string | null };
      for (const r of page.Items) {
        await (await fetch(`${sandbox.baseUrl}/api/v3.0/expense/entries?reportID=${r.ID}&limit=100`, { headers })).arrayBuffer();
        listed++;
      }
      url = page.NextPage ?? undefined;
    }
    const naiveMeasured = sandbox.calls().total;
    for (const row of rows) {
      row.atMinimum = row.calls === (row.minimumWithOverlap ?? row.minimum);
      row.naiveRatio = Number(((row.naive as number) / (row.calls as number)).toFixed(1));
    }
    return { pending, rows, naiveMeasuredPerCycle: naiveMeasured, naiveListed: listed };
  } finally {
    await host.stop();
    await sandbox.close();
  }
}
