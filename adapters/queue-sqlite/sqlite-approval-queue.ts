import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import {
  CARD_ACTIONS,
  type ApprovalQueue,
  type Approver,
  type AuditRecord,
  type CardOutcome,
  type ChangeBatch,
  type ClaimedTrigger,
  type CommitContext,
  type CommitResult,
  type DeliveredEntry,
  type DeliveryReceipt,
  type DueReminderQuery,
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
import { migrate } from './migrations.js';

interface OutboxRow {
  id: number;
  approval_key: string;
  source: string;
  revision: number;
  channel: string;
  approver: string;
  action: OutboxAction;
  outcome: CardOutcome | null;
  card: string;
  idempotency_key: string;
  state: OutboxState;
  attempts: number;
  last_error: string | null;
  created_at: string;
  digest: string | null;
}

const OUTBOX_COLUMNS =
  'id, approval_key, source, revision, channel, approver, action, outcome, card, idempotency_key, state, attempts, last_error, created_at, digest';

interface TriggerRow {
  seq: number;
  trigger_id: string;
  external_id: string;
  received_at: string;
  data: string | null;
  attempts: number;
}

const TRIGGER_COLUMNS = 'seq, trigger_id, external_id, received_at, data, attempts';

const FIRST_IN_LINE = firstInLineSql('outbox');
const RECEIPT_PURGE = receiptPurgeSql('receipts', 'approvals', 'outbox', () => '?');

/** Memory the adapter may use to answer reads faster. */
export interface SqliteTuning {
  /** SQLite's page cache per connection (heap memory). */
  readonly cacheSizeMB?: number;
  /** How much of the file reads map into memory instead of copying page by page (0: off). Default {@link DEFAULT_MMAP_MB}. */
  readonly mmapSizeMB?: number;
}
const DEFAULT_CACHE_MB = 2;
/**
 * Reads go through a memory map of the file by default, on 64-bit platforms. A lookup then reads
 * pages the kernel already holds without a system call and a copy each, which is what keeps
 * "what is waiting on me?" under 1 ms at p99 on a busy machine with 1,000,000 queued (README,
 * Performance). The value is a ceiling, not an allocation: SQLite maps only as much as the file
 * holds, remaps as it grows, and clamps the ceiling to its compiled maximum (better-sqlite3:
 * 0x7fff0000, just under 2 GiB). The cost is address space up to the file's size (a 32-bit process
 * has too little, so there it stays off) and RSS that counts the file pages read, which are page
 * cache the kernel can reclaim, not heap.
 */
export const DEFAULT_MMAP_MB = ['ia32', 'arm', 'mips', 'mipsel', 'ppc', 's390'].includes(process.arch) ? 0 : 2048;

/** The embedded queue: one SQLite file in WAL mode, every multi-row change in one transaction. */
export class SqliteApprovalQueue implements ApprovalQueue {
  private db: Database.Database | undefined;
  /** The credential lock's connection (see withStateLock), opened on first use. */
  private lockDb: Database.Database | undefined;
  /** Callers of withStateLock in this process, one after another. */
  private lockTail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(
    readonly path: string,
    private readonly tuning: SqliteTuning = {},
  ) {}

  async init(): Promise<void> {
    if (this.closed) throw new Error(`queue ${this.path} is closed`);
    if (this.db) return;
    mkdirSync(dirname(this.path), { recursive: true });
    if (this.onDisk) ownerOnly(this.path);
    const db = new Database(this.path);
    try {
      db.pragma('journal_mode = WAL');
      // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss, and a lost
      // claim or settle could resend a delivered message with attempts 0 (invariant 3).
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      db.pragma(`cache_size = ${-1024 * (this.tuning.cacheSizeMB ?? DEFAULT_CACHE_MB)}`);
      db.pragma(`mmap_size = ${1024 * 1024 * (this.tuning.mmapSizeMB ?? DEFAULT_MMAP_MB)}`);
      migrate(db);
    } catch (error) {
      db.close();
      throw error;
    }
    this.db = db;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.lockDb?.close();
    this.lockDb = undefined;
    this.statements.clear();
    this.db?.close();
    this.db = undefined;
  }

  async commit(batch: ChangeBatch, ctx: CommitContext): Promise<CommitResult> {
    return this.write(() => {
      const existing = new Map<string, QueuedApproval>();
      for (const key of [...batch.approvals.map((a) => a.key), ...(batch.completions ?? []).map((c) => c.key)]) {
        const row = this.row(key);
        if (row) existing.set(key, row);
      }
      const plan = planBatch(existing, batch, ctx);
      const outbox = this.apply(plan, ctx.now);
      if (batch.cursor !== undefined) {
        this.sql('INSERT INTO cursors (source, cursor) VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor').run(
          batch.source,
          batch.cursor,
        );
      }
      for (const entry of batch.audit ?? []) {
        this.sql('INSERT INTO audit_log (at, actor, action, key, detail) VALUES (?, ?, ?, ?, ?)').run(
          ctx.now.toISOString(),
          entry.actor,
          entry.action,
          entry.key ?? null,
          entry.detail ?? null,
        );
      }
      return { ...plan.result, outbox };
    });
  }

  async getCursor(source: string): Promise<string | undefined> {
    return this.sql<{ cursor: string }>('SELECT cursor FROM cursors WHERE source = ?').get(source)?.cursor;
  }

  async get(key: string): Promise<QueuedApproval | undefined> {
    return this.row(key);
  }

  async listForApprover(email: string, options: ListOptions): Promise<QueuedApproval[]> {
    const approver = normEmail(email);
    if (!approver) return [];
    // One range of approval_list's primary key, already in the order returned.
    const rows = this.sql<{ body: string }>(
      `
      SELECT body FROM approval_list
      WHERE email = @email AND source_updated_at >= @notBefore ${options.source === undefined ? '' : 'AND source = @source'}
      ORDER BY source_updated_at DESC, approval_key DESC
      LIMIT @limit`,
    ).all({ email: approver, ...filter(options), limit: sqlLimit(options.limit) });
    return rows.map((r) => parseBody(r.body));
  }

  async list(options: ListOptions): Promise<QueuedApproval[]> {
    const rows = this.sql<{ body: string }>(
      `
      SELECT body FROM approvals
      WHERE source_updated_at >= @notBefore ${options.source === undefined ? '' : 'AND source = @source'}
      ORDER BY source_updated_at DESC, key DESC
      LIMIT @limit`,
    ).all({ ...filter(options), limit: sqlLimit(options.limit) });
    return rows.map((r) => parseBody(r.body));
  }

  async keys(source: string): Promise<{ key: string; externalId: string; sourceUpdatedAt: string }[]> {
    return this.sql<{ key: string; externalId: string; sourceUpdatedAt: string }>(
      'SELECT key, external_id AS externalId, source_updated_at AS sourceUpdatedAt FROM approvals WHERE source = ? ORDER BY key',
    ).all(source);
  }

  async count(options: ListOptions): Promise<number> {
    return this.sql<{ n: number }>(
      `
      SELECT count(*) AS n FROM approvals
      WHERE source_updated_at >= @notBefore ${options.source === undefined ? '' : 'AND source = @source'}`,
    ).get(filter(options))!.n;
  }

  async purgeExpired(ctx: CommitContext): Promise<string[]> {
    return this.write(() => {
      const expired = this.sql<{ body: string }>('SELECT body FROM approvals WHERE source_updated_at < ? ORDER BY source_updated_at, key')
        .all(ctx.notBefore.toISOString())
        .map((r) => parseBody(r.body));
      for (const [source, rows] of bySource(expired)) {
        const existing = new Map(rows.map((row) => [row.key, row]));
        const completions = rows.map((row) => ({ key: row.key, status: 'expired' as const }));
        this.apply(planBatch(existing, { source, approvals: [], completions }, ctx), ctx.now);
      }
      return expired.map((row) => row.key);
    });
  }

  async parkedApprovers(source: string): Promise<Approver[]> {
    const rows = this.sql<{ approver: string }>("SELECT approver FROM outbox WHERE state = 'parked' AND source = ? ORDER BY id").all(source);
    const approvers = new Map<string, Approver>();
    for (const row of rows) {
      const approver = parse<Approver>(row.approver);
      if (!approvers.has(approver.sourceUserId)) approvers.set(approver.sourceUserId, approver);
    }
    return [...approvers.values()];
  }

  async resolveApprover(source: string, approver: Required<Pick<Approver, 'sourceUserId' | 'email'>> & Approver): Promise<number> {
    const email = normEmail(approver.email);
    if (!email) throw new Error(`approver ${approver.sourceUserId} of ${source}: cannot resolve to an empty e-mail`);
    const id = approver.sourceUserId;
    return this.write(() => {
      const named = this.sql<{ body: string }>(
        `
        SELECT a.body FROM approval_approvers p CROSS JOIN approvals a ON a.key = p.approval_key
        WHERE p.source = ? AND p.source_user_id = ?`,
      ).all(source, id);
      const keys: string[] = [];
      for (const { body } of named) {
        const row = parseBody(body);
        const approvers = row.approvers.map((a) => (a.sourceUserId === id ? { ...a, email } : a));
        this.unlist(row.key);
        this.sql('UPDATE approvals SET body = ? WHERE key = ?').run(JSON.stringify({ ...row, approvers }), row.key);
        keys.push(row.key);
      }
      this.sql('UPDATE approval_approvers SET email = ? WHERE source = ? AND source_user_id = ?').run(email, source, id);
      for (const key of keys) this.enlist(key);
      const parked = this.sql<{ id: number; approver: string }>(
        "SELECT id, approver FROM outbox WHERE state = 'parked' AND source = ? AND approver_id = ?",
      ).all(source, id);
      for (const entry of parked) {
        this.sql("UPDATE outbox SET state = 'pending', approver = ? WHERE id = ?").run(JSON.stringify({ ...parse<Approver>(entry.approver), email }), entry.id);
      }
      return parked.length;
    });
  }

  async claimOutbox(limit: number, now: Date, leaseMs: number): Promise<OutboxEntry[]> {
    if (limit <= 0) return [];
    // One statement, so one atomic step. Each arm reads ids through outbox_by_state, however many
    // settled rows the outbox has accumulated. Card messages to one person about one approval on
    // one channel go in order: one waits while an older one is still owed or in flight, so a close
    // never overtakes the notify it must close (it would find no receipt and be dropped).
    const rows = this.sql<OutboxRow>(
      `
      UPDATE outbox SET state = 'inflight', claimed_at = @now, attempts = attempts + 1
      WHERE id IN (
        SELECT id FROM (SELECT o.id FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= @now AND ${FIRST_IN_LINE} ORDER BY o.id LIMIT @limit)
        UNION ALL
        SELECT id FROM (SELECT o.id FROM outbox o WHERE o.state = 'inflight' AND o.claimed_at <= @expired AND ${FIRST_IN_LINE} ORDER BY o.id LIMIT @limit)
        ORDER BY id LIMIT @limit)
      RETURNING ${OUTBOX_COLUMNS}`,
    ).all({
      now: now.toISOString(),
      expired: new Date(now.getTime() - leaseMs).toISOString(),
      limit: Math.trunc(limit),
    });
    return rows.sort((a, b) => a.id - b.id).map(toEntry);
  }

  async settleOutbox(id: number, outcome: OutboxOutcome, now: Date): Promise<void> {
    const at = now.toISOString();
    this.write(() => {
      const entry = this.sql<{ approval_key: string; approver_id: string; channel: string; action: OutboxAction }>(
        'SELECT approval_key, approver_id, channel, action FROM outbox WHERE id = ?',
      ).get(id);
      if (!entry) throw new Error(`outbox entry ${id} does not exist`);
      switch (outcome.state) {
        case 'delivered':
          this.sql("UPDATE outbox SET state = 'delivered', claimed_at = NULL, settled_at = ? WHERE id = ?").run(at, id);
          // A reminder or digest delivered without a receipt showed no card, so it replaces nothing.
          if (!CARD_ACTIONS.has(entry.action) && !outcome.receipt) return;
          // What this delivery showed replaces every older message still owed to the same person
          // on the same channel: sending those later would show them an older card, or a second one.
          this.sql(
            `
            UPDATE outbox SET state = 'superseded', claimed_at = NULL, settled_at = ?
            WHERE approval_key = ? AND approver_id = ? AND channel = ? AND id < ? AND state IN ('pending', 'parked')`,
          ).run(at, entry.approval_key, entry.approver_id, entry.channel, id);
          if (outcome.receipt) {
            // A late delivery of an older entry never replaces the receipt of a newer message.
            // Ordered by outbox id, not revision: revisions restart when an approval is queued again.
            this.sql(
              `
              INSERT INTO receipts (approval_key, approver_id, channel, ref, outbox_id) VALUES (?, ?, ?, ?, ?)
              ON CONFLICT (approval_key, approver_id, channel) DO UPDATE SET ref = excluded.ref, outbox_id = excluded.outbox_id
              WHERE excluded.outbox_id >= receipts.outbox_id`,
            ).run(entry.approval_key, entry.approver_id, entry.channel, outcome.receipt.ref, id);
          }
          return;
        case 'superseded':
          this.sql("UPDATE outbox SET state = 'superseded', claimed_at = NULL, settled_at = ? WHERE id = ?").run(at, id);
          return;
        case 'retry':
          this.sql("UPDATE outbox SET state = 'pending', claimed_at = NULL, next_attempt_at = ?, last_error = ? WHERE id = ?").run(
            outcome.nextAttemptAt.toISOString(),
            outcome.error,
            id,
          );
          return;
        case 'dead':
          this.sql("UPDATE outbox SET state = 'dead', claimed_at = NULL, settled_at = ?, last_error = ? WHERE id = ?").run(at, outcome.error, id);
          return;
      }
    });
  }

  async listOutbox(state: OutboxState, limit?: number): Promise<OutboxEntry[]> {
    return this.sql<OutboxRow>(`SELECT ${OUTBOX_COLUMNS} FROM outbox WHERE state = ? ORDER BY id LIMIT ?`).all(state, sqlLimit(limit)).map(toEntry);
  }

  async purgeOutbox(settledBefore: Date, limit: number): Promise<{ entries: number; receipts: number }> {
    if (limit <= 0) return { entries: 0, receipts: 0 };
    return this.write(() => {
      const lines = this.sql<{ approval_key: string; approver_id: string; channel: string }>(
        `
        DELETE FROM outbox WHERE id IN (
          SELECT id FROM outbox WHERE state IN ('delivered', 'superseded', 'dead') AND settled_at < ? ORDER BY settled_at LIMIT ?)
        RETURNING approval_key, approver_id, channel`,
      ).all(settledBefore.toISOString(), limit);
      let receipts = 0;
      for (const line of distinctLines(lines)) {
        receipts += this.sql(RECEIPT_PURGE).run(line.approval_key, line.approver_id, line.channel).changes;
      }
      return { entries: lines.length, receipts };
    });
  }

  async deliveredSince(channel: string, after: Date, limit: number): Promise<DeliveredEntry[]> {
    return this.sql<OutboxRow & { settled_at: string }>(
      `SELECT ${OUTBOX_COLUMNS}, settled_at FROM outbox WHERE state = 'delivered' AND channel = ? AND settled_at > ? ORDER BY settled_at, id LIMIT ?`,
    )
      .all(channel, after.toISOString(), sqlLimit(limit))
      .map((row) => ({ ...toEntry(row), settledAt: row.settled_at }));
  }

  async outboxCounts(): Promise<Record<'pending' | 'parked' | 'inflight' | 'dead', number>> {
    const counts = { pending: 0, parked: 0, inflight: 0, dead: 0 };
    const rows = this.sql<{ state: keyof typeof counts; n: number }>(
      "SELECT state, COUNT(*) AS n FROM outbox WHERE state IN ('pending', 'parked', 'inflight', 'dead') GROUP BY state",
    ).all();
    for (const r of rows) counts[r.state] = r.n;
    return counts;
  }

  async releaseInflight(): Promise<number> {
    return this.sql("UPDATE outbox SET state = 'pending', claimed_at = NULL WHERE state = 'inflight'").run().changes;
  }

  async receipt(approvalKey: string, approverId: string, channel: string): Promise<DeliveryReceipt | undefined> {
    const row = this.sql<{ ref: string }>('SELECT ref FROM receipts WHERE approval_key = ? AND approver_id = ? AND channel = ?').get(
      approvalKey,
      approverId,
      channel,
    );
    return row && { ref: row.ref };
  }

  async dueReminders(query: DueReminderQuery): Promise<ReminderCandidate[]> {
    if (query.maxReminders <= 0) return [];
    const { after } = query;
    // reminders_due drives: one range of last_at per count below the maximum; approvals and
    // approval_approvers are probed by primary key for each candidate only.
    const rows = this.sql<{ approver_id: string; sent: number; last_at: string; body: string }>(
      `
      SELECT r.approver_id, r.sent, r.last_at, a.body
      FROM reminders r CROSS JOIN approvals a ON a.key = r.approval_key
      WHERE r.sent IN (${counts(query.maxReminders)}) AND r.last_at <= @lastBefore
        ${after ? 'AND (r.last_at, r.approval_key, r.approver_id) > (@afterAt, @afterKey, @afterApprover)' : ''}
        AND a.status = 'pending' AND a.source_updated_at >= @notBefore
        AND json_extract(a.body, '$.generation') = r.generation
        AND EXISTS (SELECT 1 FROM approval_approvers p
                    WHERE p.approval_key = r.approval_key AND p.source_user_id = r.approver_id AND p.email IS NOT NULL)
      ORDER BY r.last_at, r.approval_key, r.approver_id
      LIMIT @limit`,
    ).all({
      lastBefore: query.lastBefore.toISOString(),
      notBefore: query.notBefore.toISOString(),
      limit: sqlLimit(query.limit),
      ...(after ? { afterAt: after.lastAt, afterKey: after.approvalKey, afterApprover: after.approverId } : {}),
    });
    return rows.flatMap((r) => {
      const approval = parseBody(r.body);
      const approver = approval.approvers.find((a) => a.sourceUserId === r.approver_id);
      return approver ? [{ approval, approver, sent: r.sent, lastAt: r.last_at }] : [];
    });
  }

  async scheduleReminders(drafts: readonly ReminderDraft[], now: Date): Promise<number> {
    const at = now.toISOString();
    return this.write(() => drafts.reduce((written, draft) => written + this.scheduleOne(draft, at), 0));
  }

  async getState(namespace: string, key: string): Promise<string | undefined> {
    return this.sql<{ value: string }>('SELECT value FROM source_state WHERE namespace = ? AND key = ?').get(namespace, key)?.value;
  }

  async setState(namespace: string, key: string, value: string): Promise<void> {
    this.sql('INSERT INTO source_state (namespace, key, value) VALUES (?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value').run(
      namespace,
      key,
      value,
    );
  }

  async addTriggers(source: string, triggers: readonly SourceTrigger[]): Promise<{ added: number; duplicates: number }> {
    const rows = triggers.map((t) => ({
      source,
      triggerId: t.id,
      externalId: t.externalId,
      receivedAt: receivedTime(source, t),
      data: t.data === undefined ? null : JSON.stringify(t.data),
    }));
    // One transaction: all stored, or none and the call fails. ON CONFLICT names the one constraint
    // a duplicate meets (an id held already, or repeated earlier in this call); any other violation fails.
    const added = this.write(() =>
      rows.reduce(
        (n, row) =>
          n +
          this.sql(
            `
            INSERT INTO source_triggers (source, trigger_id, external_id, received_at, data)
            VALUES (@source, @triggerId, @externalId, @receivedAt, @data)
            ON CONFLICT (source, trigger_id) DO NOTHING`,
          ).run(row).changes,
        0,
      ),
    );
    return { added, duplicates: triggers.length - added };
  }

  async claimTriggers(source: string, limit: number, now: Date, leaseMs: number): Promise<ClaimedTrigger[]> {
    if (limit <= 0) return [];
    // One statement, so one atomic step; source_triggers_pending reads unsettled rows only.
    const rows = this.sql<TriggerRow>(
      `
      UPDATE source_triggers SET attempts = attempts + 1, claimable_at = @until
      WHERE seq IN (
        SELECT seq FROM source_triggers WHERE source = @source AND settled_at IS NULL AND claimable_at <= @now ORDER BY seq LIMIT @limit)
      RETURNING ${TRIGGER_COLUMNS}`,
    ).all({
      source,
      now: now.toISOString(),
      until: new Date(now.getTime() + leaseMs).toISOString(),
      limit: Math.trunc(limit),
    });
    return rows.sort((a, b) => a.seq - b.seq).map(toTrigger);
  }

  async settleTriggers(source: string, seqs: readonly number[], now: Date): Promise<void> {
    const at = now.toISOString();
    // The data goes: a settled row is kept only so its id is recognised as a duplicate.
    const settle = this.sql('UPDATE source_triggers SET settled_at = ?, data = NULL WHERE seq = ? AND source = ? AND settled_at IS NULL');
    this.write(() => {
      for (const seq of seqs) settle.run(at, seq, source);
    });
  }

  async releaseTriggers(source: string, seqs: readonly number[], retryAt: Date): Promise<void> {
    const at = retryAt.toISOString();
    const release = this.sql('UPDATE source_triggers SET claimable_at = ? WHERE seq = ? AND source = ? AND settled_at IS NULL');
    this.write(() => {
      for (const seq of seqs) release.run(at, seq, source);
    });
  }

  async pendingTriggers(source: string): Promise<{ count: number; oldestReceivedAt: string | undefined }> {
    const row = this.sql<{ n: number; oldest: string | null }>(
      'SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM source_triggers WHERE source = ? AND settled_at IS NULL',
    ).get(source);
    return { count: row?.n ?? 0, oldestReceivedAt: row?.oldest ?? undefined };
  }

  async purgeTriggers(before: Date): Promise<number> {
    return this.sql('DELETE FROM source_triggers WHERE settled_at < ?').run(before.toISOString()).changes;
  }

  /**
   * The lock is a write transaction on a file of its own beside the queue file (`<file>.credentials-lock`),
   * taken on a dedicated connection: a write lock on the queue file itself, held while a token refresh
   * is on the wire, would stall this process's own queue writes (better-sqlite3 waits for a busy
   * file synchronously, so the refresh could not even finish). The connection never waits inside
   * SQLite (busy timeout 0): a busy lock is retried after a short sleep, so the event loop runs on.
   */
  async withStateLock<T>(
    namespace: string,
    key: string,
    work: (value: string | undefined) => Promise<{ readonly value?: string | undefined; readonly result: T }>,
  ): Promise<T> {
    this.open();
    const turn = this.lockTail
      .catch(() => undefined)
      .then(() =>
        this.holdingLockFile(async () => {
          const update = await work(await this.getState(namespace, key));
          if (update.value !== undefined) {
            const value = update.value;
            this.write(() => void this.setStateNow(namespace, key, value));
          }
          return update.result;
        }),
      );
    this.lockTail = turn;
    return turn;
  }

  /** Beside the queue file, which one host owns; a queue in memory dies with its process. */
  credentialKeyHome(): { readonly kind: 'file'; readonly path: string } | { readonly kind: 'process' } {
    return this.onDisk ? { kind: 'file', path: `${this.path}.key` } : { kind: 'process' };
  }

  private get onDisk(): boolean {
    return this.path !== '' && this.path !== ':memory:' && !this.path.startsWith('file:');
  }

  private async holdingLockFile<T>(work: () => Promise<T>): Promise<T> {
    const lockPath = this.onDisk ? `${this.path}.credentials-lock` : ':memory:';
    if (!this.lockDb) {
      if (this.onDisk) ownerOnly(lockPath);
      this.lockDb = new Database(lockPath, { timeout: 0 });
      this.lockDb.exec('CREATE TABLE IF NOT EXISTS credential_lock (id INTEGER PRIMARY KEY)');
    }
    const db = this.lockDb;
    const deadline = Date.now() + STATE_LOCK_WAIT_MS;
    for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
      try {
        db.exec('BEGIN IMMEDIATE');
        break;
      } catch (error) {
        if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
        if (Date.now() > deadline)
          throw new Error(`timed out after ${STATE_LOCK_WAIT_MS / 1000} s waiting for the credential lock ${lockPath}: another process holds it`);
        await sleep(pause + Math.random() * pause);
      }
    }
    try {
      return await work();
    } finally {
      if (db.open && db.inTransaction) db.exec('ROLLBACK');
    }
  }

  private setStateNow(namespace: string, key: string, value: string): void {
    this.sql('INSERT INTO source_state (namespace, key, value) VALUES (?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value').run(
      namespace,
      key,
      value,
    );
  }

  async listAudit(limit?: number): Promise<AuditRecord[]> {
    const rows = this.sql<{ id: number; at: string; actor: string; action: string; key: string | null; detail: string | null }>(
      'SELECT id, at, actor, action, key, detail FROM audit_log ORDER BY id DESC LIMIT ?',
    ).all(sqlLimit(limit));
    return rows.map(({ key, detail, ...record }) => ({
      ...record,
      ...(key === null ? {} : { key }),
      ...(detail === null ? {} : { detail }),
    }));
  }

  private row(key: string): QueuedApproval | undefined {
    const row = this.sql<{ body: string }>('SELECT body FROM approvals WHERE key = ?').get(key);
    return row && parseBody(row.body);
  }

  /** Writes what `planBatch` decided; returns how many outbox entries were new. */
  private apply(plan: BatchPlan, now: Date): number {
    for (const key of plan.deletes) {
      this.unlist(key);
      this.sql('DELETE FROM approvals WHERE key = ?').run(key);
    }
    for (const row of plan.upserts) this.put(row);
    const createdAt = now.toISOString();
    let written = 0;
    for (const draft of plan.outbox) written += this.owe(draft, createdAt);
    for (const n of plan.notified) {
      this.sql(
        `
        INSERT INTO reminders (approval_key, approver_id, generation, sent, last_at) VALUES (?, ?, ?, 0, ?)
        ON CONFLICT (approval_key, approver_id) DO UPDATE SET generation = excluded.generation, sent = 0, last_at = excluded.last_at`,
      ).run(n.approvalKey, n.approverId, n.generation, createdAt);
    }
    return written;
  }

  /** Inserts one outbox entry unless its idempotency key is taken; returns 1 if it was new. */
  private owe(draft: OutboxDraft, createdAt: string): number {
    // ON CONFLICT names the one constraint a replay may hit; any other violation still fails the batch.
    return this.sql(
      `
      INSERT INTO outbox (approval_key, source, revision, channel, approver, approver_id, action, outcome, card,
                          idempotency_key, state, next_attempt_at, created_at, digest)
      VALUES (@approvalKey, @source, @revision, @channel, @approver, @approverId, @action, @outcome, @card,
              @idempotencyKey, @state, @createdAt, @createdAt, @digest)
      ON CONFLICT (idempotency_key) DO NOTHING`,
    ).run({
      approvalKey: draft.approvalKey,
      source: draft.source,
      revision: draft.revision,
      channel: draft.channel,
      approver: JSON.stringify(draft.approver),
      approverId: draft.approver.sourceUserId,
      action: draft.action,
      outcome: draft.outcome ?? null,
      card: JSON.stringify(draft.card),
      idempotencyKey: draft.idempotencyKey,
      state: draft.state,
      createdAt,
      digest: draft.digest === undefined ? null : JSON.stringify(draft.digest),
    }).changes;
  }

  /** One reminder draft inside the write transaction, which no other writer can interleave: checked, then written. */
  private scheduleOne(draft: ReminderDraft, at: string): number {
    const current = draft.spends.every((spend) =>
      this.sql(
        `
        SELECT 1 FROM reminders r JOIN approvals a ON a.key = r.approval_key
        WHERE r.approval_key = ? AND r.approver_id = ? AND r.generation = ? AND r.sent = ?
          AND a.status = 'pending' AND json_extract(a.body, '$.generation') = r.generation`,
      ).get(spend.approvalKey, spend.approverId, spend.generation, spend.sent),
    );
    if (!current) return 0;
    const fresh = draft.outbox.filter((o) => !this.sql('SELECT 1 FROM outbox WHERE idempotency_key = ?').get(o.idempotencyKey));
    if (fresh.length === 0) return 0;
    const written = fresh.reduce((n, o) => n + this.owe(o, at), 0);
    for (const spend of draft.spends) {
      this.sql('UPDATE reminders SET sent = sent + 1, last_at = ? WHERE approval_key = ? AND approver_id = ?').run(at, spend.approvalKey, spend.approverId);
    }
    return written;
  }

  private put(row: QueuedApproval): void {
    const sourceUpdatedAt = isoTime(row.sourceUpdatedAt, row.key);
    this.sql(
      `
      INSERT INTO approvals (key, source, kind, external_id, status, revision, fingerprint, source_updated_at, queued_at, body)
      VALUES (@key, @source, @kind, @externalId, @status, @revision, @fingerprint, @sourceUpdatedAt, @queuedAt, @body)
      ON CONFLICT (key) DO UPDATE SET
        status = excluded.status, revision = excluded.revision, fingerprint = excluded.fingerprint,
        source_updated_at = excluded.source_updated_at, queued_at = excluded.queued_at, body = excluded.body`,
    ).run({
      key: row.key,
      source: row.source,
      kind: row.kind,
      externalId: row.externalId,
      status: row.status,
      revision: row.revision,
      fingerprint: row.fingerprint,
      sourceUpdatedAt,
      queuedAt: row.queuedAt,
      body: JSON.stringify(row),
    });
    this.unlist(row.key);
    this.sql('DELETE FROM approval_approvers WHERE approval_key = ?').run(row.key);
    for (const approver of row.approvers) {
      this.sql('INSERT INTO approval_approvers (approval_key, source_user_id, email, source, source_updated_at) VALUES (?, ?, ?, ?, ?)').run(
        row.key,
        approver.sourceUserId,
        normEmail(approver.email) ?? null,
        row.source,
        sourceUpdatedAt,
      );
    }
    this.enlist(row.key);
  }

  /** Takes an approval's rows out of approval_list, found through its approvers (call before they change). */
  private unlist(key: string): void {
    this.sql(
      `
      DELETE FROM approval_list WHERE (email, source_updated_at, approval_key) IN (
        SELECT email, source_updated_at, approval_key FROM approval_approvers WHERE approval_key = ? AND email IS NOT NULL)`,
    ).run(key);
  }

  /** Puts a pending approval in approval_list once per approver e-mail, with a copy of its body. */
  private enlist(key: string): void {
    this.sql(
      `
      INSERT OR REPLACE INTO approval_list (email, source_updated_at, approval_key, source, body)
      SELECT p.email, p.source_updated_at, p.approval_key, p.source, a.body
      FROM approval_approvers p JOIN approvals a ON a.key = p.approval_key
      WHERE p.approval_key = ? AND p.email IS NOT NULL AND a.status = 'pending'`,
    ).run(key);
  }

  /** A prepared statement, prepared once per SQL text. */
  private sql<R = unknown>(text: string): Database.Statement<unknown[], R> {
    const db = this.open();
    let statement = this.statements.get(text);
    if (!statement) {
      statement = db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement as Database.Statement<unknown[], R>;
  }

  /** IMMEDIATE takes the write lock up front, so a second process waits (busy_timeout) instead of failing mid-transaction. */
  private write<T>(work: () => T): T {
    return this.open().transaction(work).immediate();
  }

  private open(): Database.Database {
    if (!this.db) throw new Error(this.closed ? `queue ${this.path} is closed` : `queue ${this.path} is not initialised: call init() first`);
    return this.db;
  }
}

/** How long withStateLock waits for another process's credential refresh before giving up. */
const STATE_LOCK_WAIT_MS = 120_000;

/**
 * Creates `file` readable by its owner only (0600), or takes group and other access away from one
 * an older version created; SQLite gives the -wal and -shm files it creates the queue file's mode.
 */
function ownerOnly(file: string): void {
  closeSync(openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if (existsSync(f) && (statSync(f).mode & 0o077) !== 0) chmodSync(f, 0o600);
    } catch {
      // Not ours to change (another owner): left as the operator set it.
    }
  }
}

