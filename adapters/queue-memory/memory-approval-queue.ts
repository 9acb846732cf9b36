import {
  CARD_ACTIONS,
  injectable,
  type ApprovalQueue,
  type Approver,
  type AuditRecord,
  type ChangeBatch,
  type ClaimedTrigger,
  type CommitContext,
  type CommitResult,
  type DeliveredEntry,
  type DeliveryReceipt,
  type DueReminderQuery,
  type ListOptions,
  type OutboxEntry,
  type OutboxOutcome,
  type OutboxState,
  type QueuedApproval,
  type ReminderCandidate,
  type ReminderDraft,
  type SourceTrigger,
} from '../../core/index.js';
import { bySource, isoTime, normEmail, planBatch, type BatchPlan, type OutboxDraft } from '../../core/queue-kit.js';

interface StoredRow {
  readonly approval: QueuedApproval;
  /** `sourceUpdatedAt` in `toISOString()` form, so string order is time order. */
  readonly updatedAt: string;
}

interface StoredEntry {
  readonly id: number;
  readonly draft: OutboxDraft;
  readonly createdAt: string;
  state: OutboxState;
  /** Claims so far, the current one included. */
  claims: number;
  nextAttemptAt: string;
  claimedAt?: string | undefined;
  settledAt?: string | undefined;
  lastError?: string | undefined;
}

/** Reminders spent on one approval generation for one approver, and when they were last notified or reminded. */
interface StoredReminder {
  readonly approvalKey: string;
  readonly approverId: string;
  generation: string;
  sent: number;
  lastAt: string;
}

/**
 * The queue in process memory: for tests and trying things out; everything is lost on exit.
 * Values go in and out through a JSON round trip, as they would through a database column, so
 * callers never share objects with the queue and both adapters return identical shapes.
 */
@injectable()
export class MemoryApprovalQueue implements ApprovalQueue {
  private status: 'new' | 'open' | 'closed' = 'new';
  private readonly rows = new Map<string, StoredRow>();
  private readonly cursors = new Map<string, string>();
  private readonly outbox = new Map<number, StoredEntry>();
  private readonly idempotencyKeys = new Set<string>();
  private readonly receipts = new Map<string, { ref: string; outboxId: number }>();
  /** Approval key → approver id → reminders; removed with the approval. */
  private readonly reminders = new Map<string, Map<string, StoredReminder>>();
  private readonly state = new Map<string, string>();
  private readonly audit: AuditRecord[] = [];
  private lastOutboxId = 0;
  /** Pending triggers by seq. */
  private readonly triggers = new Map<number, { source: string; trigger: SourceTrigger; attempts: number; claimableAt: string }>();
  /** Trigger ids by `[source, id]`: the seq while pending, or when it was settled. */
  private readonly triggerIds = new Map<string, { seq: number } | { settledAt: string }>();
  private lastTriggerSeq = 0;

  async init(): Promise<void> {
    if (this.status === 'closed') throw new Error('memory queue is closed');
    this.status = 'open';
  }

  async close(): Promise<void> {
    this.status = 'closed';
  }

  async commit(batch: ChangeBatch, ctx: CommitContext): Promise<CommitResult> {
    this.assertOpen();
    const existing = new Map<string, QueuedApproval>();
    for (const key of [...batch.approvals.map((a) => a.key), ...(batch.completions ?? []).map((c) => c.key)]) {
      const row = this.rows.get(key);
      if (row) existing.set(key, row.approval);
    }
    const plan = planBatch(existing, batch, ctx);
    const at = ctx.now.toISOString();
    const audit = (batch.audit ?? []).map((entry) => copy({ ...entry, at }));
    const apply = this.prepare([plan], ctx.now);
    // Nothing above changed the queue; nothing below can throw.
    const outbox = apply();
    if (batch.cursor !== undefined) this.cursors.set(batch.source, batch.cursor);
    for (const entry of audit) this.audit.push({ ...entry, id: this.audit.length + 1 });
    return { ...plan.result, outbox };
  }

  async getCursor(source: string): Promise<string | undefined> {
    this.assertOpen();
    return this.cursors.get(source);
  }

