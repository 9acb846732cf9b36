import { createHash } from 'node:crypto';
import pg from 'pg';
import {
  CARD_ACTIONS,
  type ApprovalQueue,
  type Approver,
  type AuditRecord,
  type Card,
  type CardOutcome,
  type ChangeBatch,
  type ClaimedTrigger,
  type CommitContext,
  type CommitResult,
  type DeliveredEntry,
  type DeliveryReceipt,
  type DueReminderQuery,
  type Lease,
  type ListOptions,
  type OutboxAction,
  type OutboxEntry,
  type OutboxOutcome,
  type OutboxState,
  type QueuedApproval,
  type ReminderCandidate,
  type ReminderDraft,
  type SourceTrigger,
  fromStoredBody,
} from '../../core/index.js';
import {
  bySource,
  distinctLines,
  firstInLineSql,
  isoTime,
  normEmail,
  planBatch,
  receiptPurgeSql,
  type BatchPlan,
  type OutboxDraft,
} from '../../core/queue-kit.js';
import { migrate, quoteSchema } from './migrations.js';

export const DEFAULT_SCHEMA = 'approvals_hub';
export const DEFAULT_POOL_SIZE = 10;

export interface PostgresQueueOptions {
  /** libpq connection URI; the host has already replaced a secret reference by its value. */
  readonly connectionString: string;
  /** Every table lives in this schema, created if missing. Default {@link DEFAULT_SCHEMA}. */
  readonly schema?: string | undefined;
  /** Connections in the pool; each held lease keeps one. Default {@link DEFAULT_POOL_SIZE}. */
  readonly poolSize?: number | undefined;
}

/**
 * An exclusive, named claim held by one session at a time across every host on the database:
 * "this host polls this source instance". It ends when released or when its session dies.
 */

type Tx = pg.PoolClient;

interface OutboxRow {
  id: string;
  approval_key: string;
  source: string;
  revision: number;
  channel: string;
  approver: Approver;
  action: OutboxAction;
  outcome: CardOutcome | null;
  card: Card;
  idempotency_key: string;
  state: OutboxState;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  digest: Card[] | null;
}

const OUTBOX_COLUMNS =
  'id, approval_key, source, revision, channel, approver, action, outcome, card, idempotency_key, state, attempts, last_error, created_at, digest';

interface TriggerRow {
  seq: string;
  trigger_id: string;
  external_id: string;
  received_at: Date;
  data: Record<string, unknown> | null;
  attempts: number;
}

const TRIGGER_COLUMNS = 'seq, trigger_id, external_id, received_at, data, attempts';

/** Rows per multi-row statement: bounds message size and lock count however large a batch is. */
const CHUNK = 1000;
/** A deadlock or a key inserted by another host mid-transaction is retried this many times in all. */
const MAX_ATTEMPTS = 5;

/**
 * The scale-out queue: N hosts on one PostgreSQL database. Every multi-statement change runs in
 * one transaction on one pooled connection. Rows a batch names are locked (`FOR UPDATE`) before
 * it is planned, so two hosts committing the same approval serialize; outbox entries are claimed
 * with `FOR UPDATE SKIP LOCKED`; leases are session advisory locks. Every table is qualified with
 * the configured schema.
 */
export class PostgresApprovalQueue implements ApprovalQueue {
  readonly schema: string;
  readonly poolSize: number;
  private readonly connectionString: string;
  /** The quoted schema, prefixed to every table name. */
  private readonly s: string;
  private pool: pg.Pool | undefined;
  private opening: Promise<void> | undefined;
  private closed = false;
  private readonly leases = new Set<AdvisoryLease>();
  /** Callers of withStateLock in this process, one after another. */
  private stateLockTail: Promise<unknown> = Promise.resolve();

  constructor(options: PostgresQueueOptions) {
    this.connectionString = options.connectionString;
    this.schema = options.schema ?? DEFAULT_SCHEMA;
    this.s = quoteSchema(this.schema);
    this.poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
    if (!Number.isInteger(this.poolSize) || this.poolSize < 1) throw new Error(`poolSize must be a positive integer, not ${this.poolSize}`);
  }

  async init(): Promise<void> {
    if (this.closed) throw new Error(`queue ${this.schema} is closed`);
    this.opening ??= this.connect().catch((error: unknown) => {
      this.opening = undefined;
      throw error;
    });
    return this.opening;
  }

  async close(): Promise<void> {
    this.closed = true;
    const pool = this.pool;
    this.pool = undefined;
    await Promise.all([...this.leases].map((lease) => lease.release()));
    await pool?.end();
  }

  async commit(batch: ChangeBatch, ctx: CommitContext): Promise<CommitResult> {
    const keys = [...new Set([...batch.approvals.map((a) => a.key), ...(batch.completions ?? []).map((c) => c.key)])];
    return this.transaction(async (tx) => {
      const existing = await this.lockRows(tx, keys);
      const plan = planBatch(existing, batch, ctx);
      const outbox = await this.apply(tx, plan, existing, ctx.now);
      if (batch.cursor !== undefined) {
        await tx.query(`INSERT INTO ${this.s}.cursors (source, cursor) VALUES ($1, $2) ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor`, [
          batch.source,
          batch.cursor,
        ]);
      }
      const audit = batch.audit ?? [];
      if (audit.length > 0) {
        await this.each(
          tx,
          audit.map((e, ord) => ({ ord, actor: e.actor, action: e.action, key: e.key ?? null, detail: e.detail ?? null })),
          `INSERT INTO ${this.s}.audit_log (at, actor, action, key, detail)
           SELECT $2::timestamptz, actor, action, key, detail
           FROM json_to_recordset($1::json) AS u(ord integer, actor text, action text, key text, detail text)
           ORDER BY ord`,
          [ctx.now.toISOString()],
        );
      }
      return { ...plan.result, outbox };
    });
  }

