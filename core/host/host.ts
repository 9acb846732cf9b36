import { Container, type ServiceIdentifier } from '../di.js';
import { ApprovalQueue } from '../contracts/approval-queue.js';
import { ApprovalLookup } from '../contracts/approval-lookup.js';
import { DeliveryFeed } from '../contracts/delivery-feed.js';
import { ApprovalSource, SourceState, type SourceCapabilities } from '../contracts/approval-source.js';
import { Clock, systemClock } from '../contracts/clock.js';
import { CredentialStore } from '../contracts/credential-store.js';
import { EncryptedCredentialStore } from './credentials.js';
import { IdentityDirectory } from '../contracts/identity-directory.js';
import { HttpRoutes } from '../contracts/http-routes.js';
import { Logger } from '../contracts/logger.js';
import { emailKey } from '../model/email.js';
import { startAdminServer, startHttpServer, type HttpServer, type Readiness } from './http-server.js';
import { Metrics } from '../contracts/metrics.js';
import { PrometheusMetrics } from './prometheus-metrics.js';
import type { Registry } from 'prom-client';
import { Notifier } from '../contracts/notifier.js';
import { ApproverResolver } from '../pipeline/approver-resolver.js';
import { createCardRenderer } from '../pipeline/card-renderer.js';
import { OutboxWorker, defaultOutboxWorkerOptions, type DrainReport } from '../pipeline/outbox-worker.js';
import type { CardRenderer, CommitContext } from '../pipeline/planner.js';
import { BACKFILL_STATE, SourceRunner, type CycleReport } from '../pipeline/source-runner.js';
import { problemLabel } from '../pipeline/source-output-check.js';
import { ReminderScheduler, type ReminderReport } from '../pipeline/reminder-scheduler.js';
import { DEFAULT_ADMIN_LISTENER, type Deployment, type InstanceSpec } from './deployment.js';
import { PluginCatalog, type CatalogEntry } from './plugin-catalog.js';
import { PluginContext } from './plugin-api.js';

const DAY_MS = 86_400_000;
/** Reminders are due by the hour and quiet hours end on the minute, so a pass a minute is on time. */
const REMINDER_INTERVAL_MS = 60_000;
/** How often a running host deletes settled outbox entries past `delivery.keepDays`. */
const OUTBOX_PURGE_INTERVAL_MS = 15 * 60_000;
/** Entries deleted per transaction, so a large backlog never holds the queue's write lock long. */
const OUTBOX_PURGE_BATCH = 5_000;

export interface HostOptions {
  readonly clock?: Clock;
  readonly logger: Logger;
  /** Channels bound besides the deployment's notifiers (embedding the host, tests). */
  readonly notifiers?: readonly Notifier[];
  /** Sources run besides the deployment's (embedding the host, tests); they have no identity directory. */
  readonly sources?: readonly ApprovalSource[];
  /** Where the metrics register (embedding the host); default a registry of the host's own. */
  readonly registry?: Registry;
}

export interface OnceReport {
  readonly cycles: CycleReport[];
  readonly failures: { source: string; error: string }[];
  readonly delivery: DrainReport;
  /** Absent when the deployment has no reminders, or their pass failed (logged). */
  readonly reminders?: ReminderReport | undefined;
}

/**
 * The composition root: the only place that reads the container. It loads the queue adapter into
 * the root container and each source and notifier instance into a child container of its own
 * (so two Concur companies can run side by side), then wires one detection loop per source and
 * one outbox worker.
 */
