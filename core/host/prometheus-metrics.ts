import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Metrics } from '../contracts/metrics.js';

/** Detection lag buckets, in seconds: from a few seconds (push) to a few poll intervals and sweeps. */
const LAG_BUCKETS = [1, 5, 15, 30, 60, 90, 120, 180, 300, 600, 900, 1800, 3600];

/**
 * Every metric the host exports. Gauges that need the queue (size, outbox depth) are read at
 * scrape time through the callbacks the host registers, so a scrape always shows the truth.
 */
export class PrometheusMetrics implements Metrics {
  readonly registry: Registry;
  readonly contentType: string;
  readonly pollDuration: Histogram<'source' | 'outcome'>;
  readonly sourceCalls: Counter<'source' | 'endpoint' | 'status'>;
  readonly sourceDeprecations: Counter<'source' | 'endpoint'>;
  readonly detectionLag: Histogram<'source' | 'stage'>;
  readonly drift: Counter<'source' | 'cause'>;
  readonly rejected: Counter<'source' | 'field'>;
  readonly actions: Counter<'source' | 'action' | 'outcome' | 'channel'>;
  readonly actionSeconds: Histogram<'source' | 'action'>;
  readonly deliveries: Counter<'channel' | 'outcome'>;
  readonly purged: Counter<'kind'>;
  readonly triggers: Counter<'source' | 'outcome'>;
  readonly eventDrift: Counter<'source' | 'cause'>;
  readonly eventsHealthy: Gauge<'source'>;
  readonly eventsFallbacks: Counter<'source'>;
  /** The metrics this instance registered, for {@link unregister}. */
  private readonly owned: readonly string[];

