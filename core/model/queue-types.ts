import type { Approval, Approver, ApprovalStatus } from './approval.js';
import type { Card, CardOutcome } from './card.js';

/** An approval as the queue holds it. */
export interface QueuedApproval extends Approval {
  /** Bumps whenever what a card shows, or who approves, changes. */
  readonly revision: number;
  readonly fingerprint: string;
  /** ISO-8601 UTC, host clock: first queued. */
  readonly queuedAt: string;
  /**
   * Random id given when the approval enters the queue. Revisions restart at 1 if an approval
   * leaves the queue and comes back (sent back and resubmitted), so idempotency keys carry both.
   */
  readonly generation: string;
}

/** An approval that left pending without the source sending its data (e.g. deleted in Concur). */
export interface Completion {
  readonly key: string;
  readonly status: Exclude<ApprovalStatus, 'pending'>;
}

export interface AuditEntry {
  /** Who made the change: an operator name, or `system` for automatic repairs. */
  readonly actor: string;
  /** What was done: `queue.remove`, `queue.resync`, `audit.fix`, ... */
  readonly action: string;
  readonly key?: string | undefined;
  readonly detail?: string | undefined;
}

export interface AuditRecord extends AuditEntry {
  readonly id: number;
  /** ISO-8601 UTC. */
  readonly at: string;
}

/**
 * Everything one detection step wants written, applied in one transaction: the upserts and
 * completions, the cursor that covers them, and the notifications they cause (the outbox).
 */
export interface ChangeBatch {
  readonly source: string;
  readonly approvals: readonly Approval[];
  readonly completions?: readonly Completion[] | undefined;
  /** Persisted with the batch; `undefined` leaves the cursor as it was. */
  readonly cursor?: string | undefined;
  /** Manual changes record who made them in the same transaction. */
  readonly audit?: readonly AuditEntry[] | undefined;
}

export interface CommitResult {
  readonly inserted: number;
  readonly updated: number;
  /** Of `updated`, approvals whose approvers changed (one removed or added). Absent from adapters older than it. */
  readonly reassigned?: number | undefined;
  readonly unchanged: number;
  readonly completed: number;
  /** Non-pending approvals that were not queued, or changes older than what the queue holds. */
  readonly ignored: number;
  readonly outbox: number;
  /** For each approval the batch queued or changed: commit time minus its source update time (detection lag). */
  readonly lagMs: readonly number[];
}

/**
 * `notify`, `update` and `close` post and edit the approver's card of an approval. `remind` nudges
 * an approver about a card they already have (never a second card with live buttons); `digest`
 * lists several approvals still waiting on one person, with links only.
 */
export type OutboxAction = 'notify' | 'update' | 'close' | 'remind' | 'digest';
/** The actions that post or edit the approver's card; only these carry its receipt forward. */
export const CARD_ACTIONS: ReadonlySet<OutboxAction> = new Set(['notify', 'update', 'close']);
export type OutboxState = 'pending' | 'parked' | 'inflight' | 'delivered' | 'superseded' | 'dead';

/** One message owed to one approver on one channel for one approval revision. */
export interface OutboxEntry extends Omit<OutboxDraft, 'state'> {
  readonly id: number;
  readonly state: OutboxState;
  /** Earlier claims: 0 on an entry's first claim, so a claimed entry with attempts > 0 may already have been sent. */
  readonly attempts: number;
  readonly lastError?: string | undefined;
  /** ISO-8601 UTC. */
  readonly createdAt: string;
}

/** A delivered outbox entry and when it settled (ISO-8601 UTC, the settling host's clock). */
export interface DeliveredEntry extends OutboxEntry {
  readonly settledAt: string;
}

/** What a channel returned for a delivered message, so it can be updated later. */
export interface DeliveryReceipt {
  readonly ref: string;
}

