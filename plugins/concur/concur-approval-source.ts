import { LRUCache } from 'lru-cache';
import type {
  Approval,
  ApprovalSource,
  Logger,
  SourceBatch,
  SourceCapabilities,
  SyncContext,
  VerifyRef,
  VerifyResult,
} from '../../core/index.js';
import { SHOWN_DETAILS } from '../../core/index.js';
import type { ConcurClient, ReportQuery } from './client/concur-client.js';
import type { ConcurSourceConfig } from './concur-config.js';
import { formatModifiedDateAfter, maxConcurDate } from './mappers/concur-dates.js';
import { summariseEntries } from './mappers/entry-mapper.js';
import { mapReport, type ReportCollection, type ReportGet } from './mappers/report-mapper.js';

/** Marks a report version a first sync took in without line items. */
const BACKLOG: Record<string, unknown> = Object.freeze({});

const enrichmentKey = (a: Approval): string => `${a.externalId}@${String(a.details?.lastModifiedDate)}`;

/**
 * Approvals are committed after this many entries reads, or this long after the first, so a cycle
 * cut short (a crash, a kill, a hung call) keeps what it read, and the next skips those versions.
 */
const ENRICH_CHUNK = 20;
const ENRICH_FLUSH_MS = 1_000;

/** Enough pages for 1,000,000 reports at 100 a page; past this a NextPage loop is a Concur bug. */
const MAX_PAGES = 10_000;

/**
 * SAP Concur expense reports awaiting approval, read with company-wide v3 listings
 * (`user=ALL`, v3.reports.markdown):
 * - `changes`: reports in the pending codes *or* the codes they move to when they leave them,
 *   modified after the cursor minus an overlap window. The cursor is the latest
 *   `LastModifiedDate` of a fully read result set, kept in Concur's own format (Concur documents
 *   no order for the list and no time zone for its dates), so a failed page replays, never skips.
 * - `listPending` / `verify`: the sweep's full listing and its per-report second look.
 * Pending reports are enriched with their entries (cached per report and LastModifiedDate).
 */
export class ConcurApprovalSource implements ApprovalSource {
  readonly capabilities: SourceCapabilities = { actions: [] };
  /** Shown details per `<report id>@<LastModifiedDate>`; {@link BACKLOG} for a version taken in unenriched. */
  private readonly enrichment = new LRUCache<string, Record<string, unknown>>({ max: 200_000 });

  constructor(
    readonly id: string,
    private readonly config: ConcurSourceConfig,
    private readonly client: ConcurClient,
    private readonly logger: Logger,
  ) {}

  private map(report: ReportGet): Approval {
    const approval = mapReport(report, {
      source: this.id,
      companyId: this.config.companyId,
      webHost: this.config.webHost,
      pendingCodes: this.config.pendingStatusCodes,
    });
    return { ...approval, details: { ...approval.details, ownerLoginId: report.OwnerLoginID } };
  }

  async *changes(cursor: string | undefined, ctx: SyncContext): AsyncIterable<SourceBatch> {
    const codes = cursor
      ? [...new Set([...this.config.pendingStatusCodes, ...this.config.completionStatusCodes])]
      : this.config.pendingStatusCodes; // first sync: only what is pending now matters
    const query: ReportQuery = {
      user: 'ALL',
      approvalStatusCode: codes.join(','),
      limit: this.config.pageSize,
      ...(cursor ? { modifiedDateAfter: formatModifiedDateAfter(cursor, this.config.overlapSeconds) } : {}),
    };
    let latest = cursor;
    let pages = 0;
    // The next page is requested as soon as its URL is known, so it downloads while the runner
    // commits the current one (a first sync of 100,000 reports is bound by Concur, not by us).
    let next: Promise<ReportCollection> | undefined = this.client.listReports(query, ctx.signal);
    while (next) {
      const page: ReportCollection = await next;
      const nextPage: string | undefined = page.NextPage ?? undefined;
      if (++pages > MAX_PAGES) throw new Error(`Concur returned more than ${MAX_PAGES} pages; refusing to follow NextPage further`);
      next = nextPage ? this.client.listReports(query, ctx.signal, nextPage) : undefined;
      next?.catch(() => undefined); // awaited on the next turn; never an unhandled rejection meanwhile
      // One event-loop turn, so the request is on the wire before this page's synchronous work
      // (mapping, the SQLite commit) holds the loop.
      if (next) await new Promise<void>((resolve) => setImmediate(resolve));
      const approvals = page.Items.map((r) => this.map(r));
      latest = maxConcurDate(latest, ...page.Items.map((r) => r.LastModifiedDate));
      // A first sync of more than one page takes in a backlog: its cards start without line items
      // (they arrive with the report's next change) instead of costing one entries call per report.
      const backlog = !cursor && (pages > 1 || nextPage !== undefined);
      if (backlog) for (const a of approvals) this.enrichment.set(enrichmentKey(a), BACKLOG);
      // An empty first sync still needs a cursor, or every later change would look like backlog.
      // Concur's dates carry no zone, so start a day back: whatever zone they are in, nothing is missed.
      if (!nextPage && latest === undefined) latest = formatModifiedDateAfter(ctx.now.toISOString().replace('Z', ''), 86_400);
      // The cursor rides only on the last chunk of the last page: until the whole result set is read, it stays put.
      const moved = !nextPage && latest !== cursor ? latest : undefined;
      if (backlog) {
        if (approvals.length > 0 || moved) yield { approvals, cursor: moved };
        continue;
      }
      // Pending versions read before (by this process, or queued before a restart) keep what their
      // entries showed; the others are read one by one, and what is read is committed every
      // ENRICH_CHUNK reads or every second, so a cycle cut short keeps its work.
      await this.recall(approvals, ctx);
      let ready: Approval[] = [];
      let reads = 0;
      let since = performance.now();
      for (const approval of approvals) {
        const [shown, read] = await this.enrich(approval, ctx.signal);
        ready.push(shown);
        if (read) reads++;
        if (reads >= ENRICH_CHUNK || (reads > 0 && performance.now() - since >= ENRICH_FLUSH_MS)) {
          yield { approvals: ready, cursor: undefined };
          ready = [];
          reads = 0;
          since = performance.now();
        }
      }
      if (ready.length > 0 || moved) yield { approvals: ready, cursor: moved };
    }
  }