  async get(key: string): Promise<QueuedApproval | undefined> {
    this.assertOpen();
    const row = this.rows.get(key);
    return row && copy(row.approval);
  }

  async listForApprover(email: string, options: ListOptions): Promise<QueuedApproval[]> {
    this.assertOpen();
    const approver = normEmail(email);
    if (!approver) return [];
    return this.matching(options, (row) => row.approval.status === 'pending' && row.approval.approvers.some((a) => normEmail(a.email) === approver))
      .slice(0, upTo(options.limit))
      .map((row) => copy(row.approval));
  }

  async list(options: ListOptions): Promise<QueuedApproval[]> {
    this.assertOpen();
    return this.matching(options)
      .slice(0, upTo(options.limit))
      .map((row) => copy(row.approval));
  }

  async keys(source: string): Promise<{ key: string; externalId: string; sourceUpdatedAt: string }[]> {
    this.assertOpen();
    return [...this.rows.values()]
      .filter((row) => row.approval.source === source)
      .map((row) => ({ key: row.approval.key, externalId: row.approval.externalId, sourceUpdatedAt: row.updatedAt }))
      .sort((a, b) => compare(a.key, b.key));
  }

  async count(options: ListOptions): Promise<number> {
    this.assertOpen();
    return this.matching(options).length;
  }

  async purgeExpired(ctx: CommitContext): Promise<string[]> {
    this.assertOpen();
    const notBefore = ctx.notBefore.toISOString();
    const expired = [...this.rows.values()]
      .filter((row) => row.updatedAt < notBefore)
      .map((row) => row.approval)
      .sort((a, b) => compare(a.key, b.key));
    const plans = [...bySource(expired)].map(([source, rows]) =>
      planBatch(
        new Map(rows.map((row) => [row.key, row])),
        { source, approvals: [], completions: rows.map((row) => ({ key: row.key, status: 'expired' as const })) },
        ctx,
      ),
    );
    this.prepare(plans, ctx.now)();
    return expired.map((row) => row.key);
  }

  async parkedApprovers(source: string): Promise<Approver[]> {
    this.assertOpen();
    const approvers = new Map<string, Approver>();
    for (const entry of this.outbox.values()) {
      const approver = entry.draft.approver;
      if (entry.state === 'parked' && entry.draft.source === source && !approvers.has(approver.sourceUserId)) {
        approvers.set(approver.sourceUserId, copy(approver));
      }
    }
    return [...approvers.values()];
  }

  async resolveApprover(source: string, approver: Required<Pick<Approver, 'sourceUserId' | 'email'>> & Approver): Promise<number> {
    this.assertOpen();
    const email = normEmail(approver.email);
    if (!email) throw new Error(`approver ${approver.sourceUserId} of ${source}: cannot resolve to an empty e-mail`);
    const id = approver.sourceUserId;
    for (const [key, row] of this.rows) {
      if (row.approval.source !== source || !row.approval.approvers.some((a) => a.sourceUserId === id)) continue;
      const approvers = row.approval.approvers.map((a) => (a.sourceUserId === id ? { ...a, email } : a));
      this.rows.set(key, { ...row, approval: { ...row.approval, approvers } });
    }
    let released = 0;
    for (const [entryId, entry] of this.outbox) {
      if (entry.state !== 'parked' || entry.draft.source !== source || entry.draft.approver.sourceUserId !== id) continue;
      this.outbox.set(entryId, { ...entry, state: 'pending', draft: { ...entry.draft, approver: { ...entry.draft.approver, email } } });
      released++;
    }
    return released;
  }

