import type { Approval } from '../model/approval.js';
import type { AuditEntry, CardRenderer, CommitContext, CommitResult, Completion } from '../model/queue-types.js';
import type { ApprovalStore, Lease, LeaseProvider, SourceStateStore } from '../contracts/approval-queue.js';
import type { ApprovalSource, SyncContext, VerifyResult } from '../contracts/approval-source.js';
import type { ClaimedTrigger, TriggerStore } from '../contracts/source-triggers.js';
import type { Clock } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import { ApproverResolver } from './approver-resolver.js';
import { EventsHealth, type EventsStatus } from './events-health.js';
import { checkApproval, checkCompletion, checkCursor, checkVerifyResult, type SourceOutputProblem } from './source-output-check.js';
import { timerDelay } from './timer-delay.js';

/** Where a source's output entered the core: one of its methods, or an operator's repair. */
export type SourceMethod = 'changes' | 'listPending' | 'verify' | 'backfill' | 'refresh' | 'repair';

/** One record (or cursor, or batch) of a source the runner refused, and why. */
export interface SourceRejection {
  readonly source: string;
  /** The plugin id the source instance runs, when the host loaded it from a plugin. */
  readonly plugin: string | undefined;
  readonly method: SourceMethod;
  readonly problem: SourceOutputProblem;
  /** One line naming the source, plugin, record and field. */
  readonly message: string;
}

/**
 * What a sweep repaired that the source's incremental feed should have delivered:
 * `missed` pending in the source and not queued; `completion-missed` queued, but completed or gone
 * in the source; `reassigned` queued with other approvers; `changed` queued with another card
 * (title, amount, ...). A broken plugin (one that never reports completions, or moves its cursor
 * past changes) shows up here instead of being silently patched.
 */
export const DRIFT_CAUSES = ['missed', 'completion-missed', 'reassigned', 'changed'] as const;
export type DriftCause = (typeof DRIFT_CAUSES)[number];
export type DriftCounts = Readonly<Record<DriftCause, number>>;

/**
 * A change the source made less than this before the cycle's poll began may have been made after
 * the poll read its pages (or the source's clock may run a little ahead of the host's): a sweep that
 * repairs it is not counted as drift.
 */
export const DRIFT_GRACE_MS = 60_000;

/** A cursor or batch the host cannot trust: the cycle fails, naming the plugin and the field. */
export class SourceOutputError extends Error {
  constructor(readonly rejection: SourceRejection) {
    super(rejection.message);
    this.name = 'SourceOutputError';
  }
}

export interface SourceRunnerOptions {
  readonly pollIntervalMs: number;
  /** How often the sweep re-lists everything pending and verifies what it did not see; 0 = every cycle. */
  readonly sweepIntervalMs: number;
  readonly retentionDays: number;
  readonly channels: readonly string[];
  readonly render: CardRenderer;
  /** The plugin id the source runs, named in the error of every record the runner refuses. */
  readonly plugin?: string | undefined;
  /** Called for every refused record (also outside cycles, for operators' repairs), after it was logged. */
  readonly onRejected?: ((rejection: SourceRejection) => void) | undefined;
  /** Called after each batch of push triggers was refreshed and committed (or failed, with `error`). */
  readonly onTriggers?: ((report: TriggerReport) => void) | undefined;
  /** Called when a source with push events changes mode (events ↔ polling), and once at start. */
  readonly onEventsStatus?: ((status: EventsStatus) => void) | undefined;
}

/** One batch of push triggers the runner took, refreshed from the source and committed. */
export interface TriggerReport {
  readonly source: string;
  readonly triggers: number;
  readonly committed: CommitResult;
  readonly durationMs: number;
  readonly error?: string | undefined;
}

/** Triggers taken per refresh, and how long a host holds them before another may take them over. */
const TRIGGER_BATCH = 100;
const TRIGGER_LEASE_MS = 120_000;
/** How often a source with push events looks for triggers other hosts stored (or a crash left) and re-checks its mode. */
export const TRIGGER_SCAN_MS = 2_000;

