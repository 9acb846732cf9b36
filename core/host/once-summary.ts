import type { OnceReport } from './host.js';

/**
 * The lines `approvals-hub run --once` prints on standard output for one cycle: one per source
 * that ran, the reminders when the deployment has them, and the delivery totals. Failures are not
 * among them (the CLI prints those on standard error); they are in `report.failures`.
 */
export function onceSummary(report: OnceReport): string[] {
  const lines = report.cycles.map(
    (c) => `${c.source}: ${c.committed.inserted} new, ${c.committed.updated} updated, ${c.committed.completed} completed, ${c.purged} expired${c.swept ? ', swept' : ''}`,
  );
  if (report.reminders) lines.push(`reminders: ${report.reminders.due} due, ${report.reminders.scheduled} messages owed`);
  lines.push(`delivered ${report.delivery.delivered}, retrying ${report.delivery.retried}, dead ${report.delivery.dead}`);
  return lines;
}