  async claimOutbox(limit: number, now: Date, leaseMs: number): Promise<OutboxEntry[]> {
    this.assertOpen();
    const at = now.toISOString();
    const expired = new Date(now.getTime() - leaseMs).toISOString();
    // Card messages to one person about one approval on one channel go in order (see the SQL adapters).
    const entries = [...this.outbox.values()].sort((a, b) => a.id - b.id);
    const unsettled = new Set<string>();
    const due: typeof entries = [];
    for (const e of entries) {
      const card = CARD_ACTIONS.has(e.draft.action);
      const line = JSON.stringify([e.draft.approvalKey, e.draft.approver.sourceUserId, e.draft.channel]);
      const claimable = (e.state === 'pending' && e.nextAttemptAt <= at) || (e.state === 'inflight' && e.claimedAt !== undefined && e.claimedAt <= expired);
      if (claimable && !(card && unsettled.has(line)) && due.length < Math.max(0, Math.trunc(limit))) due.push(e);
      if (card && (e.state === 'pending' || e.state === 'parked' || e.state === 'inflight')) unsettled.add(line);
    }
    for (const entry of due) {
      entry.state = 'inflight';
      entry.claimedAt = at;
      entry.claims++;
    }
    return due.map(toEntry);
  }

  async settleOutbox(id: number, outcome: OutboxOutcome, now: Date): Promise<void> {
    this.assertOpen();
    const entry = this.outbox.get(id);
    if (!entry) throw new Error(`outbox entry ${id} does not exist`);
    entry.claimedAt = undefined;
    entry.settledAt = outcome.state === 'retry' ? undefined : now.toISOString();
    switch (outcome.state) {
      case 'delivered': {
        entry.state = 'delivered';
        const { approvalKey, approver, channel } = entry.draft;
        // A reminder or digest delivered without a receipt showed no card, so it replaces nothing.
        if (!CARD_ACTIONS.has(entry.draft.action) && !outcome.receipt) return;
        // What this delivery showed replaces every older message still owed to the same person
        // on the same channel: sending those later would show them an older card, or a second one.
        for (const [otherId, other] of this.outbox) {
          const d = other.draft;
          if (
            otherId < id &&
            (other.state === 'pending' || other.state === 'parked') &&
            d.approvalKey === approvalKey &&
            d.approver.sourceUserId === approver.sourceUserId &&
            d.channel === channel
          ) {
            other.state = 'superseded';
          }
        }
        if (!outcome.receipt) return;
        const key = receiptKey(approvalKey, approver.sourceUserId, channel);
        // A late delivery of an older entry never replaces the receipt of a newer message.
        // Ordered by outbox id, not revision: revisions restart when an approval is queued again.
        if ((this.receipts.get(key)?.outboxId ?? -Infinity) <= id) this.receipts.set(key, { ref: outcome.receipt.ref, outboxId: id });
        return;
      }
      case 'superseded':
        entry.state = 'superseded';
        return;
      case 'retry':
        entry.state = 'pending';
        entry.nextAttemptAt = outcome.nextAttemptAt.toISOString();
        entry.lastError = outcome.error;
        return;
      case 'dead':
        entry.state = 'dead';
        entry.lastError = outcome.error;
        return;
    }
  }

  async listOutbox(state: OutboxState, limit?: number): Promise<OutboxEntry[]> {
    this.assertOpen();
    return [...this.outbox.values()]
      .filter((e) => e.state === state)
      .slice(0, upTo(limit))
      .map(toEntry);
  }

  async purgeOutbox(settledBefore: Date, limit: number): Promise<{ entries: number; receipts: number }> {
    this.assertOpen();
    const before = settledBefore.toISOString();
    const purged = [...this.outbox.values()]
      .filter((e) => (e.state === 'delivered' || e.state === 'superseded' || e.state === 'dead') && e.settledAt !== undefined && e.settledAt < before)
      .sort((a, b) => (a.settledAt! < b.settledAt! ? -1 : a.settledAt! > b.settledAt! ? 1 : a.id - b.id))
      .slice(0, upTo(limit));
    for (const e of purged) {
      this.outbox.delete(e.id);
      this.idempotencyKeys.delete(e.draft.idempotencyKey);
    }
    let receipts = 0;
    for (const e of purged) {
      const { approvalKey, approver, channel } = e.draft;
      const key = receiptKey(approvalKey, approver.sourceUserId, channel);
      const receipt = this.receipts.get(key);
      if (!receipt || this.rows.has(approvalKey) || this.outbox.has(receipt.outboxId)) continue;
      const owed = [...this.outbox.values()].some(
        (o) =>
          (o.state === 'pending' || o.state === 'parked' || o.state === 'inflight') &&
          o.draft.approvalKey === approvalKey &&
          o.draft.approver.sourceUserId === approver.sourceUserId &&
          o.draft.channel === channel,
      );
      if (owed) continue;
      this.receipts.delete(key);
      receipts++;
    }
    return { entries: purged.length, receipts };
  }

