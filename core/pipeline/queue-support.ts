import type { QueuedApproval } from '../model/queue-types.js';

/**
 * Small rules every queue adapter applies the same way; kept here so memory, SQLite and
 * PostgreSQL cannot drift apart on them.
 */

/** E-mails compare case-insensitively and without surrounding space; blank is no e-mail. */
export function normEmail(email: string | undefined): string | undefined {
  return email?.trim().toLowerCase() || undefined;
}

/** A source time in `toISOString()` form, so text order is time order; a value that is not a time fails the batch. */
export function isoTime(value: string, key: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new Error(`approval ${key}: sourceUpdatedAt "${value}" is not a time`);
  return new Date(ms).toISOString();
}

/** Rows grouped by source instance, for planning one batch per source. */
export function bySource(rows: readonly QueuedApproval[]): Map<string, QueuedApproval[]> {
  const groups = new Map<string, QueuedApproval[]>();
  for (const row of rows) {
    const group = groups.get(row.source);
    if (group) group.push(row);
    else groups.set(row.source, [row]);
  }
  return groups;
}
