import { LRUCache } from 'lru-cache';
import type { Approval, ApprovalSource, Logger, SourceBatch, SourceCapabilities, SyncContext, VerifyRef, VerifyResult } from '../../core/index.js';
import {
  APPROVAL_FIELDS,
  APPROVAL_TABLE,
  COMPLETION_STATES,
  PENDING_STATE,
  TASK_FIELDS,
  isoOf,
  mapApproval,
  taskOf,
  viewOf,
  type MapOptions,
  type TaskTable,
  type TaskView,
} from './approval-mapper.js';
import { actual, type ServiceNowTableClient, type TableRecord } from './client/table-client.js';
import type { ServiceNowSourceConfig } from './servicenow-config.js';

/** Enough pages for 10,000,000 records at 1,000 a page; past this a paging loop is a bug. */
const MAX_PAGES = 100_000;
/** sys_ids per `sys_idIN…` read, so a URL stays well inside what proxies accept. */
const IN_CHUNK = 100;
/** The cursor's separator: `<sys_updated_on>|<sys_id>` (a date/time has no `|`, a sys_id is hex). */
const SEP = '|';

/** Marks an approved record that could not be read (deleted, hidden by an ACL), in the view cache. */
const UNREADABLE: TaskView = Object.freeze({ title: '', requester: {}, fields: [] });

/** A position in `ORDERBYsys_updated_on^ORDERBYsys_id` order: the last row of a read. */
interface Position {
  readonly updatedOn: string;
  readonly sysId: string;
}

const parseCursor = (cursor: string): Position => {
  const [updatedOn = '', sysId = ''] = cursor.split(SEP);
  if (!isoOf(updatedOn)) throw new Error(`ServiceNow cursor ${JSON.stringify(cursor)} is not "<sys_updated_on>|<sys_id>"`);
  return { updatedOn, sysId };
};

/** `YYYY-MM-DD HH:mm:ss` (UTC) `seconds` earlier. */
function earlier(glide: string, seconds: number): string {
  const at = Date.parse(`${glide.replace(' ', 'T')}Z`) - Math.ceil(seconds) * 1000;
  return new Date(at).toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * ServiceNow approvals (`sysapproval_approver`), read with the Table API as the integration user:
 * - `changes`: a first sync reads every record in state `requested`; later polls read every record
 *   in `requested` or a state it leaves for (approved, rejected, cancelled, not_required,
 *   duplicate) updated at or after the cursor's second minus `overlapSeconds`. Reads are ordered
 *   `ORDERBYsys_updated_on^ORDERBYsys_id` (ServiceNow documents no order for ties, and many records
 *   share one second: docs/servicenow-api.md sections 2.3, 4.3) and paged by keyset: each page asks
 *   for the rows after the last row read, so records updated (moved to the end) or deleted between
 *   two page requests shift nothing; `sysparm_offset` from the `Link` header's next page is used
 *   only past a page an ACL emptied. The cursor, `<sys_updated_on>|<sys_id>` of the last row, rides
 *   on the last page's batch only; the next poll starts again at the whole second of it (less the
 *   overlap), since a record updated later in that second may sort before it.
 * - `listPending` / `verify`: the sweep's full listing and its GET by sys_id; a record that is gone
 *   (404) is reported not found, which closes its card.
 * The card shows the approved record (a requested item or a change), read once per approval
 * version (cached, and in bulk with `sys_idIN…` per page), or taken from the queued copy of the
 * same version after a restart.
 */
export class ServiceNowApprovalSource implements ApprovalSource {
  /** Cards only link to ServiceNow: approving from chat is not built yet (docs/servicenow-api.md section 10). */
  readonly capabilities: SourceCapabilities = { actions: [] };
  /** What the card shows of an approved record, per `<table>:<task sys_id>@<approval sys_updated_on>`, or {@link UNREADABLE}. */
  private readonly views = new LRUCache<string, TaskView>({ max: 100_000 });
  private readonly mapOptions: MapOptions;
  private readonly tables: ReadonlySet<string>;

  constructor(
    readonly id: string,
    private readonly config: ServiceNowSourceConfig,
    private readonly client: ServiceNowTableClient,
    private readonly logger: Logger,
  ) {
    if (!config.instanceUrl) throw new Error(`servicenow source "${id}": instanceUrl is not set`);
    this.mapOptions = { source: id, instanceUrl: config.instanceUrl, currency: config.currency };
    this.tables = new Set(config.tables);
  }