  async deliveredSince(channel: string, after: Date, limit: number): Promise<DeliveredEntry[]> {
    this.assertOpen();
    const from = after.toISOString();
    return [...this.outbox.values()]
      .filter((e) => e.state === 'delivered' && e.draft.channel === channel && e.settledAt !== undefined && e.settledAt > from)
      .sort((a, b) => (a.settledAt! < b.settledAt! ? -1 : a.settledAt! > b.settledAt! ? 1 : a.id - b.id))
      .slice(0, upTo(limit))
      .map((e) => ({ ...toEntry(e), settledAt: e.settledAt! }));
  }

  async outboxCounts(): Promise<Record<'pending' | 'parked' | 'inflight' | 'dead', number>> {
    this.assertOpen();
    const counts = { pending: 0, parked: 0, inflight: 0, dead: 0 };
    for (const e of this.outbox.values()) if (e.state in counts) counts[e.state as keyof typeof counts]++;
    return counts;
  }

  async releaseInflight(): Promise<number> {
    this.assertOpen();
    let released = 0;
    for (const entry of this.outbox.values()) {
      if (entry.state !== 'inflight') continue;
      entry.state = 'pending';
      entry.claimedAt = undefined;
      released++;
    }
    return released;
  }

  async receipt(approvalKey: string, approverId: string, channel: string): Promise<DeliveryReceipt | undefined> {
    this.assertOpen();
    const receipt = this.receipts.get(receiptKey(approvalKey, approverId, channel));
    return receipt && { ref: receipt.ref };
  }

  async dueReminders(query: DueReminderQuery): Promise<ReminderCandidate[]> {
    this.assertOpen();
    const lastBefore = query.lastBefore.toISOString();
    const notBefore = query.notBefore.toISOString();
    const after = query.after;
    const due: ReminderCandidate[] = [];
    for (const r of [...this.reminders.values()].flatMap((byApprover) => [...byApprover.values()])) {
      if (r.sent >= query.maxReminders || r.lastAt > lastBefore) continue;
      if (after && (compare(r.lastAt, after.lastAt) || compare(r.approvalKey, after.approvalKey) || compare(r.approverId, after.approverId)) <= 0) continue;
      const row = this.rows.get(r.approvalKey);
      if (!row || row.approval.status !== 'pending' || row.updatedAt < notBefore || row.approval.generation !== r.generation) continue;
      const approver = row.approval.approvers.find((a) => a.sourceUserId === r.approverId);
      if (!approver || !normEmail(approver.email)) continue;
      due.push(copy({ approval: row.approval, approver, sent: r.sent, lastAt: r.lastAt }));
    }
    return due
      .sort((a, b) => compare(a.lastAt, b.lastAt) || compare(a.approval.key, b.approval.key) || compare(a.approver.sourceUserId, b.approver.sourceUserId))
      .slice(0, upTo(query.limit));
  }

  async scheduleReminders(drafts: readonly ReminderDraft[], now: Date): Promise<number> {
    this.assertOpen();
    const at = now.toISOString();
    let written = 0;
    for (const draft of drafts.map(copy)) {
      const spends = draft.spends.map((spend) => ({ spend, stored: this.reminders.get(spend.approvalKey)?.get(spend.approverId) }));
      const current = spends.every(({ spend, stored }) => {
        const row = this.rows.get(spend.approvalKey)?.approval;
        return stored?.generation === spend.generation && stored.sent === spend.sent && row?.status === 'pending' && row.generation === spend.generation;
      });
      if (!current || draft.outbox.every((o) => this.idempotencyKeys.has(o.idempotencyKey))) continue;
      written += this.prepare([{ upserts: [], deletes: [], outbox: draft.outbox, notified: [], result: EMPTY_RESULT }], now)();
      for (const { stored } of spends) {
        stored!.sent++;
        stored!.lastAt = at;
      }
    }
    return written;
  }