  async getCursor(source: string): Promise<string | undefined> {
    const { rows } = await this.query<{ cursor: string }>(`SELECT cursor FROM ${this.s}.cursors WHERE source = $1`, [source]);
    return rows[0]?.cursor;
  }

  async get(key: string): Promise<QueuedApproval | undefined> {
    const { rows } = await this.query<{ body: QueuedApproval }>(`SELECT body FROM ${this.s}.approvals WHERE key = $1`, [key]);
    return rows[0] && fromStoredBody(rows[0].body);
  }

  async listForApprover(email: string, options: ListOptions): Promise<QueuedApproval[]> {
    const approver = normEmail(email);
    if (!approver) return [];
    // The hottest read ("what is waiting on me?"): a named statement is parsed and planned once per
    // connection, which is most of its cost; its generic plan is the same index-only range scan.
    const { rows } = await this.open().query<{ body: QueuedApproval }>({
      name: options.source === undefined ? 'list_for_approver' : 'list_for_approver_in_source',
      text: `SELECT a.body FROM ${this.s}.approval_approvers p JOIN ${this.s}.approvals a ON a.key = p.approval_key
       WHERE p.email = $1 AND p.source_updated_at >= $2 ${options.source === undefined ? '' : 'AND p.source = $4'} AND a.status = 'pending'
       ORDER BY p.source_updated_at DESC, p.approval_key DESC
       LIMIT $3`,
      values: [approver, options.notBefore.toISOString(), sqlLimit(options.limit), ...(options.source === undefined ? [] : [options.source])],
    });
    return rows.map((r) => fromStoredBody(r.body));
  }

  async list(options: ListOptions): Promise<QueuedApproval[]> {
    const { rows } = await this.query<{ body: QueuedApproval }>(
      `SELECT body FROM ${this.s}.approvals
       WHERE source_updated_at >= $1 ${options.source === undefined ? '' : 'AND source = $3'}
       ORDER BY source_updated_at DESC, key DESC
       LIMIT $2`,
      [options.notBefore.toISOString(), sqlLimit(options.limit), ...(options.source === undefined ? [] : [options.source])],
    );
    return rows.map((r) => fromStoredBody(r.body));
  }

  async keys(source: string): Promise<{ key: string; externalId: string; sourceUpdatedAt: string }[]> {
    const { rows } = await this.query<{ key: string; external_id: string; source_updated_at: Date }>(
      `SELECT key, external_id, source_updated_at FROM ${this.s}.approvals WHERE source = $1 ORDER BY key`,
      [source],
    );
    return rows.map((r) => ({ key: r.key, externalId: r.external_id, sourceUpdatedAt: r.source_updated_at.toISOString() }));
  }

