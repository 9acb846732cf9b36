import type { ApprovalQueue } from '../contracts/approval-queue.js';
import type { ApprovalLookup } from '../contracts/approval-lookup.js';
import type { ApprovalSource } from '../contracts/approval-source.js';
import type { Clock } from '../contracts/clock.js';
import type { CredentialStore } from '../contracts/credential-store.js';
import type { Logger } from '../contracts/logger.js';
import type { Notifier } from '../contracts/notifier.js';
import { startAdminServer, startHttpServer, type HttpServer, type Readiness } from './http-server.js';
import type { PrometheusMetrics } from './prometheus-metrics.js';
import { ApproverResolver } from '../pipeline/approver-resolver.js';
import { OutboxWorker, defaultOutboxWorkerOptions, type DrainReport } from '../pipeline/outbox-worker.js';
import type { CardRenderer, CommitContext } from '../pipeline/planner.js';
import { SourceRunner, type CycleReport } from '../pipeline/source-runner.js';
import { EVENTS_STATUS_STATE, type EventsStatus } from '../pipeline/events-health.js';
import { TRIGGER_ID_MEMORY_MS, type SourceTriggers } from '../contracts/source-triggers.js';
import type { ActionRefresh } from '../pipeline/action-service.js';
import type { ApprovalActions } from '../contracts/approval-actions.js';
import type { QueuedApproval } from '../model/queue-types.js';
import { actionStatus } from '../model/card.js';
import { problemLabel } from '../pipeline/source-output-check.js';
import { ReminderScheduler, type ReminderReport } from '../pipeline/reminder-scheduler.js';
import { DEFAULT_ADMIN_LISTENER, type Deployment } from './deployment.js';
import { DAY_MS, compose, notBefore, type Composition, type HostOptions, type SourceSchedule } from './composition.js';

export type { HostOptions } from './composition.js';

/** Reminders are due by the hour and quiet hours end on the minute, so a pass a minute is on time. */
const REMINDER_INTERVAL_MS = 60_000;
/** How often a running host deletes settled outbox entries past `delivery.keepDays`. */
const OUTBOX_PURGE_INTERVAL_MS = 15 * 60_000;
/** Entries deleted per transaction, so a large backlog never holds the queue's write lock long. */
const OUTBOX_PURGE_BATCH = 5_000;

export interface OnceReport {
  readonly cycles: CycleReport[];
  readonly failures: { source: string; error: string }[];
  readonly delivery: DrainReport;
  /** Absent when the deployment has no reminders, or their pass failed (logged). */
  readonly reminders?: ReminderReport | undefined;
}

/**
 * The running host, over what `compose` built (composition.ts): one detection loop per source, the
 * outbox worker and its delivery timer, reminders, the outbox purge, the HTTP listeners and the
 * readiness they report. `Host.create` composes, then wires the runtime; `stop` ends both.
 */
export class Host {
  readonly runners: SourceRunner[];
  private readonly worker: OutboxWorker;
  /** Present when the deployment configures reminders. */
  readonly reminders: ReminderScheduler | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private draining: Promise<DrainReport> | undefined;
  private purging: Promise<{ entries: number; receipts: number }> | undefined;
  /** Aborted by stop(): a delivery pass ends after the batch in hand, and nothing new starts. */
  private readonly stopping = new AbortController();
  private started = false;
  private http: HttpServer | undefined;
  private admin: HttpServer | undefined;
  /** Readiness: each source's last cycle. */
  private readonly lastCycle = new Map<string, { ok: boolean; at: string; error?: string }>();
  /** Per source with push events: whether they are trusted, and why (readiness detail). */
  private readonly eventsStatus = new Map<string, EventsStatus>();

  private constructor(private readonly composed: Composition) {
    this.runners = composed.schedules.map((schedule) => this.runner(schedule));
    this.reminders = this.reminderScheduler();
    this.worker = this.outboxWorker();
    composed.actions.setRefresh((approval, change) => this.afterAction(approval, change));
  }

  /**
   * After a button's action, or a click the source found stale. An action the source took closes
   * the approver's cards at once with its own outcome (who acted where, in `note`, and the audit row
   * in the same transaction), without another read: where the source moves the approval on to a
   * next approver, its next poll brings that as a new card. A stale click re-reads the approval, so
   * the cards show what the source holds now.
   */
  private async afterAction(approval: QueuedApproval, change: Parameters<ActionRefresh>[1]): Promise<void> {
    const runner = this.runners.find((r) => r.source.id === approval.source);
    if (!runner) return;
    const audit = change.audit ? [change.audit] : undefined;
    const notes = change.note ? new Map([[approval.key, change.note]]) : undefined;
    if (change.action) {
      const status = actionStatus(change.action) ?? 'approved';
      await runner.apply({ approvals: [], completions: [{ key: approval.key, status }], audit }, undefined, notes);
    } else {
      const ctx = { signal: this.stopping.signal, now: this.clock.now() };
      const [read] = await runner.source.verify([{ externalId: approval.externalId, sourceData: approval.sourceData }], ctx);
      if (!read?.found) return;
      await runner.apply({ approvals: [read.approval], audit }, undefined, notes);
    }
    void this.drain();
  }

