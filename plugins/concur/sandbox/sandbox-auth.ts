import { createHash, randomBytes } from 'node:crypto';
import type { SandboxClock } from './sandbox-clock.js';

/**
 * OAuth2 state of the sandbox (concur-api.md 4): access tokens, rotating refresh tokens, the
 * company request token and the authorization codes of the user consent flow, all timed on the
 * sandbox clock. Issued token strings come from the OS RNG (they are secrets, not seeded data);
 * the initial credentials are given or seeded.
 */

/** `app`: the application itself, from the client_credentials grant (what the ESS management API takes). */
export type Principal = { readonly kind: 'company' } | { readonly kind: 'user'; readonly userIndex: number } | { readonly kind: 'app' };

/** Scopes the sandbox app holds for company tokens (what a Client Web Services app would be given). */
export const COMPANY_SCOPES: readonly string[] = [
  'openid',
  'EXPRPT',
  'expense.report.read',
  'expense.report.readwrite',
  'identity.user.ids.read',
  'identity.user.core.read',
  'identity.user.enterprise.read',
  'user.read',
  'company.read',
  'spend.user.general.read',
];

/** The scope approving and sending back need (docs/concur-api.md 2.1, 13). */
export const WORKFLOW_SCOPE = 'expense.report.workflowstatus.write';

/** Scopes the sandbox app holds for user tokens; a consent may ask for a subset. */
export const USER_SCOPES: readonly string[] = ['openid', 'EXPRPT', 'expense.report.read', 'expense.report.readwrite', WORKFLOW_SCOPE, 'user.read'];

/** The ESS API scope an app token needs (event-topics/index.markdown). */
export const EVENTS_SCOPE = 'events.topic.read';

/**
 * Scopes the sandbox app holds for app tokens (client_credentials): the ESS API scope and the
 * expense topic's resource scope. `appScopes` in the sandbox options replaces them.
 */
export const APP_SCOPES: readonly string[] = [EVENTS_SCOPE, 'expense.report.read'];

export interface TokenGrant {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Lifetime the response advertises, in seconds. */
  readonly expiresIn: number;
  readonly principal: Principal;
  /** Granted scopes, space-separated, as the token response's `scope` says. */
  readonly scope: string;
}

export type AccessCheck =
  | { readonly ok: true; readonly principal: Principal; readonly scopes: ReadonlySet<string> }
  | { readonly ok: false; readonly reason: 'missing' | 'unknown' | 'expired' };

/** What an authorization code was issued for (RFC 6749 4.1.3, RFC 7636 4.6: all checked at the exchange). */
export interface CodeBinding {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly userIndex: number;
  readonly scope: string;
  /** S256 challenge from /authorize; undefined when the client sent none. */
  readonly codeChallenge: string | undefined;
}

export type CodeRedemption =
  | { readonly ok: true; readonly binding: CodeBinding }
  | { readonly ok: false; readonly reason: 'unknown' | 'expired' | 'client' | 'redirect_uri' | 'verifier' };

export interface TokenStoreOptions {
  readonly clock: SandboxClock;
  /** Default 3600 (apidoc.markdown: access tokens live one hour). */
  readonly accessTokenLifetimeSeconds: number;
  /** Default 180 days (refresh tokens live six months). */
  readonly refreshTokenLifetimeSeconds: number;
  /** Default true: a refresh token works once; the response carries its successor. */
  readonly invalidateUsedRefreshTokens: boolean;
  /** Default 24 h (company-auth.markdown: the request token is valid 24 h, reusable meanwhile). */
  readonly requestTokenLifetimeSeconds: number;
  /** Default 600: Concur documents none; RFC 6749 4.1.2 recommends at most ten minutes. */
  readonly authorizationCodeLifetimeSeconds: number;
}

interface RefreshRecord {
  readonly principal: Principal;
  readonly scope: string;
  readonly expiresAtMs: number;
}

interface AccessRecord {
  readonly principal: Principal;
  readonly scope: string;
  readonly expiresAtMs: number;
}

interface CodeRecord extends CodeBinding {
  readonly expiresAtMs: number;
}

