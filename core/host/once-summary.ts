import { DRIFT_CAUSES } from '../pipeline/source-runner.js';
import type { OnceReport } from './host.js';

/**
 * The lines `approvals-hub run --once` prints on standard output for one cycle: one per source
 * that ran (with what its sweep repaired that the feed missed, `drift N (cause n, ...)`, and the
 * records the host refused, `N rejected`, and, with push events healthy, what the poll found that
 * no push announced, when there were any), the reminders when the deployment
 * has them, and the delivery totals. Failures are not
 * among them (the CLI prints those on standard error); they are in `report.failures`.
 */
export function onceSummary(report: OnceReport): string[] {
  const lines = report.cycles.map(
    (c) =>
      `${c.source}: ${c.committed.inserted} new, ${c.committed.updated} updated, ${c.committed.completed} completed, ${c.purged} expired${c.swept ? ', swept' : ''}` +
      (c.drift
        ? `, drift ${c.drift} (${DRIFT_CAUSES.filter((cause) => c.driftByCause[cause])
            .map((cause) => `${cause} ${c.driftByCause[cause]}`)
            .join(', ')})`
        : '') +
      (c.rejected ? `, ${c.rejected} rejected` : '') +
      (DRIFT_CAUSES.some((cause) => c.eventDrift[cause])
        ? `, found by the poll, not pushed: ${DRIFT_CAUSES.filter((cause) => c.eventDrift[cause])
            .map((cause) => `${cause} ${c.eventDrift[cause]}`)
            .join(', ')}`
        : ''),
  );
  if (report.reminders) lines.push(`reminders: ${report.reminders.due} due, ${report.reminders.scheduled} messages owed`);
  lines.push(`delivered ${report.delivery.delivered}, retrying ${report.delivery.retried}, dead ${report.delivery.dead}`);
  return lines;
}

/** Whether a `run --once --strict` must fail: a sweep found drift, or a source yielded a record the host refused. */
export function onceHasDrift(report: OnceReport): boolean {
  return report.cycles.some((c) => c.drift > 0 || c.rejected > 0);
}
