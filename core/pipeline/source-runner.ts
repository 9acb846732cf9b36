import type { Approval } from '../model/approval.js';
import type { AuditEntry, CommitResult, Completion } from '../model/queue-types.js';
import type { ApprovalQueue, Lease } from '../contracts/approval-queue.js';
import type { ApprovalSource, SyncContext } from '../contracts/approval-source.js';
import type { Clock } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import type { CommitContext, CardRenderer } from './planner.js';
import { ApproverResolver } from './approver-resolver.js';
import { timerDelay } from './timer-delay.js';

export interface SourceRunnerOptions {
  readonly pollIntervalMs: number;
  /** How often the sweep re-lists everything pending and verifies what it did not see; 0 = every cycle. */
  readonly sweepIntervalMs: number;
  readonly retentionDays: number;
  readonly channels: readonly string[];
  readonly render: CardRenderer;
}

export interface CycleReport {
  readonly source: string;
  readonly batches: number;
  readonly committed: CommitResult;
  readonly swept: boolean;
  /** Queued approvals the sweep found no longer pending (or gone) in the source. */
  readonly drift: number;
  readonly purged: number;
  readonly released: number;
  /** Queued approvals the source's backfill completed (e.g. Concur line items of a first sync's backlog). */
  readonly backfilled: number;
  readonly durationMs: number;
}

const SWEEP_STATE = 'core.sweep';
/** Per source: the backfill's backlog left after the last cycle, for processes that compose no source (`diagnostics`). */
export const BACKFILL_STATE = 'core.backfill';
const EMPTY: CommitResult = { inserted: 0, updated: 0, unchanged: 0, completed: 0, ignored: 0, outbox: 0, lagMs: [] };
const DAY_MS = 86_400_000;

function add(a: CommitResult, b: CommitResult): CommitResult {
  return {
    inserted: a.inserted + b.inserted,
    updated: a.updated + b.updated,
    unchanged: a.unchanged + b.unchanged,
    completed: a.completed + b.completed,
    ignored: a.ignored + b.ignored,
    outbox: a.outbox + b.outbox,
    lagMs: b.lagMs.length ? [...a.lagMs, ...b.lagMs] : a.lagMs,
  };
}

/**
 * The detection loop of one source instance: every poll interval, read changes since the
 * committed cursor and commit them batch by batch (rows, cursor and outbox in one transaction);
 * let the source backfill what it left out of a backlog (bounded by the source); retry parked approvers; on the sweep schedule, re-list everything pending and verify each queued
 * approval the listing did not show; purge what retention expired. One cycle at a time.
 */