export class Host {
  readonly runners: SourceRunner[] = [];
  private worker!: OutboxWorker;
  /** Present when the deployment configures reminders. */
  reminders: ReminderScheduler | undefined;
  private deliveryTimer: NodeJS.Timeout | undefined;
  private reminderTimer: NodeJS.Timeout | undefined;
  private draining: Promise<DrainReport> | undefined;
  private purging: Promise<{ entries: number; receipts: number }> | undefined;
  private purgeTimer: NodeJS.Timeout | undefined;
  /** Aborted by stop(): a delivery pass ends after the batch in hand, and nothing new starts. */
  private readonly stopping = new AbortController();
  private readonly root = new Container({ defaultScope: 'Singleton' });
  private readonly children: Container[] = [];
  private started = false;
  private readonly routes: HttpRoutes[] = [];
  private http: HttpServer | undefined;
  private admin: HttpServer | undefined;
  private readonly lastCycle = new Map<string, { ok: boolean; at: string; error?: string }>();
  readonly sources = new Map<string, ApprovalSource>();
  readonly notifiers = new Map<string, Notifier>();
  render!: CardRenderer;
  metrics!: PrometheusMetrics;
  lookupService!: ApprovalLookup;
  queue!: ApprovalQueue;
  /** Secrets at rest for every plugin, encrypted in the queue's store. */
  credentials!: CredentialStore;
  readonly clock: Clock;
  readonly logger: Logger;

