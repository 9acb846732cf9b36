import { createPrivateKey, createSign, type KeyObject } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { SandboxClock } from './sandbox-clock.js';
import type { SandboxCompany } from './sandbox-company.js';
import { EXPENSE_TOPIC, eventsFor, type EssEvent } from './sandbox-event-facts.js';
import type { EventSubscriptions, WebhookSubscription } from './sandbox-event-subscriptions.js';
import type { Latency } from './sandbox-faults.js';
import { SeededRandom, deriveSeed } from './sandbox-random.js';
import { TEST_SIGNING_PRIVATE_KEY } from './test-keys/test-signing-keys.js';

/**
 * The sandbox's ESS webhook sender: every event goes to every subscription whose topic and filter
 * match, as Concur's delivery behaves (v4.event-subscription.markdown "Endpoint Requirements",
 * "ESS Behavior"): at least once; a POST of the JSON envelope with `Concur-Correlationid` and
 * `Concur-Signature`; retried on 5xx, 401, 403, 429 and any I/O error or timeout, never on 2xx or
 * another 4xx; until delivered or the retention (72 h from publication, sandbox clock) ends.
 * Backoff doubles from a small first delay (Concur's own schedule is undocumented), and at most
 * `concurrency` deliveries are in flight. Faults (duplicates, reordering, delay, dropped attempts,
 * an outage that loses events) come from a seeded stream.
 */

/** Faults of the delivery side; settable at start (`events.faults`) and through `/_admin/events/faults`. */
export interface EventFaultOptions {
  /** Share of deliveries sent twice (the same body, so the same event `id`). */
  readonly duplicateRate?: number;
  /** Hold deliveries for this many ms (true: 50) and send each held batch shuffled. */
  readonly reorder?: boolean | number;
  /** Wait before every attempt: ms, or a {min, max} range drawn per attempt. */
  readonly delayMs?: Latency;
  /** Share of attempts that fail with an I/O error (the connection is destroyed before the request is sent); retried like any. */
  readonly dropRate?: number;
  /** While true, events are discarded as they are published (an outage: they are lost for good). */
  readonly lose?: boolean;
}

export interface EventSenderOptions {
  /** PEM private key (RSA) the signature is made with. Default: the TEST-ONLY key in test-keys/. */
  readonly signingKey?: string;
  /**
   * Mutual TLS towards https endpoints: the client certificate and key to present (Concur presents
   * `CN=webhook.api.concursolutions.com`), and the CA(s) to trust for the endpoint's certificate
   * (default: the system's).
   */
  readonly tls?: { readonly cert?: string; readonly key?: string; readonly ca?: string | readonly string[] };
  /** First retry delay in ms. Default 200. */
  readonly retryInitialMs?: number;
  /** Largest retry delay in ms. Default 5000. */
  readonly retryMaxMs?: number;
  /** Give up on a delivery this long after its event was published, sandbox clock. Default 72 h. */
  readonly retentionSeconds?: number;
  /** Deliveries in flight at once. Default 4. */
  readonly concurrency?: number;
  /** An attempt that has no response within this many ms is an I/O error. Default 60000 (Concur's acknowledgement limit). */
  readonly timeoutMs?: number;
  readonly faults?: EventFaultOptions;
}

/** What happened to the deliveries since start (or the last reset). */
export interface EventCounters {
  /** Events published to at least one subscription. */
  published: number;
  /** Deliveries queued (one per matching subscription, duplicates included). */
  sent: number;
  /** HTTP attempts started. */
  attempts: number;
  /** Deliveries acknowledged with a 2xx. */
  delivered: number;
  /** Attempts scheduled again after a retryable outcome. */
  retried: number;
  /** Attempts failed on purpose by `dropRate`. */
  dropped: number;
  /** Attempts that failed with a real I/O error or timeout. */
  failed: number;
  /** Deliveries answered with a 4xx (other than 401/403/429) or another non-retryable status: not retried. */
  rejected: number;
  /** Deliveries given up when the retention ended. */
  expired: number;
  /** Events discarded while paused (`lose`). */
  lost: number;
  /** Extra deliveries made by `duplicateRate`. */
  duplicated: number;
}