export type OutboxOutcome =
  | { readonly state: 'delivered'; readonly receipt?: DeliveryReceipt | undefined }
  | { readonly state: 'superseded' }
  | { readonly state: 'retry'; readonly error: string; readonly nextAttemptAt: Date }
  | { readonly state: 'dead'; readonly error: string };

/** Options every queue read takes so expired rows are never shown. */
export interface ListOptions {
  /** Rows whose source last updated them before this instant are expired and never returned. */
  readonly notBefore: Date;
  readonly source?: string | undefined;
  readonly limit?: number | undefined;
}

/** One approver of a queued approval whose reminders are due: last notified or reminded long enough ago. */
export interface ReminderCandidate {
  readonly approval: QueuedApproval;
  /** The approver as the approval names them now (with their e-mail and, where known, time zone). */
  readonly approver: Approver;
  /** Reminders already spent on this approval generation for this approver. */
  readonly sent: number;
  /** ISO-8601 UTC: when the approver was last notified or reminded about it. */
  readonly lastAt: string;
}

/** Which reminder candidates {@link ApprovalQueue.dueReminders} returns. */
export interface DueReminderQuery {
  /** Only approvers last notified or reminded at or before this instant. */
  readonly lastBefore: Date;
  /** Only approvers who have had fewer reminders than this. */
  readonly maxReminders: number;
  /** Retention: approvals last updated by their source before this are never returned. */
  readonly notBefore: Date;
  readonly limit?: number | undefined;
  /** Keyset paging: only candidates after this one in (lastAt, approval key, approver id) order. */
  readonly after?: { readonly lastAt: string; readonly approvalKey: string; readonly approverId: string } | undefined;
}

/** A reminder an approval's approver is spent on: its count goes from `sent` to `sent + 1`. */
export interface ReminderSpend {
  readonly approvalKey: string;
  readonly approverId: string;
  readonly generation: string;
  /** The count the scheduler read; the spend applies only if the queue still holds it. */
  readonly sent: number;
}

/** Renders the channel-neutral card for one revision of an approval. Pure. */
export type CardRenderer = (approval: QueuedApproval, outcome?: CardOutcome) => Card;

/** What a queue adapter needs, besides the batch, to turn changes into rows and outbox entries. */
export interface CommitContext {
  readonly now: Date;
  /** Notifier ids; each approver gets one outbox entry per channel. */
  readonly channels: readonly string[];
  /** Approvals last updated by their source before this are expired: never queued, never shown. */
  readonly notBefore: Date;
  readonly render: CardRenderer;
}

/** An outbox entry before the adapter gives it an id and state. */
export interface OutboxDraft {
  readonly approvalKey: string;
  readonly source: string;
  readonly revision: number;
  readonly channel: string;
  readonly approver: Approver;
  readonly action: OutboxAction;
  readonly outcome?: CardOutcome | undefined;
  /** The approval's card; for a `digest`, a summary card (`kind` `digest`) whose `approvalKey` is `digest:<e-mail>`. */
  readonly card: Card;
  /** `digest` only: the cards of the approvals it lists, as they were when it was scheduled. */
  readonly digest?: readonly Card[] | undefined;
  /**
   * Stable across retries and crashes: `<key>#<generation>.<revision>:<approver>:<channel>:<action>`;
   * a reminder's action is `remind-<n>` (its n-th for that approval version), a digest's key is
   * `digest:<e-mail>:<channel>:<the approver's local date>` (built and parsed by `buildIdempotencyKey`
   * and `parseIdempotencyKey`).
   */
  readonly idempotencyKey: string;
  /** `parked` when the approver has no e-mail yet: kept, and released once resolved. */
  readonly state: 'pending' | 'parked';
}

/**
 * One reminder message (a `remind` per channel) or one digest (a `digest` per channel) and the
 * reminders it spends, written by `ApprovalQueue.scheduleReminders` all or nothing.
 */
export interface ReminderDraft {
  readonly outbox: readonly OutboxDraft[];
  readonly spends: readonly ReminderSpend[];
}
