import type { components } from '../generated/oauth2.js';
import { JsonObject, JsonValue } from './json-reader.js';

/** The token endpoint's bodies, as generated from openapi/concur/oauth2.yaml. */
export type TokenResponse = components['schemas']['TokenResponse'];
export type TokenErrorBody = components['schemas']['TokenError'];

const PAYLOAD = 'Concur token response';

/** A validated token response. Holds secrets: never log it whole. */
export interface ConcurToken {
  readonly accessToken: string;
  /** Absent for client_credentials. Concur may hand back a new one on every refresh: always store the latest. */
  readonly refreshToken?: string | undefined;
  readonly expiresInSeconds: number;
  /** Origin of the principal's data center (e.g. `https://us.api.concursolutions.com`); all later calls go there. */
  readonly geolocation: string;
  readonly refreshExpiresAt?: Date | undefined;
  readonly scope?: string | undefined;
  readonly idToken?: string | undefined;
}

export interface ParseTokenOptions {
  /** Clock for a relative `refresh_expires_in`; default `Date.now()`. */
  readonly nowMs?: number;
  /** Origins configured for this company (`authBaseUrl`, `baseUrl`), trusted as a geolocation besides Concur's own hosts. */
  readonly configuredOrigins?: readonly string[];
}

/**
 * Concur's API hosts, as its "Base URIs" page lists them now and did before (see docs/concur-api.md):
 * every `*.api.concursolutions.com` data centre (us2, eu2, apj1, usg, glz, us-impl, emea-impl, their
 * `www-` twins, and the older us, emea, eu), the legacy hosts, and the two China hosts.
 */
const CONCUR_API_DOMAIN = '.api.concursolutions.com';
const CONCUR_HOSTS: ReadonlySet<string> = new Set([
  'www.concursolutions.com',
  'eu1.concursolutions.com',
  'implementation.concursolutions.com',
  'eu1imp.concursolutions.com',
  'cn.api.concurcdc.cn',
  'cn.api.cnqr-cn.com',
]);
const LOOPBACK: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** A geolocation this client will not send credentials to. Names the host, never a token. */
export class UntrustedGeolocationError extends Error {
  override readonly name = 'UntrustedGeolocationError';
}

/**
 * The origin of `value` if credentials may be sent there: https on one of Concur's API hosts, or
 * the origin of a configured `authBaseUrl`/`baseUrl`, or loopback (http too) when a configured
 * origin is itself on loopback (the sandbox). A token response or error body that names anything
 * else would send the client secret and refresh token to a stranger.
 * @throws UntrustedGeolocationError naming the host and why it is refused.
 */
export function trustedGeolocation(value: string, configuredOrigins: readonly string[] = [], what = 'geolocation'): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UntrustedGeolocationError(`Concur ${what} ${JSON.stringify(value.slice(0, 100))} is not a URL; refused`);
  }
  const configured = configuredOrigins.flatMap((o) => {
    try {
      return [new URL(o)];
    } catch {
      return [];
    }
  });
  if (configured.some((c) => c.origin === url.origin)) return url.origin;
  if (LOOPBACK.has(url.hostname) && (url.protocol === 'http:' || url.protocol === 'https:') && configured.some((c) => LOOPBACK.has(c.hostname)))
    return url.origin;
  const host = url.hostname.toLowerCase();
  const concur = host.endsWith(CONCUR_API_DOMAIN) || CONCUR_HOSTS.has(host);
  if (!concur) {
    throw new UntrustedGeolocationError(
      `Concur ${what} names host ${url.host}, which is not a Concur API host (*${CONCUR_API_DOMAIN} or another documented data centre) nor the configured authBaseUrl/baseUrl; refused, nothing is sent there`,
    );
  }
  if (url.protocol !== 'https:')
    throw new UntrustedGeolocationError(`Concur ${what} names ${url.protocol}//${url.host}, which is not https; refused, nothing is sent there`);
  if (url.username || url.password || (url.port !== '' && url.port !== '443')) {
    throw new UntrustedGeolocationError(`Concur ${what} names host ${url.host} with credentials or a port; refused`);
  }
  return url.origin;
}