/** One attempt, as `deliveries()` lists it (newest last, the last 1000). */
export interface DeliveryAttempt {
  readonly eventId: string;
  readonly eventType: string;
  readonly subscriptionId: string;
  readonly endpoint: string;
  readonly attempt: number;
  /** The HTTP status, or the I/O error's text. */
  readonly outcome: number | string;
  /** Sandbox time the attempt ended, ISO-8601. */
  readonly at: string;
}

interface Delivery {
  readonly event: EssEvent;
  readonly subscription: WebhookSubscription;
  readonly body: Buffer;
  readonly signature: string;
  readonly publishedMs: number;
  attempt: number;
}

const newCounters = (): EventCounters => ({
  published: 0,
  sent: 0,
  attempts: 0,
  delivered: 0,
  retried: 0,
  dropped: 0,
  failed: 0,
  rejected: 0,
  expired: 0,
  lost: 0,
  duplicated: 0,
});

/** "Requests will be re-tried when the subscriber endpoint responds with 5xx, 401, 403, or 429." */
export const isRetryableStatus = (status: number): boolean => status >= 500 || status === 401 || status === 403 || status === 429;

const DEFAULT_REORDER_WINDOW_MS = 50;
const LOG_LIMIT = 1000;

/** Validates fault options; throws RangeError naming the bad one. */
export function resolveEventFaults(input: unknown): EventFaultOptions {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) throw new RangeError('event faults must be an object');
  const o = input as Record<string, unknown>;
  const known = ['duplicateRate', 'reorder', 'delayMs', 'dropRate', 'lose'];
  for (const key of Object.keys(o)) if (!known.includes(key)) throw new RangeError(`unknown event fault "${key}" (one of ${known.join(', ')})`);
  for (const key of ['duplicateRate', 'dropRate']) {
    const v = o[key];
    if (v !== undefined && (typeof v !== 'number' || !(v >= 0 && v <= 1))) throw new RangeError(`${key} must be in [0, 1]`);
  }
  const reorder = o['reorder'];
  if (reorder !== undefined && typeof reorder !== 'boolean' && !(typeof reorder === 'number' && reorder >= 0)) {
    throw new RangeError('reorder must be a boolean or a window in ms >= 0');
  }
  const delay = o['delayMs'] as Latency | undefined;
  if (delay !== undefined) {
    const ok =
      typeof delay === 'number'
        ? delay >= 0
        : typeof delay === 'object' &&
          delay !== null &&
          typeof delay.min === 'number' &&
          typeof delay.max === 'number' &&
          delay.min >= 0 &&
          delay.max >= delay.min;
    if (!ok) throw new RangeError('delayMs must be >= 0, or {min, max} with 0 <= min <= max');
  }
  if (o['lose'] !== undefined && typeof o['lose'] !== 'boolean') throw new RangeError('lose must be a boolean');
  return o as EventFaultOptions;
}