/** RFC 7636 4.2: BASE64URL(SHA256(ASCII(code_verifier))). */
const s256 = (verifier: string): string => createHash('sha256').update(verifier, 'ascii').digest('base64url');

const newToken = (bytes: number): string => randomBytes(bytes).toString('base64url');

export class TokenStore {
  private readonly access = new Map<string, AccessRecord>();
  private readonly refresh = new Map<string, RefreshRecord>();
  private readonly requestTokens = new Map<string, number>();
  private readonly codes = new Map<string, CodeRecord>();
  /** Every refresh token ever issued, in order, with how often a client tried to redeem it (kept after use). */
  private readonly redemptions = new Map<string, number>();
  private refused = 0;

  constructor(private readonly options: TokenStoreOptions) {}

  /**
   * How the refresh tokens were used: attempts per issued token in issue order (with
   * `invalidateUsedRefreshTokens`, a chain no process broke reads 1, 1, …, 1, 0: each redeemed
   * once, the last one still live), and how many redemptions were refused (Concur's code 108).
   */
  refreshTokenUsage(): { readonly attempts: readonly number[]; readonly refused: number } {
    return { attempts: [...this.redemptions.values()], refused: this.refused };
  }

  /** Registers a company refresh token (the initial one from options, or one minted for a test). */
  addCompanyRefreshToken(token: string = newToken(32)): string {
    this.redemptions.set(token, 0);
    this.refresh.set(token, {
      principal: { kind: 'company' },
      scope: COMPANY_SCOPES.join(' '),
      expiresAtMs: this.options.clock.nowMs() + this.options.refreshTokenLifetimeSeconds * 1000,
    });
    return token;
  }

  addRequestToken(token: string = newToken(24)): string {
    this.requestTokens.set(token, this.options.clock.nowMs() + this.options.requestTokenLifetimeSeconds * 1000);
    return token;
  }

  isValidRequestToken(token: string): boolean {
    const expires = this.requestTokens.get(token);
    return expires !== undefined && this.options.clock.nowMs() < expires;
  }

  /**
   * Issues an access token and a new refresh token. `actualLifetimeSeconds` lets the
   * expiringTokens fault make a token die early while the response still says 3600, which is the
   * case a client's "401 → refresh once → retry" path exists for.
   */
  issue(principal: Principal, scope: string, actualLifetimeSeconds?: number): TokenGrant {
    const now = this.options.clock.nowMs();
    const advertised = this.options.accessTokenLifetimeSeconds;
    const accessToken = newToken(48);
    const refreshToken = newToken(32);
    this.access.set(accessToken, { principal, scope, expiresAtMs: now + (actualLifetimeSeconds ?? advertised) * 1000 });
    this.refresh.set(refreshToken, { principal, scope, expiresAtMs: now + this.options.refreshTokenLifetimeSeconds * 1000 });
    this.redemptions.set(refreshToken, 0);
    return { accessToken, refreshToken, expiresIn: advertised, principal, scope };
  }

  /**
   * Revokes every refresh token of a user (apidoc.markdown "Revoking a token": all refresh tokens
   * of the user for the app). Access tokens already issued live out their hour: the doc only
   * speaks of refresh tokens. Returns how many were revoked.
   */
  revokeUser(userIndex: number): number {
    let revoked = 0;
    for (const [token, record] of this.refresh) {
      if (record.principal.kind === 'user' && record.principal.userIndex === userIndex) {
        this.refresh.delete(token);
        revoked++;
      }
    }
    return revoked;
  }

  /** A single-use authorization code for a consent just given. */
  issueCode(binding: CodeBinding): string {
    const code = newToken(32);
    this.codes.set(code, { ...binding, expiresAtMs: this.options.clock.nowMs() + this.options.authorizationCodeLifetimeSeconds * 1000 });
    return code;
  }

