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
  readonly unchanged: number;
  readonly completed: number;
  /** Non-pending approvals that were not queued, or changes older than what the queue holds. */
  readonly ignored: number;
  readonly outbox: number;
  /** For each approval the batch queued or changed: commit time minus its source update time (detection lag). */
  readonly lagMs: readonly number[];
}

export type OutboxAction = 'notify' | 'update' | 'close';
export type OutboxState = 'pending' | 'parked' | 'inflight' | 'delivered' | 'superseded' | 'dead';

/** One message owed to one approver on one channel for one approval revision. */
export interface OutboxEntry {
  readonly id: number;
  readonly approvalKey: string;
  readonly source: string;
  readonly revision: number;
  readonly channel: string;
  readonly approver: Approver;
  readonly action: OutboxAction;
  readonly outcome?: CardOutcome | undefined;
  readonly card: Card;
  /** Stable across retries and crashes: `<key>#<generation>.<revision>:<approver>:<channel>:<action>`. */
  readonly idempotencyKey: string;
  readonly state: OutboxState;
  /** Earlier claims: 0 on an entry's first claim, so a claimed entry with attempts > 0 may already have been sent. */
  readonly attempts: number;
  readonly lastError?: string | undefined;
  /** ISO-8601 UTC. */
  readonly createdAt: string;
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
