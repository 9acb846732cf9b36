import { createHash } from 'node:crypto';
import createClient from 'openapi-fetch';
import { registerSecret, type Clock, type CredentialStore, type Logger } from '../../../core/index.js';
import type { components, paths } from '../generated/oauth.js';
import type { ServiceNowAuthConfig } from '../servicenow-config.js';
import type { FetchLike } from './resilient-fetch.js';

/** A token call or credential ServiceNow refused; the message names the setting to fix, never a secret. */
export class ServiceNowAuthError extends Error {
  override readonly name = 'ServiceNowAuthError';
}

/**
 * What the credential store keeps for one instance (encrypted, shared by every process on the
 * queue): the latest access token with its expiry, so a process that finds a valid one uses it
 * instead of asking again, and the latest refresh token with a hash of the configured one it
 * descends from (a token the operator configures later wins).
 */
interface StoredAuth {
  accessToken?: string;
  /** Epoch ms. */
  accessExpiresAt?: number;
  refreshToken?: string;
  seed?: string;
}

/** The credential entry's key, in the source instance's namespace (`source:<id>`). */
const STORE_KEY = 'oauth';
/** Refresh this long before the access token expires, so a call never starts with a dying token. */
const EXPIRY_SKEW_MS = 60_000;

const seedOf = (token: string | undefined) => (token ? createHash('sha256').update(token).digest('hex').slice(0, 16) : undefined);

/**
 * The `Authorization` header of every Table API call (docs/servicenow-api.md sections 8, 9): basic
 * auth as configured, or an OAuth access token from `POST /oauth_token.do` (form-encoded), with the
 * client-credentials grant or the refresh-token grant.
 *
 * Tokens live in the core's CredentialStore, so every process on the queue (other hosts, CLI
 * commands) shares one: a token is obtained under the store's cross-process lock, after re-reading
 * the store inside it, and stored before the lock is released. A 401 from the Table API makes the
 * caller {@link invalidate} the token it used; the next {@link header} gets a fresh one (once: a
 * second 401 is the caller's error to report). Every token is registered with the log scrubber.
 */
export class ServiceNowAuth {
  private access: { token: string; expiresAt: number } | undefined;
  /** An access token the API refused (401): not taken from the store again. */
  private refused: string | undefined;
  private inflight: Promise<string> | undefined;
  private readonly client;

  constructor(
    private readonly instanceUrl: string,
    private readonly config: ServiceNowAuthConfig,
    private readonly credentials: CredentialStore,
    /** The credential namespace of this source instance (`source:<instanceId>`). */
    private readonly namespace: string,
    fetch: FetchLike,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    if (config.type === 'basic') registerSecret(config.password);
    else {
      registerSecret(config.clientSecret);
      registerSecret(config.refreshToken);
      if (this.grant === 'refresh_token' && !config.refreshToken)
        throw new ServiceNowAuthError('auth.grant is refresh_token but no auth.refreshToken is configured');
    }
    this.client = createClient<paths>({ baseUrl: instanceUrl.replace(/\/+$/, ''), fetch, headers: { Accept: 'application/json' } });
  }

  private get grant(): 'client_credentials' | 'refresh_token' {
    return this.config.type === 'oauth' ? (this.config.grant ?? 'client_credentials') : 'client_credentials';
  }

  /** `Basic …` or `Bearer <access token>`; concurrent callers share one token request. */
  async header(): Promise<string> {
    const config = this.config;
    if (config.type === 'basic') return `Basic ${Buffer.from(`${config.username}:${config.password}`).toString('base64')}`;
    if (this.access && this.fresh(this.access.expiresAt)) return `Bearer ${this.access.token}`;
    this.inflight ??= this.obtain().finally(() => {
      this.inflight = undefined;
    });
    return `Bearer ${await this.inflight}`;
  }

  /** Whether a 401 can be cured by asking for another token (OAuth), rather than by the operator (basic auth). */
  get renewable(): boolean {
    return this.config.type === 'oauth';
  }

  /** Drops the token of a header the API refused (401), so the next {@link header} obtains another. */
  invalidate(header: string): void {
    const token = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
    if (!token) return;
    this.refused = token;
    if (this.access?.token === token) this.access = undefined;
  }

  private fresh(expiresAt: number | undefined): boolean {
    return expiresAt !== undefined && expiresAt - EXPIRY_SKEW_MS > this.clock.now().getTime();
  }