  private constructor(readonly deployment: Deployment, private readonly options: HostOptions) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger;
  }

  static async create(deployment: Deployment, options: HostOptions): Promise<Host> {
    const host = new Host(deployment, options);
    try {
      await host.compose();
    } catch (error) {
      // A plugin that failed after others started (an embedded sandbox, a queue pool) must not
      // leave them holding the process open: close what was opened, then report the failure.
      await host.close();
      throw error;
    }
    return host;
  }

  private async child<T>(entry: CatalogEntry, spec: InstanceSpec, token: ServiceIdentifier<T>, extra?: (c: Container) => void): Promise<Container> {
    const factory = await PluginCatalog.load(entry);
    const child = new Container({ parent: this.root, defaultScope: 'Singleton' });
    child.bind(PluginContext).toConstantValue({ instanceId: spec.id, config: spec.config, baseDir: this.deployment.baseDir });
    extra?.(child);
    this.children.push(child);
    await child.loadAsync(factory({ instanceId: spec.id, config: spec.config, baseDir: this.deployment.baseDir }));
    if (!child.isCurrentBound(token)) throw new Error(`plugin "${entry.manifest.id}" (${spec.id}) does not bind its contract`);
    if (child.isCurrentBound(HttpRoutes)) this.routes.push(...child.getAll(HttpRoutes));
    return child;
  }

  private async compose(): Promise<void> {
    const d = this.deployment;
    this.root.bind(Clock).toConstantValue(this.clock);
    this.metrics = new PrometheusMetrics({
      queueSize: () => this.queue.count({ notBefore: this.commitContext().notBefore }),
      outboxDepth: () => this.queue.outboxCounts(),
      backfillPending: async () => Object.fromEntries((await this.backfillPending()).map((b) => [b.source, b.pending])),
    }, this.options.registry);
    this.root.bind(Metrics).toConstantValue(this.metrics);
    this.root.bind(Logger).toConstantValue(this.logger);
    const queueFactory = await PluginCatalog.load(d.queue.plugin);
    await this.root.loadAsync(queueFactory({ instanceId: d.queue.adapter, config: d.queue.config, baseDir: d.baseDir }));
    this.queue = this.root.get(ApprovalQueue);
    await this.queue.init();
    this.credentials = new EncryptedCredentialStore(this.queue, { key: d.credentials.key, logger: this.logger.child({ component: 'credentials' }) });
    this.root.bind(CredentialStore).toConstantValue(this.credentials);
    this.lookupService = this.lookup();
    this.root.bind(ApprovalLookup).toConstantValue(this.lookupService);
    const queue = this.queue;
    this.root.bind(DeliveryFeed).toConstantValue({
      shared: queue.acquireLease !== undefined,
      deliveredSince: (channel, after, limit) => queue.deliveredSince(channel, after, limit),
    });

    for (const spec of d.notifiers) {
      const child = await this.child(spec.entry, spec, Notifier);
      const notifier = child.get(Notifier);
      if (notifier.id !== spec.id) throw new Error(`notifier plugin "${spec.plugin}" reported id "${notifier.id}", expected "${spec.id}"`);
      this.notifiers.set(spec.id, notifier);
    }

    for (const notifier of this.options.notifiers ?? []) {
      if (this.notifiers.has(notifier.id)) throw new Error(`duplicate notifier id "${notifier.id}"`);
      this.notifiers.set(notifier.id, notifier);
    }

    const capabilities = new Map<string, SourceCapabilities>();
    const directories = new Map<string, IdentityDirectory | undefined>();
    // A read-only command's deployment has its source secrets unresolved: no source is composed.
    for (const spec of d.readOnly ? [] : d.sources) {
      const queue = this.queue;
      const child = await this.child(spec.entry, spec, ApprovalSource, (c) => {
        c.bind(SourceState).toConstantValue({
          get: (key) => queue.getState(`source:${spec.id}`, key),
          set: (key, value) => queue.setState(`source:${spec.id}`, key, value),
        });
      });
      const source = child.get(ApprovalSource);
      if (source.id !== spec.id) throw new Error(`source plugin "${spec.plugin}" reported id "${source.id}", expected "${spec.id}"`);
      if (this.sources.has(source.id)) throw new Error(`duplicate source id "${source.id}"`);
      this.sources.set(source.id, source);
      capabilities.set(source.id, source.capabilities);
      directories.set(source.id, child.isCurrentBound(IdentityDirectory) ? child.get(IdentityDirectory) : undefined);
    }
    const given = (this.options.sources ?? []).map((source) => {
      if (this.sources.has(source.id)) throw new Error(`duplicate source id "${source.id}"`);
      this.sources.set(source.id, source);
      capabilities.set(source.id, source.capabilities);
      return { id: source.id, pollIntervalSeconds: 60, sweepIntervalSeconds: 0 };
    });
    this.render = createCardRenderer(capabilities);

    const channels = [...this.notifiers.keys()];
    for (const spec of [...(d.readOnly ? [] : d.sources), ...given]) {
      const source = this.sources.get(spec.id)!;
      const resolver = new ApproverResolver(directories.get(spec.id), this.logger.child({ source: spec.id }), 10_000, () => this.clock.now().getTime());
      this.runners.push(
        new SourceRunner(source, this.queue, resolver, this.clock, this.logger.child({ source: spec.id }), {
          pollIntervalMs: spec.pollIntervalSeconds * 1000,
          sweepIntervalMs: spec.sweepIntervalSeconds * 1000,
          retentionDays: d.retentionDays,
          channels,
          render: this.render,
          plugin: 'plugin' in spec ? spec.plugin : undefined,
          onRejected: (r) => this.metrics.rejected.inc({ source: r.source, field: problemLabel(r.problem) }),
        }, (report, error, durationMs) => {
          this.afterCycle(spec.id, report, error, durationMs);
          void this.drain();
        }),
      );
    }
    if (d.reminders) {
      this.reminders = new ReminderScheduler(this.queue, this.clock, this.logger.child({ component: 'reminders' }), d.reminders, {
        channels,
        render: this.render,
        retentionDays: d.retentionDays,
      });
    }
    this.worker = new OutboxWorker(
      this.queue,
      [...this.notifiers.values()],
      this.clock,
      this.logger.child({ component: 'outbox' }),
      { ...defaultOutboxWorkerOptions, maxAttempts: d.delivery.maxAttempts, leaseMs: d.delivery.leaseSeconds * 1000 },
      (entry, outcome) => {
        this.metrics.deliveries.inc({ channel: entry.channel, outcome: outcome.state });
        if (outcome.state === 'delivered') {
          this.metrics.detectionLag.observe({ source: entry.source, stage: 'delivered' }, Math.max(0, this.clock.now().getTime() - Date.parse(entry.createdAt)) / 1000);
        }
      },
    );
  }

  private lookup(): ApprovalLookup {
    const notBefore = () => new Date(this.clock.now().getTime() - this.deployment.retentionDays * DAY_MS);
    return {
      waitingOn: (email, options) => this.queue.listForApprover(email, { notBefore: notBefore(), source: options?.source, limit: options?.limit }),
      forApprover: async (key, email) => {
        const row = await this.queue.get(key);
        const wanted = emailKey(email);
        if (!row || row.status !== 'pending' || Date.parse(row.sourceUpdatedAt) < notBefore().getTime()) return undefined;
        return wanted !== undefined && row.approvers.some((a) => emailKey(a.email) === wanted) ? row : undefined;
      },
    };
  }

  /**
   * Per source that has a backfill: queued approvals it has not reached yet. A source this process
   * did not compose (read-only commands) is answered with what its runner recorded after its last cycle.
   */
  async backfillPending(): Promise<{ source: string; pending: number }[]> {
    const out: { source: string; pending: number }[] = [];
    for (const id of new Set([...this.deployment.sources.map((s) => s.id), ...this.sources.keys()])) {
      const source = this.sources.get(id);
      if (source?.backfillPending) out.push({ source: id, pending: await source.backfillPending() });
      else if (!source) {
        const recorded = await this.queue.getState(BACKFILL_STATE, id);
        if (recorded !== undefined) out.push({ source: id, pending: Number(recorded) });
      }
    }
    return out;
  }

  /** What every queue read uses as "now" and the retention cut-off. */
  commitContext(): CommitContext {
    const now = this.clock.now();
    return { now, channels: [...this.notifiers.keys()], notBefore: new Date(now.getTime() - this.deployment.retentionDays * DAY_MS), render: this.render };
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
    }
    this.lastCycle.set(source, { ok: !error, at: this.clock.now().toISOString(), ...(error ? { error: error instanceof Error ? error.message : String(error) } : {}) });
    if (error) this.logger.error({ source, err: error instanceof Error ? error.message : String(error) }, 'cycle failed; the next cycle resumes from the last committed cursor');
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
    if (http || this.routes.length > 0) {
      // With an admin listener, the public one keeps /healthz (load balancers) and the plugins' routes only.
      this.http = await startHttpServer(this.routes, http ?? { host: '127.0.0.1', port: 8080 }, http?.admin ? undefined : operations, this.logger);
    }
    this.started = true;
    for (const runner of this.runners) runner.start();
    this.deliveryTimer = setInterval(() => void this.drain(), 1000);
    if (this.reminders) this.reminderTimer = setInterval(() => void this.remind().then(() => this.drain()), REMINDER_INTERVAL_MS);
    void this.purgeOutbox();
    this.purgeTimer = setInterval(() => void this.purgeOutbox(), OUTBOX_PURGE_INTERVAL_MS);
  }

  private async readiness(): Promise<Readiness> {
    const sources = Object.fromEntries([...this.sources.keys()].map((id) => [id, this.lastCycle.get(id) ?? { ok: false, error: 'no cycle yet' }]));
    try {
      await this.queue.getCursor('__readiness__');
    } catch (error) {
      return { ready: false, detail: { queue: (error as Error).message, sources } };
    }
    return { ready: Object.values(sources).every((s) => s.ok), detail: { queue: 'ok', sources } };
  }

  /** Graceful stop: loops stop, the batch being read is abandoned (replayed next start), delivery finishes its entry. */
  async stop(): Promise<void> {
    if (this.deliveryTimer) clearInterval(this.deliveryTimer);
    if (this.reminderTimer) clearInterval(this.reminderTimer);
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.stopping.abort();
    await this.http?.app.close();
    await this.admin?.app.close();
    await Promise.all(this.runners.map((r) => r.stop()));
    await this.reminders?.idle();
    await this.draining?.catch(() => undefined);
    await this.purging;
    await this.close();
  }

  /** Releases what composing opened: every plugin's bindings (an embedded sandbox with them), then the queue. */
  private async close(): Promise<void> {
    for (const child of this.children) await child.unbindAllAsync().catch(() => undefined);
    await this.root.unbindAllAsync().catch(() => undefined);
    await this.queue?.close();
  }
}
