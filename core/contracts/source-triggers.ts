import type { ServiceIdentifier } from '../di.js';

/**
 * A hint from outside the poll (a push event) that one of a source's records changed: a reason to
 * re-read that record now, never the record's state. The runner hands triggers back to the source
 * (`ApprovalSource.refresh`, else `verify`), which reads the truth from the source's API.
 */
export interface SourceTrigger {
  /**
   * Unique per source instance (Concur: the event's `id`). A trigger whose id the store already
   * holds, pending or settled within {@link TRIGGER_ID_MEMORY_MS}, is a duplicate and is dropped.
   */
  readonly id: string;
  /** The source's id of the record to re-read (Concur: the report id). */
  readonly externalId: string;
  /** ISO-8601 UTC: when this host accepted it. */
  readonly receivedAt: string;
  /** JSON the source reads back when refreshing (event type, last-modified time, correlation id, …); never shown. */
  readonly data?: Readonly<Record<string, unknown>> | undefined;
}

/** A trigger taken by {@link TriggerStore.claimTriggers}: settle it when done, or it is claimable again when its lease runs out. */
export interface ClaimedTrigger extends SourceTrigger {
  /** Store-assigned, increasing in the order triggers were added; what settle and release name. */
  readonly seq: number;
  /** How many claims this trigger has had, this one included. */
  readonly attempts: number;
}

/**
 * How long a settled trigger's id is remembered, so a redelivered or replayed event is recognised:
 * four days, past the 72 hours Concur keeps retrying an event.
 */
export const TRIGGER_ID_MEMORY_MS = 4 * 86_400_000;

/**
 * Durable triggers, part of {@link ApprovalQueue}. A trigger is stored before the push that carried
 * it is acknowledged, so an acknowledged event survives a crash; several hosts may add and claim
 * on one shared store without taking the same trigger twice at once.
 */
export interface TriggerStore {
  /**
   * Stores triggers durably (committed when this resolves), skipping ids the store already holds
   * for this source (pending, claimed, or settled within {@link TRIGGER_ID_MEMORY_MS}) and ids
   * repeated within the call. Rejects when it cannot store: the caller must then not acknowledge.
   */
  addTriggers(source: string, triggers: readonly SourceTrigger[]): Promise<{ readonly added: number; readonly duplicates: number }>;
  /**
   * Takes up to `limit` of the source's triggers that are unclaimed or whose lease ran out, lowest
   * `seq` first, leasing them until `now + leaseMs`.
   */
  claimTriggers(source: string, limit: number, now: Date, leaseMs: number): Promise<ClaimedTrigger[]>;
  /** Done: the triggers leave the pending set; their ids stay remembered for duplicates. Unknown seqs are ignored. */
  settleTriggers(source: string, seqs: readonly number[], now: Date): Promise<void>;
  /** Gives claimed triggers back, claimable again at `retryAt` (a failed refresh). */
  releaseTriggers(source: string, seqs: readonly number[], retryAt: Date): Promise<void>;
  /** Pending (unsettled) triggers of a source, and when the oldest of them was received. */
  pendingTriggers(source: string): Promise<{ readonly count: number; readonly oldestReceivedAt: string | undefined }>;
  /** Forgets the ids of triggers settled before `before`; resolves how many were forgotten. */
  purgeTriggers(before: Date): Promise<number>;
}

/** A push a source plugin received and what became of it, for the runner's health of the source's events. */
export interface TriggerSubmission {
  readonly added: number;
  readonly duplicates: number;
}

/**
 * Bound in each source instance's child container by the host: how a source plugin's webhook
 * route hands the triggers of a push to the core. `submit` resolves once they are stored (then
 * acknowledge the push) and wakes the runner to refresh them; it rejects when the queue cannot
 * store them (then answer 5xx, so the sender retries).
 */
export interface SourceTriggers {
  submit(triggers: readonly Omit<SourceTrigger, 'receivedAt'>[]): Promise<TriggerSubmission>;
  /** A push the plugin refused as not authentic (bad signature, unknown key, wrong client certificate): counted toward the fallback to polling. */
  refused(reason: string): void;
}
export const SourceTriggers: ServiceIdentifier<SourceTriggers> = Symbol.for('approvals.core.SourceTriggers');