export class SourceRunner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CycleReport | undefined> | undefined;
  private abort = new AbortController();
  private stopped = false;
  private lease: Lease | undefined;

  constructor(
    readonly source: ApprovalSource,
    private readonly queue: ApprovalQueue,
    private readonly resolver: ApproverResolver,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: SourceRunnerOptions,
    private readonly onCycle: (report: CycleReport | undefined, error: unknown, durationMs: number) => void = () => {},
  ) {
    timerDelay(options.pollIntervalMs, `source ${source.id}: poll interval`);
  }

  /** Runs one cycle now, or joins the one already running. Rejects if the cycle failed. */
  runOnce(): Promise<CycleReport | undefined> {
    if (!this.running) {
      this.running = this.cycle().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  /** Polls until {@link stop}; a failed cycle is logged and the next one runs on schedule. */
  start(): void {
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      const started = performance.now();
      try {
        this.onCycle(await this.runOnce(), undefined, performance.now() - started);
      } catch (error) {
        this.onCycle(undefined, error, performance.now() - started);
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), timerDelay(this.options.pollIntervalMs, `source ${this.source.id}: poll interval`));
    };
    void tick();
  }

  /**
   * Stops polling. The batch being read is abandoned (its cursor was never committed, so the next
   * start replays it); a commit already under way finishes, being one transaction.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort(new Error('host stopping'));
    await this.running?.catch(() => undefined);
    await this.lease?.release();
  }

  /**
   * On a queue several hosts share, only the holder of this source's lease polls it; the others
   * skip their cycles until the holder dies and one of them takes the lease over.
   */
  private async leader(): Promise<boolean> {
    if (!this.queue.acquireLease) return true;
    if (!this.lease?.held()) {
      this.lease = await this.queue.acquireLease(`source:${this.source.id}`);
      if (this.lease) this.logger.info({ source: this.source.id }, 'took the polling lease');
    }
    return this.lease !== undefined;
  }

  private commitContext(): CommitContext {
    const now = this.clock.now();
    return {
      now,
      channels: this.options.channels,
      notBefore: new Date(now.getTime() - this.options.retentionDays * DAY_MS),
      render: this.options.render,
    };
  }

  private commit(approvals: readonly Approval[], completions: readonly Completion[], cursor?: string): Promise<CommitResult> {
    return this.apply({ approvals, completions, cursor });
  }

  /**
   * The one way approvals of this source reach the queue, for detection, sweeps and operators'
   * repairs (`audit --fix`, `queue resync`, `queue remove`) alike: approvers without an e-mail are
   * resolved through the source's identity directory, then the batch is planned and committed in
   * one transaction with its cursor and audit rows. A repair that skipped resolution would queue a
   * newly named approver without an e-mail: parked, missing from their own list until a cycle ran.
   */
  async apply(
    batch: { approvals: readonly Approval[]; completions?: readonly Completion[]; cursor?: string | undefined; audit?: readonly AuditEntry[] },
    signal?: AbortSignal,
  ): Promise<CommitResult> {
    const resolved = await this.resolver.resolveBatch(batch.approvals, signal ? AbortSignal.any([this.abort.signal, signal]) : this.abort.signal);
    return this.queue.commit({ ...batch, source: this.source.id, approvals: resolved }, this.commitContext());
  }

  private async cycle(): Promise<CycleReport | undefined> {
    if (this.stopped || !(await this.leader())) return undefined;
    const started = performance.now();
    const id = this.source.id;
    const ctx: SyncContext = { signal: this.abort.signal, now: this.clock.now(), queued: (keys) => this.queued(keys) };
    let committed = EMPTY;
    let batches = 0;
    const cursor = await this.queue.getCursor(id);
    // A first sync counts as a sweep only when nothing is queued yet: one cut short may have queued
    // approvals that have left pending since, and only a sweep's second look removes those.
    const firstSweep = cursor === undefined && this.options.sweepIntervalMs > 0 && (await this.queue.keys(id)).length === 0;
    for await (const batch of this.source.changes(cursor, ctx)) {
      if (this.abort.signal.aborted) return undefined;
      committed = add(committed, await this.commit(batch.approvals, batch.completions ?? [], batch.cursor));
      batches++;
    }
    // A first sync lists everything pending: it is a sweep, and the next one is due an interval later.
    if (firstSweep) await this.queue.setState(SWEEP_STATE, id, ctx.now.toISOString());
    // After the changes, so a report that changed was read by the poll and costs the backfill nothing.
    let backfilled = 0;
    if (this.source.backfill) {
      for await (const batch of this.source.backfill(ctx)) {
        if (this.abort.signal.aborted) return undefined;
        const result = await this.commit(batch.approvals, batch.completions ?? []);
        backfilled += result.updated;
        committed = add(committed, result);
      }
    }
    if (this.source.backfillPending) await this.queue.setState(BACKFILL_STATE, id, String(await this.source.backfillPending()));
    const released = await this.retryParked(ctx.signal);
    let swept = false;
    let drift = 0;
    if (await this.sweepDue()) {
      const sweep = await this.sweep(ctx);
      committed = add(committed, sweep.committed);
      drift = sweep.drift;
      swept = true;
    }
    const purged = (await this.queue.purgeExpired(this.commitContext())).length;
    const report: CycleReport = { source: id, batches, committed, swept, drift, purged, released, backfilled, durationMs: performance.now() - started };
    this.logger.debug({ ...report }, 'cycle done');
    return report;
  }

  /** What the queue holds of these approvals, by key. */
  private async queued(keys: readonly string[]): Promise<ReadonlyMap<string, Approval>> {
    const out = new Map<string, Approval>();
    for (const key of keys) {
      const row = await this.queue.get(key);
      if (row) out.set(key, row);
    }
    return out;
  }

  private async sweepDue(): Promise<boolean> {
    if (this.options.sweepIntervalMs <= 0) return true;
    const last = await this.queue.getState(SWEEP_STATE, this.source.id);
    return !last || this.clock.now().getTime() - Date.parse(last) >= this.options.sweepIntervalMs;
  }

  /**
   * Completion, guaranteed: a report that leaves pending may never show up in the incremental
   * listing (whether Concur bumps LastModifiedDate on a workflow step is unconfirmed), so the
   * sweep re-lists what is pending now and asks the source directly about every queued approval
   * it did not see. Whatever is pending and missing from the queue is queued on the way.
   */
  async sweep(ctx: SyncContext): Promise<{ committed: CommitResult; drift: number }> {
    const startedAt = this.clock.now();
    const seen = new Set<string>();
    let committed = EMPTY;
    for await (const page of this.source.listPending(ctx)) {
      for (const a of page) seen.add(a.key);
      committed = add(committed, await this.commit(page, []));
    }
    const unseen = (await this.queue.keys(this.source.id)).filter((k) => !seen.has(k.key));
    let drift = 0;
    for (let i = 0; i < unseen.length; i += 100) {
      const slice = unseen.slice(i, i + 100);
      const refs = await Promise.all(slice.map(async (k) => ({ externalId: k.externalId, details: (await this.queue.get(k.key))?.details })));
      const results = await this.source.verify(refs, ctx);
      const approvals: Approval[] = [];
      const completions: Completion[] = [];
      const byId = new Map(results.map((r) => [r.found ? r.approval.externalId : r.externalId, r]));
      for (const k of slice) {
        const r = byId.get(k.externalId);
        if (r?.found) approvals.push(r.approval);
        else if (r) completions.push({ key: k.key, status: 'no_longer_required' });
      }
      const result = await this.commit(approvals, completions);
      drift += result.completed + result.updated;
      committed = add(committed, result);
    }
    await this.queue.setState(SWEEP_STATE, this.source.id, startedAt.toISOString());
    if (drift > 0) this.logger.info({ source: this.source.id, drift }, 'sweep corrected queued approvals');
    return { committed, drift };
  }

  private async retryParked(signal: AbortSignal): Promise<number> {
    const parked = this.resolver.due(await this.queue.parkedApprovers(this.source.id), this.clock.now().getTime());
    if (parked.length === 0) return 0;
    const resolved = await this.resolver.resolve(parked, signal);
    let released = 0;
    for (const r of resolved.values()) {
      if (r.status === 'resolved') released += await this.queue.resolveApprover(this.source.id, r.approver);
    }
    return released;
  }
}
