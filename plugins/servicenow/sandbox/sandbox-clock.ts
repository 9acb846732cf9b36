/**
 * The sandbox instance's notion of now: `start + elapsed real time + manual offset`. ServiceNow keeps
 * date/time fields to the second, so `glideNow()` is what every sys_updated_on the sandbox writes comes
 * from; `freeze` keeps many updates in one second for as long as a test needs.
 */
export class SandboxClock {
  private anchorMs: number;
  private anchorReal: number;
  private frozen: boolean;

  constructor(start: string | number | Date, followRealTime = true) {
    this.anchorMs = toEpochMs(start);
    this.anchorReal = performance.now();
    this.frozen = !followRealTime;
  }

  nowMs(): number {
    const elapsed = this.frozen ? 0 : performance.now() - this.anchorReal;
    return Math.floor(this.anchorMs + elapsed);
  }

  /** Now as a ServiceNow date/time value: UTC, `YYYY-MM-DD HH:mm:ss`. */
  glideNow(): string {
    return glideDateTime(this.nowMs());
  }

  /** Jumps forward by `seconds` (>= 0). */
  advance(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`advance needs a finite number of seconds >= 0, got ${seconds}`);
    this.anchorMs += seconds * 1000;
  }

  /** Sets the time outright. */
  set(time: string | number | Date): void {
    this.anchorMs = toEpochMs(time);
    this.anchorReal = performance.now();
  }

  /** Stops (true) or restarts (false) the clock following real time, keeping the current time. */
  freeze(frozen: boolean): void {
    this.anchorMs = this.nowMs();
    this.anchorReal = performance.now();
    this.frozen = frozen;
  }
}

/** `YYYY-MM-DD HH:mm:ss` in UTC, the stored (and `sysparm_display_value=false`) form of a date/time field. */
export function glideDateTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/** Parses `YYYY-MM-DD HH:mm:ss` (UTC) or `YYYY-MM-DD`; NaN when it is neither. */
export function parseGlideDateTime(value: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2}))?$/.exec(value);
  if (!m) return Number.NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0));
}

/** ISO-8601 (UTC unless it says otherwise), a glide date/time, epoch ms or a Date. */
export function toEpochMs(time: string | number | Date): number {
  let ms: number;
  if (time instanceof Date) ms = time.getTime();
  else if (typeof time === 'number') ms = time;
  else {
    ms = parseGlideDateTime(time);
    if (Number.isNaN(ms)) ms = Date.parse(/(Z|[+-]\d\d:?\d\d)$/i.test(time) ? time : `${time}Z`);
  }
  if (!Number.isFinite(ms)) throw new RangeError(`not a valid time: ${String(time)}`);
  return ms;
}