export interface CycleReport {
  readonly source: string;
  readonly batches: number;
  readonly committed: CommitResult;
  readonly swept: boolean;
  /** What the sweep repaired that the incremental feed missed, in all ({@link driftByCause} summed); 0 on a first sync. */
  readonly drift: number;
  readonly driftByCause: DriftCounts;
  /**
   * With push events healthy: what this cycle's poll found that no push had announced, by cause
   * (a missed push, or a change the source sends no push for). Zeros otherwise.
   */
  readonly eventDrift: DriftCounts;
  /** Records (approvals, completions, verify results) of the source the runner refused this cycle. */
  readonly rejected: number;
  readonly purged: number;
  readonly released: number;
  /** Queued approvals the source's backfill completed (e.g. Concur line items of a first sync's backlog). */
  readonly backfilled: number;
  readonly durationMs: number;
}

const SWEEP_STATE = 'core.sweep';
/** Per source: the backfill's backlog left after the last cycle, for processes that compose no source (`diagnostics`). */
export const BACKFILL_STATE = 'core.backfill';
const EMPTY: CommitResult = { inserted: 0, updated: 0, reassigned: 0, unchanged: 0, completed: 0, ignored: 0, outbox: 0, lagMs: [] };
const DAY_MS = 86_400_000;
const NO_DRIFT: DriftCounts = { missed: 0, 'completion-missed': 0, reassigned: 0, changed: 0 };

function addDrift(a: DriftCounts, b: DriftCounts): DriftCounts {
  return {
    missed: a.missed + b.missed,
    'completion-missed': a['completion-missed'] + b['completion-missed'],
    reassigned: a.reassigned + b.reassigned,
    changed: a.changed + b.changed,
  };
}

function driftTotal(d: DriftCounts): number {
  return d.missed + d['completion-missed'] + d.reassigned + d.changed;
}