  static async create(deployment: Deployment, options: HostOptions): Promise<Host> {
    const composed = await compose(deployment, options);
    try {
      return new Host(composed);
    } catch (error) {
      await composed.close();
      throw error;
    }
  }

  get deployment(): Deployment {
    return this.composed.deployment;
  }
  get clock(): Clock {
    return this.composed.clock;
  }
  get logger(): Logger {
    return this.composed.logger;
  }
  get metrics(): PrometheusMetrics {
    return this.composed.metrics;
  }
  get queue(): ApprovalQueue {
    return this.composed.queue;
  }
  /** Secrets at rest for every plugin, encrypted in the queue's store. */
  get credentials(): CredentialStore {
    return this.composed.credentials;
  }
  get lookupService(): ApprovalLookup {
    return this.composed.lookup;
  }
  get sources(): ReadonlyMap<string, ApprovalSource> {
    return this.composed.sources;
  }
  get notifiers(): ReadonlyMap<string, Notifier> {
    return this.composed.notifiers;
  }
  /**
   * How pushes reach a source's runner: what a source plugin's webhook route gets bound as
   * `SourceTriggers`, here for sources handed in by an embedding application.
   */
  sourceTriggers(source: string): SourceTriggers {
    if (!this.sources.has(source)) throw new Error(`no source "${source}" in this deployment (known: ${[...this.sources.keys()].join(', ') || 'none'})`);
    return this.composed.triggers.forSource(source);
  }

  /** From a button to the source: what channels call (also bound as `ApprovalActions` for plugins). */
  get actions(): ApprovalActions {
    return this.composed.actions;
  }
  get render(): CardRenderer {
    return this.composed.render;
  }

  /**
   * One source's detection loop: each cycle is recorded, then a delivery pass runs; so does each
   * batch of push triggers it refreshes, so a pushed approval is delivered in the same second.
   */
  private runner(spec: SourceSchedule): SourceRunner {
    const { deployment: d, queue, clock, logger, metrics, render } = this.composed;
    const source = this.composed.sources.get(spec.id)!;
    const resolver = new ApproverResolver(spec.directory, logger.child({ source: spec.id }), 10_000, () => clock.now().getTime());
    const runner = new SourceRunner(
      source,
      queue,
      resolver,
      clock,
      logger.child({ source: spec.id }),
      {
        pollIntervalMs: spec.pollIntervalSeconds * 1000,
        sweepIntervalMs: spec.sweepIntervalSeconds * 1000,
        retentionDays: d.retentionDays,
        channels: [...this.composed.notifiers.keys()],
        render,
        plugin: spec.plugin,
        onRejected: (r) => metrics.rejected.inc({ source: r.source, field: problemLabel(r.problem) }),
        onTriggers: (report) => {
          metrics.triggers.inc({ source: spec.id, outcome: report.error ? 'refresh_failed' : 'refreshed' }, report.triggers);
          for (const lag of report.committed.lagMs) metrics.detectionLag.observe({ source: spec.id, stage: 'queued' }, Math.max(0, lag) / 1000);
          if (report.committed.outbox > 0) void this.drain();
        },
        onEventsStatus: (status) => {
          metrics.eventsHealthy.set({ source: spec.id }, status.mode === 'events' ? 1 : 0);
          if (status.mode === 'polling' && this.eventsStatus.get(spec.id)?.mode === 'events') metrics.eventsFallbacks.inc({ source: spec.id });
          this.eventsStatus.set(spec.id, status);
          void queue
            .setState(EVENTS_STATUS_STATE, spec.id, JSON.stringify({ ...status, at: clock.now().toISOString() }))
            .catch((error: unknown) => logger.warn({ source: spec.id, err: (error as Error).message }, 'could not record the events mode'));
        },
      },
      (report, error, durationMs) => {
        this.afterCycle(spec.id, report, error, durationMs);
        void this.drain();
      },
    );
    this.composed.triggers.attach(spec.id, {
      noteEvent: () => runner.noteEvent(),
      noteRefused: () => runner.noteRefused(),
      wake: () => runner.wake(),
    });
    return runner;
  }

  private reminderScheduler(): ReminderScheduler | undefined {
    const { deployment: d, queue, clock, logger, render } = this.composed;
    if (!d.reminders) return undefined;
    return new ReminderScheduler(queue, clock, logger.child({ component: 'reminders' }), d.reminders, {
      channels: [...this.composed.notifiers.keys()],
      render,
      retentionDays: d.retentionDays,
    });
  }

