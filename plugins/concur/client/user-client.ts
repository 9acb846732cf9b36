import createClient from 'openapi-fetch';
import { registerSecret } from '../../../core/index.js';
import type { paths as ExpenseV4 } from '../generated/expense-v4.js';
import type { paths as OAuth2 } from '../generated/oauth2.js';
import { isRecord } from '../mappers/json-reader.js';
import { parseTokenError, parseTokenResponse, type ConcurToken } from '../mappers/token-mapper.js';
import type { FetchLike } from './resilient-fetch.js';
import { ConcurAuthError } from './token-manager.js';

/** An approver's own access token and where to use it. */
export interface UserAccess {
  readonly token: string;
  /** The approver's Concur user UUID (the id_token's `sub`). */
  readonly userId: string;
  /** The API origin: the configured base URL, else the token's geolocation. */
  readonly base: string;
}

/** One report of `reportsToApprove`, the fields the stale-step guard compares. */
export interface ReportToApprove {
  readonly reportId: string;
  readonly name: string | undefined;
  readonly submitDate: string | undefined;
  readonly approverUuid: string | undefined;
  readonly hasExceptions: boolean | undefined;
}

/** What a v4 call answered: the status, Concur's correlation id and, on an error, its message. */
export interface UserCallResult<T = undefined> {
  readonly status: number;
  readonly correlationId: string | undefined;
  readonly message: string | undefined;
  readonly data?: T;
}

export type WorkflowAction = 'approve' | 'sendBack';

/**
 * The calls an approver makes with their own user token (docs/concur-api.md 2.2, 2.4, 4.4): the
 * authorization-code and one-time-password exchanges and refreshes at the token endpoint, `reportsToApprove` for the
 * stale-step guard and the long-URL approve / sendBack. Reads go through the retrying fetch; the
 * write goes through one that never retries (`writeFetch`), so a click is never sent twice.
 */
export class ConcurUserClient {
  private readonly oauth;
  private readonly reads;
  private readonly writes;

  constructor(
    private readonly app: { readonly clientId: string; readonly clientSecret: string; readonly configuredOrigins: readonly string[] },
    tokenFetch: FetchLike,
    readFetch: FetchLike,
    writeFetch: FetchLike,
  ) {
    this.oauth = createClient<OAuth2>({ fetch: tokenFetch, headers: { Accept: 'application/json' } });
    this.reads = createClient<ExpenseV4>({ fetch: readFetch, headers: { Accept: 'application/json' } });
    this.writes = createClient<ExpenseV4>({ fetch: writeFetch, headers: { Accept: 'application/json' } });
  }