  private configuredRefreshToken(): string | undefined {
    return this.config.type === 'oauth' ? this.config.refreshToken : undefined;
  }

  /** The stored state, if it descends from the configured refresh token (or none is configured). */
  private usable(raw: string | undefined): StoredAuth {
    if (!raw) return {};
    let parsed: StoredAuth;
    try {
      parsed = JSON.parse(raw) as StoredAuth;
    } catch {
      this.logger.warn('stored ServiceNow credentials are not readable JSON; asking for a new token');
      return {};
    }
    if (parsed.seed !== seedOf(this.configuredRefreshToken())) return {};
    registerSecret(parsed.accessToken);
    registerSecret(parsed.refreshToken);
    return parsed;
  }

  private validAccess(stored: StoredAuth): { token: string; expiresAt: number } | undefined {
    if (!stored.accessToken || stored.accessToken === this.refused || !this.fresh(stored.accessExpiresAt)) return undefined;
    return { token: stored.accessToken, expiresAt: stored.accessExpiresAt! };
  }

  private use(access: { token: string; expiresAt: number }): string {
    this.access = access;
    return access.token;
  }

  private async obtain(): Promise<string> {
    // Without the lock first: another process may have just obtained one.
    const valid = this.validAccess(this.usable(await this.credentials.get(this.namespace, STORE_KEY)));
    if (valid) return this.use(valid);
    return this.credentials.rotate(this.namespace, STORE_KEY, async (raw) => {
      const stored = this.usable(raw);
      const again = this.validAccess(stored);
      if (again) return { result: this.use(again) };
      const token = await this.request(stored);
      const expiresAt = this.clock.now().getTime() + token.expires_in * 1000;
      const next: StoredAuth = {
        accessToken: token.access_token,
        accessExpiresAt: expiresAt,
        refreshToken: token.refresh_token ?? stored.refreshToken ?? this.configuredRefreshToken(),
        seed: seedOf(this.configuredRefreshToken()),
      };
      if (next.refreshToken === undefined) delete next.refreshToken;
      this.logger.info({ grant: this.grant, expiresInSeconds: token.expires_in }, 'ServiceNow access token obtained');
      return { value: JSON.stringify(next), result: this.use({ token: token.access_token, expiresAt }) };
    });
  }

  /** One `POST /oauth_token.do`, form-encoded (JSON bodies fail there). */
  private async request(stored: StoredAuth): Promise<components['schemas']['TokenResponse']> {
    const config = this.config;
    if (config.type !== 'oauth') throw new ServiceNowAuthError('basic auth asks for no token');
    const refreshToken = stored.refreshToken ?? config.refreshToken;
    const body: Record<string, string> =
      this.grant === 'refresh_token' && refreshToken
        ? { grant_type: 'refresh_token', client_id: config.clientId, client_secret: config.clientSecret, refresh_token: refreshToken }
        : { grant_type: 'client_credentials', client_id: config.clientId, client_secret: config.clientSecret };
    const { data, error, response } = await this.client.POST('/oauth_token.do', {
      body: body as never,
      bodySerializer: (b) => new URLSearchParams(b as Record<string, string>).toString(),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      parseAs: 'json',
    });
    if (response.ok && data && typeof data.access_token === 'string' && data.access_token !== '' && Number.isFinite(data.expires_in)) {
      registerSecret(data.access_token);
      registerSecret(data.refresh_token);
      return data;
    }
    const problem = typeof error === 'object' && error !== null ? (error as components['schemas']['TokenError']) : undefined;
    this.logger.warn({ status: response.status, error: problem?.error, grant: this.grant }, 'ServiceNow token request refused');
    const hint =
      response.status === 401
        ? this.grant === 'refresh_token'
          ? ': check auth.clientId and auth.clientSecret, and whether auth.refreshToken has expired (100 days by default; configure a new one)'
          : ': check auth.clientId and auth.clientSecret, that the client has an OAuth Application User, and that the instance enables the client_credentials grant (Washington DC or later)'
        : response.ok
          ? ': the response carried no access_token or expires_in'
          : '';
    throw new ServiceNowAuthError(
      `ServiceNow token request (${this.grant}) failed: HTTP ${response.status}${problem?.error ? ` ${problem.error}` : ''}${problem?.error_description ? ` (${problem.error_description})` : ''}${hint}`,
    );
  }
}
