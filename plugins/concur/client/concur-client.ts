import createClient from 'openapi-fetch';
import type { Logger } from '../../../core/index.js';
import type { paths as ExpenseV3 } from '../generated/expense-v3.js';
import type { paths as IdentityV4 } from '../generated/identity-v4.js';
import type { paths as SpendUserV41 } from '../generated/spend-user-v4.1.js';
import { parseExpenseDelegates, type ExpenseDelegate } from '../mappers/delegate-mapper.js';
import { parseEntryCollection, type Entry } from '../mappers/entry-mapper.js';
import { parseIdentityUser, parseIdentityUserPage, type IdentityUser, type IdentityUserPage } from '../mappers/identity-mapper.js';
import { parseReport, parseReportCollection, type ReportCollection, type ReportGet } from '../mappers/report-mapper.js';
import type { FetchLike } from './resilient-fetch.js';
import type { ConcurTokenManager } from './token-manager.js';

/** A call Concur answered with an error status; carries what support needs, never a token. */
export class ConcurApiError extends Error {
  override readonly name = 'ConcurApiError';
  constructor(
    readonly status: number,
    readonly operation: string,
    readonly correlationId: string | undefined,
    detail: string,
  ) {
    super(`Concur ${operation} failed: HTTP ${status}${detail ? ` ${detail}` : ''}${correlationId ? ` [concur-correlationid ${correlationId}]` : ''}`);
  }
}

export type ReportQuery = NonNullable<NonNullable<ExpenseV3['/api/v3.0/expense/reports']['get']['parameters']['query']>>;

/** The `concur-correlationid` request header, when a push event named one. */
function correlated(correlationId: string | undefined): { headers?: Record<string, string> } {
  return correlationId ? { headers: { 'concur-correlationid': correlationId } } : {};
}

/** openapi-fetch needs an origin at creation; the router below swaps in the real one per call. */
const PLACEHOLDER_ORIGIN = 'https://concur.invalid';

/**
 * Authenticates and routes every call: `Accept: application/json` (v3 may answer XML without it),
 * the bearer token, the token's geolocation as origin (or the configured base URL), and on 401
 * one refresh and one retry.
 */
export function authenticatedFetch(tokens: ConcurTokenManager, inner: FetchLike): FetchLike {
  return async (request) => {
    const base = new URL(await tokens.apiBase());
    const url = new URL(request.url);
    if (url.origin === PLACEHOLDER_ORIGIN) {
      url.protocol = base.protocol;
      url.host = base.host;
    }
    const send = async (token: string) => {
      const headers = new Headers(request.headers);
      headers.set('Accept', 'application/json');
      headers.set('Authorization', `Bearer ${token}`);
      return inner(
        new Request(url, { method: request.method, headers, body: request.body ? await request.clone().arrayBuffer() : undefined, signal: request.signal }),
      );
    };
    const token = await tokens.accessToken();
    const first = await send(token);
    if (first.status !== 401) return first;
    await first.body?.cancel();
    tokens.invalidate(token);
    return send(await tokens.accessToken());
  };
}

/** The Concur calls the plugin makes, validated into the generated types. */
export class ConcurClient {
  private readonly expense;
  private readonly identity;
  private readonly spendUser;

  constructor(
    private readonly tokens: ConcurTokenManager,
    apiFetch: FetchLike,
    identityFetch: FetchLike,
    private readonly logger: Logger,
  ) {
    this.expense = createClient<ExpenseV3>({ baseUrl: PLACEHOLDER_ORIGIN, fetch: authenticatedFetch(tokens, apiFetch) });
    this.identity = createClient<IdentityV4>({ baseUrl: PLACEHOLDER_ORIGIN, fetch: authenticatedFetch(tokens, identityFetch) });
    this.spendUser = createClient<SpendUserV41>({ baseUrl: PLACEHOLDER_ORIGIN, fetch: authenticatedFetch(tokens, apiFetch) });
  }

  /** The company's API origin (the configured base URL, else the company token's geolocation): its users' data centre too. */
  apiBase(): Promise<string> {
    return this.tokens.apiBase();
  }

  private fail(operation: string, response: Response, error: unknown): never {
    const correlationId = response.headers.get('concur-correlationid') ?? undefined;
    const detail = typeof error === 'object' && error !== null ? JSON.stringify(error).slice(0, 300) : '';
    this.logger.warn({ operation, status: response.status, correlationId }, 'Concur call refused');
    throw new ConcurApiError(response.status, operation, correlationId, detail);
  }