  async *listPending(ctx: SyncContext): AsyncIterable<readonly Approval[]> {
    const query: ReportQuery = { user: 'ALL', approvalStatusCode: this.config.pendingStatusCodes.join(','), limit: this.config.pageSize };
    let nextPage: string | undefined;
    let pages = 0;
    do {
      const page = await this.client.listReports(query, ctx.signal, nextPage);
      nextPage = page.NextPage ?? undefined;
      if (++pages > MAX_PAGES) throw new Error(`Concur returned more than ${MAX_PAGES} pages; refusing to follow NextPage further`);
      // Details are left unloaded (undefined): the queue keeps what it has for reports it knows.
      yield page.Items.map((r) => ({ ...this.map(r), details: undefined }));
    } while (nextPage);
  }

  async verify(refs: readonly VerifyRef[], ctx: SyncContext): Promise<VerifyResult[]> {
    const results: VerifyResult[] = [];
    for (const ref of refs) {
      const owner = typeof ref.details?.ownerLoginId === 'string' ? ref.details.ownerLoginId : undefined;
      const report = await this.client.getReport(ref.externalId, owner, ctx.signal);
      results.push(report ? { found: true, approval: { ...this.map(report), details: undefined } } : { found: false, externalId: ref.externalId });
    }
    return results;
  }

  /**
   * Fills the enrichment cache from the queue for pending versions this process has not read: a
   * queued copy of the same version that has line items shows what its entries showed.
   */
  private async recall(approvals: readonly Approval[], ctx: SyncContext): Promise<void> {
    if (!this.config.enrich || !ctx.queued) return;
    const unread = approvals.filter((a) => a.status === 'pending' && !this.enrichment.has(enrichmentKey(a)));
    if (unread.length === 0) return;
    const queued = await ctx.queued(unread.map((a) => a.key));
    for (const approval of unread) {
      const copy = queued.get(approval.key);
      if (!copy || enrichmentKey(copy) !== enrichmentKey(approval) || !Array.isArray(copy.details?.lineItems)) continue;
      this.enrichment.set(enrichmentKey(approval), Object.fromEntries(SHOWN_DETAILS.map((k) => [k, copy.details?.[k]])));
    }
  }

  /**
   * Adds a line-item summary to a pending report, and says whether that took an entries call. A
   * report whose entries cannot be read goes without (and is read again when next listed).
   */
  private async enrich(approval: Approval, signal: AbortSignal): Promise<[Approval, boolean]> {
    if (!this.config.enrich || approval.status !== 'pending') return [approval, false];
    const cacheKey = enrichmentKey(approval);
    const cached = this.enrichment.get(cacheKey);
    // BACKLOG: re-read by the overlap window, unchanged since the backlog took it in: keep the card as shown.
    if (cached === BACKLOG) return [approval, false];
    if (cached) return [{ ...approval, details: { ...approval.details, ...cached } }, false];
    try {
      const owner = typeof approval.details?.ownerLoginId === 'string' ? approval.details.ownerLoginId : undefined;
      const entries = await this.client.listEntries(approval.externalId, owner, signal);
      const summary = summariseEntries(entries, approval.amount?.currency ?? 'USD');
      const flags = new Set(summary.flags);
      if (approval.details?.hasException === true) flags.add('exceptions');
      const shown = {
        lineItems: summary.lines,
        flags: [...flags],
        fields: [
          { label: 'Entries', value: String(summary.count) },
          ...(summary.expenseTypes.length ? [{ label: 'Expense types', value: summary.expenseTypes.map((t) => `${t.name} (${t.count})`).join(', ') }] : []),
        ],
      };
      this.enrichment.set(cacheKey, shown);
      return [{ ...approval, details: { ...approval.details, ...shown } }, true];
    } catch (error) {
      if (signal.aborted) throw error;
      this.logger.warn({ report: approval.externalId, err: (error as Error).message }, 'could not read expense entries; card shows no line items');
      return [approval, true];
    }
  }
}