function toEntry(row: OutboxRow): OutboxEntry {
  return {
    id: row.id,
    approvalKey: row.approval_key,
    source: row.source,
    revision: row.revision,
    channel: row.channel,
    approver: parse<Approver>(row.approver),
    action: row.action,
    ...(row.outcome === null ? {} : { outcome: row.outcome }),
    card: parse(row.card),
    idempotencyKey: row.idempotency_key,
    state: row.state,
    // The column counts the current claim too; callers see earlier claims only, so 0 means first try.
    attempts: row.state === 'inflight' ? row.attempts - 1 : row.attempts,
    ...(row.last_error === null ? {} : { lastError: row.last_error }),
    createdAt: row.created_at,
    ...(row.digest === null ? {} : { digest: parse(row.digest) }),
  };
}

function toTrigger(row: TriggerRow): ClaimedTrigger {
  return {
    id: row.trigger_id,
    externalId: row.external_id,
    receivedAt: row.received_at,
    ...(row.data === null ? {} : { data: parse<Record<string, unknown>>(row.data) }),
    seq: row.seq,
    attempts: row.attempts,
  };
}

/** A trigger's receivedAt in `toISOString()` form, so the column sorts as time does; throws on one that is not a time. */
function receivedTime(source: string, trigger: SourceTrigger): string {
  const ms = Date.parse(trigger.receivedAt);
  if (Number.isNaN(ms)) throw new Error(`trigger ${trigger.id} of ${source}: receivedAt "${trigger.receivedAt}" is not a time`);
  return new Date(ms).toISOString();
}

function filter(options: ListOptions): { notBefore: string; source?: string } {
  return { notBefore: options.notBefore.toISOString(), ...(options.source === undefined ? {} : { source: options.source }) };
}

/** `0, 1, …, max - 1`: the reminder counts still below `max`, as an IN list the index can seek. */
function counts(max: number): string {
  return Array.from({ length: Math.min(Math.trunc(max), 1000) }, (_, i) => i).join(', ');
}

/** SQLite reads a negative LIMIT as none. */
function sqlLimit(limit: number | undefined): number {
  return limit === undefined ? -1 : Math.max(0, Math.trunc(limit));
}

/** Only this adapter writes these columns, so what comes back is what went in. */
function parse<T>(json: string): T {
  return JSON.parse(json) as T;
}

/** An approval body, in the current shape even when an older version wrote it (see `fromStoredBody`). */
function parseBody(json: string): QueuedApproval {
  return fromStoredBody(JSON.parse(json) as QueuedApproval);
}

/** The `toISOString()` form of a time, so the column sorts as time does; throws on a time that is not one. */
