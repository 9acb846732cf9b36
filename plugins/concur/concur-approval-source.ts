import { LRUCache } from 'lru-cache';
import type {
  ActionResult,
  Approval,
  ClaimedTrigger,
  Completion,
  ApprovalContent,
  ApprovalSource,
  Logger,
  SourceBatch,
  SourceActRequest,
  SourceConnections,
  SourceCapabilities,
  SourceState,
  SyncContext,
  VerifyRef,
  VerifyResult,
} from '../../core/index.js';
import { approvalKey } from '../../core/index.js';
import type { ConcurClient, ReportQuery } from './client/concur-client.js';
import type { ConcurSourceConfig } from './concur-config.js';
import type { ConcurDelegateDirectory } from './concur-delegates.js';
import type { ApproverConsents } from './consent/approver-consents.js';
import type { ConcurActions } from './consent/concur-actions.js';
import { compareConcurDates, formatModifiedDateAfter, maxConcurDate } from './mappers/concur-dates.js';
import { summariseEntries } from './mappers/entry-mapper.js';
import { EXPENSE_REPORT_KIND, mapReport, type ReportCollection, type ReportGet } from './mappers/report-mapper.js';

/** Marks a report version a first sync took in without line items (in the enrichment cache). */
const BACKLOG: ApprovalContent = Object.freeze({});

/**
 * The same fact, kept with the queued approval (`sourceData.entriesDeferred: true`) so it survives a
 * restart: a new process that re-reads such a version in the overlap window leaves it to the
 * backfill instead of reading its entries and sending an UPDATED card that shows nothing new.
 */
const DEFERRED = 'entriesDeferred';

/**
 * The backfill's durable state (SourceState keys): the report ids of the backlog, newest
 * submission first, written once when a first sync takes a backlog in; and how far the backfill
 * has come (`<next index>/<total>`), written after each committed batch.
 */
const BACKLOG_IDS = 'backfill.ids';
const BACKLOG_PROGRESS = 'backfill.progress';

const enrichmentKey = (a: Approval): string => `${a.externalId}@${String(a.sourceData?.lastModifiedDate)}`;

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
 * Pending reports are enriched with their entries (cached per report and LastModifiedDate);
 * those of a multi-page first sync's backlog are taken in without and get them from `backfill`.
 */
export class ConcurApprovalSource implements ApprovalSource {
  /** `actions` as configured (opt-in); empty without a consent setup, so cards only link to Concur. */
  readonly capabilities: SourceCapabilities;
  /** Card content per `<report id>@<LastModifiedDate>`; {@link BACKLOG} for a version taken in unenriched. */
  private readonly enrichment = new LRUCache<string, ApprovalContent>({ max: 200_000 });
  /** The backlog's report ids, once read from (or written to) the source state. */
  private backlogIds: string[] | undefined;
  /** Set by the cycle that took a backlog in: go-live spends listing calls only, the backfill starts next cycle. */
  private backlogJustTaken = false;
  /** Reports whose entries read failed in the backfill, by id: a second failure skips the report. */
  private readonly backfillFailures = new Map<string, number>();

  constructor(
    readonly id: string,
    private readonly config: ConcurSourceConfig,
    private readonly client: ConcurClient,
    private readonly logger: Logger,
    private readonly state?: SourceState,
    /** Set when `actions` is configured: acting as each approver, and their stored consents (for the CLI). */
    private readonly acting?: { readonly actions: ConcurActions; readonly consents: ApproverConsents },
    /** Set when `delegates.notify` is on: each pending report's approvers get their expense delegates added. */
    private readonly delegates?: ConcurDelegateDirectory,
  ) {
    const events = config.events.enabled
      ? { pollIntervalMs: config.events.pollIntervalSeconds * 1000, silenceMs: config.events.silenceMinutes * 60_000, maxRefused: config.events.maxRefused }
      : undefined;
    this.capabilities = { actions: acting ? [...config.actions] : [], ...(events ? { events } : {}) };
  }

  /** The instance's config as the source runs with it (an embedded sandbox's URL and credentials merged in), for the CLI. */
  get settings(): ConcurSourceConfig {
    return this.config;
  }

  /** Approvers' stored consents, when actions are on. */
  get consents(): ApproverConsents | undefined {
    return this.acting?.consents;
  }

  /** Connections for actions, as every channel sees them: when an approver connected, and their own "Disconnect". */
  get connections(): SourceConnections | undefined {
    const consents = this.acting?.consents;
    if (!consents) return undefined;
    return {
      connectedAt: async (email) => (await consents.list()).find((e) => e.email === email)?.connectedAt,
      disconnect: (email) => consents.forget(email),
    };
  }

