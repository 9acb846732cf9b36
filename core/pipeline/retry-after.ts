/**
 * The longest wait a channel's `Retry-After` is taken at: one hour. A longer one (a misconfigured
 * receiver, an HTTP date years ahead) would park a delivery for as long as the header says; the
 * outbox retries after an hour instead and meets the channel's answer again.
 */
export const MAX_RETRY_AFTER_MS = 60 * 60_000;

/** delay-seconds: one or more digits, nothing else (RFC 9110 §10.2.3). */
const DELAY_SECONDS = /^\d+$/;
/**
 * The three HTTP-date forms a recipient must accept (RFC 9110 §5.6.7): IMF-fixdate
 * `Sun, 06 Nov 1994 08:49:37 GMT`, obsolete RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` and asctime
 * `Sun Nov  6 08:49:37 1994`. All start with a day name and carry a time of day; checking that
 * keeps `Date.parse`'s leniency (it reads `1.5` or `-1` as a date in 2001) away from the header.
 */
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? .*\b\d{2}:\d{2}:\d{2}\b/;

export interface RetryAfterOptions {
  /** The time an HTTP date is measured from; default now. */
  readonly now?: Date;
  /** The longest wait returned; default {@link MAX_RETRY_AFTER_MS}. `Infinity` caps nothing. */
  readonly maxMs?: number;
}

/**
 * A `Retry-After` header (RFC 9110 §10.2.3) as milliseconds to wait: delay-seconds or an HTTP date
 * (a date already past waits 0), at most `maxMs`. `undefined` when the header is absent or is
 * neither form, so the caller falls back to its own backoff. Every notifier reads the header
 * through here, so a channel's 429 means the same wait whichever adapter meets it.
 */
export function retryAfterMs(header: string | null | undefined, options: RetryAfterOptions = {}): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  const maxMs = options.maxMs ?? MAX_RETRY_AFTER_MS;
  if (DELAY_SECONDS.test(value)) return Math.min(Number(value) * 1000, maxMs);
  if (!HTTP_DATE.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - (options.now ?? new Date()).getTime()), maxMs);
}
