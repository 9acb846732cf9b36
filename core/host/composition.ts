import { Container, type ServiceIdentifier } from '../di.js';
import { ApprovalQueue } from '../contracts/approval-queue.js';
import { ApprovalLookup } from '../contracts/approval-lookup.js';
import { DeliveryFeed } from '../contracts/delivery-feed.js';
import { ApprovalSource, SourceState, type SourceCapabilities } from '../contracts/approval-source.js';
import { Clock, systemClock } from '../contracts/clock.js';
import { CredentialStore } from '../contracts/credential-store.js';
import { ApprovalActions } from '../contracts/approval-actions.js';
import { ActionService } from '../pipeline/action-service.js';
import { EncryptedCredentialStore } from './credentials.js';
import { IdentityDirectory } from '../contracts/identity-directory.js';
import { HttpRoutes } from '../contracts/http-routes.js';
import { Logger } from '../contracts/logger.js';
import { emailKey } from '../model/email.js';
import { Metrics } from '../contracts/metrics.js';
import { PrometheusMetrics } from './prometheus-metrics.js';
import type { Registry } from 'prom-client';
import { Notifier, Notifiers } from '../contracts/notifier.js';
import { createCardRenderer } from '../pipeline/card-renderer.js';
import type { CardRenderer } from '../pipeline/planner.js';
import { BACKFILL_STATE } from '../pipeline/source-runner.js';
import { TriggerHub } from '../pipeline/trigger-hub.js';
import { SourceTriggers } from '../contracts/source-triggers.js';
import type { Deployment, InstanceSpec } from './deployment.js';
import { PluginCatalog, type CatalogEntry } from './plugin-catalog.js';
import { PluginContext } from './plugin-api.js';

export const DAY_MS = 86_400_000;

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

/** What one source's detection loop is given besides the source itself, in the order the loops run. */
export interface SourceSchedule {
  readonly id: string;
  readonly pollIntervalSeconds: number;
  readonly sweepIntervalSeconds: number;
  /** The plugin that contributed the source; absent for a source handed in by `HostOptions.sources`. */
  readonly plugin: string | undefined;
  /** The identity directory the source's plugin binds, if any. */
  readonly directory: IdentityDirectory | undefined;
}

/** Everything composing a deployment built: the services the runtime drives, and how to release them. */
export interface Composition {
  readonly deployment: Deployment;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: PrometheusMetrics;
  /** Initialised. */
  readonly queue: ApprovalQueue;
  /** Secrets at rest for every plugin, encrypted in the queue's store. */
  readonly credentials: CredentialStore;
  readonly lookup: ApprovalLookup;
  /** By id; the deployment's notifiers, then those of `HostOptions.notifiers`. */
  readonly notifiers: ReadonlyMap<string, Notifier>;
  /** By id; empty of the deployment's sources when it is read-only. */
  readonly sources: ReadonlyMap<string, ApprovalSource>;
  readonly schedules: readonly SourceSchedule[];
  readonly render: CardRenderer;
  /** Buttons to actions: the service channels call (bound as `ApprovalActions`), and the tokens the outbox puts on cards. */
  readonly actions: ActionService;
  /** Routes the plugins contribute to the HTTP server. */
  readonly routes: readonly HttpRoutes[];
  /** Sources' push triggers: what their webhook routes store, handed to each source's runner. */
  readonly triggers: TriggerHub;
  /**
   * Per source that has a backfill: queued approvals it has not reached yet. A source this process
   * did not compose (read-only commands) is answered with what its runner recorded after its last cycle.
   */
  backfillPending(): Promise<{ source: string; pending: number }[]>;
  /** Releases every plugin's bindings (an embedded sandbox with them), then the queue. */
  close(): Promise<void>;
}

/** The retention cut-off at `now`: approvals last updated before it are out of the queue's reads. */
export function notBefore(deployment: Deployment, now: Date): Date {
  return new Date(now.getTime() - deployment.retentionDays * DAY_MS);
}

/**
 * The composition root: the only place that reads the container. It loads the queue adapter into
 * the root container and each source and notifier instance into a child container of its own (so
 * two Concur companies can run side by side), and checks the ids they report. On failure it closes
 * what it opened (an embedded sandbox, a queue pool) before rethrowing.
 */
