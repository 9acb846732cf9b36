import { createHash } from 'node:crypto';
import createClient from 'openapi-fetch';
import type { Clock, Logger, SourceState } from '../../../core/index.js';
import { registerSecret } from '../../../core/host/logging.js';
import type { paths } from '../generated/oauth2.js';
import { parseTokenError, parseTokenResponse, type ConcurToken } from '../mappers/token-mapper.js';
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

/** What survives a restart: the latest refresh token and geolocation, and which configured token they descend from. */
interface StoredAuth {
  refreshToken?: string;
  geolocation?: string;
  seed?: string;
}

const STATE_KEY = 'oauth';
/** Refresh this long before the access token expires, so a call never starts with a dying token. */
const EXPIRY_SKEW_MS = 60_000;

export class ConcurAuthError extends Error {
  override readonly name = 'ConcurAuthError';
  constructor(
    message: string,
    /** Concur's error code (`108`: bad or expired refresh token), when it sent one. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Concur's code for a refresh token it no longer accepts (apidoc.markdown, "Response codes"). */
const DEAD_REFRESH_TOKEN = '108';

const seedOf = (token: string | undefined) => (token ? createHash('sha256').update(token).digest('hex').slice(0, 16) : undefined);

/**
 * Company-level OAuth2 for Concur (apidoc.markdown): refresh-token grant, or the company request
 * token with `credtype=authtoken`. Every token response may carry a new refresh token and
 * geolocation; both are persisted through the queue store before the access token is used, so a
 * restart continues with the rotated token. Tokens are registered with the log scrubber.
 */
export class ConcurTokenManager {
  private access: { token: string; expiresAt: number } | undefined;
  private stored: StoredAuth | undefined;
  private inflight: Promise<string> | undefined;
  private readonly client;

  constructor(
    private readonly config: ConcurAuthConfig,
    private readonly state: SourceState,
    fetch: FetchLike,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    registerSecret(config.clientSecret);
    registerSecret(config.refreshToken);
    registerSecret(config.requestToken);
    this.client = createClient<paths>({ fetch, headers: { Accept: 'application/json' } });
  }

  /** The origin API calls go to: the configured base URL, else the latest token's geolocation. */
  async apiBase(): Promise<string> {
    if (this.config.baseUrl) return this.config.baseUrl;
    await this.accessToken();
    return (await this.load()).geolocation ?? this.config.authBaseUrl;
  }

  /** A valid access token, refreshed when missing or about to expire; concurrent callers share one refresh. */
  accessToken(): Promise<string> {
    if (this.access && this.access.expiresAt - EXPIRY_SKEW_MS > this.clock.now().getTime()) return Promise.resolve(this.access.token);
    this.inflight ??= this.obtain().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Drops a token the API refused (401), so the next call refreshes once. */
  invalidate(token: string): void {
    if (this.access?.token === token) this.access = undefined;
  }

  private async load(): Promise<StoredAuth> {
    if (!this.stored) {
      const raw = await this.state.get(STATE_KEY);
      const parsed = raw ? (JSON.parse(raw) as StoredAuth) : {};
      // A token the operator configured after the stored one was issued wins (they re-authorised).
      this.stored = parsed.seed === seedOf(this.config.refreshToken) ? parsed : { geolocation: parsed.geolocation };
      registerSecret(this.stored.refreshToken);
    }
    return this.stored;
  }

  private async obtain(): Promise<string> {
    const stored = await this.load();
    const refreshToken = stored.refreshToken ?? this.config.refreshToken;
    let token: ConcurToken | undefined;
    let lastError: Error | undefined;
    if (refreshToken) {
      try {
        token = await this.request(stored.geolocation, {
          grant_type: 'refresh_token',
          client_id: this.config.clientId,
          client_secret: this.config.clientSecret,
          refresh_token: refreshToken,
        });
      } catch (error) {
        lastError = error as Error;
      }
    }
    const dead = lastError instanceof ConcurAuthError && lastError.code === DEAD_REFRESH_TOKEN;
    if (!token && this.config.requestToken && this.config.companyId) {
      if (dead) this.logger.warn({ code: DEAD_REFRESH_TOKEN }, 'Concur refused the refresh token; recovering with the company request token');
      token = await this.request(undefined, {
        grant_type: 'password',
        client_id: this.config.clientId,
        client_secret: this.config.clientSecret,
        username: this.config.companyId,
        password: this.config.requestToken,
        credtype: 'authtoken',
      });
    }
    if (!token && dead) {
      // Concur rotates refresh tokens; a host killed after Concur issued a new one but before it was
      // stored keeps only the old, now dead, one. Only an operator can mint a new one.
      this.logger.error({ code: DEAD_REFRESH_TOKEN }, 'Concur refused the refresh token and no company request token is configured');
      throw new ConcurAuthError(
        `${lastError!.message}. The refresh token is no longer valid: configure a new refreshToken, or a requestToken (with companyId) so the host can recover by itself`,
        DEAD_REFRESH_TOKEN,
      );
    }
    if (!token) throw lastError ?? new ConcurAuthError('no refresh token or company request token is configured');
    registerSecret(token.accessToken);
    registerSecret(token.refreshToken);
    const next: StoredAuth = {
      refreshToken: token.refreshToken ?? refreshToken,
      geolocation: token.geolocation,
      seed: seedOf(this.config.refreshToken),
    };
    // Persist before use: if we crash after Concur rotated the token, the old one may already be dead.
    await this.state.set(STATE_KEY, JSON.stringify(next));
    this.stored = next;
    this.access = { token: token.accessToken, expiresAt: this.clock.now().getTime() + token.expiresInSeconds * 1000 };
    this.logger.info({ geolocation: token.geolocation, rotated: token.refreshToken !== undefined && token.refreshToken !== refreshToken }, 'Concur access token obtained');
    return token.accessToken;
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
    if (response.ok) return parseTokenResponse(data);
    const problem = parseTokenError(error);
    if (problem && String(problem.code) === '16' && problem.geolocation && !redirected && !this.config.baseUrl) {
      return this.request(problem.geolocation, body, true);
    }
    const correlationId = response.headers.get('concur-correlationid') ?? undefined;
    this.logger.warn({ status: response.status, code: problem?.code, error: problem?.error, correlationId }, 'Concur token request refused');
    throw new ConcurAuthError(
      `Concur token request failed: HTTP ${response.status}${problem ? ` ${problem.error ?? ''} (code ${problem.code ?? '?'}): ${problem.error_description ?? ''}` : ''}${correlationId ? ` [concur-correlationid ${correlationId}]` : ''}`,
      problem?.code === undefined ? undefined : String(problem.code),
    );
  }
}