  /** `grant_type=authorization_code` with the PKCE verifier (RFC 7636 4.5), at `base`. */
  exchangeCode(base: string, code: string, redirectUri: string, codeVerifier: string): Promise<ConcurToken> {
    return this.token(base, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: codeVerifier });
  }

  /** `grant_type=refresh_token` for an approver's token; a refused one throws {@link ConcurAuthError} with Concur's code (108: revoked or expired). */
  refresh(base: string, refreshToken: string): Promise<ConcurToken> {
    return this.token(base, { grant_type: 'refresh_token', refresh_token: refreshToken });
  }

  /**
   * `POST /oauth2/v0/otp`: Concur e-mails `email` a one-time token (docs/concur-api.md 4.4). `params`
   * are the client's own parameters, which {@link exchangeOtp} must send back unchanged. A refusal
   * throws {@link ConcurAuthError} with Concur's code (55 unknown e-mail, 82 too many open requests…).
   */
  async requestOtp(base: string, email: string, params: Readonly<Record<string, string>>): Promise<void> {
    const { error, response } = await this.oauth.POST('/oauth2/v0/otp', {
      baseUrl: base,
      body: { ...params, client_id: this.app.clientId, client_secret: this.app.clientSecret, channel_type: 'email', channel_handle: email },
      bodySerializer: (b) => new URLSearchParams(b as Record<string, string>).toString(),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      parseAs: 'json',
    });
    if (!response.ok) throw authError('otp request', response, error);
  }

  /** `grant_type=otp` for the one-time token sent to `email`, with the same client `params` as its request. */
  exchangeOtp(base: string, email: string, otp: string, scope: string, params: Readonly<Record<string, string>>): Promise<ConcurToken> {
    return this.token(base, { ...params, grant_type: 'otp', channel_type: 'email', channel_handle: email, otp, scope });
  }

  private async token(base: string, grant: Record<string, string>): Promise<ConcurToken> {
    const { data, error, response } = await this.oauth.POST('/oauth2/v0/token', {
      baseUrl: base,
      body: { client_id: this.app.clientId, client_secret: this.app.clientSecret, ...grant } as never,
      bodySerializer: (b) => new URLSearchParams(b as Record<string, string>).toString(),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      parseAs: 'json',
    });
    if (response.ok) {
      const token = parseTokenResponse(data, { configuredOrigins: this.app.configuredOrigins });
      registerSecret(token.accessToken);
      registerSecret(token.refreshToken);
      return token;
    }
    throw authError(`${grant['grant_type']} grant`, response, error);
  }

  /**
   * `GET …/users/{uuid}/context/MANAGER/reportsToApprove` as the approver: what waits on them now.
   * With `includeDelegateApprovals`, also what they may approve as an expense delegate (v4.reports: "as either an approver or delegate").
   */
  async reportsToApprove(
    user: UserAccess,
    correlationId: string,
    signal: AbortSignal,
    includeDelegateApprovals = false,
  ): Promise<UserCallResult<ReportToApprove[]>> {
    const { data, error, response } = await this.reads.GET('/expensereports/v4/users/{userId}/context/{contextType}/reportsToApprove', {
      baseUrl: user.base,
      params: {
        path: { userId: user.userId, contextType: 'MANAGER' },
        query: { includeDelegateApprovals },
        header: { 'concur-correlationid': correlationId },
      },
      headers: { Authorization: `Bearer ${user.token}` },
      signal,
    });
    const result = { status: response.status, correlationId: response.headers.get('concur-correlationid') ?? undefined, message: messageOf(error) };
    if (!response.ok) return result;
    if (!Array.isArray(data)) return { ...result, status: 502, message: 'reportsToApprove did not answer an array' };
    return { ...result, data: data.filter(isRecord).map(readReportToApprove) };
  }

  /** The long-URL `PATCH …/context/MANAGER/reports/{id}/approve|sendBack` as the approver; 204 is success. */
  async act(
    user: UserAccess,
    reportId: string,
    action: WorkflowAction,
    comment: string | undefined,
    correlationId: string,
    signal: AbortSignal,
  ): Promise<UserCallResult> {
    const params = {
      path: { userId: user.userId, contextType: 'MANAGER' as const, reportId },
      header: { 'concur-correlationid': correlationId },
    };
    const init = { baseUrl: user.base, params, headers: { Authorization: `Bearer ${user.token}`, 'Content-Type': 'application/json' }, signal };
    const { error, response } =
      action === 'approve'
        ? await this.writes.PATCH('/expensereports/v4/users/{userId}/context/{contextType}/reports/{reportId}/approve', {
            ...init,
            body: comment ? { comment } : {},
          })
        : await this.writes.PATCH('/expensereports/v4/users/{userId}/context/{contextType}/reports/{reportId}/sendBack', {
            ...init,
            body: { comment: comment ?? '' },
          });
    return { status: response.status, correlationId: response.headers.get('concur-correlationid') ?? undefined, message: messageOf(error) };
  }
}

/** A refusal at Concur's OAuth2 endpoints as a {@link ConcurAuthError} carrying Concur's code. */
function authError(what: string, response: Response, error: unknown): ConcurAuthError {
  const problem = parseTokenError(error);
  const correlationId = response.headers.get('concur-correlationid') ?? undefined;
  return new ConcurAuthError(
    `Concur ${what} failed: HTTP ${response.status}${problem ? ` ${problem.error ?? ''} (code ${problem.code ?? '?'}): ${problem.error_description ?? ''}` : ''}${correlationId ? ` [concur-correlationid ${correlationId}]` : ''}`,
    problem?.code === undefined ? undefined : String(problem.code),
  );
}

function readReportToApprove(r: Record<string, unknown>): ReportToApprove {
  const approver = isRecord(r['approver']) ? r['approver'] : {};
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return {
    reportId: String(r['reportId'] ?? ''),
    name: str(r['name']),
    submitDate: str(r['submitDate']),
    approverUuid: str(approver['employeeUuid']),
    hasExceptions: typeof r['hasExceptions'] === 'boolean' ? r['hasExceptions'] : undefined,
  };
}

/** A v4 `ErrorMessage`'s text with its validation errors, for the clicker and the log. */
function messageOf(error: unknown): string | undefined {
  if (!isRecord(error)) return undefined;
  const main = typeof error['errorMessage'] === 'string' ? error['errorMessage'] : undefined;
  const details = Array.isArray(error['validationErrors'])
    ? error['validationErrors'].filter(isRecord).map((v) => (typeof v['message'] === 'string' ? v['message'] : ''))
    : [];
  return [main, ...details].filter((m): m is string => Boolean(m)).join('; ') || undefined;
}