export async function compose(deployment: Deployment, options: HostOptions): Promise<Composition> {
  const composer = new Composer(deployment, options);
  try {
    return await composer.compose();
  } catch (error) {
    await composer.close();
    throw error;
  }
}

/** Holds the parts while they are built; each step is one method, in the order `compose` runs them. */
class Composer {
  private readonly root = new Container({ defaultScope: 'Singleton' });
  private readonly children: Container[] = [];
  private readonly routes: HttpRoutes[] = [];
  private readonly sources = new Map<string, ApprovalSource>();
  private readonly notifiers = new Map<string, Notifier>();
  private readonly clock: Clock;
  private queue: ApprovalQueue | undefined;

  constructor(
    private readonly deployment: Deployment,
    private readonly options: HostOptions,
  ) {
    this.clock = options.clock ?? systemClock;
  }

  async compose(): Promise<Composition> {
    const {
      deployment,
      clock,
      options: { logger },
    } = this;
    const metrics = this.bindBasics();
    const queue = await this.loadQueue();
    const credentials = this.bindCredentials(queue);
    const lookup = this.bindLookup(queue);
    this.bindDeliveryFeed(queue);
    const actions = this.bindActions(queue, credentials, metrics);
    await this.loadNotifiers();
    const triggers = new TriggerHub(queue, clock, (source, outcome, n) => n > 0 && metrics.triggers.inc({ source, outcome }, n));
    const schedules = await this.loadSources(queue, triggers);
    const render = createCardRenderer(new Map([...this.sources].map(([id, source]) => [id, source.capabilities] as [string, SourceCapabilities])));
    const { sources, notifiers, routes } = this;
    return {
      deployment,
      clock,
      logger,
      metrics,
      queue,
      credentials,
      lookup,
      notifiers,
      sources,
      schedules,
      render,
      actions,
      routes,
      triggers,
      backfillPending: () => this.backfillPending(),
      close: () => this.close(),
    };
  }

  /** Clock, logger and metrics in the root container; the metrics read the queue once it is loaded. */
  private bindBasics(): PrometheusMetrics {
    this.root.bind(Clock).toConstantValue(this.clock);
    const metrics = new PrometheusMetrics(
      {
        queueSize: () => this.queue!.count({ notBefore: notBefore(this.deployment, this.clock.now()) }),
        outboxDepth: () => this.queue!.outboxCounts(),
        backfillPending: async () => Object.fromEntries((await this.backfillPending()).map((b) => [b.source, b.pending])),
      },
      this.options.registry,
    );
    this.root.bind(Metrics).toConstantValue(metrics);
    this.root.bind(Logger).toConstantValue(this.options.logger);
    return metrics;
  }

  /** The queue adapter, loaded into the root container and initialised. */
  private async loadQueue(): Promise<ApprovalQueue> {
    const d = this.deployment;
    const queueFactory = await PluginCatalog.load(d.queue.plugin);
    await this.root.loadAsync(queueFactory({ instanceId: d.queue.adapter, config: d.queue.config, baseDir: d.baseDir }));
    this.queue = this.root.get(ApprovalQueue);
    await this.queue.init();
    return this.queue;
  }

  private bindCredentials(queue: ApprovalQueue): CredentialStore {
    const credentials = new EncryptedCredentialStore(queue, {
      key: this.deployment.credentials.key,
      logger: this.options.logger.child({ component: 'credentials' }),
    });
    this.root.bind(CredentialStore).toConstantValue(credentials);
    return credentials;
  }

  /** What plugins read the queue through: pending approvals within retention, by approver. */
  /** Channels reach sources' actions through this; the sources map fills as they load (they load after the notifiers). */
  private bindActions(queue: ApprovalQueue, credentials: CredentialStore, metrics: PrometheusMetrics): ActionService {
    const actions = new ActionService(queue, this.sources, credentials, this.clock, this.options.logger.child({ component: 'actions' }), {
      tokenTtlMs: this.deployment.retentionDays * DAY_MS,
      onResult: (labels, seconds) => {
        metrics.actions.inc(labels);
        metrics.actionSeconds.observe({ source: labels.source, action: labels.action }, seconds);
      },
    });
    this.root.bind(ApprovalActions).toConstantValue(actions);
    return actions;
  }

