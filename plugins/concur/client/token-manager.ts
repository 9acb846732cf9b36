import { createHash } from 'node:crypto';
import createClient from 'openapi-fetch';
import { registerSecret, type Clock, type CredentialStore, type Logger } from '../../../core/index.js';
import type { paths } from '../generated/oauth2.js';
import { parseTokenError, parseTokenResponse, trustedGeolocation, type ConcurToken } from '../mappers/token-mapper.js';
import type { FetchLike } from './resilient-fetch.js';

export interface ConcurAuthConfig {
  readonly clientId: string;
  readonly clientSecret: string;
  /** The company refresh token the operator was given (rotates: the latest is kept in the store). */
  readonly refreshToken?: string | undefined;
  /** Company request token (24 h) for the `credtype=authtoken` grant, with `companyId` as user name. */
  readonly requestToken?: string | undefined;
  readonly companyId?: string | undefined;
  /** Where tokens are first requested when no geolocation is known yet. */
  readonly authBaseUrl: string;
  /** When set, every call (token calls included) goes here instead of the token's geolocation. */
  readonly baseUrl?: string | undefined;
}

/**
 * What the credential store keeps for one company (encrypted, shared by every process on the queue):
 * the latest refresh token and geolocation, which configured token they descend from, and the
 * latest access token with its expiry, so a process that finds a valid one uses it instead of
 * refreshing again.
 */
interface StoredAuth {
  refreshToken?: string;
  geolocation?: string;
  seed?: string;
  accessToken?: string;
  /** Epoch ms. */
  accessExpiresAt?: number;
}

/** The credential entry's key, in the source instance's namespace (`source:<id>`); older versions kept it there in plain text. */
const STATE_KEY = 'oauth';
/** Refresh this long before the access token expires, so a call never starts with a dying token. */
const EXPIRY_SKEW_MS = 60_000;

export class ConcurAuthError extends Error {
  override readonly name = 'ConcurAuthError';
  constructor(
    message: string,
    /** Concur's error code (`108`: bad or expired refresh token), when it sent one. */
    readonly code?: string,
    /** The refresh token Concur refused, to tell whether the store has a newer one. Never logged. */
    readonly refused?: string,
  ) {
    super(message);
  }
}

/** Concur's code for a refresh token it no longer accepts (docs/concur-api.md, "Response codes"). */
const DEAD_REFRESH_TOKEN = '108';

const seedOf = (token: string | undefined) => (token ? createHash('sha256').update(token).digest('hex').slice(0, 16) : undefined);

type Grant = 'refresh' | 'request';

/**
 * Company-level OAuth2 for Concur (docs/concur-api.md): refresh-token grant, or the company request
 * token with `credtype=authtoken`.
 *
 * Concur rotates the refresh token on every refresh and refuses the old one (code 108), so every
 * process on the queue (other hosts, CLI commands) must share one chain of tokens. The credential
 * store is the only truth: a refresh runs under the store's cross-process lock, re-reads the stored
 * token inside it, uses an access token another process just obtained if it is still valid, and
 * otherwise refreshes and stores the successor (encrypted) before the lock is released. A 108 makes
 * it look at the store once more before giving up. Every geolocation (token responses, code-16
 * bodies, the stored one) must be a Concur API host or a configured origin. Tokens are registered
 * with the log scrubber.
 */
export class ConcurTokenManager {
  private access: { token: string; expiresAt: number } | undefined;
  /** The geolocation of the last token this process used or stored. */
  private geolocation: string | undefined;
  /** An access token the API refused (401): not taken from the store again. */
  private refusedAccess: string | undefined;
  private inflight: Promise<string> | undefined;
  private readonly client;
  private readonly configuredOrigins: string[];

  constructor(
    private readonly config: ConcurAuthConfig,
    private readonly credentials: CredentialStore,
    /** The credential namespace of this source instance (`source:<instanceId>`). */
    private readonly namespace: string,
    fetch: FetchLike,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    registerSecret(config.clientSecret);
    registerSecret(config.refreshToken);
    registerSecret(config.requestToken);
    this.client = createClient<paths>({ fetch, headers: { Accept: 'application/json' } });
    this.configuredOrigins = [config.authBaseUrl, config.baseUrl].filter((u): u is string => u !== undefined);
  }