function add(a: CommitResult, b: CommitResult): CommitResult {
  return {
    inserted: a.inserted + b.inserted,
    updated: a.updated + b.updated,
    reassigned: (a.reassigned ?? 0) + (b.reassigned ?? 0),
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
  private rejectedInCycle = 0;
  /** Present when the source receives push events. */
  readonly events: EventsHealth | undefined;
  private mode: EventsStatus['mode'] | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private drainingTriggers: Promise<void> | undefined;
  private drainAgain = false;

  constructor(
    readonly source: ApprovalSource,
    private readonly queue: ApprovalStore & SourceStateStore & LeaseProvider & TriggerStore,
    private readonly resolver: ApproverResolver,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: SourceRunnerOptions,
    private readonly onCycle: (report: CycleReport | undefined, error: unknown, durationMs: number) => void = () => {},
  ) {
    timerDelay(options.pollIntervalMs, `source ${source.id}: poll interval`);
    const policy = source.capabilities.events;
    if (policy) {
      timerDelay(policy.pollIntervalMs, `source ${source.id}: events poll interval`);
      this.events = new EventsHealth(source.id, policy, queue);
    }
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

  /**
   * Polls until {@link stop}; a failed cycle is logged and the next one runs on schedule. A source
   * with push events also takes their triggers as they come ({@link wake}) and every
   * {@link TRIGGER_SCAN_MS}, and polls at its events interval while they are healthy.
   */
  start(): void {
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      const started = performance.now();
      try {
        this.onCycle(await this.runOnce(), undefined, performance.now() - started);
      } catch (error) {
        this.onCycle(undefined, error, performance.now() - started);
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.pollDelay());
    };
    this.tick = tick;
    void tick();
    if (this.events) {
      const scan = async (): Promise<void> => {
        await this.scan().catch((error: unknown) => this.logger.warn({ source: this.source.id, err: (error as Error).message }, 'trigger scan failed'));
        if (!this.stopped) this.scanTimer = setTimeout(() => void scan(), TRIGGER_SCAN_MS);
      };
      void scan();
    }
  }

  private tick: (() => Promise<void>) | undefined;

  /** The wait before the next poll: the events interval while pushes are healthy, else the normal one. */
  private pollDelay(): number {
    const policy = this.source.capabilities.events;
    const ms = policy && this.mode === 'events' ? policy.pollIntervalMs : this.options.pollIntervalMs;
    return timerDelay(ms, `source ${this.source.id}: poll interval`);
  }

  /** Shares what this host noted of pushes, takes triggers left for anyone, and polls now when the source just fell back. */
  private async scan(): Promise<void> {
    const before = this.mode;
    await this.checkMode();
    await this.wake();
    if (before === 'events' && this.mode === 'polling' && this.tick && !this.running) void this.tick();
  }

  /** Flushes the events health and reports a change of mode. */
  private async checkMode(): Promise<EventsStatus | undefined> {
    if (!this.events) return undefined;
    const now = this.clock.now();
    await this.events.flush(now);
    const status = this.events.status(now);
    if (status.mode !== this.mode) {
      const policy = this.source.capabilities.events!;
      if (status.mode === 'events') {
        this.logger.info({ source: this.source.id }, `push events healthy: polling every ${policy.pollIntervalMs / 1000} s as a safety net`);
      } else {
        this.logger.warn(
          { source: this.source.id, reason: status.reason },
          `push events not trusted (${status.reason}): polling every ${this.options.pollIntervalMs / 1000} s`,
        );
      }
      this.mode = status.mode;
      this.options.onEventsStatus?.(status);
    }
    return status;
  }

  /** Notes a push this host stored for the source (the route acknowledged it). */
  noteEvent(): void {
    this.events?.event(this.clock.now());
  }

  /** Notes a push the source's route refused as not authentic. */
  noteRefused(): void {
    this.events?.refused(this.clock.now());
  }

  /**
   * Takes the source's pending triggers now, a batch at a time, until none is left; a call while
   * a pass runs makes it go round once more. Any host may run it: claims are leased, so two hosts
   * never refresh the same trigger at once.
   */
  wake(): Promise<void> {
    if (this.drainingTriggers) {
      this.drainAgain = true;
      return this.drainingTriggers;
    }
    this.drainingTriggers = (async () => {
      do {
        this.drainAgain = false;
        while (!this.stopped && (await this.refreshTriggers())) {
          // next batch
        }
      } while (this.drainAgain && !this.stopped);
    })()
      .catch((error: unknown) => this.logger.warn({ source: this.source.id, err: (error as Error).message }, 'taking push triggers failed'))
      .finally(() => {
        this.drainingTriggers = undefined;
      });
    return this.drainingTriggers;
  }

  /** One batch: claim, re-read from the source, commit, settle. Resolves whether a full batch was taken (more may wait). */
  private async refreshTriggers(): Promise<boolean> {
    const id = this.source.id;
    const started = performance.now();
    const claimed = await this.queue.claimTriggers(id, TRIGGER_BATCH, this.clock.now(), TRIGGER_LEASE_MS);
    if (claimed.length === 0) return false;
    const seqs = claimed.map((t) => t.seq);
    try {
      const ctx: SyncContext = { signal: this.abort.signal, now: this.clock.now(), queued: (keys) => this.queued(keys) };
      const committed = await this.refreshed(claimed, ctx);
      await this.queue.settleTriggers(id, seqs, this.clock.now());
      this.options.onTriggers?.({ source: id, triggers: claimed.length, committed, durationMs: performance.now() - started });
      return claimed.length === TRIGGER_BATCH;
    } catch (error) {
      // Backs off per trigger: 2, 4, 8 … seconds, at most 5 minutes; the poll covers them meanwhile.
      const attempts = Math.max(...claimed.map((t) => t.attempts));
      const retryAt = new Date(this.clock.now().getTime() + Math.min(300_000, 1000 * 2 ** attempts));
      await this.queue.releaseTriggers(id, seqs, retryAt).catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      this.logger.warn(
        { source: id, triggers: claimed.length, attempts, retryAt: retryAt.toISOString(), err: message },
        'refreshing pushed changes failed; retrying',
      );
      this.options.onTriggers?.({ source: id, triggers: claimed.length, committed: EMPTY, durationMs: performance.now() - started, error: message });
      if (error instanceof SourceOutputError) throw error;
      return false;
    }
  }

  /**
   * What the triggers' records are now, committed: through the source's `refresh`, or else by
   * `verify` of their ids (a record it no longer finds closes the queued approval it names).
   */
  private async refreshed(triggers: readonly ClaimedTrigger[], ctx: SyncContext): Promise<CommitResult> {
    if (this.source.refresh) {
      const batch = this.batchOf('refresh', await this.source.refresh(triggers, ctx));
      const { approvals, completions } = this.checked('refresh', batch.approvals, batch.completions);
      return this.commit(approvals, completions);
    }
    const ids = [...new Set(triggers.map((t) => t.externalId))];
    const results = this.verified(
      await this.source.verify(
        ids.map((externalId) => ({ externalId })),
        ctx,
      ),
    );
    const approvals = results.filter((r) => r.found).map((r) => r.approval);
    const gone = new Set(results.filter((r) => !r.found).map((r) => r.externalId));
    const completions: Completion[] = gone.size
      ? (await this.queue.keys(this.source.id)).filter((k) => gone.has(k.externalId)).map((k) => ({ key: k.key, status: 'no_longer_required' as const }))
      : [];
    return this.commit(approvals, completions);
  }

  /**
   * Stops polling. The batch being read is abandoned (its cursor was never committed, so the next
   * start replays it); a commit already under way finishes, being one transaction.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.scanTimer) clearTimeout(this.scanTimer);
    this.abort.abort(new Error('host stopping'));
    // A refresh cut short gives its triggers back (they are retried by the next host to scan).
    await this.drainingTriggers;
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

  /** `notes`: by approval key, what a card that closes in this commit says happened (an action taken in chat). */
  private commitContext(notes?: ReadonlyMap<string, string>): CommitContext {
    const now = this.clock.now();
    const render = this.options.render;
    return {
      now,
      channels: this.options.channels,
      notBefore: new Date(now.getTime() - this.options.retentionDays * DAY_MS),
      render: notes?.size
        ? (approval, outcome) => {
            const card = render(approval, outcome);
            const note = outcome ? notes.get(approval.key) : undefined;
            return note ? { ...card, outcomeNote: note } : card;
          }
        : render,
    };
  }

  /** Commits records already checked; an empty batch without a cursor costs no transaction. */
  private async commit(approvals: readonly Approval[], completions: readonly Completion[], cursor?: string): Promise<CommitResult> {
    if (approvals.length === 0 && completions.length === 0 && cursor === undefined) return EMPTY;
    const resolved = await this.resolver.resolveBatch(approvals, this.abort.signal);
    return this.queue.commit({ source: this.source.id, approvals: resolved, completions, cursor }, this.commitContext());
  }

  private origin(): string {
    return `source "${this.source.id}"${this.options.plugin ? ` (plugin "${this.options.plugin}")` : ''}`;
  }

  /** Logs, counts and reports one refused record; returns the rejection. */
  private reject(method: SourceMethod, problem: SourceOutputProblem, what: 'record' | 'cursor' | 'batch' | 'answer' = 'record'): SourceRejection {
    const record = problem.record === undefined ? '' : ` "${problem.record}"`;
    const message = `${this.origin()} ${method === 'repair' ? 'repair' : `${method}()`}: refused ${what}${record}: ${problem.field} ${problem.message}`;
    const rejection: SourceRejection = { source: this.source.id, plugin: this.options.plugin, method, problem, message };
    this.rejectedInCycle++;
    this.logger.error({ source: this.source.id, plugin: this.options.plugin, method, record: problem.record, field: problem.field }, message);
    this.options.onRejected?.(rejection);
    return rejection;
  }

  /**
   * The boundary: of what a source yielded, the approvals and completions that pass the checks of
   * source-output-check.ts. Each refused one is logged and counted and the rest go on (invariant 5:
   * a bad record degrades one item); a batch that is not even a list fails the cycle.
   */
  private checked(method: SourceMethod, approvals: unknown, completions: unknown = []): { approvals: Approval[]; completions: Completion[] } {
    for (const [field, list] of [
      ['approvals', approvals],
      ['completions', completions],
    ] as const) {
      if (!Array.isArray(list)) {
        throw new SourceOutputError(this.reject(method, { field, message: `must be an array, got ${list === null ? 'null' : typeof list}` }, 'batch'));
      }
    }
    const good: Approval[] = [];
    for (const a of approvals as unknown[]) {
      const problem = checkApproval(this.source.id, a);
      if (problem) this.reject(method, problem);
      else good.push(a as Approval);
    }
    const done: Completion[] = [];
    for (const c of completions as unknown[]) {
      const problem = checkCompletion(this.source.id, c);
      if (problem) this.reject(method, problem);
      else done.push(c as Completion);
    }
    return { approvals: good, completions: done };
  }

  /** A batch of `changes` or `backfill`, its shape checked. */
  private batchOf(method: SourceMethod, raw: unknown): { approvals: unknown; completions: unknown; cursor: unknown } {
    if (typeof raw !== 'object' || raw === null) {
      throw new SourceOutputError(
        this.reject(
          method,
          { field: 'batch', message: `must be an object {approvals, completions?, cursor?}, got ${raw === null ? 'null' : typeof raw}` },
          'batch',
        ),
      );
    }
    const b = raw as { approvals?: unknown; completions?: unknown; cursor?: unknown };
    return { approvals: b.approvals, completions: b.completions ?? [], cursor: b.cursor };
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
    notes?: ReadonlyMap<string, string>,
  ): Promise<CommitResult> {
    const { approvals, completions } = this.checked('repair', batch.approvals, batch.completions ?? []);
    const resolved = await this.resolver.resolveBatch(approvals, signal ? AbortSignal.any([this.abort.signal, signal]) : this.abort.signal);
    return this.queue.commit({ ...batch, source: this.source.id, approvals: resolved, completions }, this.commitContext(notes));
  }

  private async cycle(): Promise<CycleReport | undefined> {
    if (this.stopped || !(await this.leader())) return undefined;
    const started = performance.now();
    const id = this.source.id;
    const ctx: SyncContext = { signal: this.abort.signal, now: this.clock.now(), queued: (keys) => this.queued(keys) };
    let committed = EMPTY;
    let batches = 0;
    this.rejectedInCycle = 0;
    const cursor = await this.queue.getCursor(id);
    // Until a first sync has committed a cursor, every cycle lists everything: nothing a sweep
    // repairs then was the incremental feed's to deliver, so none of it is drift.
    const driftCounts = cursor !== undefined;
    // A first sync counts as a sweep only when nothing is queued yet: one cut short may have queued
    // approvals that have left pending since, and only a sweep's second look removes those.
    const firstSweep = cursor === undefined && this.options.sweepIntervalMs > 0 && (await this.queue.keys(id)).length === 0;
    // With pushes healthy, what the poll still finds is what they missed: counted by cause.
    const eventsMode = cursor !== undefined && (await this.checkMode())?.mode === 'events';
    let eventDrift = NO_DRIFT;
    const before = ctx.now.getTime() - DRIFT_GRACE_MS;
    const changesCommit = async (approvals: readonly Approval[], completions: readonly Completion[], next?: string): Promise<CommitResult> => {
      if (!eventsMode) return this.commit(approvals, completions, next);
      const late = await this.commit(
        approvals.filter((a) => Date.parse(a.sourceUpdatedAt) < before),
        completions,
      );
      const reassigned = late.reassigned ?? 0;
      eventDrift = addDrift(eventDrift, { missed: late.inserted, 'completion-missed': late.completed, reassigned, changed: late.updated - reassigned });
      return add(
        late,
        await this.commit(
          approvals.filter((a) => Date.parse(a.sourceUpdatedAt) >= before),
          [],
          next,
        ),
      );
    };
    for await (const raw of this.source.changes(cursor, ctx) as AsyncIterable<unknown>) {
      if (this.abort.signal.aborted) return undefined;
      const batch = this.batchOf('changes', raw);
      const { approvals, completions } = this.checked('changes', batch.approvals, batch.completions);
      const bad = checkCursor(batch.cursor);
      if (bad) {
        // A cursor that is not a string cannot be trusted to cover what it claims: the batch's good
        // records are committed (ingestion is idempotent), the cursor is not, and the cycle fails, so
        // the next one replays from the last committed cursor and /readyz and `run --once` say why.
        committed = add(committed, await changesCommit(approvals, completions));
        throw new SourceOutputError(this.reject('changes', bad, 'cursor'));
      }
      committed = add(committed, await changesCommit(approvals, completions, batch.cursor as string | undefined));
      batches++;
    }
    // A first sync lists everything pending: it is a sweep, and the next one is due an interval later.
    if (firstSweep) await this.queue.setState(SWEEP_STATE, id, ctx.now.toISOString());
    // After the changes, so a report that changed was read by the poll and costs the backfill nothing.
    let backfilled = 0;
    if (this.source.backfill) {
      for await (const raw of this.source.backfill(ctx) as AsyncIterable<unknown>) {
        if (this.abort.signal.aborted) return undefined;
        const batch = this.batchOf('backfill', raw);
        const { approvals, completions } = this.checked('backfill', batch.approvals, batch.completions);
        const result = await this.commit(approvals, completions);
        backfilled += result.updated;
        committed = add(committed, result);
      }
    }
    if (this.source.backfillPending) await this.queue.setState(BACKFILL_STATE, id, String(await this.source.backfillPending()));
    const released = await this.retryParked(ctx.signal);
    let swept = false;
    let driftByCause = NO_DRIFT;
    if (await this.sweepDue()) {
      const sweep = await this.sweep(ctx);
      committed = add(committed, sweep.committed);
      if (driftCounts) driftByCause = sweep.driftByCause;
      swept = true;
    }
    const drift = driftTotal(driftByCause);
    if (drift > 0) {
      this.logger.warn(
        { source: id, plugin: this.options.plugin, drift: driftByCause },
        `the sweep repaired what the incremental feed of ${this.origin()} missed: ${DRIFT_CAUSES.map((c) => `${c} ${driftByCause[c]}`).join(', ')}`,
      );
    }
    if (driftTotal(eventDrift) > 0) {
      this.logger.warn(
        { source: id, plugin: this.options.plugin, drift: eventDrift },
        `the safety poll of ${this.origin()} found changes no push announced: ${DRIFT_CAUSES.map((c) => `${c} ${eventDrift[c]}`).join(', ')}`,
      );
      this.events?.drift(this.clock.now());
      await this.checkMode();
    }
    const purged = (await this.queue.purgeExpired(this.commitContext())).length;
    const report: CycleReport = {
      source: id,
      batches,
      committed,
      swept,
      drift,
      driftByCause,
      eventDrift,
      rejected: this.rejectedInCycle,
      purged,
      released,
      backfilled,
      durationMs: performance.now() - started,
    };
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
   *
   * What it repairs that changed before `ctx.now` (the cycle's start, less {@link DRIFT_GRACE_MS})
   * is counted as drift by cause: the incremental feed should have delivered it. An approval the
   * source no longer finds has no time to go by and always counts.
   */
  async sweep(ctx: SyncContext): Promise<{ committed: CommitResult; drift: number; driftByCause: DriftCounts }> {
    const startedAt = this.clock.now();
    const before = ctx.now.getTime() - DRIFT_GRACE_MS;
    // An approval past retention leaves the queue as `expired`: retention's doing, not drift.
    const notBefore = this.commitContext().notBefore.getTime();
    const feedsJob = (a: Approval): boolean => {
      const t = Date.parse(a.sourceUpdatedAt);
      return t < before && t >= notBefore;
    };
    const seen = new Set<string>();
    let committed = EMPTY;
    let driftByCause = NO_DRIFT;
    const commit = async (approvals: readonly Approval[], completions: readonly Completion[]): Promise<void> => {
      const late = approvals.filter(feedsJob);
      const fresh = approvals.filter((a) => !feedsJob(a));
      const missed = await this.commit(late, completions);
      const reassigned = missed.reassigned ?? 0;
      driftByCause = addDrift(driftByCause, {
        missed: missed.inserted,
        'completion-missed': missed.completed,
        reassigned,
        changed: missed.updated - reassigned,
      });
      committed = add(add(committed, missed), await this.commit(fresh, []));
    };
    for await (const page of this.source.listPending(ctx) as AsyncIterable<unknown>) {
      const { approvals } = this.checked('listPending', page);
      for (const a of approvals) seen.add(a.key);
      await commit(approvals, []);
    }
    const unseen = (await this.queue.keys(this.source.id)).filter((k) => !seen.has(k.key));
    for (let i = 0; i < unseen.length; i += 100) {
      const slice = unseen.slice(i, i + 100);
      const refs = await Promise.all(slice.map(async (k) => ({ externalId: k.externalId, sourceData: (await this.queue.get(k.key))?.sourceData })));
      const results = this.verified(await this.source.verify(refs, ctx));
      const approvals: Approval[] = [];
      const completions: Completion[] = [];
      const byId = new Map(results.map((r) => [r.found ? r.approval.externalId : r.externalId, r]));
      for (const k of slice) {
        const r = byId.get(k.externalId);
        if (r?.found) approvals.push(r.approval);
        else if (r) completions.push({ key: k.key, status: 'no_longer_required' });
      }
      await commit(approvals, completions);
    }
    await this.queue.setState(SWEEP_STATE, this.source.id, startedAt.toISOString());
    return { committed, drift: driftTotal(driftByCause), driftByCause };
  }

  /**
   * A `verify` answer the host can trust: not an array fails (the caller's cycle or trigger batch is
   * retried); each malformed result is refused and left out.
   */
  private verified(raw: unknown): VerifyResult[] {
    if (!Array.isArray(raw)) {
      throw new SourceOutputError(
        this.reject('verify', { field: 'results', message: `must be an array, got ${raw === null ? 'null' : typeof raw}` }, 'answer'),
      );
    }
    return raw.filter((r): r is VerifyResult => {
      const problem = checkVerifyResult(this.source.id, r);
      if (problem) this.reject('verify', problem);
      return problem === undefined;
    });
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
