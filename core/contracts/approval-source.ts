import type { ServiceIdentifier } from '../di.js';
import type { Approval, Approver } from '../model/approval.js';
import type { Completion } from '../model/queue-types.js';
import type { ActionResult, SourceActRequest, SourceConnections } from './approval-actions.js';
import type { ClaimedTrigger } from './source-triggers.js';

/** What a source can do besides being read. */
export interface SourceCapabilities {
  /** Actions an approver may take from chat (e.g. `approve`, `sendBack`); empty = deflect to the source's UI. */
  readonly actions: readonly string[];
  /**
   * Present when this instance receives push events (see `SourceTriggers`): the poll becomes the
   * safety net and runs at {@link SourceEventsPolicy.pollIntervalMs} while the events are healthy.
   */
  readonly events?: SourceEventsPolicy | undefined;
}

/** How the runner polls a source whose changes also arrive as pushes. */
export interface SourceEventsPolicy {
  /** The poll interval while events are healthy (Concur: `events.pollIntervalSeconds`, default 900 s). */
  readonly pollIntervalMs: number;
  /** No push for this long and the events are presumed lost: the source falls back to its normal interval until one arrives. */
  readonly silenceMs: number;
  /** This many pushes refused as not authentic within `silenceMs`, and the source falls back to its normal interval. */
  readonly maxRefused: number;
}

/** One committable step of detection: approvals to upsert and the cursor that covers them. */
export interface SourceBatch {
  readonly approvals: readonly Approval[];
  readonly completions?: readonly Completion[] | undefined;
  /**
   * The cursor to persist with this batch; undefined keeps the previous one. A source sets it
   * only on the batch that completes a result set, so a failure mid-way replays, never skips.
   */
  readonly cursor?: string | undefined;
}

/** Durable per-source-instance key/value state, written through the queue store. */
export interface SourceState {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

export interface SyncContext {
  readonly signal: AbortSignal;
  readonly now: Date;
  /**
   * The queued copy of each of `keys` the queue holds (absent: not queued). A source can reuse what
   * an expensive per-approval read (card content, enrichment) added to a version already queued, so a
   * restarted host does not read again what it read before it stopped. Optional: callers outside a
   * runner (audits, tests) may not provide it.
   */
  readonly queued?: (keys: readonly string[]) => Promise<ReadonlyMap<string, Approval>>;
}

/** A queued approval to look up in its source. */
export interface VerifyRef {
  readonly externalId: string;
  /** The queued approval's `sourceData`, as the source gave it. */
  readonly sourceData?: Readonly<Record<string, unknown>> | undefined;
}

/** The current state of one approval in its source, as `verify` reports it. */
export type VerifyResult = { readonly found: true; readonly approval: Approval } | { readonly found: false; readonly externalId: string };

/**
 * A system approvals come from. Multi-bound: one binding per source instance in the deployment
 * file; the core registry rejects duplicate ids at start-up.
 */
export interface ApprovalSource {
  /** Source instance id (unique in the deployment). */
  readonly id: string;
  readonly capabilities: SourceCapabilities;

  /**
   * Changes since `cursor` (undefined = first sync, which must include every approval pending now
   * and counts as a sweep), as batches the core commits one at a time
   * with their cursor. Throws (or rejects mid-iteration) on a failed call; the batches already
   * yielded stay committed and the next cycle resumes from the last committed cursor.
   */
  changes(cursor: string | undefined, ctx: SyncContext): AsyncIterable<SourceBatch>;

  /**
   * Every approval pending now, for sweeps and audits. Batches carry no cursor. Approvals may come
   * without `content` / `sourceData` (undefined = not loaded), in which case the queued ones are kept.
   */
  listPending(ctx: SyncContext): AsyncIterable<readonly Approval[]>;

  /**
   * Reads the current state of each queued approval directly (the sweep's second look). Each ref
   * carries the queued `sourceData`, since some sources need it to address the record (Concur
   * needs the report owner's login).
   */
  verify(refs: readonly VerifyRef[], ctx: SyncContext): Promise<VerifyResult[]>;

  /**
   * Optional. Fills in, a bounded amount each cycle, what the source deliberately left out when it
   * took a backlog in (Concur: the line items of a multi-page first sync). Called once a cycle
   * after `changes`, with a context whose `queued` is set; yields queued approvals (same version)
   * with what was missing, which the core commits like any change: an `update` of each card,
   * never a second notify. Batches carry no cursor. Its progress must survive restarts.
   */
  backfill?(ctx: SyncContext): AsyncIterable<SourceBatch>;

  /**
   * Optional: re-reads the records named by push triggers (`SourceTriggers`) and returns what they
   * are now: approvals in any status (pending ones are queued, others close their cards) and
   * completions for records gone from the source. Triggers are hints, never truth: duplicates and
   * out-of-order ones must be harmless (compare the source's last-modified time with
   * `ctx.queued`). The batch's cursor is ignored. Absent: the core calls {@link verify} with the
   * triggers' external ids.
   */
  refresh?(triggers: readonly ClaimedTrigger[], ctx: SyncContext): Promise<SourceBatch>;

  /** Optional, cheap: queued approvals the backfill has not reached yet (diagnostics, metrics). */
  backfillPending?(): Promise<number>;

  /**
   * Takes one of `capabilities.actions` on a queued approval as its approver (see `ActingSource`);
   * the core calls it only after checking the click. Absent: the source's cards link out only.
   */
  act?(request: SourceActRequest): Promise<ActionResult>;

  /** Approvers' connections to the source for `act`, where it keeps them (per-approver consent). */
  readonly connections?: SourceConnections | undefined;
}
export const ApprovalSource: ServiceIdentifier<ApprovalSource> = Symbol.for('approvals.core.ApprovalSource');

export { type Approver };

/** Bound in each source instance's child container: that instance's durable state. */
export const SourceState: ServiceIdentifier<SourceState> = Symbol.for('approvals.core.SourceState');