  /** Delivers the outbox to every notifier, counting outcomes and the delivered lag. */
  private outboxWorker(): OutboxWorker {
    const { deployment: d, queue, clock, logger, metrics } = this.composed;
    return new OutboxWorker(
      queue,
      [...this.composed.notifiers.values()],
      clock,
      logger.child({ component: 'outbox' }),
      { ...defaultOutboxWorkerOptions, maxAttempts: d.delivery.maxAttempts, leaseMs: d.delivery.leaseSeconds * 1000 },
      (entry, outcome) => {
        metrics.deliveries.inc({ channel: entry.channel, outcome: outcome.state });
        if (outcome.state === 'delivered') {
          metrics.detectionLag.observe({ source: entry.source, stage: 'delivered' }, Math.max(0, clock.now().getTime() - Date.parse(entry.createdAt)) / 1000);
        }
      },
      (card, generation, email) => this.composed.actions.withTokens(card, generation, email),
    );
  }

  /**
   * Per source that has a backfill: queued approvals it has not reached yet. A source this process
   * did not compose (read-only commands) is answered with what its runner recorded after its last cycle.
   */
  backfillPending(): Promise<{ source: string; pending: number }[]> {
    return this.composed.backfillPending();
  }

  /** What every queue read uses as "now" and the retention cut-off. */
  commitContext(): CommitContext {
    const now = this.clock.now();
    return { now, channels: [...this.notifiers.keys()], notBefore: notBefore(this.deployment, now), render: this.render };
  }

  /** The URL the HTTP server listens on, once started. */
  get url(): string | undefined {
    return this.http?.url;
  }

  /** The URL of the admin listener (`http.admin`), once started. */
  get adminUrl(): string | undefined {
    return this.admin?.url;
  }

  private afterCycle(source: string, report: CycleReport | undefined, error: unknown, durationMs = 0): void {
    this.metrics.pollDuration.observe({ source, outcome: error ? 'failed' : 'ok' }, durationMs / 1000);
    if (report) {
      for (const lag of report.committed.lagMs) this.metrics.detectionLag.observe({ source, stage: 'queued' }, Math.max(0, lag) / 1000);
      for (const [cause, n] of Object.entries(report.driftByCause)) if (n) this.metrics.drift.inc({ source, cause }, n);
      for (const [cause, n] of Object.entries(report.eventDrift)) if (n) this.metrics.eventDrift.inc({ source, cause }, n);
    }
    this.lastCycle.set(source, {
      ok: !error,
      at: this.clock.now().toISOString(),
      ...(error ? { error: error instanceof Error ? error.message : String(error) } : {}),
    });
    if (error)
      this.logger.error(
        { source, err: error instanceof Error ? error.message : String(error) },
        'cycle failed; the next cycle resumes from the last committed cursor',
      );
    else if (report && (report.committed.inserted || report.committed.updated || report.committed.completed || report.purged)) {
      const { lagMs: _lags, ...counts } = report.committed;
      this.logger.info({ source, ...counts, purged: report.purged, swept: report.swept }, 'cycle committed changes');
    }
  }