  private bindLookup(queue: ApprovalQueue): ApprovalLookup {
    const cutOff = () => notBefore(this.deployment, this.clock.now());
    const lookup: ApprovalLookup = {
      waitingOn: (email, options) => queue.listForApprover(email, { notBefore: cutOff(), source: options?.source, limit: options?.limit }),
      forApprover: async (key, email) => {
        const row = await queue.get(key);
        const wanted = emailKey(email);
        if (!row || row.status !== 'pending' || Date.parse(row.sourceUpdatedAt) < cutOff().getTime()) return undefined;
        return wanted !== undefined && row.approvers.some((a) => emailKey(a.email) === wanted) ? row : undefined;
      },
    };
    this.root.bind(ApprovalLookup).toConstantValue(lookup);
    return lookup;
  }

  private bindDeliveryFeed(queue: ApprovalQueue): void {
    this.root.bind(DeliveryFeed).toConstantValue({
      shared: queue.acquireLease !== undefined,
      deliveredSince: (channel, after, limit) => queue.deliveredSince(channel, after, limit),
    });
  }

  /** The deployment's notifiers, each in a child container, then those handed in; ids must be unique. `Notifiers` lists them as they load. */
  private async loadNotifiers(): Promise<void> {
    this.root.bind(Notifiers).toConstantValue(this.notifiers);
    for (const spec of this.deployment.notifiers) {
      const child = await this.child(spec.entry, spec, Notifier);
      const notifier = child.get(Notifier);
      if (notifier.id !== spec.id) throw new Error(`notifier plugin "${spec.plugin}" reported id "${notifier.id}", expected "${spec.id}"`);
      this.notifiers.set(spec.id, notifier);
    }
    for (const notifier of this.options.notifiers ?? []) {
      if (this.notifiers.has(notifier.id)) throw new Error(`duplicate notifier id "${notifier.id}"`);
      this.notifiers.set(notifier.id, notifier);
    }
  }

  /** The deployment's sources, each in a child container with its own state, then those handed in; ids must be unique. */
  private async loadSources(queue: ApprovalQueue, triggers: TriggerHub): Promise<SourceSchedule[]> {
    const schedules: SourceSchedule[] = [];
    // A read-only command's deployment has its source secrets unresolved: no source is composed.
    for (const spec of this.deployment.readOnly ? [] : this.deployment.sources) {
      const child = await this.child(spec.entry, spec, ApprovalSource, (c) => {
        c.bind(SourceState).toConstantValue({
          get: (key) => queue.getState(`source:${spec.id}`, key),
          set: (key, value) => queue.setState(`source:${spec.id}`, key, value),
        });
        c.bind(SourceTriggers).toConstantValue(triggers.forSource(spec.id));
      });
      const source = child.get(ApprovalSource);
      if (source.id !== spec.id) throw new Error(`source plugin "${spec.plugin}" reported id "${source.id}", expected "${spec.id}"`);
      if (this.sources.has(source.id)) throw new Error(`duplicate source id "${source.id}"`);
      this.sources.set(source.id, source);
      const directory = child.isCurrentBound(IdentityDirectory) ? child.get(IdentityDirectory) : undefined;
      schedules.push({
        id: spec.id,
        pollIntervalSeconds: spec.pollIntervalSeconds,
        sweepIntervalSeconds: spec.sweepIntervalSeconds,
        plugin: spec.plugin,
        directory,
      });
    }
    for (const source of this.options.sources ?? []) {
      if (this.sources.has(source.id)) throw new Error(`duplicate source id "${source.id}"`);
      this.sources.set(source.id, source);
      schedules.push({ id: source.id, pollIntervalSeconds: 60, sweepIntervalSeconds: 0, plugin: undefined, directory: undefined });
    }
    return schedules;
  }

  /** One plugin instance in a child container of the root; it must bind `token`. Its HTTP routes are collected. */
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

  async backfillPending(): Promise<{ source: string; pending: number }[]> {
    const out: { source: string; pending: number }[] = [];
    for (const id of new Set([...this.deployment.sources.map((s) => s.id), ...this.sources.keys()])) {
      const source = this.sources.get(id);
      if (source?.backfillPending) out.push({ source: id, pending: await source.backfillPending() });
      else if (!source) {
        const recorded = await this.queue!.getState(BACKFILL_STATE, id);
        if (recorded !== undefined) out.push({ source: id, pending: Number(recorded) });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    for (const child of this.children) await child.unbindAllAsync().catch(() => undefined);
    await this.root.unbindAllAsync().catch(() => undefined);
    await this.queue?.close();
  }
}
