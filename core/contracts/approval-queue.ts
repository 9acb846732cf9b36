import type { ServiceIdentifier } from '../di.js';
import type { TriggerStore } from './source-triggers.js';
import type { Approver } from '../model/approval.js';
import type {
  AuditRecord,
  ChangeBatch,
  CommitContext,
  CommitResult,
  DeliveredEntry,
  DeliveryReceipt,
  DueReminderQuery,
  ListOptions,
  OutboxEntry,
  OutboxOutcome,
  OutboxState,
  QueuedApproval,
  ReminderCandidate,
  ReminderDraft,
} from '../model/queue-types.js';

/**
 * An exclusive, named claim that one holder at a time has across every host sharing the queue
 * ("this host polls source instance X"). It ends when released or when its holder's session dies.
 */
export interface Lease {
  readonly name: string;
  /** False once released, or once the session holding it has ended (the claim died with it). */
  held(): boolean;
  /** Gives the lease up; idempotent. */
  release(): Promise<void>;
}

/**
 * The read side of the queued approvals: what lookups, the operator CLI and the outbox worker read.
 * Part of {@link ApprovalQueue}; type a dependency as this slice when it only reads.
 */
export interface ApprovalReader {
  /** The cursor committed with the source's last batch, or undefined before the first. */
  getCursor(source: string): Promise<string | undefined>;

  /** A queued approval by key, expired or not (for operators); undefined if not queued. */
  get(key: string): Promise<QueuedApproval | undefined>;

  /**
   * Pending approvals where `email` is an approver (case-insensitive), newest first. Never returns
   * another person's approval or one whose source update is before `options.notBefore`.
   */
  listForApprover(email: string, options: ListOptions): Promise<QueuedApproval[]>;

  /** All queued approvals of a source (or every source), unexpired, newest first. */
  list(options: ListOptions): Promise<QueuedApproval[]>;

  /** Every queued key of a source with its source update time, expired included (for sweeps). */
  keys(source: string): Promise<{ key: string; externalId: string; sourceUpdatedAt: string }[]>;

  /** Number of unexpired queued approvals. */
  count(options: ListOptions): Promise<number>;

  /** The audit log, newest first. Entries are written by `commit` with `batch.audit`. */
  listAudit(limit?: number): Promise<AuditRecord[]>;
}

/** The approvals themselves: the transactional commit of a source's batch and the repairs around it. Part of {@link ApprovalQueue}. */
export interface ApprovalStore extends ApprovalReader {
  /**
   * Applies a batch atomically: reads the queued rows for its keys, runs `planBatch`, writes the
   * rows, the outbox entries, the audit entries and the cursor, all or nothing; for each approver
   * the plan names in `notified`, the reminder count restarts at 0 and its clock at `ctx.now`. Idempotent:
   * committing the same batch twice changes nothing the second time and owes no new message.
   * The result's `outbox` counts entries written; audit entries are appended on every call.
   */
  commit(batch: ChangeBatch, ctx: CommitContext): Promise<CommitResult>;

  /**
   * Deletes rows last updated by their source before `notBefore`, closing their cards with the
   * outcome `expired`, in one transaction. Returns the purged keys.
   */
  purgeExpired(ctx: CommitContext): Promise<string[]>;

  /** Approvers with parked outbox entries (no e-mail yet), per source. */
  parkedApprovers(source: string): Promise<Approver[]>;

  /**
   * Records an approver's resolved e-mail on every queued approval of the source that names
   * them, and releases their parked outbox entries to `pending`. Returns how many were released.
   */
  resolveApprover(source: string, approver: Required<Pick<Approver, 'sourceUserId' | 'email'>> & Approver): Promise<number>;
}

/** The outbox the worker drains and operators inspect, and the delivery receipts it leaves. Part of {@link ApprovalQueue}. */
export interface OutboxStore {
  /**
   * Claims up to `limit` due outbox entries (pending, or inflight with a claim older than
   * `leaseMs`), oldest first, marking them inflight and counting the attempt. Two concurrent
   * claimers never get the same entry.
   */
  claimOutbox(limit: number, now: Date, leaseMs: number): Promise<OutboxEntry[]>;

  /**
   * Ends a claimed entry: delivered, superseded, retried later, or dead; throws for an unknown id.
   * Delivered records the receipt (unless a newer entry's is held) and, for a card message
   * (`notify`, `update`, `close`, or any entry delivered with a receipt: a reminder that had to
   * post the card), supersedes every older pending or parked entry of the same approval, approver
   * and channel: the delivered message already shows a newer card. A reminder or digest delivered
   * without a receipt supersedes nothing: it showed no card.
   */
  settleOutbox(id: number, outcome: OutboxOutcome, now: Date): Promise<void>;

  /** Entries by state (e.g. `dead` for the dead-letter list), oldest first. */
  listOutbox(state: OutboxState, limit?: number): Promise<OutboxEntry[]>;

  /**
   * Entries delivered on `channel` that settled after `after` (each by its settling host's clock),
   * oldest first, at most `limit`: the feed a channel with open pages on every host follows (the
   * web inbox), so a page sees what another host delivered.
   */
  deliveredSince(channel: string, after: Date, limit: number): Promise<DeliveredEntry[]>;