/** Seconds given as 3600 or "3600" (the docs use both). */
function seconds(v: JsonValue): number {
  const raw = v.value;
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(n) || n < 0) {
    return v.fail(raw === undefined ? 'is missing (expected seconds)' : 'is not a number of seconds');
  }
  return n;
}

function nonEmptyString(o: JsonObject, key: string): string {
  const s = o.string(key);
  if (s.trim() === '') o.fail(key, 'is empty');
  return s;
}

/** Epoch seconds before 2001-09-09 cannot be an expiry date: such a value is read as a lifetime from now. */
const EPOCH_SECONDS_FLOOR = 1_000_000_000;

/**
 * Validates a `POST /oauth2/v0/token` response.
 * https://developer.concur.com/api-reference/authentication/apidoc.html
 *
 * `expires_in` may be `"3600"` or `3600`. `refresh_expires_in`, where sent, is epoch seconds in the guides that
 * show it (tmc-overview.markdown); a value too small to be one is taken as seconds from now. `geolocation` is
 * returned as a URL origin, lower-cased (the TMC sample has `https://us.api.Concursolutions.com`).
 *
 * @throws ConcurPayloadError naming the offending field, never a token's value; or an Error carrying Concur's
 *   `error`/`code`/`error_description` when the body is an error body.
 */
export function parseTokenResponse(json: unknown, options: ParseTokenOptions = {}): ConcurToken {
  const o = JsonObject.root(json, PAYLOAD);
  if (!o.has('access_token')) {
    const error = parseTokenError(json);
    if (error !== undefined) {
      throw new Error(
        `Concur token endpoint returned an error instead of a token: ${error.error ?? 'unknown error'}` +
          `${error.code === undefined ? '' : ` (code ${error.code})`}` +
          `${error.error_description === undefined ? '' : `: ${error.error_description}`}`,
      );
    }
  }
  const accessToken = nonEmptyString(o, 'access_token');
  const refreshToken = o.has('refresh_token') ? nonEmptyString(o, 'refresh_token') : undefined;
  const expiresInSeconds = seconds(o.get('expires_in'));

  const geo = o.string('geolocation');
  if (!URL.canParse(geo)) return o.fail('geolocation', 'is not an https URL (http only on loopback)');
  // Every later call, client secret and refresh token included, goes here: only Concur or what was configured.
  const geolocation = trustedGeolocation(geo, options.configuredOrigins ?? []);

  let refreshExpiresAt: Date | undefined;
  if (o.has('refresh_expires_in')) {
    const value = seconds(o.get('refresh_expires_in'));
    const nowMs = options.nowMs ?? Date.now();
    refreshExpiresAt = new Date(value >= EPOCH_SECONDS_FLOOR ? value * 1000 : nowMs + value * 1000);
  }

  return {
    accessToken,
    refreshToken,
    expiresInSeconds,
    geolocation,
    refreshExpiresAt,
    scope: o.optionalString('scope'),
    idToken: o.has('id_token') ? o.string('id_token') : undefined,
  };
}

/**
 * Reads a token error body (`{code, error, error_description, geolocation?}`), or `undefined` when `json` is
 * not one. Codes in the docs: 5 bad credentials, 16 "user lives elsewhere" (retry at `geolocation`),
 * 108 bad or expired refresh token, 134 company under maintenance.
 */
export function parseTokenError(json: unknown): TokenErrorBody | undefined {
  let o: JsonObject;
  try {
    o = JsonObject.root(json, 'Concur token error');
  } catch {
    return undefined;
  }
  const pick = (key: string): string | undefined => {
    const v = o.get(key).value;
    return typeof v === 'string' ? v : undefined;
  };
  const codeValue = o.get('code').value;
  const code =
    typeof codeValue === 'number' && Number.isInteger(codeValue)
      ? codeValue
      : typeof codeValue === 'string' && /^\d+$/.test(codeValue)
        ? Number(codeValue)
        : undefined;
  const body: TokenErrorBody = {
    code,
    error: pick('error'),
    error_description: pick('error_description'),
    geolocation: pick('geolocation'),
  };
  return body.code === undefined && body.error === undefined ? undefined : body;
}