  /**
   * Redeems a code against what it was issued for. The first attempt consumes it whatever the
   * outcome (RFC 6749 10.5: codes are single-use), so a replay, even after a failed try, fails.
   */
  redeemCode(code: string, clientId: string, redirectUri: string, codeVerifier: string | undefined): CodeRedemption {
    const record = this.codes.get(code);
    if (!record) return { ok: false, reason: 'unknown' };
    this.codes.delete(code);
    if (this.options.clock.nowMs() >= record.expiresAtMs) return { ok: false, reason: 'expired' };
    if (record.clientId !== clientId) return { ok: false, reason: 'client' };
    if (record.redirectUri !== redirectUri) return { ok: false, reason: 'redirect_uri' };
    if (record.codeChallenge !== undefined && (codeVerifier === undefined || s256(codeVerifier) !== record.codeChallenge)) {
      return { ok: false, reason: 'verifier' };
    }
    return { ok: true, binding: record };
  }

  /**
   * An access token with no refresh token: the client_credentials grant's App token ("can only be
   * obtained again via the Client Credentials Grant", event-topics/index.markdown).
   */
  issueAccessOnly(principal: Principal, scope: string, actualLifetimeSeconds?: number): { accessToken: string; expiresIn: number; scope: string } {
    const now = this.options.clock.nowMs();
    const advertised = this.options.accessTokenLifetimeSeconds;
    const accessToken = newToken(48);
    this.access.set(accessToken, { principal, scope, expiresAtMs: now + (actualLifetimeSeconds ?? advertised) * 1000 });
    return { accessToken, expiresIn: advertised, scope };
  }

  /** Redeems a refresh token; undefined when it is unknown, used up or expired (Concur code 108). */
  redeem(refreshToken: string, actualLifetimeSeconds?: number): TokenGrant | undefined {
    const tried = this.redemptions.get(refreshToken);
    if (tried !== undefined) this.redemptions.set(refreshToken, tried + 1);
    const record = this.refresh.get(refreshToken);
    if (!record) {
      this.refused++;
      return undefined;
    }
    if (this.options.clock.nowMs() >= record.expiresAtMs) {
      this.refresh.delete(refreshToken);
      this.refused++;
      return undefined;
    }
    if (this.options.invalidateUsedRefreshTokens) this.refresh.delete(refreshToken);
    return this.issue(record.principal, record.scope, actualLifetimeSeconds);
  }

  check(authorization: string | undefined): AccessCheck {
    if (!authorization) return { ok: false, reason: 'missing' };
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m || m[1] === undefined) return { ok: false, reason: 'missing' };
    const record = this.access.get(m[1]);
    if (!record) return { ok: false, reason: 'unknown' };
    if (this.options.clock.nowMs() >= record.expiresAtMs) return { ok: false, reason: 'expired' };
    return { ok: true, principal: record.principal, scopes: new Set(record.scope.split(' ')) };
  }

  /** Drops expired access tokens so a long benchmark does not grow the map without bound. */
  sweep(): void {
    const now = this.options.clock.nowMs();
    for (const [token, record] of this.access) if (now >= record.expiresAtMs) this.access.delete(token);
    for (const [code, record] of this.codes) if (now >= record.expiresAtMs) this.codes.delete(code);
  }
}

/**
 * An id_token shaped like oauth-id-token-claims.json. It is NOT signed (the signature part is
 * random bytes): the sandbox has no JWKS, so clients may decode it but must not verify it here.
 */
export function idToken(claims: {
  readonly clientId: string;
  readonly baseUrl: string;
  readonly subject: string;
  readonly type: 'company' | 'user';
  readonly nowMs: number;
  readonly lifetimeSeconds: number;
}): string {
  const iat = Math.floor(claims.nowMs / 1000);
  const header = { alg: 'RS256', typ: 'JWT', kid: 'concur-sandbox' };
  const payload = {
    aud: claims.clientId,
    'concur.profile': `${claims.baseUrl}/profile/v1/principals/${claims.subject}`,
    'concur.version': 2,
    'concur.type': claims.type,
    sub: claims.subject,
    iss: claims.baseUrl,
    exp: iat + claims.lifetimeSeconds,
    nbf: iat,
    at_hash: randomBytes(8).toString('hex'),
    iat,
  };
  const part = (o: unknown): string => Buffer.from(JSON.stringify(o), 'utf8').toString('base64url');
  return `${part(header)}.${part(payload)}.${newToken(64)}`;
}