  /**
   * Deletes up to `limit` settled entries (delivered, superseded, dead) that settled before
   * `settledBefore`, oldest first, and the receipts they leave unneeded: a receipt goes once its
   * approval has left the queue, the entry that wrote it is gone and nothing is still owed or in
   * flight to the same person on that channel (the card is final). Returns what was deleted.
   */
  purgeOutbox(settledBefore: Date, limit: number): Promise<{ entries: number; receipts: number }>;

  /** How many entries wait in each unsettled state (pending, parked, inflight) and how many are dead. */
  outboxCounts(): Promise<Record<'pending' | 'parked' | 'inflight' | 'dead', number>>;

  /** Returns every inflight entry to pending; a single host calls this at start-up. */
  releaseInflight(): Promise<number>;

  /** The receipt of the latest delivered message for an approval, approver and channel. */
  receipt(approvalKey: string, approverId: string, channel: string): Promise<DeliveryReceipt | undefined>;
}

/** The reminder counts the reminder scheduler reads and spends. Part of {@link ApprovalQueue}. */
export interface ReminderStore {
  /**
   * Approvers of pending, unexpired approvals whose reminders are due: named by the approval with
   * an e-mail, notified about its current generation, last notified or reminded at or before
   * `query.lastBefore`, with fewer than `query.maxReminders` reminders spent. Ordered by (lastAt,
   * approval key, approver id); one index range per reminder count, so the cost follows the
   * candidates, not the queue.
   */
  dueReminders(query: DueReminderQuery): Promise<ReminderCandidate[]>;

  /**
   * Writes reminder drafts, each all or nothing: a draft applies only if every spend still
   * matches (its approval pending at that generation, the count still `sent`) and at least one of
   * its outbox entries is new; it then writes them and moves each count to `sent + 1` and its
   * clock to `now`. A draft that does not apply changes nothing. Idempotent: the same drafts
   * written again (or by a second host at once) owe nothing new. Returns the outbox entries written.
   */
  scheduleReminders(drafts: readonly ReminderDraft[], now: Date): Promise<number>;
}

/** Durable state owned by sources, plugins and the credential store, by namespace and key. Part of {@link ApprovalQueue}. */
export interface SourceStateStore {
  /** Source-owned durable state (rotating tokens, identity mappings), by namespace and key. */
  getState(namespace: string, key: string): Promise<string | undefined>;
  setState(namespace: string, key: string, value: string): Promise<void>;

  /**
   * Optional, for the credential store: runs `work` holding a lock on state entry (`namespace`,
   * `key`) that every process on this store honours, with the entry's value read inside the lock,
   * and writes the value `work` returns (if any) before releasing it. Callers in one process are
   * served one at a time. Rejects with a clear error when the lock is not taken within two minutes.
   */
  withStateLock?<T>(
    namespace: string,
    key: string,
    work: (value: string | undefined) => Promise<{ readonly value?: string | undefined; readonly result: T }>,
  ): Promise<T>;

  /**
   * Optional: where the credential key lives when the deployment configures none. `file`: a key
   * generated into that file (0600) beside an embedded store one host owns; `process`: a random key
   * for a store that dies with the process (memory). Absent or `shared`: several hosts may share
   * this store, so they must share a configured key, and credentials are refused without one.
   */
  credentialKeyHome?(): { readonly kind: 'file'; readonly path: string } | { readonly kind: 'process' } | { readonly kind: 'shared' };
}

/** Cross-host leases (optional: a queue one host owns needs none). Part of {@link ApprovalQueue}. */
export interface LeaseProvider {
  /**
   * Optional, for queues several hosts share (PostgreSQL): takes the lease `name` if no holder on
   * any host has it, else resolves undefined; never waits. A holder that dies frees it. A queue
   * without this method serves one host, which implicitly holds every lease.
   */
  acquireLease?(name: string): Promise<Lease | undefined>;
}

/**
 * Where approvals wait for their approvers, with the cursors, outbox, source state and audit
 * log that must change in the same transaction. Single binding: one queue per host.
 * Every adapter passes the contract kit `describeApprovalQueueContract` (`approvals-hub/testing`).
 *
 * It is the sum of role slices ({@link ApprovalStore}, {@link OutboxStore}, {@link ReminderStore},
 * {@link SourceStateStore}, {@link LeaseProvider}, {@link TriggerStore}): adapters implement the whole, each consumer types its
 * dependency as the slices it uses, so what it can touch is visible in its constructor.
 */
export interface ApprovalQueue extends ApprovalStore, OutboxStore, ReminderStore, SourceStateStore, LeaseProvider, TriggerStore {
  /** Opens the store and applies pending migrations. Idempotent. */
  init(): Promise<void>;
  /** Releases connections; later calls fail. */
  close(): Promise<void>;
}
export const ApprovalQueue: ServiceIdentifier<ApprovalQueue> = Symbol.for('approvals.core.ApprovalQueue');