  async getState(namespace: string, key: string): Promise<string | undefined> {
    this.assertOpen();
    return this.state.get(JSON.stringify([namespace, key]));
  }

  async setState(namespace: string, key: string, value: string): Promise<void> {
    this.assertOpen();
    this.state.set(JSON.stringify([namespace, key]), value);
  }

  async addTriggers(source: string, triggers: readonly SourceTrigger[]): Promise<{ added: number; duplicates: number }> {
    this.assertOpen();
    let added = 0;
    for (const trigger of triggers) {
      const id = JSON.stringify([source, trigger.id]);
      if (this.triggerIds.has(id)) continue;
      const seq = ++this.lastTriggerSeq;
      this.triggers.set(seq, { source, trigger: copy(trigger), attempts: 0, claimableAt: '' });
      this.triggerIds.set(id, { seq });
      added++;
    }
    return { added, duplicates: triggers.length - added };
  }

  async claimTriggers(source: string, limit: number, now: Date, leaseMs: number): Promise<ClaimedTrigger[]> {
    this.assertOpen();
    const at = now.toISOString();
    const until = new Date(now.getTime() + leaseMs).toISOString();
    const out: ClaimedTrigger[] = [];
    for (const [seq, row] of this.triggers) {
      if (out.length >= limit) break;
      if (row.source !== source || row.claimableAt > at) continue;
      row.attempts++;
      row.claimableAt = until;
      out.push({ ...copy(row.trigger), seq, attempts: row.attempts });
    }
    return out;
  }

  async settleTriggers(source: string, seqs: readonly number[], now: Date): Promise<void> {
    this.assertOpen();
    for (const seq of seqs) {
      const row = this.triggers.get(seq);
      if (row?.source !== source) continue;
      this.triggers.delete(seq);
      this.triggerIds.set(JSON.stringify([source, row.trigger.id]), { settledAt: now.toISOString() });
    }
  }

  async releaseTriggers(source: string, seqs: readonly number[], retryAt: Date): Promise<void> {
    this.assertOpen();
    for (const seq of seqs) {
      const row = this.triggers.get(seq);
      if (row?.source === source) row.claimableAt = retryAt.toISOString();
    }
  }

  async pendingTriggers(source: string): Promise<{ count: number; oldestReceivedAt: string | undefined }> {
    this.assertOpen();
    let count = 0;
    let oldest: string | undefined;
    for (const row of this.triggers.values()) {
      if (row.source !== source) continue;
      count++;
      if (oldest === undefined || row.trigger.receivedAt < oldest) oldest = row.trigger.receivedAt;
    }
    return { count, oldestReceivedAt: oldest };
  }

  async purgeTriggers(before: Date): Promise<number> {
    this.assertOpen();
    const cut = before.toISOString();
    let purged = 0;
    for (const [id, entry] of this.triggerIds) {
      if ('settledAt' in entry && entry.settledAt < cut) {
        this.triggerIds.delete(id);
        purged++;
      }
    }
    return purged;
  }

  /** Holders of state locks in this process (the only one that sees this queue), by entry. */
  private readonly stateLocks = new Map<string, Promise<unknown>>();

  async withStateLock<T>(
    namespace: string,
    key: string,
    work: (value: string | undefined) => Promise<{ readonly value?: string | undefined; readonly result: T }>,
  ): Promise<T> {
    this.assertOpen();
    const id = JSON.stringify([namespace, key]);
    const before = this.stateLocks.get(id) ?? Promise.resolve();
    const turn = before
      .catch(() => undefined)
      .then(async () => {
        this.assertOpen();
        const update = await work(this.state.get(id));
        if (update.value !== undefined) this.state.set(id, update.value);
        return update.result;
      });
    this.stateLocks.set(id, turn);
    try {
      return await turn;
    } finally {
      if (this.stateLocks.get(id) === turn) this.stateLocks.delete(id);
    }
  }

