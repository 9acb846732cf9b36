/**
 * Concur v3 date-times carry no time zone and a variable number of fraction digits:
 * `2013-09-02T19:18:35.537`, `2013-09-02T19:46:01.57`, `2016-04-04T00:00:00`, or a bare date `2016-04-04`
 * (v3.reports.markdown examples; docs/concur-api.md section 1.4).
 *
 * The zone they are in is UNCONFIRMED (docs/concur-api.md section 11). The plugin reads them as UTC; a fixed offset can
 * be given instead. The raw string is what the polling cursor keeps, so comparisons work on the string's own
 * digits (sub-millisecond ones included) rather than on a lossy `Date`.
 */

const CONCUR_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** A parsed Concur date-time: the instant to the millisecond plus the digits beyond it, in nanoseconds. */
interface ConcurInstant {
  readonly epochMs: number;
  readonly subMsNanos: number;
}

export interface ConcurDateOptions {
  /**
   * Offset from UTC, in minutes, of the wall clock Concur's zone-less values are in (e.g. `-300` for UTC-5).
   * Default 0: the values are read as UTC, which is an assumption (the zone is UNCONFIRMED).
   * Ignored for values that carry their own zone (`Z`, `+02:00`), as v4 and event payloads do.
   */
  readonly assumeOffsetMinutes?: number;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function parseInstant(raw: string, options: ConcurDateOptions = {}): ConcurInstant {
  const m = CONCUR_DATE_TIME.exec(raw);
  if (m === null) {
    throw new Error(`not a Concur date-time: "${raw}" (expected yyyy-MM-dd or yyyy-MM-ddTHH:mm[:ss[.fff]])`);
  }
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  // Date.UTC maps years 0-99 to 1900-1999; Concur never sends those, so refuse rather than shift them.
  if (year < 100 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) {
    throw new Error(`not a Concur date-time: "${raw}" (a field is out of range)`);
  }
  const digits = fraction.padEnd(9, '0');
  const ms = Number(digits.slice(0, 3));
  const subMsNanos = Number(digits.slice(3));

  let offsetMinutes: number;
  if (zone === undefined) {
    offsetMinutes = options.assumeOffsetMinutes ?? 0;
    if (!Number.isInteger(offsetMinutes) || Math.abs(offsetMinutes) > 18 * 60) {
      throw new Error(`assumeOffsetMinutes must be a whole number of minutes within ±18 h, got ${offsetMinutes}`);
    }
  } else if (zone === 'Z') {
    offsetMinutes = 0;
  } else {
    const sign = zone.startsWith('-') ? -1 : 1;
    const hhmm = zone.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(2)));
  }

  const wallClockMs = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  return { epochMs: wallClockMs - offsetMinutes * 60_000, subMsNanos };
}

/** True when `raw` has the shape of a Concur date or date-time (it may carry a zone). */
export function isConcurDate(raw: string): boolean {
  try {
    parseInstant(raw);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses a Concur date-time. A value with no zone is read as UTC (or at `assumeOffsetMinutes`); digits beyond
 * the millisecond are dropped from the `Date` (use {@link compareConcurDates} to compare raw values exactly).
 * @throws Error naming the value when it is not a Concur date or date-time.
 */
export function parseConcurDate(raw: string, options?: ConcurDateOptions): Date {
  return new Date(parseInstant(raw, options).epochMs);
}

/** ISO-8601 UTC (`2013-09-02T19:18:35.537Z`) for a Concur date-time, read as in {@link parseConcurDate}. */
export function concurDateToIso(raw: string, options?: ConcurDateOptions): string {
  return parseConcurDate(raw, options).toISOString();
}

/**
 * Orders two Concur date-times by the instant they denote, to the nanosecond: `…01.57` equals `…01.570`, and
 * `…01.9801` is after `…01.98`. Negative when `a` is earlier, 0 when equal, positive when later.
 */
export function compareConcurDates(a: string, b: string, options?: ConcurDateOptions): number {
  const x = parseInstant(a, options);
  const y = parseInstant(b, options);
  return Math.sign(x.epochMs - y.epochMs || x.subMsNanos - y.subMsNanos);
}

/**
 * The latest of the given Concur date-times, returned as its raw string so a cursor stays in Concur's own
 * format. `null`/`undefined` entries are skipped; on a tie the earlier argument wins.
 * @returns `undefined` when no value was given.
 */
export function maxConcurDate(...values: readonly (string | null | undefined)[]): string | undefined {
  let max: string | undefined;
  for (const value of values) {
    if (value === null || value === undefined) continue;
    if (max === undefined || compareConcurDates(value, max) > 0) max = value;
    else parseInstant(value); // still reject a malformed value that happens to lose the comparison
  }
  return max;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * The `modifiedDateAfter` value for the next poll: the cursor `raw` minus `overlapSeconds`, formatted as
 * `yyyy-MM-ddTHH:mm:ss.SSS` with no zone (the format v3.reports.markdown documents as accepted).
 *
 * The shift is done on Concur's own wall clock, so the unknown zone cancels out: whatever zone `raw` is in,
 * the result is in the same one. A `raw` that carries a zone is converted to UTC first. Digits beyond the
 * millisecond are cut off, which moves the bound earlier, never later; with the overlap, re-reading a few
 * reports is expected and harmless, skipping one is not.
 */
export function formatModifiedDateAfter(raw: string, overlapSeconds: number): string {
  if (!Number.isFinite(overlapSeconds) || overlapSeconds < 0) {
    throw new Error(`overlapSeconds must be a finite number >= 0, got ${overlapSeconds}`);
  }
  const { epochMs } = parseInstant(raw);
  const d = new Date(epochMs - Math.round(overlapSeconds * 1000));
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}` +
    `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}.${pad(d.getUTCMilliseconds(), 3)}`
  );
}
