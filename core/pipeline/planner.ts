import { randomUUID } from 'node:crypto';
import { fingerprint, type Approver } from '../model/approval.js';
import { cardFor, type CardOutcome } from '../model/card.js';
import { buildIdempotencyKey, parseIdempotencyKey } from '../model/idempotency-key.js';
import { normEmail } from './queue-support.js';
import type { ChangeBatch, CommitResult, Completion, QueuedApproval, ReminderSpend } from '../model/queue-types.js';

// The types a queue adapter's contract speaks in live in core/model (contracts import nothing from
// the pipeline); re-exported here so `approvals-hub/queue-kit` and older imports keep working.
export type { CardRenderer, CommitContext, OutboxDraft, ReminderDraft } from '../model/queue-types.js';
import type { CardRenderer, CommitContext, OutboxDraft } from '../model/queue-types.js';

/** An approver a batch notified about an approval generation: their reminder clock starts at the commit. */
export interface NotifiedApprover {
  readonly approvalKey: string;
  readonly approverId: string;
  readonly generation: string;
}

/** The writes one batch causes, computed by {@link planBatch} and applied by the adapter in one transaction. */
export interface BatchPlan {
  readonly upserts: readonly QueuedApproval[];
  readonly deletes: readonly string[];
  readonly outbox: readonly OutboxDraft[];
  /**
   * Each (approval, approver) owed a `notify` by this batch, once: the adapter (re)starts their
   * reminder count at 0 and its clock at the commit time. Only approvals the batch keeps queued.
   */
  readonly notified: readonly NotifiedApprover[];
  readonly result: CommitResult;
}

/**
 * Decides, for a batch, what changes in the queue and which messages are owed. Pure: adapters
 * read the existing rows for the batch's keys inside their transaction, call this, and write
 * what it returns, so every adapter has the same semantics by construction.
 *
 * - new pending approval → queued at revision 1, `notify` to each approver;
 * - changed card → revision + 1, `update` to each approver (never a second `notify`);
 * - approver set changed → `close(reassigned)` to those removed, `notify` to those added;
 * - left pending (or a completion) → row deleted, `close(<status>)` to each approver;
 * - an update older than the queued one (overlap replays) or unchanged → no message.
 */
