import type { SandboxClock } from './sandbox-clock.js';
import type { SeededRandom } from './sandbox-random.js';

/** Who a request runs as: a sys_user's user_name. */
export interface Principal {
  readonly userName: string;
  readonly via: 'basic' | 'bearer';
}

export type AuthCheck = { readonly ok: true; readonly principal: Principal } | { readonly ok: false; readonly reason: 'missing' | 'invalid' | 'expired' };

interface AccessToken {
  readonly userName: string;
  readonly expiresAt: number;
  readonly clientId: string;
}

interface RefreshToken {
  readonly userName: string;
  readonly expiresAt: number;
  readonly clientId: string;
}

export interface TokenGrant {
  readonly accessToken: string;
  readonly refreshToken?: string;
  readonly expiresIn: number;
}

export interface TokenStoreOptions {
  readonly clock: SandboxClock;
  readonly rng: SeededRandom;
  readonly accessTokenLifetimeSeconds: number;
  readonly refreshTokenLifetimeSeconds: number;
}

const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Basic-auth passwords and OAuth tokens. Follows "OAuth API request parameters" and KB0791140: a password
 * grant made while the user's access token lives returns that same token with a new lifetime, and a
 * refresh returns the same refresh token while it lives (docs/servicenow-api.md section 8).
 */
export class TokenStore {
  private readonly passwords = new Map<string, string>();
  private readonly access = new Map<string, AccessToken>();
  private readonly refresh = new Map<string, RefreshToken>();

  constructor(private readonly o: TokenStoreOptions) {}

  setPassword(userName: string, password: string): void {
    this.passwords.set(userName, password);
  }

  passwordMatches(userName: string, password: string): boolean {
    const stored = this.passwords.get(userName);
    return stored !== undefined && stored === password;
  }

  /** Checks an Authorization header: `Basic base64(user:password)` or `Bearer <access token>`. */
  check(header: string | undefined): AuthCheck {
    if (!header) return { ok: false, reason: 'missing' };
    const [scheme, credentials = ''] = header.split(/\s+/, 2);
    if (scheme?.toLowerCase() === 'basic') {
      const decoded = Buffer.from(credentials, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return { ok: false, reason: 'invalid' };
      const userName = decoded.slice(0, colon);
      return this.passwordMatches(userName, decoded.slice(colon + 1)) ? { ok: true, principal: { userName, via: 'basic' } } : { ok: false, reason: 'invalid' };
    }
    if (scheme?.toLowerCase() === 'bearer') {
      const token = this.access.get(credentials);
      if (!token) return { ok: false, reason: 'invalid' };
      if (token.expiresAt <= this.o.clock.nowMs()) return { ok: false, reason: 'expired' };
      return { ok: true, principal: { userName: token.userName, via: 'bearer' } };
    }
    return { ok: false, reason: 'invalid' };
  }

  /**
   * password grant: the live access token of this user and client if there is one (its lifetime starts
   * again), else a new one; the user's live refresh token (its lifetime starts again), else a new one.
   */
  passwordGrant(clientId: string, userName: string): TokenGrant {
    const now = this.o.clock.nowMs();
    const live = [...this.access.entries()].find(([, t]) => t.userName === userName && t.clientId === clientId && t.expiresAt > now);
    const liveRefresh = this.liveRefresh(clientId, userName);
    const refreshToken = liveRefresh ?? this.issueRefresh(clientId, userName);
    if (liveRefresh) this.refresh.set(liveRefresh, { userName, clientId, expiresAt: now + this.o.refreshTokenLifetimeSeconds * 1000 });
    if (!live) return { ...this.issueAccess(clientId, userName), refreshToken };
    const expiresAt = now + this.o.accessTokenLifetimeSeconds * 1000;
    this.access.set(live[0], { ...live[1], expiresAt });
    return { accessToken: live[0], refreshToken, expiresIn: this.secondsLeft(expiresAt) };
  }

  /** refresh_token grant: a new access token; undefined when the refresh token is unknown, expired or another client's. */
  refreshGrant(clientId: string, refreshToken: string): TokenGrant | undefined {
    const token = this.refresh.get(refreshToken);
    if (!token || token.clientId !== clientId || token.expiresAt <= this.o.clock.nowMs()) return undefined;
    return { ...this.issueAccess(clientId, token.userName), refreshToken };
  }

  /** client_credentials grant: an access token for the OAuth application user, no refresh token. */
  clientCredentialsGrant(clientId: string, userName: string): TokenGrant {
    return this.issueAccess(clientId, userName);
  }

  /** Every access token dies now (as if its lifetime had passed); refresh tokens live on. */
  expireAccessTokens(): void {
    for (const [key, t] of this.access) this.access.set(key, { ...t, expiresAt: 0 });
  }

  private issueAccess(clientId: string, userName: string): TokenGrant {
    const accessToken = this.o.rng.chars(86, TOKEN_ALPHABET);
    const expiresAt = this.o.clock.nowMs() + this.o.accessTokenLifetimeSeconds * 1000;
    this.access.set(accessToken, { userName, clientId, expiresAt });
    return { accessToken, expiresIn: this.secondsLeft(expiresAt) };
  }

  private issueRefresh(clientId: string, userName: string): string {
    const token = this.o.rng.chars(86, TOKEN_ALPHABET);
    this.refresh.set(token, { userName, clientId, expiresAt: this.o.clock.nowMs() + this.o.refreshTokenLifetimeSeconds * 1000 });
    return token;
  }

  private liveRefresh(clientId: string, userName: string): string | undefined {
    const now = this.o.clock.nowMs();
    return [...this.refresh.entries()].find(([, t]) => t.userName === userName && t.clientId === clientId && t.expiresAt > now)?.[0];
  }

  /** Whole seconds left, one less than the lifetime on a fresh token (1799 of 1800), as ServiceNow is seen to answer. */
  private secondsLeft(expiresAt: number): number {
    return Math.max(0, Math.ceil((expiresAt - this.o.clock.nowMs()) / 1000) - 1);
  }
}