  /** Deletes settled outbox entries older than `delivery.keepDays`, a batch at a time; concurrent calls share one pass. */
  purgeOutbox(): Promise<{ entries: number; receipts: number }> {
    this.purging ??= (async () => {
      const before = new Date(this.clock.now().getTime() - this.deployment.delivery.keepDays * DAY_MS);
      const total = { entries: 0, receipts: 0 };
      for (;;) {
        const batch = await this.queue.purgeOutbox(before, OUTBOX_PURGE_BATCH);
        total.entries += batch.entries;
        total.receipts += batch.receipts;
        this.metrics.purged.inc({ kind: 'entries' }, batch.entries);
        this.metrics.purged.inc({ kind: 'receipts' }, batch.receipts);
        if (batch.entries < OUTBOX_PURGE_BATCH || this.stopping.signal.aborted) break;
      }
      if (total.entries > 0) this.logger.info({ ...total, settledBefore: before.toISOString() }, 'purged settled outbox entries');
      // Push ids are remembered long enough to recognise any redelivery or replay, then forgotten.
      await this.queue.purgeTriggers(new Date(this.clock.now().getTime() - TRIGGER_ID_MEMORY_MS));
      return total;
    })()
      .catch((error: unknown) => {
        this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'outbox purge failed');
        return { entries: 0, receipts: 0 };
      })
      .finally(() => {
        this.purging = undefined;
      });
    return this.purging;
  }

  /** Delivers what is due; concurrent calls share one pass. A failed pass is logged. */
  drain(): Promise<unknown> {
    return this.deliveryPass().catch((error: unknown) => {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'outbox pass failed');
    });
  }

  /** One delivery pass, shared by concurrent callers; `stop()` waits for it before the queue closes. */
  private deliveryPass(): Promise<DrainReport> {
    this.draining ??= this.worker.drain(this.stopping.signal).finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  /**
   * A single host owns every inflight delivery, so at start-up they are its own, abandoned by a
   * crash. On a queue several hosts share, another live host may be delivering them: the claim
   * lease brings back those of a dead host instead.
   */
  private async releaseOwnInflight(): Promise<void> {
    if (!this.queue.acquireLease) await this.queue.releaseInflight();
  }

  /** Schedules the reminders due now; a failure is logged and the next pass tries again. */
  private async remind(): Promise<ReminderReport | undefined> {
    try {
      return await this.reminders?.runOnce();
    } catch (error) {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'reminder pass failed');
      return undefined;
    }
  }

  /** One detection + processing + reminder + delivery cycle for every source. */
  async runOnce(): Promise<OnceReport> {
    await this.releaseOwnInflight();
    const cycles: CycleReport[] = [];
    const failures: { source: string; error: string }[] = [];
    for (const runner of this.runners) {
      const started = performance.now();
      try {
        const report = await runner.runOnce();
        if (report) cycles.push(report);
        // A started host's loops record their own cycles; runOnce then only joins one.
        if (!this.started) this.afterCycle(runner.source.id, report, undefined, performance.now() - started);
      } catch (error) {
        failures.push({ source: runner.source.id, error: error instanceof Error ? error.message : String(error) });
        if (!this.started) this.afterCycle(runner.source.id, undefined, error, performance.now() - started);
      }
    }
    // A stop that cut the cycles short closes the queue next: nothing more is started.
    if (this.stopping.signal.aborted) return { cycles, failures, delivery: { delivered: 0, superseded: 0, retried: 0, dead: 0 }, reminders: undefined };
    // After the cycles, so a reminder never goes out for an approval they just completed.
    const reminders = await this.remind();
    const delivery = await this.deliveryPass();
    // `run --once` from a scheduler is a whole deployment's life: it purges too.
    if (!this.started) await this.purgeOutbox();
    return { cycles, failures, delivery, reminders };
  }

  /**
   * Starts the HTTP server (when the deployment configures one or a plugin contributes routes),
   * every detection loop, and the delivery timer (a pass every second for retries).
   */
  async start(): Promise<void> {
    await this.releaseOwnInflight();
    const http = this.deployment.http;
    const operations = { readiness: () => this.readiness(), metrics: this.metrics };
    if (http?.admin) this.admin = await startAdminServer({ ...DEFAULT_ADMIN_LISTENER, ...http.admin }, operations, this.logger);
    if (http || this.composed.routes.length > 0) {
      // With an admin listener, the public one keeps /healthz (load balancers) and the plugins' routes only.
      this.http = await startHttpServer(
        [...this.composed.routes],
        http ?? { host: '127.0.0.1', port: 8080 },
        http?.admin ? undefined : operations,
        this.logger,
      );
    }
    this.started = true;
    for (const runner of this.runners) runner.start();
    this.timers.push(setInterval(() => void this.drain(), 1000));
    if (this.reminders) this.timers.push(setInterval(() => void this.remind().then(() => this.drain()), REMINDER_INTERVAL_MS));
    void this.purgeOutbox();
    this.timers.push(setInterval(() => void this.purgeOutbox(), OUTBOX_PURGE_INTERVAL_MS));
  }

  private async readiness(): Promise<Readiness> {
    const sources = Object.fromEntries(
      [...this.sources.keys()].map((id) => {
        const cycle = this.lastCycle.get(id) ?? { ok: false, error: 'no cycle yet' };
        const events = this.eventsStatus.get(id);
        // Falling back to polling is the safety net working, not a failure: reported, not unready.
        return [id, events ? { ...cycle, events: { mode: events.mode, reason: events.reason, lastEventAt: events.lastEventAt ?? null } } : cycle];
      }),
    );
    try {
      await this.queue.getCursor('__readiness__');
    } catch (error) {
      return { ready: false, detail: { queue: (error as Error).message, sources } };
    }
    return { ready: Object.values(sources).every((s) => s.ok), detail: { queue: 'ok', sources } };
  }

  /** Graceful stop: loops stop, the batch being read is abandoned (replayed next start), delivery finishes its entry. */
  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.stopping.abort();
    await this.http?.app.close();
    await this.admin?.app.close();
    await Promise.all(this.runners.map((r) => r.stop()));
    await this.reminders?.idle();
    await this.draining?.catch(() => undefined);
    await this.purging;
    await this.composed.close();
  }
}
