import type { SourceStateStore } from '../contracts/approval-queue.js';
import type { SourceEventsPolicy } from '../contracts/approval-source.js';

/** Per source: the last mode a runner reported ({@link EventsStatus}), for processes that run no source (`diagnostics`). */
export const EVENTS_STATUS_STATE = 'core.events-status';

/** Per source: when the last push arrived, pushes refused lately, and when the safety poll last found what pushes missed. */
export const EVENTS_STATE = 'core.events';

/**
 * After the safety poll finds something the pushes missed, the source polls at its normal interval
 * for this many events-poll intervals (1 hour at Concur's default 900 s) before it trusts them again.
 */
export const DRIFT_HOLD_INTERVALS = 4;

/** How the runner polls a source with push events: at the long interval while they are healthy, else at the normal one. */
export interface EventsStatus {
  readonly mode: 'events' | 'polling';
  /** Why: "healthy", or what made the source fall back (no push yet, silence, refusals, drift). */
  readonly reason: string;
  readonly lastEventAt: string | undefined;
  /** Pushes refused as not authentic within the policy's silence window. */
  readonly refused: number;
  readonly lastDriftAt: string | undefined;
}

interface Stored {
  lastEventAt?: string | undefined;
  refused?: string[] | undefined;
  lastDriftAt?: string | undefined;
}

/**
 * What the runner knows of a source's push events. Pushes and refusals are noted in memory (a
 * webhook must answer fast and a flood of forgeries must cost no writes) and flushed to the queue's
 * state at most once per {@link flush} call, merged with what other hosts wrote, so the host that
 * polls sees the pushes every host received.
 */
export class EventsHealth {
  private noted: Stored = {};
  private dirty = false;
  private stored: Stored = {};

  constructor(
    private readonly source: string,
    private readonly policy: SourceEventsPolicy,
    private readonly state: SourceStateStore,
  ) {}

  event(now: Date): void {
    this.noted.lastEventAt = later(this.noted.lastEventAt, now.toISOString());
    this.dirty = true;
  }

  refused(now: Date): void {
    // One more than the threshold is all the status needs to know.
    this.noted.refused = [...(this.noted.refused ?? []), now.toISOString()].slice(-(this.policy.maxRefused + 1));
    this.dirty = true;
  }

  drift(now: Date): void {
    this.noted.lastDriftAt = now.toISOString();
    this.dirty = true;
  }

  /** Reads what every host wrote and adds this host's notes; writes only when there is something new. */
  async flush(now: Date): Promise<void> {
    const raw = await this.state.getState(EVENTS_STATE, this.source);
    const stored = parse(raw);
    if (this.dirty) {
      const cut = new Date(now.getTime() - this.policy.silenceMs).toISOString();
      const merged: Stored = {
        lastEventAt: later(stored.lastEventAt, this.noted.lastEventAt),
        refused: [...new Set([...(stored.refused ?? []), ...(this.noted.refused ?? [])])]
          .filter((at) => at >= cut)
          .sort()
          .slice(-(this.policy.maxRefused + 1)),
        lastDriftAt: later(stored.lastDriftAt, this.noted.lastDriftAt),
      };
      this.noted = {};
      this.dirty = false;
      await this.state.setState(EVENTS_STATE, this.source, JSON.stringify(merged));
      this.stored = merged;
    } else {
      this.stored = stored;
    }
  }

  /** The mode from the last flush plus this host's unflushed notes. */
  status(now: Date): EventsStatus {
    const lastEventAt = later(this.stored.lastEventAt, this.noted.lastEventAt);
    const lastDriftAt = later(this.stored.lastDriftAt, this.noted.lastDriftAt);
    const cut = now.getTime() - this.policy.silenceMs;
    const refused = new Set([...(this.stored.refused ?? []), ...(this.noted.refused ?? [])].filter((at) => Date.parse(at) >= cut)).size;
    const base = { lastEventAt, refused, lastDriftAt };
    const minutes = (ms: number) => `${Math.round(ms / 60_000)} min`;
    if (refused >= this.policy.maxRefused) {
      return { ...base, mode: 'polling', reason: `${refused} pushes refused as not authentic in the last ${minutes(this.policy.silenceMs)}` };
    }
    const holdMs = DRIFT_HOLD_INTERVALS * this.policy.pollIntervalMs;
    if (lastDriftAt && now.getTime() - Date.parse(lastDriftAt) < holdMs) {
      return {
        ...base,
        mode: 'polling',
        reason: `the safety poll found changes no push announced at ${lastDriftAt}; trusting pushes again ${minutes(holdMs)} after`,
      };
    }
    if (!lastEventAt) return { ...base, mode: 'polling', reason: 'no push received yet' };
    if (Date.parse(lastEventAt) < cut) return { ...base, mode: 'polling', reason: `no push for ${minutes(now.getTime() - Date.parse(lastEventAt))}` };
    return { ...base, mode: 'events', reason: 'healthy' };
  }
}

function later(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

function parse(raw: string | undefined): Stored {
  if (!raw) return {};
  try {
    const value = JSON.parse(raw) as Stored;
    return typeof value === 'object' && value !== null ? value : {};
  } catch {
    return {};
  }
}