  /** Approve or send back as the approver, under their own Concur token (see ConcurActions). */
  act(request: SourceActRequest): Promise<ActionResult> {
    if (!this.acting) return Promise.resolve({ outcome: 'refused', message: `Actions are not turned on for Concur source "${this.id}".` });
    return this.acting.actions.act(request);
  }

  private map(report: ReportGet): Approval {
    const approval = mapReport(report, {
      source: this.id,
      companyId: this.config.companyId,
      webHost: this.config.webHost,
      pendingCodes: this.config.pendingStatusCodes,
    });
    return { ...approval, sourceData: { ...approval.sourceData, ownerLoginId: report.OwnerLoginID } };
  }

  async *changes(cursor: string | undefined, ctx: SyncContext): AsyncIterable<SourceBatch> {
    const codes = cursor ? [...new Set([...this.config.pendingStatusCodes, ...this.config.completionStatusCodes])] : this.config.pendingStatusCodes; // first sync: only what is pending now matters
    const query: ReportQuery = {
      user: 'ALL',
      approvalStatusCode: codes.join(','),
      limit: this.config.pageSize,
      ...(cursor ? { modifiedDateAfter: formatModifiedDateAfter(cursor, this.config.overlapSeconds) } : {}),
    };
    let latest = cursor;
    let pages = 0;
    /** A first sync's backlog (id, submit time), for the backfill's list. */
    const taken: { id: string; submittedAt: string }[] = [];
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
      const approvals = await this.withDelegates(
        page.Items.map((r) => this.map(r)),
        ctx.signal,
      );
      latest = maxConcurDate(latest, ...page.Items.map((r) => r.LastModifiedDate));
      // A first sync of more than one page takes in a backlog: its cards start without line items
      // (they arrive with the report's next change) instead of costing one entries call per report.
      const backlog = !cursor && (pages > 1 || nextPage !== undefined);
      if (backlog) {
        for (const [i, a] of approvals.entries()) {
          this.enrichment.set(enrichmentKey(a), BACKLOG);
          if (this.config.enrich && a.status === 'pending') {
            approvals[i] = { ...a, sourceData: { ...a.sourceData, [DEFERRED]: true } };
            taken.push({ id: a.externalId, submittedAt: a.submittedAt ?? '' });
          }
        }
      }
      // An empty first sync still needs a cursor, or every later change would look like backlog.
      // Concur's dates carry no zone, so start a day back: whatever zone they are in, nothing is missed.
      if (!nextPage && latest === undefined) latest = formatModifiedDateAfter(ctx.now.toISOString().replace('Z', ''), 86_400);
      // The cursor rides only on the last chunk of the last page: until the whole result set is read, it stays put.
      const moved = !nextPage && latest !== cursor ? latest : undefined;
      if (backlog) {
        // The backfill's list is written before the batch that moves the cursor: if that commit
        // fails, the next cycle is a first sync again and writes it anew.
        if (!nextPage) await this.saveBacklog(taken);
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
      // Content and source data are left unloaded (undefined): the queue keeps what it has for reports it knows.
      yield this.withDelegates(
        page.Items.map((r) => ({ ...this.map(r), content: undefined, sourceData: undefined })),
        ctx.signal,
      );
    } while (nextPage);
  }

  /**
   * The reports push events named, read again (events are triggers, never truth): one GET per
   * report however many events named it, carrying the newest event's correlation id as Concur
   * asks, and skipped when the queue already holds a version at least as new as every event's
   * `lastModifiedDate` (a duplicate or late event). A pending report gets its entries when its
   * version is new; a report Concur no longer has closes its card.
   */
  async refresh(triggers: readonly ClaimedTrigger[], ctx: SyncContext): Promise<SourceBatch> {
    const byReport = new Map<string, ClaimedTrigger[]>();
    for (const t of triggers) byReport.set(t.externalId, [...(byReport.get(t.externalId) ?? []), t]);
    const keys = [...byReport.keys()].map((id) => approvalKey(this.id, EXPENSE_REPORT_KIND, id));
    const queued = ctx.queued ? await ctx.queued(keys) : new Map<string, Approval>();
    const approvals: Approval[] = [];
    const completions: Completion[] = [];
    for (const [id, named] of byReport) {
      const key = approvalKey(this.id, EXPENSE_REPORT_KIND, id);
      const copy = queued.get(key);
      const newest = named.reduce((a, b) => (String(b.data?.lastModifiedDate ?? '') > String(a.data?.lastModifiedDate ?? '') ? b : a));
      const deleted = named.some((t) => t.data?.eventType === 'reportDeleted');
      if (copy && !deleted && isSeen(copy.sourceData?.lastModifiedDate, named)) continue;
      const owner = typeof copy?.sourceData?.ownerLoginId === 'string' ? copy.sourceData.ownerLoginId : undefined;
      const correlationId = typeof newest.data?.correlationId === 'string' ? newest.data.correlationId : undefined;
      const report = await this.client.getReport(id, owner, ctx.signal, correlationId);
      if (!report) {
        if (copy) completions.push({ key, status: 'no_longer_required' });
        continue;
      }
      const approval = this.map(report);
      await this.recall([approval], ctx);
      const [shown] = await this.enrich(approval, ctx.signal, correlationId);
      approvals.push(shown);
    }
    // The same delegates as every other path lists, or a push would look like a reassignment.
    return { approvals: await this.withDelegates(approvals, ctx.signal), completions };
  }