  /** The instance's config as the source runs with it (an embedded sandbox's URL and credentials merged in). */
  get settings(): ServiceNowSourceConfig {
    return this.config;
  }

  async *changes(cursor: string | undefined, ctx: SyncContext): AsyncIterable<SourceBatch> {
    const from = cursor === undefined ? undefined : parseCursor(cursor);
    // First sync: only what is pending now matters. Later: what is pending, and what left pending.
    const states = from ? [PENDING_STATE, ...Object.keys(COMPLETION_STATES)] : [PENDING_STATE];
    const condition = `state${states.length === 1 ? '=' : 'IN'}${states.join(',')}`;
    const since = from ? earlier(from.updatedOn, this.config.overlapSeconds) : undefined;
    let last: Position | undefined;
    for await (const { records, done } of this.pages(condition, since, ctx.signal)) {
      if (records.length > 0) {
        const tail = records.at(-1)!;
        last = { updatedOn: actual(tail.sys_updated_on), sysId: actual(tail.sys_id) };
      }
      const approvals = await this.map(records, ctx);
      // Until the whole result set is read the cursor stays put, so a failed page replays, never skips.
      // An empty first sync commits none: the next cycle lists what is pending again (no clock to trust here).
      const moved = done && last ? `${last.updatedOn}${SEP}${last.sysId}` : undefined;
      const next = moved !== undefined && moved !== cursor ? moved : undefined;
      if (approvals.length > 0 || next) yield { approvals, cursor: next };
    }
  }

  async *listPending(ctx: SyncContext): AsyncIterable<readonly Approval[]> {
    for await (const { records } of this.pages(`state=${PENDING_STATE}`, undefined, ctx.signal)) {
      if (records.length > 0) yield await this.map(records, ctx);
    }
  }

  async verify(refs: readonly VerifyRef[], ctx: SyncContext): Promise<VerifyResult[]> {
    const results: VerifyResult[] = [];
    for (const ref of refs) {
      const record = /^[0-9a-f]{32}$/.test(ref.externalId) ? await this.client.get(APPROVAL_TABLE, ref.externalId, APPROVAL_FIELDS, ctx.signal) : undefined;
      if (!record) {
        results.push({ found: false, externalId: ref.externalId });
        continue;
      }
      const [approval] = await this.map([record], ctx);
      results.push({ found: true, approval: approval! });
    }
    return results;
  }

  /**
   * The records matching `condition` (and updated at or after `since`), page by page in
   * (sys_updated_on, sys_id) order; `done` on the last page.
   */
  private async *pages(condition: string, since: string | undefined, signal: AbortSignal): AsyncIterable<{ records: readonly TableRecord[]; done: boolean }> {
    const fetchPage = (after: Position | undefined, offset: number) => {
      const query = after ? keysetQuery(condition, after) : `${condition}${since ? `^sys_updated_on>=${since}` : ''}^${ORDER}`;
      return this.client.list(APPROVAL_TABLE, { query, fields: APPROVAL_FIELDS, limit: this.config.pageSize, offset }, signal);
    };
    let after: Position | undefined;
    let next: ReturnType<typeof fetchPage> | undefined = fetchPage(undefined, 0);
    for (let page = 1; next; page++) {
      if (page > MAX_PAGES) throw new Error(`ServiceNow returned more than ${MAX_PAGES} pages of ${APPROVAL_TABLE}; refusing to page further`);
      const { records, nextOffset } = await next;
      const head = records[0];
      if (after && head && !isAfter({ updatedOn: actual(head.sys_updated_on), sysId: actual(head.sys_id) }, after)) {
        // ServiceNow drops a query condition it cannot use instead of failing (docs/servicenow-api.md
        // section 2.2): paging on would read the same rows forever.
        throw new Error(
          `ServiceNow returned ${APPROVAL_TABLE} rows at or before the last row read (${after.updatedOn}, ${after.sysId}); it ignored the paging condition, so paging stops`,
        );
      }
      const done = nextOffset === undefined;
      next = undefined;
      if (!done) {
        // The next page is asked for now, from the last row read (or, past a page an ACL emptied,
        // the offset the Link header names), so it downloads while the runner commits this one.
        const tail = records.at(-1);
        if (tail) after = { updatedOn: actual(tail.sys_updated_on), sysId: actual(tail.sys_id) };
        next = fetchPage(after, tail ? 0 : nextOffset);
        next.catch(() => undefined); // awaited on the next turn; never an unhandled rejection meanwhile
      }
      yield { records, done };
    }
  }