  /**
   * `registry`: where the metrics register (an embedding application's own); default a registry of
   * their own, with the process metrics too. A given registry gets no process metrics: the process
   * is the application's, and so is collecting its metrics.
   */
  constructor(
    gauges: {
      queueSize: () => Promise<number>;
      outboxDepth: () => Promise<Record<string, number>>;
      /** Per source with a backfill: queued approvals it has not reached yet. */
      backfillPending?: () => Promise<Record<string, number>>;
    },
    registry?: Registry,
  ) {
    this.registry = registry ?? new Registry();
    const before = new Set(this.registry.getMetricsAsArray().map((m) => m.name));
    this.contentType = this.registry.contentType;
    if (!registry) collectDefaultMetrics({ register: this.registry, prefix: 'approvals_hub_process_' });
    this.pollDuration = new Histogram({
      name: 'approvals_hub_poll_duration_seconds',
      help: 'Duration of one detection cycle per source (poll, parked retries, sweep, purge).',
      labelNames: ['source', 'outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers: [this.registry],
    });
    this.sourceCalls = new Counter({
      name: 'approvals_hub_source_calls_total',
      help: 'Calls to source systems (e.g. Concur), by endpoint and HTTP status.',
      labelNames: ['source', 'endpoint', 'status'],
      registers: [this.registry],
    });
    this.sourceDeprecations = new Counter({
      name: 'approvals_hub_source_deprecations_total',
      help: 'Responses in which a source system flagged the endpoint as deprecated (Concur: x-api-warn and sunset headers).',
      labelNames: ['source', 'endpoint'],
      registers: [this.registry],
    });
    this.detectionLag = new Histogram({
      name: 'approvals_hub_detection_lag_seconds',
      help: 'Lag from a source update to the approval being queued (stage=queued), and from queued to its message delivered (stage=delivered).',
      labelNames: ['source', 'stage'],
      buckets: LAG_BUCKETS,
      registers: [this.registry],
    });
    this.drift = new Counter({
      name: 'approvals_hub_sweep_drift_total',
      help: "What a sweep repaired that the source's incremental feed missed, after its first sync, by cause: missed (pending, not queued), completion-missed (queued, completed or gone), reassigned, changed.",
      labelNames: ['source', 'cause'],
      registers: [this.registry],
    });
    this.rejected = new Counter({
      name: 'approvals_hub_source_rejected_total',
      help: 'Records a source plugin yielded that the host refused (not committed), by the field at fault (key, sourceUpdatedAt, approvers.sourceUserId, cursor, ...).',
      labelNames: ['source', 'field'],
      registers: [this.registry],
    });
    this.actions = new Counter({
      name: 'approvals_hub_actions_total',
      help: 'Buttons pressed in chat (approve, sendBack), by source, action, channel and outcome (done, consent_needed, already_decided, not_yours, changed, in_progress, refused).',
      labelNames: ['source', 'action', 'outcome', 'channel'],
      registers: [this.registry],
    });
    this.actionSeconds = new Histogram({
      name: 'approvals_hub_action_seconds',
      help: 'From a click reaching the host to its answer, including the source calls (the guard read and the action).',
      labelNames: ['source', 'action'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [this.registry],
    });
    this.deliveries = new Counter({
      name: 'approvals_hub_deliveries_total',
      help: 'Outbox entries settled, by channel and outcome (delivered, superseded, retry, dead).',
      labelNames: ['channel', 'outcome'],
      registers: [this.registry],
    });
    this.purged = new Counter({
      name: 'approvals_hub_outbox_purged_total',
      help: 'Settled outbox entries (kind=entries) and receipts of final cards (kind=receipts) deleted after delivery.keepDays.',
      labelNames: ['kind'],
      registers: [this.registry],
    });
    this.triggers = new Counter({
      name: 'approvals_hub_source_triggers_total',
      help: 'Push events a source plugin received, by outcome: added (stored as a trigger), duplicate (id seen before), refused (not authentic), failed (could not be stored: answered 5xx), refreshed (re-read and committed), refresh_failed.',
      labelNames: ['source', 'outcome'],
      registers: [this.registry],
    });
    this.eventDrift = new Counter({
      name: 'approvals_hub_source_event_drift_total',
      help: 'With push events healthy: what the safety poll found that no push announced, by cause (missed, completion-missed, reassigned, changed).',
      labelNames: ['source', 'cause'],
      registers: [this.registry],
    });
    this.eventsHealthy = new Gauge({
      name: 'approvals_hub_source_events_healthy',
      help: 'Per source with push events: 1 while they are trusted (polling at the events interval), 0 while the source polls at its normal interval.',
      labelNames: ['source'],
      registers: [this.registry],
    });
    this.eventsFallbacks = new Counter({
      name: 'approvals_hub_source_events_fallbacks_total',
      help: 'Times a source with push events fell back to its normal poll interval (no push for too long, pushes refused, or the safety poll found what pushes missed).',
      labelNames: ['source'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'approvals_hub_queue_size',
      help: 'Pending, unexpired approvals in the queue.',
      registers: [this.registry],
      async collect() {
        this.set(await gauges.queueSize());
      },
    });
    new Gauge({
      name: 'approvals_hub_outbox_depth',
      help: 'Outbox entries waiting, by state (pending, parked, inflight, dead).',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        for (const [state, n] of Object.entries(await gauges.outboxDepth())) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'approvals_hub_source_backfill_pending',
      help: 'Queued approvals whose source still owes what it left out taking a backlog in (Concur: line items of a first sync), per source.',
      labelNames: ['source'],
      registers: [this.registry],
      async collect() {
        for (const [source, n] of Object.entries((await gauges.backfillPending?.()) ?? {})) this.set({ source }, n);
      },
    });
    this.owned = this.registry
      .getMetricsAsArray()
      .map((m) => m.name)
      .filter((name) => !before.has(name));
  }

  /** Removes every metric this host registered, so another host can register on the same registry. */
  unregister(): void {
    for (const name of this.owned) this.registry.removeSingleMetric(name);
  }

  sourceCall(source: string, endpoint: string, status: number | 'error'): void {
    this.sourceCalls.inc({ source, endpoint, status: String(status) });
  }

  sourceDeprecation(source: string, endpoint: string): void {
    this.sourceDeprecations.inc({ source, endpoint });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