  async verify(refs: readonly VerifyRef[], ctx: SyncContext): Promise<VerifyResult[]> {
    const results: VerifyResult[] = [];
    for (const ref of refs) {
      const owner = typeof ref.sourceData?.ownerLoginId === 'string' ? ref.sourceData.ownerLoginId : undefined;
      const report = await this.client.getReport(ref.externalId, owner, ctx.signal);
      results.push(
        report ? { found: true, approval: { ...this.map(report), content: undefined, sourceData: undefined } } : { found: false, externalId: ref.externalId },
      );
    }
    if (!this.delegates) return results;
    // Every path that yields approvals lists the same delegates, or a sweep would look like a reassignment.
    const found = await this.withDelegates(
      results.flatMap((r) => (r.found ? [r.approval] : [])),
      ctx.signal,
    );
    let i = 0;
    return results.map((r) => (r.found ? { found: true, approval: found[i++]! } : r));
  }

  /** `approvals` with the approvers' expense delegates added (see ConcurDelegateDirectory), when `delegates.notify` is on. */
  private async withDelegates(approvals: Approval[], signal: AbortSignal): Promise<Approval[]> {
    return this.delegates ? this.delegates.expand(approvals, signal) : approvals;
  }

  /**
   * Fills the enrichment cache from the queue for pending versions this process has not read: a
   * queued copy of the same version that has line items shows what its entries showed; one taken
   * in without them (a backlog) is left to the backfill.
   */
  private async recall(approvals: readonly Approval[], ctx: SyncContext): Promise<void> {
    if (!this.config.enrich || !ctx.queued) return;
    const unread = approvals.filter((a) => a.status === 'pending' && !this.enrichment.has(enrichmentKey(a)));
    if (unread.length === 0) return;
    const queued = await ctx.queued(unread.map((a) => a.key));
    for (const approval of unread) {
      const copy = queued.get(approval.key);
      if (!copy || enrichmentKey(copy) !== enrichmentKey(approval)) continue;
      if (copy.sourceData?.[DEFERRED] === true) this.enrichment.set(enrichmentKey(approval), BACKLOG);
      else if (Array.isArray(copy.content?.lineItems)) {
        this.enrichment.set(enrichmentKey(approval), copy.content);
      }
    }
  }

  /**
   * Adds a line-item summary to a pending report, and says whether that took an entries call. A
   * report whose entries cannot be read goes without (and is read again when next listed).
   */
  private async enrich(approval: Approval, signal: AbortSignal, correlationId?: string): Promise<[Approval, boolean]> {
    if (!this.config.enrich || approval.status !== 'pending') return [approval, false];
    const cacheKey = enrichmentKey(approval);
    const cached = this.enrichment.get(cacheKey);
    // BACKLOG: re-read by the overlap window, unchanged since the backlog took it in: keep the card as shown.
    if (cached === BACKLOG) return [approval, false];
    if (cached) return [{ ...approval, content: { ...approval.content, ...cached } }, false];
    const shown = await this.readEntries(approval, signal, correlationId);
    return [shown ? { ...approval, content: { ...approval.content, ...shown } } : approval, true];
  }

  /**
   * One entries read: what the card shows of them, cached for this version; undefined (logged)
   * when they cannot be read. Throws only when `signal` aborted.
   */
  private async readEntries(approval: Approval, signal: AbortSignal, correlationId?: string): Promise<ApprovalContent | undefined> {
    try {
      const owner = typeof approval.sourceData?.ownerLoginId === 'string' ? approval.sourceData.ownerLoginId : undefined;
      const entries = await this.client.listEntries(approval.externalId, owner, signal, correlationId);
      const summary = summariseEntries(entries, approval.amount?.currency ?? 'USD');
      const flags = new Set(summary.flags);
      if (approval.sourceData?.hasException === true) flags.add('exceptions');
      const shown = {
        lineItems: summary.lines,
        flags: [...flags],
        fields: [
          { label: 'Entries', value: String(summary.count) },
          ...(summary.expenseTypes.length ? [{ label: 'Expense types', value: summary.expenseTypes.map((t) => `${t.name} (${t.count})`).join(', ') }] : []),
        ],
      };
      this.enrichment.set(enrichmentKey(approval), shown);
      return shown;
    } catch (error) {
      if (signal.aborted) throw error;
      this.logger.warn({ report: approval.externalId, err: (error as Error).message }, 'could not read expense entries; card shows no line items');
      return undefined;
    }
  }