  async count(options: ListOptions): Promise<number> {
    const { rows } = await this.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${this.s}.approvals
       WHERE source_updated_at >= $1 ${options.source === undefined ? '' : 'AND source = $2'}`,
      [options.notBefore.toISOString(), ...(options.source === undefined ? [] : [options.source])],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async purgeExpired(ctx: CommitContext): Promise<string[]> {
    return this.transaction(async (tx) => {
      const { rows } = await tx.query<{ body: QueuedApproval }>(
        `SELECT body FROM ${this.s}.approvals WHERE source_updated_at < $1 ORDER BY source_updated_at, key FOR UPDATE`,
        [ctx.notBefore.toISOString()],
      );
      const expired = rows.map((r) => fromStoredBody(r.body));
      for (const [source, group] of bySource(expired)) {
        const existing = new Map(group.map((row) => [row.key, row]));
        const completions = group.map((row) => ({ key: row.key, status: 'expired' as const }));
        await this.apply(tx, planBatch(existing, { source, approvals: [], completions }, ctx), existing, ctx.now);
      }
      return expired.map((row) => row.key);
    });
  }

  async parkedApprovers(source: string): Promise<Approver[]> {
    const { rows } = await this.query<{ approver: Approver }>(`SELECT approver FROM ${this.s}.outbox WHERE state = 'parked' AND source = $1 ORDER BY id`, [
      source,
    ]);
    const approvers = new Map<string, Approver>();
    for (const { approver } of rows) {
      if (!approvers.has(approver.sourceUserId)) approvers.set(approver.sourceUserId, approver);
    }
    return [...approvers.values()];
  }

  async resolveApprover(source: string, approver: Required<Pick<Approver, 'sourceUserId' | 'email'>> & Approver): Promise<number> {
    const email = normEmail(approver.email);
    if (!email) throw new Error(`approver ${approver.sourceUserId} of ${source}: cannot resolve to an empty e-mail`);
    const id = approver.sourceUserId;
    return this.transaction(async (tx) => {
      const { rows } = await tx.query<{ body: QueuedApproval }>(
        `SELECT a.body FROM ${this.s}.approval_approvers p JOIN ${this.s}.approvals a ON a.key = p.approval_key
         WHERE p.source = $1 AND p.source_user_id = $2
         ORDER BY a.key FOR UPDATE OF a`,
        [source, id],
      );
      const named = rows
        .map((r) => fromStoredBody(r.body))
        .map((body) => ({ ...body, approvers: body.approvers.map((a) => (a.sourceUserId === id ? { ...a, email } : a)) }));
      await this.each(
        tx,
        named.map((row) => ({ key: row.key, body: row })),
        `UPDATE ${this.s}.approvals a SET body = u.body FROM json_to_recordset($1::json) AS u(key text, body jsonb) WHERE a.key = u.key`,
      );
      await tx.query(`UPDATE ${this.s}.approval_approvers SET email = $3 WHERE source = $1 AND source_user_id = $2`, [source, id, email]);
      const released = await tx.query(
        `UPDATE ${this.s}.outbox SET state = 'pending', approver = approver || jsonb_build_object('email', $3::text)
         WHERE state = 'parked' AND source = $1 AND approver_id = $2`,
        [source, id, email],
      );
      return released.rowCount ?? 0;
    });
  }

  /**
   * See `firstInLineSql`. The statement's snapshot shows the older entry pending, inflight or
   * settled; only in the last case is the newer one claimable, so hosts claiming at once never
   * split them.
   */
  private get firstInLine(): string {
    return firstInLineSql(`${this.s}.outbox`);
  }

  async claimOutbox(limit: number, now: Date, leaseMs: number): Promise<OutboxEntry[]> {
    if (limit <= 0) return [];
    // One statement, so one atomic step. Each arm reads at most `limit` ids through outbox_by_state,
    // however many settled rows the outbox holds, and skips rows another claimer has locked. An arm
    // may lock up to `limit` rows it does not claim; they are free again when the statement ends.
    const { rows } = await this.query<OutboxRow>(
      `WITH pending AS (
         SELECT o.id FROM ${this.s}.outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= $1 AND ${this.firstInLine}
         ORDER BY o.id LIMIT $3 FOR UPDATE SKIP LOCKED
       ), expired AS (
         SELECT o.id FROM ${this.s}.outbox o WHERE o.state = 'inflight' AND o.claimed_at <= $2 AND ${this.firstInLine}
         ORDER BY o.id LIMIT $3 FOR UPDATE SKIP LOCKED
       ), due AS (
         SELECT id FROM pending UNION ALL SELECT id FROM expired ORDER BY id LIMIT $3
       )
       UPDATE ${this.s}.outbox o SET state = 'inflight', claimed_at = $1, attempts = o.attempts + 1
       FROM due WHERE o.id = due.id
       RETURNING ${OUTBOX_COLUMNS.split(', ')
         .map((c) => `o.${c}`)
         .join(', ')}`,
      [now.toISOString(), new Date(now.getTime() - leaseMs).toISOString(), Math.trunc(limit)],
    );
    return rows.map(toEntry).sort((a, b) => a.id - b.id);
  }

  async settleOutbox(id: number, outcome: OutboxOutcome, now: Date): Promise<void> {
    const at = now.toISOString();
    await this.transaction(async (tx) => {
      const { rows } = await tx.query<{ approval_key: string; approver_id: string; channel: string; action: OutboxAction }>(
        `SELECT approval_key, approver_id, channel, action FROM ${this.s}.outbox WHERE id = $1 FOR UPDATE`,
        [id],
      );
      const entry = rows[0];
      if (!entry) throw new Error(`outbox entry ${id} does not exist`);
      switch (outcome.state) {
        case 'delivered':
          await tx.query(`UPDATE ${this.s}.outbox SET state = 'delivered', claimed_at = NULL, settled_at = $2 WHERE id = $1`, [id, at]);
          // A reminder or digest delivered without a receipt showed no card, so it replaces nothing.
          if (!CARD_ACTIONS.has(entry.action) && !outcome.receipt) return;
          // What this delivery showed replaces every older message still owed to the same person
          // on the same channel: sending those later would show them an older card, or a second one.
          await tx.query(
            `UPDATE ${this.s}.outbox SET state = 'superseded', claimed_at = NULL, settled_at = $1
             WHERE approval_key = $2 AND approver_id = $3 AND channel = $4 AND id < $5 AND state IN ('pending', 'parked')`,
            [at, entry.approval_key, entry.approver_id, entry.channel, id],
          );
          if (outcome.receipt) {
            // A late delivery of an older entry never replaces the receipt of a newer message.
            // Ordered by outbox id, not revision: revisions restart when an approval is queued again.
            await tx.query(
              `INSERT INTO ${this.s}.receipts AS r (approval_key, approver_id, channel, ref, outbox_id) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (approval_key, approver_id, channel) DO UPDATE SET ref = excluded.ref, outbox_id = excluded.outbox_id
               WHERE excluded.outbox_id >= r.outbox_id`,
              [entry.approval_key, entry.approver_id, entry.channel, outcome.receipt.ref, id],
            );
          }
          return;
        case 'superseded':
          await tx.query(`UPDATE ${this.s}.outbox SET state = 'superseded', claimed_at = NULL, settled_at = $2 WHERE id = $1`, [id, at]);
          return;
        case 'retry':
          await tx.query(`UPDATE ${this.s}.outbox SET state = 'pending', claimed_at = NULL, next_attempt_at = $2, last_error = $3 WHERE id = $1`, [
            id,
            outcome.nextAttemptAt.toISOString(),
            outcome.error,
          ]);
          return;
        case 'dead':
          await tx.query(`UPDATE ${this.s}.outbox SET state = 'dead', claimed_at = NULL, settled_at = $2, last_error = $3 WHERE id = $1`, [
            id,
            at,
            outcome.error,
          ]);
          return;
      }
    });
  }

  async listOutbox(state: OutboxState, limit?: number): Promise<OutboxEntry[]> {
    const { rows } = await this.query<OutboxRow>(`SELECT ${OUTBOX_COLUMNS} FROM ${this.s}.outbox WHERE state = $1 ORDER BY id LIMIT $2`, [
      state,
      sqlLimit(limit),
    ]);
    return rows.map(toEntry);
  }

  async purgeOutbox(settledBefore: Date, limit: number): Promise<{ entries: number; receipts: number }> {
    if (limit <= 0) return { entries: 0, receipts: 0 };
    return this.transaction(async (tx) => {
      const { rows: lines } = await tx.query<{ approval_key: string; approver_id: string; channel: string }>(
        `DELETE FROM ${this.s}.outbox WHERE id IN (
           SELECT id FROM ${this.s}.outbox WHERE state IN ('delivered', 'superseded', 'dead') AND settled_at < $1 ORDER BY settled_at LIMIT $2)
         RETURNING approval_key, approver_id, channel`,
        [settledBefore, limit],
      );
      const purge = receiptPurgeSql(`${this.s}.receipts`, `${this.s}.approvals`, `${this.s}.outbox`, (n) => `$${n}`);
      let receipts = 0;
      for (const line of distinctLines(lines)) receipts += (await tx.query(purge, [line.approval_key, line.approver_id, line.channel])).rowCount ?? 0;
      return { entries: lines.length, receipts };
    });
  }

  async deliveredSince(channel: string, after: Date, limit: number): Promise<DeliveredEntry[]> {
    const { rows } = await this.query<OutboxRow & { settled_at: Date }>(
      `SELECT ${OUTBOX_COLUMNS}, settled_at FROM ${this.s}.outbox
       WHERE state = 'delivered' AND channel = $1 AND settled_at > $2 ORDER BY settled_at, id LIMIT $3`,
      [channel, after, sqlLimit(limit)],
    );
    return rows.map((row) => ({ ...toEntry(row), settledAt: row.settled_at.toISOString() }));
  }

  async outboxCounts(): Promise<Record<'pending' | 'parked' | 'inflight' | 'dead', number>> {
    const counts = { pending: 0, parked: 0, inflight: 0, dead: 0 };
    const { rows } = await this.query<{ state: keyof typeof counts; n: string }>(
      `SELECT state, count(*) AS n FROM ${this.s}.outbox WHERE state IN ('pending', 'parked', 'inflight', 'dead') GROUP BY state`,
    );
    for (const r of rows) counts[r.state] = Number(r.n);
    return counts;
  }

  async releaseInflight(): Promise<number> {
    const result = await this.query(`UPDATE ${this.s}.outbox SET state = 'pending', claimed_at = NULL WHERE state = 'inflight'`);
    return result.rowCount ?? 0;
  }

  async receipt(approvalKey: string, approverId: string, channel: string): Promise<DeliveryReceipt | undefined> {
    const { rows } = await this.query<{ ref: string }>(`SELECT ref FROM ${this.s}.receipts WHERE approval_key = $1 AND approver_id = $2 AND channel = $3`, [
      approvalKey,
      approverId,
      channel,
    ]);
    const row = rows[0];
    return row && { ref: row.ref };
  }

  async dueReminders(query: DueReminderQuery): Promise<ReminderCandidate[]> {
    if (query.maxReminders <= 0) return [];
    const { after } = query;
    // reminders_due drives: one range of last_at per count below the maximum; approvals and
    // approval_approvers are probed by primary key for each candidate only.
    const { rows } = await this.query<{ approver_id: string; sent: number; last_at: Date; body: QueuedApproval }>(
      `SELECT r.approver_id, r.sent, r.last_at, a.body
       FROM ${this.s}.reminders r JOIN ${this.s}.approvals a ON a.key = r.approval_key
       WHERE r.sent = ANY($1::integer[]) AND r.last_at <= $2
         ${after ? 'AND (r.last_at, r.approval_key, r.approver_id) > ($5::timestamptz, $6, $7)' : ''}
         AND a.status = 'pending' AND a.source_updated_at >= $3
         AND a.body->>'generation' = r.generation
         AND EXISTS (SELECT 1 FROM ${this.s}.approval_approvers p
                     WHERE p.approval_key = r.approval_key AND p.source_user_id = r.approver_id AND p.email IS NOT NULL)
       ORDER BY r.last_at, r.approval_key, r.approver_id
       LIMIT $4`,
      [
        Array.from({ length: Math.min(Math.trunc(query.maxReminders), 1000) }, (_, i) => i),
        query.lastBefore.toISOString(),
        query.notBefore.toISOString(),
        sqlLimit(query.limit),
        ...(after ? [after.lastAt, after.approvalKey, after.approverId] : []),
      ],
    );
    return rows.flatMap((r) => {
      const body = fromStoredBody(r.body);
      const approver = body.approvers.find((a) => a.sourceUserId === r.approver_id);
      return approver ? [{ approval: body, approver, sent: r.sent, lastAt: r.last_at.toISOString() }] : [];
    });
  }

  async scheduleReminders(drafts: readonly ReminderDraft[], now: Date): Promise<number> {
    if (drafts.length === 0) return 0;
    return this.transaction(async (tx) => {
      let written = 0;
      for (const draft of drafts) {
        // A savepoint per draft: a draft that does not apply is undone alone, its spends included.
        await tx.query('SAVEPOINT reminder');
        const applied = await this.scheduleOne(tx, draft, now);
        await tx.query(applied > 0 ? 'RELEASE SAVEPOINT reminder' : 'ROLLBACK TO SAVEPOINT reminder');
        written += applied;
      }
      return written;
    });
  }

  async getState(namespace: string, key: string): Promise<string | undefined> {
    const { rows } = await this.query<{ value: string }>(`SELECT value FROM ${this.s}.source_state WHERE namespace = $1 AND key = $2`, [namespace, key]);
    return rows[0]?.value;
  }

  async setState(namespace: string, key: string, value: string): Promise<void> {
    await this.query(
      `INSERT INTO ${this.s}.source_state (namespace, key, value) VALUES ($1, $2, $3)
       ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value`,
      [namespace, key, value],
    );
  }

  async addTriggers(source: string, triggers: readonly SourceTrigger[]): Promise<{ added: number; duplicates: number }> {
    const rows = triggers.map((t, ord) => ({
      ord,
      trigger_id: t.id,
      external_id: t.externalId,
      received_at: receivedTime(source, t),
      data: t.data ?? null,
    }));
    if (rows.length === 0) return { added: 0, duplicates: 0 };
    // One transaction: all stored, or none and the call fails. ON CONFLICT names the one constraint
    // a duplicate meets (an id held already, or repeated earlier in this call); any other violation
    // fails. A host adding the same id at once waits for this one, then finds it (two adding shared
    // ids in opposite orders deadlock, and `transaction` runs the loser again). Ordered by the call,
    // so seqs follow the order the triggers came in.
    const added = await this.transaction((tx) =>
      this.each(
        tx,
        rows,
        `INSERT INTO ${this.s}.source_triggers (source, trigger_id, external_id, received_at, data)
         SELECT $2, trigger_id, external_id, received_at, data
         FROM json_to_recordset($1::json) AS u(ord integer, trigger_id text, external_id text, received_at timestamptz, data jsonb)
         ORDER BY ord
         ON CONFLICT (source, trigger_id) DO NOTHING`,
        [source],
      ),
    );
    return { added, duplicates: triggers.length - added };
  }

  async claimTriggers(source: string, limit: number, now: Date, leaseMs: number): Promise<ClaimedTrigger[]> {
    if (limit <= 0) return [];
    // One statement, so one atomic step, as claimOutbox: reads unsettled rows only
    // (source_triggers_pending) and skips rows another claimer has locked.
    const { rows } = await this.query<TriggerRow>(
      `WITH due AS (
         SELECT t.seq FROM ${this.s}.source_triggers t
         WHERE t.source = $1 AND t.settled_at IS NULL AND t.claimable_at <= $2
         ORDER BY t.seq LIMIT $4 FOR UPDATE SKIP LOCKED
       )
       UPDATE ${this.s}.source_triggers t SET attempts = t.attempts + 1, claimable_at = $3
       FROM due WHERE t.seq = due.seq
       RETURNING ${TRIGGER_COLUMNS.split(', ')
         .map((c) => `t.${c}`)
         .join(', ')}`,
      [source, now.toISOString(), new Date(now.getTime() + leaseMs).toISOString(), Math.trunc(limit)],
    );
    return rows.map(toTrigger).sort((a, b) => a.seq - b.seq);
  }

  async settleTriggers(source: string, seqs: readonly number[], now: Date): Promise<void> {
    if (seqs.length === 0) return;
    // The data goes: a settled row is kept only so its id is recognised as a duplicate.
    await this.query(
      `UPDATE ${this.s}.source_triggers SET settled_at = $3, data = NULL
       WHERE source = $1 AND seq = ANY($2::bigint[]) AND settled_at IS NULL`,
      [source, seqs.map(String), now.toISOString()],
    );
  }

  async releaseTriggers(source: string, seqs: readonly number[], retryAt: Date): Promise<void> {
    if (seqs.length === 0) return;
    await this.query(
      `UPDATE ${this.s}.source_triggers SET claimable_at = $3
       WHERE source = $1 AND seq = ANY($2::bigint[]) AND settled_at IS NULL`,
      [source, seqs.map(String), retryAt.toISOString()],
    );
  }

  async pendingTriggers(source: string): Promise<{ count: number; oldestReceivedAt: string | undefined }> {
    const { rows } = await this.query<{ n: number; oldest: Date | null }>(
      `SELECT count(*)::integer AS n, min(received_at) AS oldest FROM ${this.s}.source_triggers WHERE source = $1 AND settled_at IS NULL`,
      [source],
    );
    const row = rows[0];
    return { count: row?.n ?? 0, oldestReceivedAt: row?.oldest?.toISOString() ?? undefined };
  }

  async purgeTriggers(before: Date): Promise<number> {
    const result = await this.query(`DELETE FROM ${this.s}.source_triggers WHERE settled_at < $1`, [before.toISOString()]);
    return result.rowCount ?? 0;
  }

  /**
   * A transaction holding a transaction-scoped advisory lock on the entry (keyed by schema,
   * namespace and key), which every host on the database honours and which dies with the session.
   * The value is read and written inside it. Callers in this process queue up before taking a
   * connection, so waiting for a busy lock never ties up more than one pool connection.
   */
  async withStateLock<T>(
    namespace: string,
    key: string,
    work: (value: string | undefined) => Promise<{ readonly value?: string | undefined; readonly result: T }>,
  ): Promise<T> {
    this.open();
    const turn = this.stateLockTail
      .catch(() => undefined)
      .then(() =>
        this.once(async (client) => {
          await client.query(`SET LOCAL lock_timeout = '${STATE_LOCK_WAIT_SECONDS}s'`);
          try {
            await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [advisoryKey(`approvals-hub:state:${this.schema}:${namespace}:${key}`)]);
          } catch (error) {
            if ((error as { code?: unknown }).code === '55P03') {
              throw new Error(
                `timed out after ${STATE_LOCK_WAIT_SECONDS} s waiting for the state lock on ${namespace}/${key} in schema ${this.schema}: another host holds it`,
              );
            }
            throw error;
          }
          const { rows } = await client.query<{ value: string }>(`SELECT value FROM ${this.s}.source_state WHERE namespace = $1 AND key = $2`, [
            namespace,
            key,
          ]);
          const update = await work(rows[0]?.value);
          if (update.value !== undefined) {
            await client.query(
              `INSERT INTO ${this.s}.source_state (namespace, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value`,
              [namespace, key, update.value],
            );
          }
          return update.result;
        }),
      );
    this.stateLockTail = turn;
    return turn;
  }

  /** Several hosts share a schema: they must share a configured key. */
  credentialKeyHome(): { readonly kind: 'shared' } {
    return { kind: 'shared' };
  }

  async listAudit(limit?: number): Promise<AuditRecord[]> {
    const { rows } = await this.query<{ id: string; at: Date; actor: string; action: string; key: string | null; detail: string | null }>(
      `SELECT id, at, actor, action, key, detail FROM ${this.s}.audit_log ORDER BY id DESC LIMIT $1`,
      [sqlLimit(limit)],
    );
    return rows.map(({ id, at, key, detail, ...record }) => ({
      id: Number(id),
      at: at.toISOString(),
      ...record,
      ...(key === null ? {} : { key }),
      ...(detail === null ? {} : { detail }),
    }));
  }

  /**
   * Takes the lease `name` for this schema if no session on the database holds it: a session
   * advisory lock on a connection kept out of the pool while held. Undefined when another
   * session (another host, or another lease of this one) holds it. The lock dies with its
   * session, so a holder that is killed frees it for the others.
   */
  async acquireLease(name: string): Promise<Lease | undefined> {
    const client = await this.open().connect();
    const lease = new AdvisoryLease(name, leaseLockKey(this.schema, name), client, (gone) => this.leases.delete(gone));
    if (!(await lease.tryAcquire())) return undefined;
    this.leases.add(lease);
    if (this.closed) {
      // close() ran while the lock was being taken and did not see this lease.
      await lease.release();
      throw new Error(`queue ${this.schema} is closed`);
    }
    return lease;
  }

  private async connect(): Promise<void> {
    const pool = new pg.Pool({
      connectionString: this.connectionString,
      max: this.poolSize,
      // A call fails after 10 s without a connection (database unreachable, or every connection
      // busy or held by a lease) instead of waiting for the OS connect timeout, or for ever.
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      application_name: 'approvals-hub',
    });
    // An idle connection that dies (server restart, pg_terminate_backend) is dropped by the pool and
    // replaced on the next query; without a listener its error would end the process.
    pool.on('error', () => undefined);
    try {
      const client = await pool.connect();
      try {
        await migrate(client, this.schema, advisoryKey(`approvals-hub:migrate:${this.schema}`));
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await pool.end();
      throw new Error(`queue ${this.schema} is closed`);
    }
    this.pool = pool;
  }

  /** Locks and returns the queued rows for `keys`, in key order so concurrent batches lock alike. */
  private async lockRows(tx: Tx, keys: readonly string[]): Promise<Map<string, QueuedApproval>> {
    const existing = new Map<string, QueuedApproval>();
    for (const part of chunks([...keys].sort(), CHUNK)) {
      const { rows } = await tx.query<{ body: QueuedApproval }>(`SELECT body FROM ${this.s}.approvals WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE`, [
        part,
      ]);
      for (const { body } of rows) existing.set(body.key, fromStoredBody(body));
    }
    return existing;
  }

  /**
   * Writes what `planBatch` decided from `existing` (the rows locked for it); returns how many
   * outbox entries were new. Throws {@link ConcurrentInsert} when another transaction queued one
   * of the approvals the plan thought new, so the caller plans again on what that one committed.
   */
  private async apply(tx: Tx, plan: BatchPlan, existing: ReadonlyMap<string, QueuedApproval>, now: Date): Promise<number> {
    const upserts = plan.upserts
      .map((row) => ({
        key: row.key,
        source: row.source,
        kind: row.kind,
        external_id: row.externalId,
        status: row.status,
        revision: row.revision,
        fingerprint: row.fingerprint,
        source_updated_at: isoTime(row.sourceUpdatedAt, row.key),
        queued_at: row.queuedAt,
        body: row,
      }))
      .sort((a, b) => compare(a.key, b.key));
    for (const part of chunks(plan.deletes, CHUNK)) {
      await tx.query(`DELETE FROM ${this.s}.approvals WHERE key = ANY($1::text[])`, [part]);
    }
    const known = upserts.filter((u) => existing.has(u.key));
    const fresh = upserts.filter((u) => !existing.has(u.key));
    await this.each(
      tx,
      known,
      `UPDATE ${this.s}.approvals a SET status = u.status, revision = u.revision, fingerprint = u.fingerprint,
         source_updated_at = u.source_updated_at, queued_at = u.queued_at, body = u.body
       FROM json_to_recordset($1::json)
         AS u(key text, status text, revision integer, fingerprint text, source_updated_at timestamptz, queued_at timestamptz, body jsonb)
       WHERE a.key = u.key`,
    );
    for (const part of chunks(known, CHUNK)) {
      await tx.query(`DELETE FROM ${this.s}.approval_approvers WHERE approval_key = ANY($1::text[])`, [part.map((u) => u.key)]);
    }
    const inserted = await this.each(
      tx,
      fresh,
      `INSERT INTO ${this.s}.approvals (key, source, kind, external_id, status, revision, fingerprint, source_updated_at, queued_at, body)
       SELECT key, source, kind, external_id, status, revision, fingerprint, source_updated_at, queued_at, body
       FROM json_to_recordset($1::json) AS u(key text, source text, kind text, external_id text, status text, revision integer,
                                             fingerprint text, source_updated_at timestamptz, queued_at timestamptz, body jsonb)
       ON CONFLICT (key) DO NOTHING`,
    );
    if (inserted !== fresh.length) throw new ConcurrentInsert();
    const approvers = upserts.flatMap((u) =>
      u.body.approvers.map((a) => ({
        approval_key: u.key,
        source_user_id: a.sourceUserId,
        email: normEmail(a.email) ?? null,
        source: u.source,
        source_updated_at: u.source_updated_at,
      })),
    );
    await this.each(
      tx,
      approvers,
      `INSERT INTO ${this.s}.approval_approvers (approval_key, source_user_id, email, source, source_updated_at)
       SELECT approval_key, source_user_id, email, source, source_updated_at
       FROM json_to_recordset($1::json) AS u(approval_key text, source_user_id text, email text, source text, source_updated_at timestamptz)`,
    );
    const createdAt = now.toISOString();
    const written = await this.owe(tx, plan.outbox, createdAt);
    await this.each(
      tx,
      plan.notified.map((n) => ({ approval_key: n.approvalKey, approver_id: n.approverId, generation: n.generation })),
      `INSERT INTO ${this.s}.reminders (approval_key, approver_id, generation, sent, last_at)
       SELECT approval_key, approver_id, generation, 0, $2::timestamptz
       FROM json_to_recordset($1::json) AS u(approval_key text, approver_id text, generation text)
       ON CONFLICT (approval_key, approver_id) DO UPDATE SET generation = excluded.generation, sent = 0, last_at = excluded.last_at`,
      [createdAt],
    );
    return written;
  }

  /** Inserts outbox entries whose idempotency keys are not taken; returns how many were new. */
  private async owe(tx: Tx, drafts: readonly OutboxDraft[], createdAt: string): Promise<number> {
    // ON CONFLICT names the one constraint a replay may hit; any other violation still fails the batch.
    // Ordered by the plan, so ids follow the order the planner owed the messages in.
    return this.each(
      tx,
      drafts.map((d, ord) => ({
        ord,
        approval_key: d.approvalKey,
        source: d.source,
        revision: d.revision,
        channel: d.channel,
        approver: d.approver,
        approver_id: d.approver.sourceUserId,
        action: d.action,
        outcome: d.outcome ?? null,
        card: d.card,
        idempotency_key: d.idempotencyKey,
        state: d.state,
        digest: d.digest ?? null,
      })),
      `INSERT INTO ${this.s}.outbox (approval_key, source, revision, channel, approver, approver_id, action, outcome, card,
                                     idempotency_key, state, next_attempt_at, created_at, digest)
       SELECT approval_key, source, revision, channel, approver, approver_id, action, outcome, card,
              idempotency_key, state, $2::timestamptz, $2::timestamptz, digest
       FROM json_to_recordset($1::json) AS u(ord integer, approval_key text, source text, revision integer, channel text, approver jsonb,
                                             approver_id text, action text, outcome text, card jsonb, idempotency_key text, state text,
                                             digest jsonb)
       ORDER BY ord
       ON CONFLICT (idempotency_key) DO NOTHING`,
      [createdAt],
    );
  }

  /**
   * One reminder draft: spends each reminder with a compare-and-set (a concurrent scheduler's
   * UPDATE waits for this one's row lock, then finds the count moved and spends nothing), then
   * writes the outbox entries. Returns the entries written; 0 means the caller undoes the draft.
   */
  private async scheduleOne(tx: Tx, draft: ReminderDraft, now: Date): Promise<number> {
    for (const spend of [...draft.spends].sort((a, b) => compare(a.approvalKey, b.approvalKey) || compare(a.approverId, b.approverId))) {
      const spent = await tx.query(
        `UPDATE ${this.s}.reminders r SET sent = r.sent + 1, last_at = $5
         FROM ${this.s}.approvals a
         WHERE r.approval_key = $1 AND r.approver_id = $2 AND r.generation = $3 AND r.sent = $4
           AND a.key = r.approval_key AND a.status = 'pending' AND a.body->>'generation' = r.generation`,
        [spend.approvalKey, spend.approverId, spend.generation, spend.sent, now.toISOString()],
      );
      if (spent.rowCount !== 1) return 0;
    }
    return this.owe(tx, draft.outbox, now.toISOString());
  }

  /**
   * Runs `sql` once per chunk of `rows`, the chunk as `$1`: one JSON array that the statement
   * reads with `json_to_recordset`. Several times faster than one array parameter per column,
   * whose literals both pg and PostgreSQL escape and parse element by element. Returns the rows changed.
   */
  private async each(tx: Tx, rows: readonly object[], sql: string, params: readonly unknown[] = []): Promise<number> {
    let changed = 0;
    for (const part of chunks(rows, CHUNK)) changed += (await tx.query(sql, [json(part), ...params])).rowCount ?? 0;
    return changed;
  }

  /**
   * Runs `work` in one transaction on one connection. A deadlock, a serialization failure or a
   * {@link ConcurrentInsert} rolls back and runs `work` again from the start, so it re-reads what
   * the other transaction committed; any other error rolls back and is thrown.
   */
  private async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(work);
      } catch (error) {
        if (attempt < MAX_ATTEMPTS && isRetryable(error)) continue;
        throw error;
      }
    }
  }

  /**
   * One transaction on one pooled connection: BEGIN, `work`, COMMIT; on an error, ROLLBACK and
   * rethrow. A connection that failed (even between two statements, while no query was waiting
   * to be told) goes back to the pool as broken, so it is discarded rather than reused.
   */
  private async once<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.open().connect();
    let broken: Error | undefined;
    const onError = (error: Error): void => {
      broken = error;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      if (!broken) await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw error;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    return this.open().query<R>(text, values);
  }

  private open(): pg.Pool {
    if (!this.pool) throw new Error(this.closed ? `queue ${this.schema} is closed` : `queue ${this.schema} is not initialised: call init() first`);
    return this.pool;
  }
}

/** Another transaction queued an approval this one planned as new; the batch is planned again. */
class ConcurrentInsert extends Error {
  override readonly name = 'ConcurrentInsert';
  constructor() {
    super('an approval of the batch was queued by another transaction meanwhile');
  }
}

function isRetryable(error: unknown): boolean {
  if (error instanceof ConcurrentInsert) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001'; // deadlock_detected, serialization_failure
}

/** How long withStateLock waits for another host's credential refresh before giving up. */
const STATE_LOCK_WAIT_SECONDS = 120;

/** A session advisory lock on a connection taken from the pool; see {@link PostgresApprovalQueue.acquireLease}. */
class AdvisoryLease implements Lease {
  private state: 'trying' | 'held' | 'lost' | 'released' = 'trying';
  private returned = false;

  constructor(
    readonly name: string,
    private readonly key: string,
    private readonly client: pg.PoolClient,
    private readonly forget: (lease: AdvisoryLease) => void,
  ) {
    client.on('error', this.lost);
    client.on('end', this.lost);
  }

  held(): boolean {
    return this.state === 'held';
  }

  /** Takes the lock; gives the connection back and returns false when another session holds it. */
  async tryAcquire(): Promise<boolean> {
    let acquired: boolean;
    try {
      const { rows } = await this.client.query<{ acquired: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS acquired', [this.key]);
      acquired = rows[0]?.acquired === true;
    } catch (error) {
      this.giveBack(error as Error);
      throw error;
    }
    if (this.state !== 'trying') return false; // the connection ended right after answering
    if (!acquired) {
      this.state = 'released';
      this.giveBack();
      return false;
    }
    this.state = 'held';
    return true;
  }

  async release(): Promise<void> {
    if (this.state !== 'held') return;
    this.state = 'released';
    this.forget(this);
    try {
      await this.client.query('SELECT pg_advisory_unlock($1::bigint)', [this.key]);
      this.giveBack();
    } catch (error) {
      this.giveBack(error as Error); // the pool closes the session, which frees the lock as well
    }
  }

  /** The session ended or failed: its lock is gone with it, and so is the connection. */
  private readonly lost = (error?: Error): void => {
    if (this.state === 'lost' || this.state === 'released') return;
    this.state = 'lost';
    this.forget(this);
    this.giveBack(error ?? new Error(`lease ${this.name}: connection ended`));
  };

  /** Returns the connection to the pool, which discards it when given an error. */
  private giveBack(error?: Error): void {
    if (this.returned) return;
    this.returned = true;
    this.client.removeListener('error', this.lost);
    this.client.removeListener('end', this.lost);
    this.client.release(error);
  }
}

/**
 * The advisory lock key of lease `name` in `schema`: advisory locks are database-wide, so the
 * schema is part of the key and two deployments sharing a database never block each other.
 */
export function leaseLockKey(schema: string, name: string): string {
  return advisoryKey(`approvals-hub:lease:${schema}:${name}`);
}

/** A signed 64-bit advisory lock key (decimal) from a name: the first 8 bytes of its SHA-256. */
function advisoryKey(name: string): string {
  return createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
}

function toEntry(row: OutboxRow): OutboxEntry {
  return {
    id: Number(row.id),
    approvalKey: row.approval_key,
    source: row.source,
    revision: row.revision,
    channel: row.channel,
    approver: row.approver,
    action: row.action,
    ...(row.outcome === null ? {} : { outcome: row.outcome }),
    card: row.card,
    idempotencyKey: row.idempotency_key,
    state: row.state,
    // The column counts the current claim too; callers see earlier claims only, so 0 means first try.
    attempts: row.state === 'inflight' ? row.attempts - 1 : row.attempts,
    ...(row.last_error === null ? {} : { lastError: row.last_error }),
    createdAt: row.created_at.toISOString(),
    ...(row.digest === null ? {} : { digest: row.digest }),
  };
}

function toTrigger(row: TriggerRow): ClaimedTrigger {
  return {
    id: row.trigger_id,
    externalId: row.external_id,
    receivedAt: row.received_at.toISOString(),
    ...(row.data === null ? {} : { data: row.data }),
    seq: Number(row.seq),
    attempts: row.attempts,
  };
}

/** A trigger's receivedAt in `toISOString()` form; throws on one that is not a time (rather than let PostgreSQL read it its own way). */
function receivedTime(source: string, trigger: SourceTrigger): string {
  const ms = Date.parse(trigger.receivedAt);
  if (Number.isNaN(ms)) throw new Error(`trigger ${trigger.id} of ${source}: receivedAt "${trigger.receivedAt}" is not a time`);
  return new Date(ms).toISOString();
}

/**
 * JSON for PostgreSQL. Its text and jsonb cannot hold U+0000, so a NUL in a source's string
 * becomes U+FFFD rather than failing the batch (SQLite stores it as is).
 */
function json(value: unknown): string {
  const text = JSON.stringify(value);
  if (!text.includes('\\u0000')) return text;
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? v.replaceAll('\u0000', '\uFFFD') : v));
}

/** PostgreSQL reads LIMIT NULL as none. */
function sqlLimit(limit: number | undefined): number | null {
  return limit === undefined ? null : Math.max(0, Math.trunc(limit));
}

/** The `toISOString()` form of a time; throws on a time that is not one. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
