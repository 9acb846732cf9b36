import { randomUUID } from 'node:crypto';

/**
 * Wire formats the sandbox shares across endpoints: Concur's zone-less .NET date strings, the
 * documented error bodies of each API family, and HTTP reason phrases.
 */

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * Rounds to SQL Server `datetime` precision (1/300 s), which is why Concur's samples end in
 * `.537`, `.57`, `.98` (v3-reports-list.json): the stored ms always end in 0, 3 or 7.
 */
export function sqlDatetimeMs(ms: number): number {
  return Math.round(Math.round(ms * 0.3) / 0.3);
}

/**
 * A v3 date-time as the samples print it: no zone suffix (the sandbox writes UTC; the real zone is
 * UNCONFIRMED, concur-api.md 1.4) and milliseconds with trailing zeros trimmed the way .NET prints
 * them, e.g. `2013-09-02T19:46:01.57`, and no fraction at all on a whole second.
 */
export function concurDateTime(ms: number): string {
  const d = new Date(ms);
  const base =
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  const millis = d.getUTCMilliseconds();
  if (millis === 0) return base;
  return `${base}.${pad(millis, 3).replace(/0+$/, '')}`;
}

/** `yyyy-MM-ddT00:00:00`, the form of UserDefinedDate and TransactionDate in the samples. */
export function concurMidnight(ms: number): string {
  return `${isoDate(ms)}T00:00:00`;
}

/** `yyyy-MM-dd` (v4 reportDate / submitDate). */
export function isoDate(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** Start of the UTC day containing `ms`. */
export function utcMidnight(ms: number): number {
  return Math.floor(ms / 86_400_000) * 86_400_000;
}

const DATE_PARAM = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?)?$/;

/**
 * Parses a v3 DateTime query value (`modifiedDateAfter` …). The doc gives `yyyy-MM-dd` and
 * `yyyy-MM-ddTHH:mm:ss.SSS`; the sandbox also takes no fraction or 1–7 fraction digits (what .NET
 * parses, and what a client echoing a LastModifiedDate back will send) and reads the value as UTC.
 * A zone suffix (`Z`, `+02:00`) is refused: the doc shows none and the zone Concur would apply is
 * UNCONFIRMED, so a client must not rely on one. Returns undefined when the value is not valid.
 */
export function parseConcurDateParam(value: string): number | undefined {
  const m = DATE_PARAM.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = ''] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, Number(frac.padEnd(3, '0').slice(0, 3)));
  if (new Date(ms).getUTCDate() !== day) return undefined; // 2024-02-30 and friends
  return ms;
}

/** `Server-Time` in v3 errors: `2019-03-12T07:56:32` (v3-error.json), whole seconds. */
export function serverTime(ms: number): string {
  return concurDateTime(Math.floor(ms / 1000) * 1000);
}

export const HTTP_REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  406: 'Not Acceptable',
  409: 'Conflict',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export const reason = (status: number): string => HTTP_REASONS[status] ?? 'Error';

/** v3 error body, shape of v3-error.json. */
export function v3Error(message: string, nowMs: number): { Error: { Message: string; 'Server-Time': string; Id: string } } {
  return { Error: { Message: message, 'Server-Time': serverTime(nowMs), Id: randomUUID().toUpperCase() } };
}

export interface V4ValidationError {
  readonly id: string;
  readonly message: string;
  readonly source: string;
}

/** Expense v4 `ErrorMessage` body (v4-error.json; required: timestamp, httpStatus, errorMessage, path). */
/**
 * An ESS management API error. Concur documents none; the service's swagger is a Spring
 * (springfox) one, so the sandbox answers Spring Boot's default error body (UNCONFIRMED).
 */
export function essError(status: number, message: string, path: string, nowMs: number): Record<string, unknown> {
  return { timestamp: new Date(nowMs).toISOString(), status, error: reason(status), message, path };
}

export function v4Error(
  status: number,
  message: string,
  path: string,
  nowMs: number,
  validationErrors?: readonly V4ValidationError[],
): Record<string, unknown> {
  return {
    timestamp: new Date(nowMs).toISOString(),
    httpStatus: `${status} - ${reason(status)}`,
    errorMessage: message,
    errorId: randomUUID(),
    ...(validationErrors ? { validationErrors } : {}),
    path,
  };
}

/** SCIM error body (Identity v4 swagger `ErrorResponse`). */
export function scimError(status: number, detail: string, scimType?: string): Record<string, unknown> {
  return {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
    ...(scimType ? { scimType } : {}),
    detail,
    status: String(status),
  };
}

/** The only documented 429 body (v4-rate-limit-429.json), with its `+00:00` timestamp. */
export function rateLimitBody(path: string, nowMs: number): Record<string, unknown> {
  return {
    timestamp: new Date(nowMs).toISOString().replace('Z', '+00:00'),
    httpStatus: '429 - Too Many Requests',
    error: { id: 'security.rate.limit.reached', message: 'Too many requests' },
    path,
  };
}

/** OAuth2 4xx body, shape of oauth-token-error.json: `{error, error_description, code}`. */
export function oauthError(code: number, error: string, description: string): Record<string, unknown> {
  return { error, error_description: description, code };
}

/** Money in integer cents → the JSON number Concur prints (`307.01`, `1900`). */
export const fromCents = (cents: number): number => Math.round(cents) / 100;