  /**
   * The line items of a first sync's backlog, `backfillCallsPerCycle` entries reads a cycle at
   * most, newest submission first, from the cycle after go-live on. Each report is yielded as the
   * version queued plus what its entries show, so its card is updated in place (an `update`,
   * never a second notify); reports that left the queue, or were read since because they changed,
   * cost nothing. Progress is saved after each committed batch, so a restart resumes where it was.
   */
  async *backfill(ctx: SyncContext): AsyncIterable<SourceBatch> {
    const budget = this.config.backfillCallsPerCycle;
    if (!this.config.enrich || budget <= 0 || !ctx.queued || !this.state) return;
    if (this.backlogJustTaken) {
      this.backlogJustTaken = false;
      return;
    }
    const ids = await this.loadBacklog();
    let next = await this.progress();
    let calls = 0;
    while (next < ids.length && calls < budget && !ctx.signal.aborted) {
      const slice = ids.slice(next, next + Math.min(budget - calls, ENRICH_CHUNK));
      const queued = await ctx.queued(slice.map((id) => approvalKey(this.id, EXPENSE_REPORT_KIND, id)));
      const ready: Approval[] = [];
      let stop = false;
      for (const id of slice) {
        const copy = queued.get(approvalKey(this.id, EXPENSE_REPORT_KIND, id));
        if (copy?.status === 'pending' && copy.sourceData?.[DEFERRED] === true) {
          const {
            revision: _r,
            fingerprint: _f,
            queuedAt: _q,
            generation: _g,
            ...approval
          } = copy as Approval & Record<'revision' | 'fingerprint' | 'queuedAt' | 'generation', unknown>;
          const { [DEFERRED]: _d, ...sourceData } = approval.sourceData ?? {};
          calls++;
          const shown = await this.readEntries(approval, ctx.signal);
          if (!shown) {
            // Tried again next cycle; a second failure gives up on it (its card gets line items when the report next changes).
            const failures = (this.backfillFailures.get(id) ?? 0) + 1;
            this.backfillFailures.set(id, failures);
            if (failures < 2) {
              stop = true;
              break;
            }
            next++;
            continue;
          }
          ready.push({ ...approval, sourceData, content: { ...approval.content, ...shown } });
        }
        next++;
      }
      if (ready.length > 0) yield { approvals: ready };
      await this.state.set(BACKLOG_PROGRESS, `${next}/${ids.length}`);
      if (stop) break;
    }
  }

  /** Reports of the backlog the backfill has not reached yet (0 without one). */
  async backfillPending(): Promise<number> {
    if (!this.config.enrich || !this.state) return 0;
    const [next, total] = ((await this.state.get(BACKLOG_PROGRESS)) ?? '0/0').split('/').map(Number);
    return Math.max(0, (total ?? 0) - (next ?? 0));
  }

  private async progress(): Promise<number> {
    return Number(((await this.state?.get(BACKLOG_PROGRESS)) ?? '0/0').split('/')[0]) || 0;
  }

  private async loadBacklog(): Promise<string[]> {
    if (!this.backlogIds) {
      const raw = await this.state?.get(BACKLOG_IDS);
      const parsed: unknown = raw ? JSON.parse(raw) : [];
      this.backlogIds = Array.isArray(parsed) ? parsed.filter((id): id is string => typeof id === 'string') : [];
    }
    return this.backlogIds;
  }

  /** Writes the backlog's ids, newest submission first, and starts the backfill at the first. */
  private async saveBacklog(backlog: readonly { id: string; submittedAt: string }[]): Promise<void> {
    if (!this.state || !this.config.enrich) return;
    const ids = [...backlog].sort((a, b) => (a.submittedAt < b.submittedAt ? 1 : a.submittedAt > b.submittedAt ? -1 : 0)).map((r) => r.id);
    await this.state.set(BACKLOG_IDS, JSON.stringify(ids));
    await this.state.set(BACKLOG_PROGRESS, `0/${ids.length}`);
    this.backlogIds = ids;
    this.backlogJustTaken = true;
    this.backfillFailures.clear();
  }
}

/**
 * Whether the queued version (v3 `LastModifiedDate`, which carries no zone) is at least as new as
 * every event's `lastModifiedDate` (ISO with `Z`), both read as Concur dates (no zone: UTC). An
 * event without a readable one is never taken as seen.
 */
function isSeen(queuedModified: unknown, triggers: readonly ClaimedTrigger[]): boolean {
  if (typeof queuedModified !== 'string') return false;
  return triggers.every((t) => {
    const at = t.data?.lastModifiedDate;
    if (typeof at !== 'string') return false;
    try {
      return compareConcurDates(at, queuedModified) <= 0;
    } catch {
      return false;
    }
  });
}