  /** Lost on exit like everything here: a random key per process will do. */
  credentialKeyHome(): { readonly kind: 'process' } {
    return { kind: 'process' };
  }

  async listAudit(limit?: number): Promise<AuditRecord[]> {
    this.assertOpen();
    return this.audit.slice().reverse().slice(0, upTo(limit)).map(copy);
  }

  /**
   * Turns plans into stored values, the only step that can throw (an unparseable time, a card
   * that is not JSON), and returns the step that applies them and counts the new outbox entries.
   */
  private prepare(plans: readonly BatchPlan[], now: Date): () => number {
    const createdAt = now.toISOString();
    const deletes = plans.flatMap((plan) => plan.deletes);
    const upserts = plans.flatMap((plan) => plan.upserts).map((row) => ({ approval: copy(row), updatedAt: isoTime(row.sourceUpdatedAt, row.key) }));
    const drafts = plans.flatMap((plan) => plan.outbox).map(copy);
    const notified = plans.flatMap((plan) => plan.notified);
    return () => {
      for (const key of deletes) this.rows.delete(key);
      for (const row of upserts) this.rows.set(row.approval.key, row);
      for (const key of deletes) this.reminders.delete(key);
      for (const n of notified) {
        let byApprover = this.reminders.get(n.approvalKey);
        if (!byApprover) this.reminders.set(n.approvalKey, (byApprover = new Map()));
        byApprover.set(n.approverId, { approvalKey: n.approvalKey, approverId: n.approverId, generation: n.generation, sent: 0, lastAt: createdAt });
      }
      let written = 0;
      for (const draft of drafts) {
        if (this.idempotencyKeys.has(draft.idempotencyKey)) continue;
        this.idempotencyKeys.add(draft.idempotencyKey);
        const id = ++this.lastOutboxId;
        this.outbox.set(id, { id, draft, createdAt, state: draft.state, claims: 0, nextAttemptAt: createdAt });
        written++;
      }
      return written;
    };
  }

  /** Unexpired rows of the source that pass `test`, newest first (ties by key, descending). */
  private matching(options: ListOptions, test: (row: StoredRow) => boolean = () => true): StoredRow[] {
    const notBefore = options.notBefore.toISOString();
    return [...this.rows.values()]
      .filter((row) => row.updatedAt >= notBefore && (options.source === undefined || row.approval.source === options.source) && test(row))
      .sort((a, b) => compare(b.updatedAt, a.updatedAt) || compare(b.approval.key, a.approval.key));
  }

  private assertOpen(): void {
    if (this.status !== 'open') throw new Error(this.status === 'closed' ? 'memory queue is closed' : 'memory queue is not initialised: call init() first');
  }
}

function toEntry(entry: StoredEntry): OutboxEntry {
  const { draft } = entry;
  return copy({
    id: entry.id,
    approvalKey: draft.approvalKey,
    source: draft.source,
    revision: draft.revision,
    channel: draft.channel,
    approver: draft.approver,
    action: draft.action,
    ...(draft.outcome === undefined ? {} : { outcome: draft.outcome }),
    card: draft.card,
    ...(draft.digest === undefined ? {} : { digest: draft.digest }),
    idempotencyKey: draft.idempotencyKey,
    state: entry.state,
    // `claims` counts the current claim too; callers see earlier claims only, so 0 means first try.
    attempts: entry.state === 'inflight' ? entry.claims - 1 : entry.claims,
    ...(entry.lastError === undefined ? {} : { lastError: entry.lastError }),
    createdAt: entry.createdAt,
  });
}

const EMPTY_RESULT = { inserted: 0, updated: 0, unchanged: 0, completed: 0, ignored: 0, outbox: 0, lagMs: [] };

function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function upTo(limit: number | undefined): number | undefined {
  return limit === undefined ? undefined : Math.max(0, Math.trunc(limit));
}

function receiptKey(approvalKey: string, approverId: string, channel: string): string {
  return JSON.stringify([approvalKey, approverId, channel]);
}

/** The `toISOString()` form of a time; throws on a time that is not one. */