  /**
   * Approval records as approvals, with their card content: the queued copy of the same version
   * (or, for one that left pending, any queued copy) is reused; the others' approved records are
   * read in bulk per table, once per version. A record no longer pending and not queued gets no
   * read: the core only closes cards it holds.
   */
  private async map(records: readonly TableRecord[], ctx: SyncContext): Promise<Approval[]> {
    const bare = records.map((r) => mapApproval(r, undefined, this.mapOptions, ctx.now));
    const queued = ctx.queued ? await ctx.queued(bare.map((a) => a.key)) : new Map<string, Approval>();
    const wanted = new Map<string, Set<string>>();
    const plans = records.map((record, i) => {
      const approval = bare[i]!;
      const copy = queued.get(approval.key);
      if (copy && (approval.status !== 'pending' || copy.sourceData?.updatedOn === approval.sourceData?.updatedOn)) return { copy };
      const task = taskOf(record);
      if ((approval.status !== 'pending' && !copy) || !this.tables.has(task.table) || !/^[0-9a-f]{32}$/.test(task.sysId)) return {};
      const cacheKey = `${task.table}:${task.sysId}@${actual(record.sys_updated_on)}`;
      if (!this.views.has(cacheKey)) wanted.set(task.table, (wanted.get(task.table) ?? new Set()).add(task.sysId));
      return { cacheKey, task };
    });
    const read = await this.readTasks(wanted, ctx.signal);
    return records.map((record, i) => {
      const plan = plans[i]!;
      if ('copy' in plan && plan.copy) {
        const { copy } = plan;
        return { ...bare[i]!, title: copy.title, requester: copy.requester, amount: copy.amount, content: copy.content };
      }
      if (!('cacheKey' in plan) || !plan.cacheKey || !plan.task) return bare[i]!;
      let view = this.views.get(plan.cacheKey);
      if (view === undefined) {
        const row = read.get(`${plan.task.table}:${plan.task.sysId}`);
        view = row ? viewOf(plan.task.table, row, this.config.currency) : UNREADABLE;
        this.views.set(plan.cacheKey, view);
      }
      return view === UNREADABLE ? bare[i]! : mapApproval(record, view, this.mapOptions, ctx.now);
    });
  }

  /** The approved records named, `sys_idIN…` per table, 100 at a time; those not returned (deleted, hidden) are absent. */
  private async readTasks(wanted: ReadonlyMap<string, ReadonlySet<string>>, signal: AbortSignal): Promise<Map<string, TableRecord>> {
    const found = new Map<string, TableRecord>();
    for (const [table, ids] of wanted) {
      const all = [...ids];
      for (let i = 0; i < all.length; i += IN_CHUNK) {
        const chunk = all.slice(i, i + IN_CHUNK);
        const { records } = await this.client.list(
          table,
          { query: `sys_idIN${chunk.join(',')}`, fields: TASK_FIELDS[table as TaskTable], limit: chunk.length },
          signal,
        );
        for (const row of records) found.set(`${table}:${actual(row.sys_id)}`, row);
      }
      const missing = all.filter((id) => !found.has(`${table}:${id}`)).length;
      if (missing > 0)
        this.logger.warn(
          { table, missing },
          'ServiceNow did not return some approved records (deleted, or hidden by an ACL); their cards show the approval only',
        );
    }
    return found;
  }
}

const ORDER = 'ORDERBYsys_updated_on^ORDERBYsys_id';

/** Whether `a` comes after `b` in (sys_updated_on, sys_id) order; both compare as text, as ServiceNow compares them. */
function isAfter(a: Position, b: Position): boolean {
  return a.updatedOn > b.updatedOn || (a.updatedOn === b.updatedOn && a.sysId > b.sysId);
}

/**
 * The rows after `after` in (sys_updated_on, sys_id) order: a later second, or the same second
 * and a greater sys_id. `^NQ` ORs two whole queries, so `condition` is repeated in both
 * (docs/servicenow-api.md sections 2.2, 4.3).
 */
function keysetQuery(condition: string, after: Position): string {
  return `${condition}^sys_updated_on>${after.updatedOn}^NQ${condition}^sys_updated_on=${after.updatedOn}^sys_id>${after.sysId}^${ORDER}`;
}