export class EventSender {
  private faults: EventFaultOptions;
  private counters = newCounters();
  private readonly log: DeliveryAttempt[] = [];
  private readonly rng: SeededRandom;
  private readonly key: KeyObject;
  private readonly ready: Delivery[] = [];
  private readonly held: Delivery[] = [];
  private holdTimer: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<ClientRequest>();
  /** Deliveries waiting for a retry timer or a delay. */
  private waiting = 0;
  private active = 0;
  /** Sandbox time until which published events are lost (the `pause` outage); Infinity: until resumed. */
  private pausedUntilMs = -Infinity;
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly subscriptions: EventSubscriptions,
    private readonly clock: SandboxClock,
    seed: number,
    private readonly options: EventSenderOptions = {},
  ) {
    this.faults = resolveEventFaults(options.faults);
    this.rng = new SeededRandom(deriveSeed(seed, 0xe55));
    this.key = createPrivateKey(options.signingKey ?? TEST_SIGNING_PRIVATE_KEY);
    if (this.key.asymmetricKeyType !== 'rsa') throw new RangeError('the ESS signing key must be an RSA private key');
  }

  setFaults(input: unknown): EventFaultOptions {
    this.faults = resolveEventFaults(input);
    if (!this.reorderWindow()) this.releaseHeld();
    return this.faults;
  }

  currentFaults(): EventFaultOptions {
    return this.faults;
  }

  /**
   * An outage: events published from now for `minutes` of sandbox time (forever when omitted,
   * until {@link resume}) are discarded; deliveries already queued carry on.
   */
  pause(minutes?: number): void {
    if (minutes !== undefined && !(typeof minutes === 'number' && minutes >= 0)) throw new RangeError('minutes must be a number >= 0');
    this.pausedUntilMs = minutes === undefined ? Infinity : this.clock.nowMs() + minutes * 60_000;
  }

  resume(): void {
    this.pausedUntilMs = -Infinity;
  }

  /** Whether events published now would be lost (`pause` or the `lose` fault). */
  get losing(): boolean {
    return this.faults.lose === true || this.clock.nowMs() < this.pausedUntilMs;
  }

  counts(): EventCounters {
    return { ...this.counters };
  }

  resetCounts(): void {
    this.counters = newCounters();
    this.log.length = 0;
  }

  deliveries(): readonly DeliveryAttempt[] {
    return [...this.log];
  }

  /** Resolves once nothing is queued, held, waiting for a retry or in flight. */
  idle(): Promise<void> {
    if (this.settled()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Sends `event` to every matching subscription (or loses it during an outage). */
  publish(event: EssEvent): void {
    if (this.closed) return;
    const targets = this.subscriptions.matching(event.topic, event.eventType);
    if (targets.length === 0) return;
    if (this.losing) {
      this.counters.lost++;
      return;
    }
    this.counters.published++;
    const body = Buffer.from(JSON.stringify(event), 'utf8');
    const signature = createSign('RSA-SHA256').update(body).sign(this.key, 'base64');
    const publishedMs = this.clock.nowMs();
    for (const subscription of targets) {
      const copies = this.faults.duplicateRate && this.rng.chance(this.faults.duplicateRate) ? 2 : 1;
      if (copies === 2) this.counters.duplicated++;
      for (let i = 0; i < copies; i++) {
        this.counters.sent++;
        this.enqueue({ event, subscription, body, signature, publishedMs, attempt: 0 });
      }
    }
    this.pump();
  }

  /** Stops: timers cleared, connections destroyed, nothing more is sent; idle() waiters resolve. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.holdTimer) clearTimeout(this.holdTimer);
    for (const req of this.inFlight) req.destroy();
    this.ready.length = 0;
    this.held.length = 0;
    this.waiting = 0;
    this.notifyIdle(true);
  }

  private reorderWindow(): number {
    const r = this.faults.reorder;
    return r === true ? DEFAULT_REORDER_WINDOW_MS : typeof r === 'number' ? r : 0;
  }

  private enqueue(delivery: Delivery): void {
    const window = this.reorderWindow();
    if (window === 0) {
      this.ready.push(delivery);
      return;
    }
    this.held.push(delivery);
    this.holdTimer ??= setTimeout(() => {
      this.holdTimer = undefined;
      this.releaseHeld();
    }, window);
  }

  private releaseHeld(): void {
    if (this.holdTimer) {
      clearTimeout(this.holdTimer);
      this.holdTimer = undefined;
    }
    if (this.held.length === 0) return;
    this.ready.push(...this.rng.shuffle(this.held.splice(0)));
    this.pump();
  }

  private pump(): void {
    const limit = Math.max(1, this.options.concurrency ?? 4);
    while (!this.closed && this.active < limit && this.ready.length > 0) {
      const delivery = this.ready.shift() as Delivery;
      this.active++;
      void this.attempt(delivery).finally(() => {
        this.active--;
        this.pump();
        this.notifyIdle();
      });
    }
    this.notifyIdle();
  }

  private settled(): boolean {
    return this.closed || (this.ready.length === 0 && this.held.length === 0 && this.active === 0 && this.waiting === 0);
  }

  private notifyIdle(force = false): void {
    if (!force && !this.settled()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private drawDelay(): number {
    const d = this.faults.delayMs;
    if (d === undefined) return 0;
    if (typeof d === 'number') return d;
    return d.min + Math.floor(this.rng.next() * (d.max - d.min + 1));
  }

  private async attempt(delivery: Delivery): Promise<void> {
    const delay = this.drawDelay();
    if (delay > 0) await this.sleep(delay);
    if (this.closed) return;
    if (this.expired(delivery)) {
      this.counters.expired++;
      return;
    }
    delivery.attempt++;
    this.counters.attempts++;
    const drop = this.faults.dropRate !== undefined && this.faults.dropRate > 0 && this.rng.chance(this.faults.dropRate);
    const outcome = await this.post(delivery, drop);
    if (this.closed) return;
    this.record(delivery, outcome);
    if (typeof outcome === 'number' && outcome >= 200 && outcome < 300) {
      this.counters.delivered++;
      return;
    }
    if (typeof outcome === 'number' && !isRetryableStatus(outcome)) {
      this.counters.rejected++;
      return;
    }
    if (drop) this.counters.dropped++;
    else if (typeof outcome === 'string') this.counters.failed++;
    this.retryLater(delivery);
  }

  private expired(delivery: Delivery): boolean {
    const retentionMs = (this.options.retentionSeconds ?? 72 * 3600) * 1000;
    return this.clock.nowMs() >= delivery.publishedMs + retentionMs;
  }

  private retryLater(delivery: Delivery): void {
    if (this.expired(delivery)) {
      this.counters.expired++;
      return;
    }
    const initial = this.options.retryInitialMs ?? 200;
    const max = this.options.retryMaxMs ?? 5000;
    const wait = Math.min(max, initial * 2 ** Math.min(30, delivery.attempt - 1));
    this.counters.retried++;
    this.waiting++;
    void this.sleep(wait).then(() => {
      this.waiting--;
      if (this.closed) return;
      this.ready.push(delivery);
      this.pump();
    });
  }

  private record(delivery: Delivery, outcome: number | string): void {
    this.log.push({
      eventId: delivery.event.id,
      eventType: delivery.event.eventType,
      subscriptionId: delivery.subscription.id,
      endpoint: delivery.subscription.webHookConfig.endpoint,
      attempt: delivery.attempt,
      outcome,
      at: this.clock.now().toISOString(),
    });
    if (this.log.length > LOG_LIMIT) this.log.splice(0, this.log.length - LOG_LIMIT);
  }

  /** One POST: the status, or the I/O error's text. `drop` destroys the connection before the request is written. */
  private post(delivery: Delivery, drop: boolean): Promise<number | string> {
    const url = new URL(delivery.subscription.webHookConfig.endpoint);
    const tls = this.options.tls;
    const headers = {
      'content-type': 'application/json',
      'content-length': String(delivery.body.length),
      'concur-correlationid': delivery.event.correlationId,
      'concur-signature': delivery.signature,
      'user-agent': 'concur-sandbox-ess',
    };
    const timeout = this.options.timeoutMs ?? 60_000;
    return new Promise((resolve) => {
      let settled = false;
      const done = (outcome: number | string): void => {
        if (settled) return;
        settled = true;
        this.inFlight.delete(req);
        resolve(outcome);
      };
      const onResponse = (res: IncomingMessage): void => {
        // Drain the body; the status alone decides.
        res.resume();
        res.once('end', () => done(res.statusCode ?? 0));
        res.once('error', (e: Error) => done(`I/O error: ${e.message}`));
      };
      const req =
        url.protocol === 'https:'
          ? httpsRequest(
              url,
              { method: 'POST', headers, agent: false, cert: tls?.cert, key: tls?.key, ca: tls?.ca as string | string[] | undefined },
              onResponse,
            )
          : httpRequest(url, { method: 'POST', headers, agent: false }, onResponse);
      this.inFlight.add(req);
      req.setTimeout(timeout, () => req.destroy(new Error(`no response within ${timeout} ms`)));
      req.once('error', (e: Error) => done(`I/O error: ${e.message}`));
      if (drop) {
        req.destroy(new Error('sandbox dropRate: connection destroyed before the request was sent'));
        return;
      }
      req.end(delivery.body);
    });
  }
}

/** Everything about the sandbox's events besides the sender's own options. */
export interface SandboxEventsOptions extends EventSenderOptions {
  /**
   * Publish approvals of mid-workflow steps (a manager approving and the report moving on, or
   * leaving A_PEND). Concur publishes those only for steps an admin configured for notifications;
   * submit, send back, recall and paid always publish. Default true.
   */
  readonly stepNotifications?: boolean;
}

/**
 * The sandbox's ESS side as tests and the admin API see it: the subscriptions, the sender, and the
 * one observer on the company that turns every report change into events (sandbox-event-facts.ts).
 */
export class SandboxEvents {
  readonly sender: EventSender;
  private stepNotificationsOn: boolean;
  private readonly unobserve: () => void;

  constructor(
    readonly subscriptions: EventSubscriptions,
    company: SandboxCompany,
    private readonly clock: SandboxClock,
    baseUrl: () => string,
    seed: number,
    options: SandboxEventsOptions = {},
  ) {
    this.sender = new EventSender(subscriptions, clock, seed, options);
    this.stepNotificationsOn = options.stepNotifications ?? true;
    this.unobserve = company.observe((change) => {
      const events = eventsFor(change, {
        companyId: company.companyId,
        directory: company.directory,
        baseUrl: baseUrl(),
        nowMs: this.clock.nowMs(),
        stepNotifications: this.stepNotificationsOn,
      });
      for (const event of events) this.sender.publish(event);
    });
  }

  get stepNotifications(): boolean {
    return this.stepNotificationsOn;
  }

  set stepNotifications(on: boolean) {
    this.stepNotificationsOn = on;
  }

  /** Resolves once every delivery so far is settled (delivered, rejected, expired or lost). */
  idle(): Promise<void> {
    return this.sender.idle();
  }

  counts(): EventCounters {
    return this.sender.counts();
  }

  resetCounts(): void {
    this.sender.resetCounts();
  }

  deliveries(): readonly DeliveryAttempt[] {
    return this.sender.deliveries();
  }

  setFaults(faults: EventFaultOptions): EventFaultOptions {
    return this.sender.setFaults(faults);
  }

  faults(): EventFaultOptions {
    return this.sender.currentFaults();
  }

  /** Loses every event published in the next `minutes` of sandbox time (until {@link resume} when omitted). */
  pause(minutes?: number): void {
    this.sender.pause(minutes);
  }

  resume(): void {
    this.sender.resume();
  }

  list(): WebhookSubscription[] {
    return this.subscriptions.list();
  }

  /**
   * A subscription made as if through `PUT /events/v4/subscriptions/webhook`, without an App token:
   * a shortcut for tests that are not about subscribing. Same validation (400 SandboxError).
   */
  subscribe(endpoint: string, options: { readonly id?: string; readonly filter?: string; readonly topic?: string } = {}): WebhookSubscription {
    const topic = options.topic ?? EXPENSE_TOPIC;
    return this.subscriptions.save({ id: options.id ?? 'sandbox.test', filter: options.filter ?? '.*', topic, webHookConfig: { endpoint } }, [topic]);
  }

  /** What `GET /_admin/events` answers. */
  status(): { counters: EventCounters; faults: EventFaultOptions; losing: boolean; stepNotifications: boolean; subscriptions: WebhookSubscription[] } {
    return {
      counters: this.counts(),
      faults: this.faults(),
      losing: this.sender.losing,
      stepNotifications: this.stepNotificationsOn,
      subscriptions: this.list(),
    };
  }

  close(): void {
    this.unobserve();
    this.sender.close();
  }
}