export function planBatch(existing: ReadonlyMap<string, QueuedApproval>, batch: ChangeBatch, ctx: CommitContext): BatchPlan {
  const current = new Map(existing);
  const upserts = new Map<string, QueuedApproval>();
  const deletes = new Set<string>();
  const outbox: OutboxDraft[] = [];
  /** Generations this batch queued; see the end. */
  const born = new Set<string>();
  const counts = { inserted: 0, updated: 0, unchanged: 0, completed: 0, ignored: 0, reassigned: 0 };
  const lagMs: number[] = [];
  const nowIso = ctx.now.toISOString();

  const owe = (row: QueuedApproval, approver: Approver, action: 'notify' | 'update' | 'close', outcome?: CardOutcome): void => {
    const card = cardFor(ctx.render(row, outcome), approver);
    for (const channel of ctx.channels) {
      outbox.push({
        approvalKey: row.key,
        source: row.source,
        revision: row.revision,
        channel,
        approver,
        action,
        outcome,
        card,
        idempotencyKey: buildIdempotencyKey({
          kind: 'approval',
          approvalKey: row.key,
          generation: row.generation,
          revision: row.revision,
          approverId: approver.sourceUserId,
          channel,
          action,
        }),
        state: normEmail(approver.email) ? 'pending' : 'parked',
      });
    }
  };

  const complete = (row: QueuedApproval, status: Completion['status']): void => {
    const closed: QueuedApproval = { ...row, status, revision: row.revision + 1 };
    for (const approver of row.approvers) owe(closed, approver, 'close', status);
    current.delete(row.key);
    upserts.delete(row.key);
    deletes.add(row.key);
    counts.completed++;
  };

  for (const given of batch.approvals) {
    if (given.source !== batch.source) {
      throw new Error(`approval ${given.key} belongs to source "${given.source}", not "${batch.source}"`);
    }
    const before = current.get(given.key);
    // `content` / `sourceData` undefined means the source did not load them (sweeps): keep what is queued.
    const incoming =
      before && (given.content === undefined || given.sourceData === undefined)
        ? { ...given, content: given.content ?? before.content, sourceData: given.sourceData ?? before.sourceData }
        : given;
    const stale = Date.parse(incoming.sourceUpdatedAt) < ctx.notBefore.getTime();
    if (before && Date.parse(incoming.sourceUpdatedAt) < Date.parse(before.sourceUpdatedAt)) {
      counts.ignored++; // an older version replayed by the overlap window
      continue;
    }
    if (incoming.status !== 'pending') {
      if (before) complete(before, incoming.status);
      else counts.ignored++;
      continue;
    }
    if (stale) {
      // Retention is by the source's update time: a pending approval untouched for longer is never shown.
      if (before) complete(before, 'expired');
      else counts.ignored++;
      continue;
    }
    const approvers = mergeApprovers(incoming.approvers, before?.approvers ?? []);
    const fp = fingerprint(incoming);
    if (!before) {
      const row: QueuedApproval = { ...incoming, approvers, revision: 1, fingerprint: fp, queuedAt: nowIso, generation: randomUUID().slice(0, 8) };
      born.add(row.generation);
      current.set(row.key, row);
      upserts.set(row.key, row);
      deletes.delete(row.key);
      for (const approver of approvers) owe(row, approver, 'notify');
      counts.inserted++;
      lagMs.push(ctx.now.getTime() - Date.parse(row.sourceUpdatedAt));
      continue;
    }
    const beforeIds = new Set(before.approvers.map((a) => a.sourceUserId));
    const afterIds = new Set(approvers.map((a) => a.sourceUserId));
    const removed = before.approvers.filter((a) => !afterIds.has(a.sourceUserId));
    const added = approvers.filter((a) => !beforeIds.has(a.sourceUserId));
    const kept = approvers.filter((a) => beforeIds.has(a.sourceUserId));
    const cardChanged = fp !== before.fingerprint;
    const identityChanged = approvers.some((a) => {
      const was = before.approvers.find((b) => b.sourceUserId === a.sourceUserId);
      return a.email !== was?.email || a.timeZone !== was?.timeZone;
    });
    if (!cardChanged && removed.length === 0 && added.length === 0) {
      const row: QueuedApproval = { ...before, sourceUpdatedAt: incoming.sourceUpdatedAt, approvers };
      if (row.sourceUpdatedAt !== before.sourceUpdatedAt || identityChanged) {
        current.set(row.key, row);
        upserts.set(row.key, row);
      }
      counts.unchanged++;
      continue;
    }
    const row: QueuedApproval = {
      ...incoming,
      approvers,
      revision: before.revision + 1,
      fingerprint: fp,
      queuedAt: before.queuedAt,
      generation: before.generation,
    };
    current.set(row.key, row);
    upserts.set(row.key, row);
    for (const approver of removed) owe(row, approver, 'close', 'reassigned');
    for (const approver of added) owe(row, approver, 'notify');
    if (cardChanged) for (const approver of kept) owe(row, approver, 'update');
    counts.updated++;
    if (removed.length > 0 || added.length > 0) counts.reassigned++;
    lagMs.push(ctx.now.getTime() - Date.parse(row.sourceUpdatedAt));
  }

  for (const completion of batch.completions ?? []) {
    const before = current.get(completion.key);
    if (before) complete(before, completion.status);
    else counts.ignored++;
  }

  // An approval queued and completed within this one batch was never shown to anyone, so nothing is
  // owed for it. Owing would also break idempotency: a replay would queue it under a new generation.
  const kept = new Set([...upserts.values()].map((row) => row.generation));
  const owed = outbox.filter((o) => !born.has(generationOf(o)) || kept.has(generationOf(o)));
  const notified = new Map<string, NotifiedApprover>();
  for (const o of owed) {
    const generation = generationOf(o);
    if (o.action !== 'notify' || upserts.get(o.approvalKey)?.generation !== generation) continue;
    notified.set(JSON.stringify([o.approvalKey, o.approver.sourceUserId]), { approvalKey: o.approvalKey, approverId: o.approver.sourceUserId, generation });
  }
  return {
    upserts: [...upserts.values()],
    deletes: [...deletes],
    outbox: owed,
    notified: [...notified.values()],
    result: { ...counts, outbox: owed.length, lagMs },
  };
}

/** The generation part of an idempotency key (`<key>#<generation>.<revision>:…`). */
function generationOf(draft: OutboxDraft): string {
  return generationOfKey(draft.idempotencyKey);
}

/**
 * The generation an approval's idempotency key names (`<key>#<generation>.<revision>:…`); '' for a digest's key.
 * Kept for existing callers; {@link parseIdempotencyKey} reads every part.
 */
export function generationOfKey(idempotencyKey: string): string {
  const parts = parseIdempotencyKey(idempotencyKey);
  return parts.kind === 'approval' ? parts.generation : '';
}

/**
 * Keeps the last known e-mail and time zone of an approver when the source could not resolve them
 * this time (Concur's identity API times out), so a flaky directory never un-routes a queued
 * approval nor moves its reminders into the approver's night.
 */
function mergeApprovers(incoming: readonly Approver[], known: readonly Approver[]): Approver[] {
  const seen = new Set<string>();
  const out: Approver[] = [];
  for (const a of incoming) {
    if (seen.has(a.sourceUserId)) continue;
    seen.add(a.sourceUserId);
    const was = known.find((k) => k.sourceUserId === a.sourceUserId);
    const email = normEmail(a.email) ?? normEmail(was?.email);
    const timeZone = a.timeZone?.trim() || was?.timeZone;
    out.push({ sourceUserId: a.sourceUserId, name: a.name, email, ...(timeZone ? { timeZone } : {}), ...(a.onBehalfOf ? { onBehalfOf: a.onBehalfOf } : {}) });
  }
  return out;
}
