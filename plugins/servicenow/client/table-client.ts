import type { Logger } from '../../../core/index.js';
import type { components } from '../generated/table-api.js';
import type { FetchLike } from './resilient-fetch.js';
import type { ServiceNowAuth } from './servicenow-auth.js';

/** One field as the Table API returns it (docs/servicenow-api.md section 3). */
export type FieldValue = components['schemas']['FieldValue'];
/** A record: field name → value; with `sysparm_display_value=all` each value is `{display_value, value}`. */
export type TableRecord = Readonly<Record<string, FieldValue | undefined>>;

/** The stored (actual) value of a field: a sys_id for a reference, the choice value, UTC for a date/time. */
export function actual(field: FieldValue | undefined): string {
  if (field === undefined || field === null) return '';
  if (typeof field === 'string') return field;
  return field.value ?? '';
}

/** What a person sees: a user's name for a reference, a choice's label; the actual value when there is none. */
export function display(field: FieldValue | undefined): string {
  if (field === undefined || field === null) return '';
  if (typeof field === 'string') return field;
  return 'display_value' in field && typeof field.display_value === 'string' ? field.display_value : (field.value ?? '');
}

/** A Table API call that failed; `status` and ServiceNow's `error.message` / `detail`, never credentials. */
export class ServiceNowError extends Error {
  override readonly name = 'ServiceNowError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface ListRequest {
  /** Encoded query (built from constants: an unknown field is ignored by ServiceNow, silently widening the result). */
  readonly query: string;
  readonly fields: readonly string[];
  readonly limit: number;
  readonly offset?: number;
}

export interface ListPage {
  readonly records: readonly TableRecord[];
  /**
   * The `sysparm_offset` of the next page, from the `Link` header's `rel="next"`; undefined on the
   * last page. A page may hold fewer records than asked with more to come (the limit is applied
   * before ACLs), so only this says whether the result set goes on.
   */
  readonly nextOffset: number | undefined;
}

/** `sys_id`s are 32 lowercase hex characters; anything else never reaches a URL path. */
const SYS_ID = /^[0-9a-f]{32}$/;
const TABLE = /^[a-z][a-z0-9_]*$/;

/**
 * Reads of the Table API (docs/servicenow-api.md section 2): pages of a list with their next offset,
 * and single records. Every request asks actual and display values without reference links, and
 * goes through the resilient fetch (timeouts, retries honouring Retry-After). A 401 renews an OAuth
 * token and tries once more.
 */
export class ServiceNowTableClient {
  private readonly base: string;

  constructor(
    instanceUrl: string,
    private readonly auth: ServiceNowAuth,
    private readonly fetch: FetchLike,
    private readonly logger: Logger,
  ) {
    this.base = instanceUrl.replace(/\/+$/, '');
  }

  async list(table: string, request: ListRequest, signal: AbortSignal): Promise<ListPage> {
    const params = new URLSearchParams({
      sysparm_query: request.query,
      sysparm_fields: request.fields.join(','),
      sysparm_limit: String(request.limit),
      sysparm_offset: String(request.offset ?? 0),
      sysparm_display_value: 'all',
      sysparm_exclude_reference_link: 'true',
      // No sysparm_no_count: the Link header's `last` needs the count, and nothing says it comes without.
    });
    const response = await this.send(`${this.path(table)}?${params}`, signal);
    const body = (await this.json(response, table)) as { result?: unknown };
    if (!Array.isArray(body.result)) throw new ServiceNowError(`ServiceNow answered GET ${table} without a result list`, response.status);
    return { records: body.result as TableRecord[], nextOffset: nextOffset(response.headers.get('link')) };
  }

  /** One record by sys_id; undefined when ServiceNow answers 404 (deleted, or hidden by an ACL). */
  async get(table: string, sysId: string, fields: readonly string[], signal: AbortSignal): Promise<TableRecord | undefined> {
    if (!SYS_ID.test(sysId)) throw new ServiceNowError(`not a ServiceNow sys_id: ${JSON.stringify(sysId)}`, 400);
    const params = new URLSearchParams({ sysparm_fields: fields.join(','), sysparm_display_value: 'all', sysparm_exclude_reference_link: 'true' });
    const response = await this.send(`${this.path(table)}/${sysId}?${params}`, signal, [404]);
    if (response.status === 404) return undefined;
    const body = (await this.json(response, table)) as { result?: unknown };
    if (typeof body.result !== 'object' || body.result === null)
      throw new ServiceNowError(`ServiceNow answered GET ${table}/{sys_id} without a record`, response.status);
    return body.result as TableRecord;
  }

  private path(table: string): string {
    if (!TABLE.test(table)) throw new ServiceNowError(`not a ServiceNow table name: ${JSON.stringify(table)}`, 400);
    return `${this.base}/api/now/table/${table}`;
  }

  private async send(url: string, signal: AbortSignal, accepted: readonly number[] = []): Promise<Response> {
    let authorization = await this.auth.header();
    let response = await this.fetch(new Request(url, { headers: { Accept: 'application/json', Authorization: authorization }, signal }));
    if (response.status === 401 && this.auth.renewable) {
      // An access token revoked or expired early: one fresh token, one more try.
      this.logger.info({ status: 401 }, 'ServiceNow refused the access token; obtaining a new one');
      this.auth.invalidate(authorization);
      authorization = await this.auth.header();
      response = await this.fetch(new Request(url, { headers: { Accept: 'application/json', Authorization: authorization }, signal }));
    }
    if (response.ok || accepted.includes(response.status)) return response;
    const problem = await errorOf(response);
    const table = new URL(url).pathname.replace(/^\/api\/now\/table\//, '').replace(/\/[0-9a-f]{32}$/, '/{sys_id}');
    const hint =
      response.status === 401
        ? ': check the auth settings (user name and password, or the OAuth client)'
        : response.status === 403
          ? ': the integration user lacks a role that reads this table (see the README, ServiceNow section)'
          : '';
    throw new ServiceNowError(`ServiceNow GET ${table} failed: HTTP ${response.status}${problem ? ` ${problem}` : ''}${hint}`, response.status);
  }

  private async json(response: Response, table: string): Promise<object> {
    try {
      const body: unknown = await response.json();
      if (typeof body === 'object' && body !== null) return body;
    } catch {
      // below
    }
    throw new ServiceNowError(`ServiceNow answered GET ${table} with a body that is not a JSON object`, response.status);
  }
}

/** `error.message` (and `detail`) of ServiceNow's error body (docs/servicenow-api.md section 6), if it has one. */
async function errorOf(response: Response): Promise<string | undefined> {
  try {
    const body = (await response.json()) as { error?: { message?: unknown; detail?: unknown } };
    const message = typeof body.error?.message === 'string' ? body.error.message : undefined;
    const detail = typeof body.error?.detail === 'string' && body.error.detail !== '' ? body.error.detail : undefined;
    return message ? (detail ? `${message} (${detail})` : message) : undefined;
  } catch {
    return undefined;
  }
}

/** The `sysparm_offset` of a `Link` header's `rel="next"` URL (docs/servicenow-api.md section 2.4). */
export function nextOffset(link: string | null): number | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (!match || !/\brel="?next"?/.test(match[2]!)) continue;
    try {
      const offset = Number(new URL(match[1]!).searchParams.get('sysparm_offset'));
      return Number.isInteger(offset) && offset >= 0 ? offset : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}
