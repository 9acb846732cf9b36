import { emailKey } from '../model/email.js';
import type { QueuedApproval } from '../model/queue-types.js';

/**
 * Small rules every queue adapter applies the same way; kept here so memory, SQLite and
 * PostgreSQL cannot drift apart on them.
 */

/**
 * E-mails compare by {@link emailKey} (ASCII case and surrounding space only; blank is no e-mail).
 * Adapters store this key in their approver e-mail columns and compare it with `=`.
 */
export function normEmail(email: string | undefined): string | undefined {
  return emailKey(email);
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

/**
 * The SQL (SQLite and PostgreSQL alike) that deletes the receipt of one approval, approver and
 * channel, bound in that order with placeholders `p(1)`, `p(2)`, `p(3)`, when the card is final:
 * the approval has left the queue, the entry that wrote the receipt is gone, and nothing is still
 * owed or in flight on that line. Table names are given (qualified where needed).
 */
export function receiptPurgeSql(receipts: string, approvals: string, outbox: string, p: (n: number) => string): string {
  return `DELETE FROM ${receipts} AS r WHERE r.approval_key = ${p(1)} AND r.approver_id = ${p(2)} AND r.channel = ${p(3)}
    AND NOT EXISTS (SELECT 1 FROM ${approvals} a WHERE a.key = r.approval_key)
    AND NOT EXISTS (SELECT 1 FROM ${outbox} o WHERE o.id = r.outbox_id)
    AND NOT EXISTS (SELECT 1 FROM ${outbox} o WHERE o.approval_key = r.approval_key AND o.approver_id = r.approver_id
      AND o.channel = r.channel AND o.state IN ('pending', 'parked', 'inflight'))`;
}

/** Each (approval, approver, channel) once. */
export function distinctLines<T extends { approval_key: string; approver_id: string; channel: string }>(rows: readonly T[]): T[] {
  const seen = new Map<string, T>();
  for (const row of rows) seen.set(JSON.stringify([row.approval_key, row.approver_id, row.channel]), row);
  return [...seen.values()];
}

/**
 * The SQL condition (for an outbox row aliased `o`) under which a card message (notify, update,
 * close) may be claimed: no older card message to the same person about the same approval on the
 * same channel is still owed or in flight. They go in order, so a close never overtakes the notify
 * it must close (it would find no receipt and be dropped). Reminders and digests neither wait nor
 * hold others back. `outbox` is the table's (qualified) name; SQLite and PostgreSQL read it alike.
 */
export function firstInLineSql(outbox: string): string {
  return `(o.action NOT IN ('notify', 'update', 'close') OR NOT EXISTS (SELECT 1 FROM ${outbox} p
    WHERE p.approval_key = o.approval_key AND p.approver_id = o.approver_id AND p.channel = o.channel
    AND p.action IN ('notify', 'update', 'close') AND p.state IN ('pending', 'parked', 'inflight') AND p.id < o.id))`;
}