  /**
   * One page of `GET /api/v3.0/expense/reports` (v3.reports.markdown). `nextPage` is the previous
   * page's `NextPage`; it is followed only to the Concur host we call, and only to this endpoint.
   */
  async listReports(query: ReportQuery, signal: AbortSignal, nextPage?: string): Promise<ReportCollection> {
    let q: ReportQuery = query;
    if (nextPage) {
      const next = new URL(nextPage);
      const base = new URL(await this.tokens.apiBase());
      if (next.host !== base.host || next.pathname !== '/api/v3.0/expense/reports') {
        throw new ConcurApiError(0, 'list reports', undefined, `refusing NextPage ${next.origin}${next.pathname}: not ${base.host}/api/v3.0/expense/reports`);
      }
      q = Object.fromEntries(next.searchParams) as ReportQuery;
    }
    const { data, error, response } = await this.expense.GET('/api/v3.0/expense/reports', { params: { query: q }, signal, parseAs: 'text' });
    if (!response.ok) this.fail('list reports', response, error);
    return parseReportCollection(parseJsonBody(data as unknown as string, 'reports page', response));
  }

  /**
   * `GET /api/v3.0/expense/reports/{id}?user=<owner>`; undefined when Concur has no such report (404).
   * `correlationId`: a push event's, which Concur asks to see again on the calls it caused.
   */
  async getReport(id: string, owner: string | undefined, signal: AbortSignal, correlationId?: string): Promise<ReportGet | undefined> {
    const { data, error, response } = await this.expense.GET('/api/v3.0/expense/reports/{id}', {
      params: { path: { id }, query: owner ? { user: owner } : {} },
      ...correlated(correlationId),
      signal,
      parseAs: 'text',
    });
    if (response.status === 404) return undefined;
    if (!response.ok) this.fail('get report', response, error);
    return parseReport(parseJsonBody(data as unknown as string, 'report', response));
  }

  /** Every entry of a report (`GET /api/v3.0/expense/entries?reportID=`, expense-entry.markdown), all pages. */
  async listEntries(reportId: string, owner: string | undefined, signal: AbortSignal, correlationId?: string): Promise<Entry[]> {
    const entries: Entry[] = [];
    let offset: string | undefined;
    for (let page = 0; page < 50; page++) {
      const { data, error, response } = await this.expense.GET('/api/v3.0/expense/entries', {
        params: { query: { reportID: reportId, limit: 100, ...(owner ? { user: owner } : {}), ...(offset ? { offset } : {}) } },
        ...correlated(correlationId),
        signal,
        parseAs: 'text',
      });
      if (!response.ok) this.fail('list entries', response, error);
      const collection = parseEntryCollection(parseJsonBody(data as unknown as string, 'entries page', response));
      entries.push(...collection.Items);
      if (!collection.NextPage) break;
      offset = new URL(collection.NextPage).searchParams.get('offset') ?? undefined;
      if (!offset) break;
    }
    return entries;
  }

  /** Identity v4 `GET /profile/identity/v4/Users` (v4.identity.md): a filter, or the company listing paged by 100. */
  async listUsers(query: { filter?: string; startIndex?: number; count?: number }, signal: AbortSignal): Promise<IdentityUserPage> {
    const { data, error, response } = await this.identity.GET('/profile/identity/v4/Users', { params: { query }, signal, parseAs: 'text' });
    if (!response.ok) this.fail('list users', response, error);
    return parseIdentityUserPage(parseJsonBody(data as unknown as string, 'users page', response));
  }

  /** Identity v4 `GET /profile/identity/v4/Users/{id}` (v4.identity.md): one user by UUID; undefined when Concur has none (404). */
  async getUser(id: string, signal: AbortSignal): Promise<IdentityUser | undefined> {
    const { data, error, response } = await this.identity.GET('/profile/identity/v4/Users/{id}', { params: { path: { id } }, signal, parseAs: 'text' });
    if (response.status === 404) return undefined;
    if (!response.ok) this.fail('get user', response, error);
    return parseIdentityUser(parseJsonBody(data as unknown as string, 'user', response));
  }

  /**
   * Spend User v4.1 `GET /profile/spend/v4.1/Users/{id}` (v4.1.spend-user-retrieval.md; scope
   * spend.user.general.read): the user's expense delegates; undefined when Concur has no such user (404).
   */
  async getExpenseDelegates(id: string, signal: AbortSignal): Promise<ExpenseDelegate[] | undefined> {
    const { data, error, response } = await this.spendUser.GET('/profile/spend/v4.1/Users/{id}', { params: { path: { id } }, signal, parseAs: 'text' });
    if (response.status === 404) return undefined;
    if (!response.ok) this.fail('get spend user', response, error);
    return parseExpenseDelegates(parseJsonBody(data as unknown as string, 'spend user', response));
  }
}

/** Parses a body we asked for as text, so a truncated page becomes a clear error, not a crash. */
function parseJsonBody(text: string, what: string, response: Response): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const correlationId = response.headers.get('concur-correlationid') ?? undefined;
    throw new ConcurApiError(response.status, `read ${what}`, correlationId, `malformed JSON (${(error as Error).message})`);
  }
}
