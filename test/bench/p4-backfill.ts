import type { DeliveryReceipt, Notifier } from '../../core/index.js';
import { callsTo, startConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { SMALL_COMPANY } from '../support/sandbox-deployment.js';
import { hostOnSandbox } from './bench-host.js';
import { progress, round } from './bench-util.js';

const ENTRIES = 'GET /api/v3.0/expense/entries';
const POLL_SECONDS = 60;

/**
 * P4, after go-live: what giving every card of a first sync's backlog its line items costs. A
 * scaled-down go-live of `reports` (several pages) against an in-process sandbox whose clock is
 * the host's, then one cycle a poll interval until the backfill has nothing left, counting the
 * entries calls and cycles; the figures for `projectTo` reports follow from the measured rate
 * (each cycle spends `backfillCallsPerCycle` entries calls, one per report).
 */
export async function p4Backfill(reports = 2_000, callsPerCycle = 20, projectTo = 100_000): Promise<Record<string, unknown>> {
  progress(
    `P4 backfill: go-live of ${reports.toLocaleString()} reports, backfillCallsPerCycle ${callsPerCycle}, then cycles until every card has its line items`,
  );
  const sandbox = await startConcurSandbox({ ...SMALL_COMPANY, approvers: 20, employees: 200 });
  const sink: Notifier = { id: 'chat', deliver: async (m): Promise<DeliveryReceipt> => ({ ref: m.idempotencyKey }) };
  const host = await hostOnSandbox(sandbox, {
    notifiers: [sink],
    clock: { now: () => new Date(sandbox.admin.now()) },
    config: { backfillCallsPerCycle: callsPerCycle },
  });
  try {
    for (let i = 0; i < reports; i++) sandbox.admin.submit({ entries: 2 });
    await host.runOnce();
    const goLiveEntries = callsTo(sandbox.calls(), ENTRIES);
    const backlog = (await host.backfillPending())[0]?.pending ?? 0;
    sandbox.resetCalls();
    let cycles = 0;
    let updates = 0;
    while (((await host.backfillPending())[0]?.pending ?? 0) > 0 && cycles < 100_000) {
      sandbox.admin.advanceClock(POLL_SECONDS);
      const once = await host.runOnce();
      if (once.failures.length) throw new Error(once.failures.map((f) => f.error).join('; '));
      updates += once.cycles.reduce((n, c) => n + c.backfilled, 0);
      cycles++;
    }
    const entriesCalls = callsTo(sandbox.calls(), ENTRIES);
    const projectedCycles = Math.ceil(projectTo / callsPerCycle);
    return {
      reports,
      backlog,
      goLiveEntriesCalls: goLiveEntries,
      backfillCycles: cycles,
      backfillEntriesCalls: entriesCalls,
      entriesCallsPerReport: round(entriesCalls / reports, 3),
      cardsUpdated: updates,
      [`projected${projectTo}`]: {
        entriesCalls: Math.round((entriesCalls / reports) * projectTo),
        cycles: projectedCycles,
        hoursAt60sInterval: round((projectedCycles * POLL_SECONDS) / 3600, 1),
      },
    };
  } finally {
    await host.stop();
    await sandbox.close();
  }
}