  /** The origin API calls go to: the configured base URL, else the latest token's geolocation. */
  async apiBase(): Promise<string> {
    if (this.config.baseUrl) return this.config.baseUrl;
    await this.accessToken();
    return this.geolocation ?? this.config.authBaseUrl;
  }

  /** A valid access token, refreshed when missing or about to expire; concurrent callers share one refresh. */
  accessToken(): Promise<string> {
    if (this.access && this.fresh(this.access.expiresAt)) return Promise.resolve(this.access.token);
    this.inflight ??= this.obtain().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Drops a token the API refused (401), so the next call refreshes once. */
  invalidate(token: string): void {
    this.refusedAccess = token;
    if (this.access?.token === token) this.access = undefined;
  }

  private fresh(expiresAt: number | undefined): boolean {
    return expiresAt !== undefined && expiresAt - EXPIRY_SKEW_MS > this.clock.now().getTime();
  }

  /**
   * The stored state as this configuration may use it: a token the operator configured after the
   * stored one was issued wins (they re-authorised), and a geolocation that is not trusted (stored
   * by an older version) is dropped.
   */
  private usable(raw: string | undefined): StoredAuth {
    let parsed: StoredAuth = {};
    if (raw) {
      try {
        parsed = JSON.parse(raw) as StoredAuth;
      } catch {
        this.logger.warn('stored Concur credentials are not readable JSON; starting from the configured token');
      }
    }
    const stored: StoredAuth = parsed.seed === seedOf(this.config.refreshToken) ? { ...parsed } : {};
    if (stored.geolocation !== undefined) {
      try {
        stored.geolocation = trustedGeolocation(stored.geolocation, this.configuredOrigins, 'stored geolocation');
      } catch (error) {
        this.logger.warn({ err: (error as Error).message }, 'ignoring the stored Concur geolocation');
        delete stored.geolocation;
      }
    }
    registerSecret(stored.refreshToken);
    registerSecret(stored.accessToken);
    return stored;
  }

  /** The stored access token, if it is still valid and not one the API refused. */
  private validAccess(stored: StoredAuth): { token: string; expiresAt: number } | undefined {
    if (!stored.accessToken || stored.accessToken === this.refusedAccess || !this.fresh(stored.accessExpiresAt)) return undefined;
    return { token: stored.accessToken, expiresAt: stored.accessExpiresAt! };
  }

  private use(stored: StoredAuth, access: { token: string; expiresAt: number }): string {
    this.access = access;
    this.geolocation = stored.geolocation;
    return access.token;
  }

  private async obtain(): Promise<string> {
    // Without the lock first: another process may have just refreshed.
    const seen = this.usable(await this.credentials.get(this.namespace, STATE_KEY));
    const valid = this.validAccess(seen);
    if (valid) return this.use(seen, valid);
    const hasRefresh = (seen.refreshToken ?? this.config.refreshToken) !== undefined;
    const canRequest = this.config.requestToken !== undefined && this.config.companyId !== undefined;
    if (!hasRefresh && !canRequest) throw new ConcurAuthError('no refresh token or company request token is configured');
    if (!hasRefresh) return this.locked('request');
    let dead: ConcurAuthError;
    try {
      return await this.locked('refresh');
    } catch (error) {
      if (!(error instanceof ConcurAuthError && error.code === DEAD_REFRESH_TOKEN)) throw error;
      dead = error;
    }
    // A process that does not take the lock (an older version) may have rotated it meanwhile: look once more.
    const again = this.usable(await this.credentials.get(this.namespace, STATE_KEY));
    if ((again.refreshToken ?? this.config.refreshToken) !== dead.refused || this.validAccess(again)) {
      try {
        return await this.locked('refresh');
      } catch (error) {
        if (!(error instanceof ConcurAuthError && error.code === DEAD_REFRESH_TOKEN)) throw error;
        dead = error;
      }
    }
    if (canRequest) {
      this.logger.warn({ code: DEAD_REFRESH_TOKEN }, 'Concur refused the refresh token; recovering with the company request token');
      return this.locked('request');
    }
    // Concur rotates refresh tokens; a host killed after Concur issued a new one but before it was
    // stored keeps only the old, now dead, one. Only an operator can mint a new one.
    this.logger.error({ code: DEAD_REFRESH_TOKEN }, 'Concur refused the stored refresh token and no company request token is configured');
    throw new ConcurAuthError(
      `${dead.message}. The stored refresh token is no longer valid (looked again after the refusal: no process holds a newer one): ` +
        'configure a new refreshToken, or a requestToken (with companyId) so the host can recover by itself',
      DEAD_REFRESH_TOKEN,
    );
  }

  /**
   * Under the credential lock: re-reads the store, uses a valid access token found there, else
   * obtains one with `grant` and stores it with the refresh token's successor before the lock is
   * released (if we crashed after Concur rotated the token, the old one would already be dead).
   */
  private locked(grant: Grant): Promise<string> {
    return this.credentials.rotate(this.namespace, STATE_KEY, async (raw) => {
      const stored = this.usable(raw);
      const valid = this.validAccess(stored);
      if (valid) return { result: this.use(stored, valid) };
      const refreshToken = stored.refreshToken ?? this.config.refreshToken;
      let token: ConcurToken;
      if (grant === 'refresh' && refreshToken) {
        token = await this.request(stored.geolocation, {
          grant_type: 'refresh_token',
          client_id: this.config.clientId,
          client_secret: this.config.clientSecret,
          refresh_token: refreshToken,
        }).catch((error: unknown) => {
          throw error instanceof ConcurAuthError ? new ConcurAuthError(error.message, error.code, refreshToken) : error;
        });
      } else {
        if (this.config.requestToken === undefined || this.config.companyId === undefined) {
          throw new ConcurAuthError('no refresh token or company request token is configured');
        }
        token = await this.request(undefined, {
          grant_type: 'password',
          client_id: this.config.clientId,
          client_secret: this.config.clientSecret,
          username: this.config.companyId,
          password: this.config.requestToken,
          credtype: 'authtoken',
        });
      }
      registerSecret(token.accessToken);
      registerSecret(token.refreshToken);
      const expiresAt = this.clock.now().getTime() + token.expiresInSeconds * 1000;
      const next: StoredAuth = {
        refreshToken: token.refreshToken ?? (grant === 'refresh' ? refreshToken : stored.refreshToken),
        geolocation: token.geolocation,
        seed: seedOf(this.config.refreshToken),
        accessToken: token.accessToken,
        accessExpiresAt: expiresAt,
      };
      this.logger.info(
        { geolocation: token.geolocation, grant, rotated: token.refreshToken !== undefined && token.refreshToken !== refreshToken },
        'Concur access token obtained',
      );
      return { value: JSON.stringify(next), result: this.use(next, { token: token.accessToken, expiresAt }) };
    });
  }

  /** One token call; follows a single "user lives elsewhere" (code 16) redirect to the geolocation Concur names. */
  private async request(geolocation: string | undefined, body: Record<string, string>, redirected = false): Promise<ConcurToken> {
    const base = this.config.baseUrl ?? geolocation ?? this.config.authBaseUrl;
    const { data, error, response } = await this.client.POST('/oauth2/v0/token', {
      baseUrl: base,
      body: body as never,
      bodySerializer: (b) => new URLSearchParams(b as Record<string, string>).toString(),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      parseAs: 'json',
    });
    if (response.ok) return parseTokenResponse(data, { configuredOrigins: this.configuredOrigins });
    const problem = parseTokenError(error);
    if (problem && String(problem.code) === '16' && problem.geolocation && !redirected && !this.config.baseUrl) {
      // The client secret and the refresh token go wherever this says: only to Concur or a configured origin.
      return this.request(trustedGeolocation(problem.geolocation, this.configuredOrigins, 'code-16 geolocation'), body, true);
    }
    const correlationId = response.headers.get('concur-correlationid') ?? undefined;
    this.logger.warn({ status: response.status, code: problem?.code, error: problem?.error, correlationId }, 'Concur token request refused');
    throw new ConcurAuthError(
      `Concur token request failed: HTTP ${response.status}${problem ? ` ${problem.error ?? ''} (code ${problem.code ?? '?'}): ${problem.error_description ?? ''}` : ''}${correlationId ? ` [concur-correlationid ${correlationId}]` : ''}`,
      problem?.code === undefined ? undefined : String(problem.code),
    );
  }
}
