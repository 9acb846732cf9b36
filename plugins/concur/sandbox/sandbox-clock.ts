import type { Clock } from '../../../core/index.js';

export interface SandboxClockOptions {
  /** Sandbox time at start-up: ISO-8601 (UTC unless it says otherwise), epoch ms or a Date. */
  readonly start: string | number | Date;
  /** When true (the default) sandbox time moves with real time; when false it moves only when told. */
  readonly followRealTime?: boolean;
  /** Monotonic real-time source in ms; injectable for tests of the clock itself. */
  readonly realNow?: () => number;
}

/**
 * The sandbox's notion of now: `start + elapsed real time + manual offset`. Every date the sandbox
 * writes (LastModifiedDate, token expiry, Server-Time) comes from here, so `advance()` can expire
 * tokens or age reports without waiting. Implements core's {@link Clock} so a host can share it.
 */
export class SandboxClock implements Clock {
  private readonly followRealTime: boolean;
  private readonly realNow: () => number;
  private anchorMs: number;
  private anchorReal: number;

  constructor(options: SandboxClockOptions) {
    this.followRealTime = options.followRealTime ?? true;
    this.realNow = options.realNow ?? (() => performance.now());
    this.anchorMs = toEpochMs(options.start);
    this.anchorReal = this.realNow();
  }

  nowMs(): number {
    const elapsed = this.followRealTime ? this.realNow() - this.anchorReal : 0;
    return Math.floor(this.anchorMs + elapsed);
  }

  now(): Date {
    return new Date(this.nowMs());
  }

  /** Jumps forward; negative values are refused because nothing in Concur runs backwards. */
  advance(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new RangeError(`advanceClock needs a finite number of seconds >= 0, got ${seconds}`);
    }
    this.anchorMs += seconds * 1000;
  }

  /** Sets the time outright (it may go backwards: the caller asked for it). */
  set(time: string | number | Date): void {
    this.anchorMs = toEpochMs(time);
    this.anchorReal = this.realNow();
  }
}

/** Parses a start/set time; ISO strings without a zone are read as UTC, as Concur's dates are here. */
export function toEpochMs(time: string | number | Date): number {
  let ms: number;
  if (time instanceof Date) ms = time.getTime();
  else if (typeof time === 'number') ms = time;
  else {
    const hasZone = /(Z|[+-]\d\d:?\d\d)$/i.test(time) || !time.includes('T');
    ms = Date.parse(hasZone ? time : `${time}Z`);
  }
  if (!Number.isFinite(ms)) throw new RangeError(`not a valid time: ${String(time)}`);
  return ms;
}
