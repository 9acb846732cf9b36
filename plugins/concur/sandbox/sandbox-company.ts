import type { SandboxClock } from './sandbox-clock.js';
import { entriesFromSpecs, generateEntries, summarizeEntries, type EntryData, type EntrySpec } from './sandbox-entries.js';
import { SandboxDelegates } from './sandbox-delegates.js';
import { concurDateTime, sqlDatetimeMs, utcMidnight } from './sandbox-format.js';
import { SandboxDirectory, type SandboxUser } from './sandbox-people.js';
import { CONCUR_ID_ALPHABET, SeededRandom } from './sandbox-random.js';

/**
 * The seeded company: users, expense reports, indexes, and the approval state machine that the
 * admin API and the v4 workflow endpoints drive. Records are immutable and replaced on every change
 * (copy-on-write), so a listing snapshot holding the old objects is a true point-in-time view.
 */

/** Standard approval status codes (concur-api.md 1.3) and the English names the sandbox prints. */
export const APPROVAL_STATUS_NAMES: Readonly<Record<string, string>> = {
  A_AAFH: 'Anomaly & Fraud Check',
  A_ACCO: 'Approved & In Accounting Review',
  A_APPR: 'Approved',
  A_EXTV: 'Pending External Validation',
  A_FILE: 'Submitted',
  A_NOTF: 'Not Submitted',
  A_PBDG: 'Pending Budget Approval',
  A_PECO: 'Pending Cost Object Approval',
  A_PEND: 'Submitted & Pending Approval',
  A_PVAL: 'Pending Prepayment Validation',
  A_RESU: 'Sent Back to Employee',
  A_RHLD: 'Pending Receipt Images',
  A_TEXP: 'Approval Time Expired',
};

export const PAYMENT_STATUS_NAMES: Readonly<Record<string, string>> = {
  P_HOLD: 'Payment on Hold',
  P_NOTP: 'Not Paid',
  P_PAID: 'Paid',
  P_PAYC: 'Payment Confirmed',
  P_PROC: 'Processing Payment',
};

/** Statuses in which a named person (ApproverLoginID) has the report in their queue. */
export const STATUSES_WITH_APPROVER: ReadonlySet<string> = new Set(['A_PEND', 'A_PECO', 'A_PBDG']);

export class SandboxError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'SandboxError';
  }
}

/**
 * The sequence number of the workflow step a report waits in, what Workflows v4's
 * `expectedStepSequence` names (docs/concur-api.md 2.4). The sandbox models only manager steps, so
 * step n is the n-th approval since the last submit; null when no step is waiting.
 */
export function stepSequence(r: ReportRecord): number | null {
  return r.approverIndex !== null && STATUSES_WITH_APPROVER.has(r.status) ? r.approvalLevel + 1 : null;
}

export interface ReportRecord {
  readonly id: string;
  /** v4 `reportNumber`: 6 characters. */
  readonly reportNumber: string;
  readonly name: string;
  readonly ownerIndex: number;
  readonly approverIndex: number | null;
  readonly status: string;
  readonly paymentStatus: string;
  readonly currencyCode: string;
  readonly country: string;
  readonly countrySubdivision: string | null;
  readonly policyId: string;
  readonly totalCents: number;
  readonly personalCents: number;
  readonly companyCardCents: number;
  readonly createdMs: number;
  readonly submitMs: number | null;
  readonly processingPaymentMs: number | null;
  readonly paidMs: number | null;
  readonly lastModifiedMs: number;
  readonly userDefinedMs: number;
  readonly receiptsReceived: boolean;
  readonly everSentBack: boolean;
  readonly hasException: boolean;
  /** The approver rejected some of its expenses in Concur's UI: approving it then needs `expenseRejectedComment`. */
  readonly rejectedExpenses?: boolean;
  readonly lastComment: string;
  readonly entrySeed: number;
  readonly entryCount: number;
  /** Entries given to `submit`; null when they are regenerated from `entrySeed`. */
  readonly explicitEntries: readonly EntryData[] | null;
  /** Manager approvals already given in the current submission. */
  readonly approvalLevel: number;
}

export interface CompanyOptions {
  readonly seed: number;
  readonly companyId: string;
  readonly reports: number;
  readonly otherReports: number;
  readonly approvers: number;
  readonly employees: number;
  readonly emailDiffersFromLoginRate: number;
  readonly workflowBumpsLastModified: boolean;
  readonly approvalLevels: number;
  readonly finalApprovalStatus: string;
  readonly clock: SandboxClock;
  /** Share of approvers seeded with one expense delegate (another approver) who can approve and gets approval e-mails. Default 0. */
  readonly delegateRate?: number;
}

/** Filters of the v3 list call that the company evaluates. */
export interface ReportFilter {
  readonly statuses?: readonly string[];
  readonly ownerIndex?: number;
  readonly approverLogin?: string;
  readonly modifiedAfterMs?: number;
  readonly modifiedBeforeMs?: number;
  readonly submitAfterMs?: number;
  readonly submitBeforeMs?: number;
  readonly currencyCodes?: readonly string[];
  readonly paymentStatuses?: readonly string[];
}

export interface SubmitSpec {
  /** Owner login ID; default: a seeded-random employee. */
  readonly owner?: string;
  /** Approver login ID; default: the owner's manager. */
  readonly approver?: string;
  readonly name?: string;
  /** Report total in its currency; default: the sum of its entries. */
  readonly total?: number;
  /** A count of seeded entries (0–50) or explicit entries; default: 1–8 seeded ones. */
  readonly entries?: number | readonly EntrySpec[];
}

export interface EditSpec {
  readonly name?: string;
  readonly total?: number;
  readonly hasException?: boolean;
  /** The approver rejected some expenses in Concur (its approve then needs `expenseRejectedComment`). */
  readonly rejectedExpenses?: boolean;
  readonly receiptsReceived?: boolean;
  readonly lastComment?: string;
  readonly paymentStatusCode?: string;
}

export interface ApproveOptions {
  /** Approve and forward to this login (the report stays pending). */
  readonly nextApprover?: string;
  /** Move to this status code instead of the configured next step (e.g. `A_PECO`, `A_ACCO`). */
  readonly status?: string;
}

/** The truth as `state()` reports it, one row per existing report. */
export interface ReportState {
  readonly id: string;
  readonly name: string;
  readonly status: string;
  readonly ownerLoginID: string;
  readonly approverLoginID: string | null;
  readonly lastModifiedDate: string;
  readonly total: number;
  readonly currencyCode: string;
  /** The current workflow step's sequence number (see {@link stepSequence}); null when no step waits. */
  readonly stepSequence: number | null;
}

/** What happened to a report, as the ESS expense events tell it (v4.expense-events.md). */
export type ReportChangeKind = 'created' | 'submitted' | 'approved' | 'sentBack' | 'recalled' | 'reassigned' | 'edited' | 'deleted';

/**
 * One change of the company's reports, handed to every observer after the change is made.
 * `before` is absent for `created`, `after` for `deleted`. `actorIndex` is the user who acted:
 * the owner for create, submit, recall, edit and delete; the approver whose step it was for
 * approve and send back; null for reassign (an administrator).
 */
export interface ReportChange {
  readonly kind: ReportChangeKind;
  readonly before: ReportRecord | undefined;
  readonly after: ReportRecord | undefined;
  readonly actorIndex: number | null;
}

export type ReportObserver = (change: ReportChange) => void;

const PURPOSES = [
  'Client visit',
  'Sales kickoff',
  'Conference',
  'Team offsite',
  'Customer workshop',
  'Training',
  'Trade show',
  'Board meeting',
  'Recruiting trip',
  'Site audit',
  'Partner summit',
  'Project kickoff',
];
const CITIES = ['Seattle', 'Denver', 'Toronto', 'Berlin', 'London', 'Austin', 'Chicago', 'Munich', 'Vancouver', 'Boston'];
const SEND_BACK_COMMENTS = ['Please attach the hotel receipt.', 'Wrong cost center, please fix.', 'Split the meal per attendee.'];

const DAY = 86_400_000;

export class SandboxCompany {
  readonly directory: SandboxDirectory;
  readonly companyId: string;
  /** Users' expense delegates (Spend User's Delegate extension). */
  readonly delegates = new SandboxDelegates();
  private readonly options: CompanyOptions;
  private readonly rng: SeededRandom;
  private readonly reports = new Map<string, ReportRecord>();
  private readonly byStatus = new Map<string, Set<string>>();
  private readonly byApprover = new Map<number, Set<string>>();
  private readonly employees: readonly SandboxUser[];
  private readonly observers: ReportObserver[] = [];

  constructor(options: CompanyOptions) {
    if (options.approvers < 1) throw new RangeError('approvers must be at least 1');
    if (options.employees < 1) throw new RangeError('employees must be at least 1');
    if (options.approvalLevels < 1) throw new RangeError('approvalLevels must be at least 1');
    this.options = options;
    this.companyId = options.companyId;
    this.rng = new SeededRandom(options.seed);
    const nowMs = options.clock.nowMs();
    const policyIds = [0, 1, 2].map(() => `gWmINGEAkQo${this.rng.chars(24, CONCUR_ID_ALPHABET)}`);
    this.directory = SandboxDirectory.generate(this.rng, {
      approvers: options.approvers,
      employees: options.employees,
      emailDiffersFromLoginRate: options.emailDiffersFromLoginRate,
      nowMs,
      policyIds,
    });
    this.employees = this.directory.employees();
    this.seed(nowMs);
    // Its own random stream, so turning delegates on leaves every other seeded value as it was.
    this.delegates.seed(this.directory, options.delegateRate ?? 0, new SeededRandom(options.seed ^ 0xde1e6a7e));
  }

  /**
   * Calls `observer` after every change of a report (the seeded reports are not changes). The
   * one place the ESS sender hooks in, so every way of changing a report (admin API, v4 workflow
   * calls) produces its events. Returns a function that removes the observer.
   */
  observe(observer: ReportObserver): () => void {
    this.observers.push(observer);
    return () => {
      const i = this.observers.indexOf(observer);
      if (i >= 0) this.observers.splice(i, 1);
    };
  }

  private emit(kind: ReportChangeKind, before: ReportRecord | undefined, after: ReportRecord | undefined, actorIndex: number | null): void {
    for (const observer of [...this.observers]) observer({ kind, before, after, actorIndex });
  }

  // ---- reads -------------------------------------------------------------------------------

  get size(): number {
    return this.reports.size;
  }

  get(id: string): ReportRecord | undefined {
    return this.reports.get(id);
  }

  /** Every report matching `filter`, in insertion order (callers shuffle: Concur promises no order). */
  query(filter: ReportFilter): ReportRecord[] {
    let ids: Iterable<string>;
    if (filter.approverLogin !== undefined) {
      const approver = this.directory.byLoginId(filter.approverLogin);
      if (!approver) return [];
      ids = this.byApprover.get(approver.index) ?? [];
    } else if (filter.statuses) {
      const sets = filter.statuses.map((s) => this.byStatus.get(s)).filter((s): s is Set<string> => s !== undefined);
      ids = sets.length === 1 ? (sets[0] as Set<string>) : sets.flatMap((s) => [...s]);
    } else {
      ids = this.reports.keys();
    }
    const statuses = filter.statuses ? new Set(filter.statuses) : undefined;
    const currencies = filter.currencyCodes ? new Set(filter.currencyCodes) : undefined;
    const payments = filter.paymentStatuses ? new Set(filter.paymentStatuses) : undefined;
    const out: ReportRecord[] = [];
    for (const id of ids) {
      const r = this.reports.get(id);
      if (!r) continue;
      if (statuses && !statuses.has(r.status)) continue;
      if (filter.ownerIndex !== undefined && r.ownerIndex !== filter.ownerIndex) continue;
      if (filter.modifiedAfterMs !== undefined && !(r.lastModifiedMs > filter.modifiedAfterMs)) continue;
      if (filter.modifiedBeforeMs !== undefined && !(r.lastModifiedMs < filter.modifiedBeforeMs)) continue;
      if (filter.submitAfterMs !== undefined && !(r.submitMs !== null && r.submitMs > filter.submitAfterMs)) continue;
      if (filter.submitBeforeMs !== undefined && !(r.submitMs !== null && r.submitMs < filter.submitBeforeMs)) continue;
      if (currencies && !currencies.has(r.currencyCode)) continue;
      if (payments && !payments.has(r.paymentStatus)) continue;
      out.push(r);
    }
    return out;
  }

  /** Reports waiting on this user (v4 reportsToApprove); the sandbox has no delegates. */
  waitingOn(userIndex: number): ReportRecord[] {
    const out: ReportRecord[] = [];
    for (const id of this.byApprover.get(userIndex) ?? []) {
      const r = this.reports.get(id);
      if (r) out.push(r);
    }
    return out;
  }

  entries(record: ReportRecord): readonly EntryData[] {
    return record.explicitEntries ?? generateEntries(record.entrySeed, record.entryCount, record.currencyCode, record.createdMs);
  }

  state(): ReportState[] {
    const out: ReportState[] = [];
    for (const r of this.reports.values()) {
      out.push({
        id: r.id,
        name: r.name,
        status: r.status,
        ownerLoginID: this.directory.get(r.ownerIndex).loginId,
        approverLoginID: r.approverIndex === null ? null : this.directory.get(r.approverIndex).loginId,
        lastModifiedDate: concurDateTime(r.lastModifiedMs),
        total: r.totalCents / 100,
        currencyCode: r.currencyCode,
        stepSequence: stepSequence(r),
      });
    }
    return out;
  }

  // ---- state machine -----------------------------------------------------------------------

  /** A new report submitted by `owner` to `approver` (A_PEND). */
  submit(spec: SubmitSpec = {}): ReportRecord {
    const owner = spec.owner !== undefined ? this.requireUser(spec.owner, 'owner') : this.rng.pick(this.employees);
    const approver = spec.approver !== undefined ? this.requireUser(spec.approver, 'approver') : this.directory.manager(owner);
    if (!approver) throw new SandboxError(409, `${owner.loginId} has no approver; pass one`);
    if (approver.index === owner.index) throw new SandboxError(409, 'an owner cannot approve their own report');
    const now = this.now();
    const base = this.newRecord(owner, now, this.entryPlan(spec.entries, owner.currencyCode, now));
    const record: ReportRecord = {
      ...base,
      name: spec.name ?? base.name,
      totalCents: spec.total !== undefined ? Math.round(spec.total * 100) : base.totalCents,
      status: 'A_PEND',
      approverIndex: approver.index,
      submitMs: now,
      lastModifiedMs: now,
    };
    this.insert(record);
    this.emit('created', undefined, { ...record, status: 'A_NOTF', approverIndex: null, submitMs: null }, owner.index);
    this.emit('submitted', { ...record, status: 'A_NOTF', approverIndex: null, submitMs: null }, record, owner.index);
    return record;
  }

  /** A report that was sent back, recalled or never submitted goes (back) to the owner's manager. */
  resubmit(id: string): ReportRecord {
    const r = this.require(id);
    if (r.status !== 'A_RESU' && r.status !== 'A_NOTF') {
      throw new SandboxError(409, `report ${id} is ${r.status}; only A_RESU or A_NOTF reports can be submitted`);
    }
    const manager = this.directory.manager(this.directory.get(r.ownerIndex));
    if (!manager) throw new SandboxError(409, `the owner of ${id} has no approver`);
    const now = this.now();
    const next = this.replace(r, { status: 'A_PEND', approverIndex: manager.index, submitMs: now, approvalLevel: 0, lastModifiedMs: now });
    this.emit('submitted', r, next, r.ownerIndex);
    return next;
  }

  /**
   * Approves the current step. By default the report goes to the approver's manager while fewer
   * than `approvalLevels` approvals were given, otherwise to `finalApprovalStatus` (A_APPR) with no
   * approver, as in v3-reports-list.json.
   */
  approve(id: string, options: ApproveOptions = {}): ReportRecord {
    const r = this.requirePending(id);
    const next = this.approveStep(r, options);
    this.emit('approved', r, next, r.approverIndex);
    return next;
  }

  private approveStep(r: ReportRecord, options: ApproveOptions): ReportRecord {
    const level = r.approvalLevel + 1;
    if (options.status !== undefined) {
      if (!(options.status in APPROVAL_STATUS_NAMES)) throw new SandboxError(400, `unknown status ${options.status}`);
      const keepsApprover = STATUSES_WITH_APPROVER.has(options.status);
      const next = options.nextApprover !== undefined ? this.requireUser(options.nextApprover, 'nextApprover').index : r.approverIndex;
      return this.workflow(r, { status: options.status, approverIndex: keepsApprover ? next : null, approvalLevel: level });
    }
    if (options.nextApprover !== undefined) {
      const next = this.requireUser(options.nextApprover, 'nextApprover');
      return this.workflow(r, { approverIndex: next.index, approvalLevel: level });
    }
    const current = r.approverIndex === null ? undefined : this.directory.get(r.approverIndex);
    const manager = current ? this.directory.manager(current) : undefined;
    if (level < this.options.approvalLevels && manager && manager.index !== r.ownerIndex) {
      return this.workflow(r, { approverIndex: manager.index, approvalLevel: level });
    }
    const final = this.options.finalApprovalStatus;
    return this.workflow(r, {
      status: final,
      approverIndex: STATUSES_WITH_APPROVER.has(final) ? r.approverIndex : null,
      approvalLevel: level,
    });
  }

  sendBack(id: string, comment = ''): ReportRecord {
    const r = this.requirePending(id);
    const next = this.workflow(r, { status: 'A_RESU', approverIndex: null, everSentBack: true, lastComment: comment, approvalLevel: 0 });
    this.emit('sentBack', r, next, r.approverIndex);
    return next;
  }

  /**
   * The owner recalls the report. Recall maps to A_RESU, not A_NOTF: the ESS statusChanged facts map
   * both "Sent Back" and "Recalled" to A_RESU (concur-api.md 1.3), and A_NOTF means never submitted.
   */
  recall(id: string): ReportRecord {
    const r = this.require(id);
    if (!STATUSES_WITH_APPROVER.has(r.status) && r.status !== 'A_ACCO') {
      throw new SandboxError(409, `report ${id} is ${r.status}; only a report in approval can be recalled`);
    }
    const next = this.workflow(r, { status: 'A_RESU', approverIndex: null, approvalLevel: 0 });
    this.emit('recalled', r, next, r.ownerIndex);
    return next;
  }

  reassign(id: string, approverLogin: string): ReportRecord {
    const r = this.requirePending(id);
    const next = this.requireUser(approverLogin, 'approver');
    if (next.index === r.ownerIndex) throw new SandboxError(409, 'an owner cannot approve their own report');
    const after = this.workflow(r, { approverIndex: next.index });
    this.emit('reassigned', r, after, null);
    return after;
  }

  /** A header change: always bumps LastModifiedDate (it is what the field means). */
  edit(id: string, spec: EditSpec): ReportRecord {
    const r = this.require(id);
    if (spec.paymentStatusCode !== undefined && !(spec.paymentStatusCode in PAYMENT_STATUS_NAMES)) {
      throw new SandboxError(400, `unknown payment status ${spec.paymentStatusCode}`);
    }
    const next = this.replace(r, {
      ...(spec.name !== undefined ? { name: spec.name } : {}),
      ...(spec.total !== undefined ? { totalCents: Math.round(spec.total * 100) } : {}),
      ...(spec.hasException !== undefined ? { hasException: spec.hasException } : {}),
      ...(spec.rejectedExpenses !== undefined ? { rejectedExpenses: spec.rejectedExpenses } : {}),
      ...(spec.receiptsReceived !== undefined ? { receiptsReceived: spec.receiptsReceived } : {}),
      ...(spec.lastComment !== undefined ? { lastComment: spec.lastComment } : {}),
      ...(spec.paymentStatusCode !== undefined ? { paymentStatus: spec.paymentStatusCode } : {}),
      lastModifiedMs: this.now(),
    });
    this.emit('edited', r, next, r.ownerIndex);
    return next;
  }

  delete(id: string): void {
    const r = this.require(id);
    this.unindex(r);
    this.reports.delete(id);
    this.emit('deleted', r, undefined, r.ownerIndex);
  }

  // ---- internals ---------------------------------------------------------------------------

  private now(): number {
    return sqlDatetimeMs(this.options.clock.nowMs());
  }

  /** Workflow steps bump LastModifiedDate only when configured to (UNCONFIRMED in Concur). */
  private workflow(r: ReportRecord, patch: Partial<ReportRecord>): ReportRecord {
    return this.replace(r, this.options.workflowBumpsLastModified ? { ...patch, lastModifiedMs: this.now() } : patch);
  }

  private replace(r: ReportRecord, patch: Partial<ReportRecord>): ReportRecord {
    const next: ReportRecord = { ...r, ...patch };
    this.unindex(r);
    this.reports.set(r.id, next);
    this.index(next);
    return next;
  }

  private insert(r: ReportRecord): void {
    this.reports.set(r.id, r);
    this.index(r);
  }

  private index(r: ReportRecord): void {
    let s = this.byStatus.get(r.status);
    if (!s) this.byStatus.set(r.status, (s = new Set()));
    s.add(r.id);
    if (r.approverIndex !== null && STATUSES_WITH_APPROVER.has(r.status)) {
      let a = this.byApprover.get(r.approverIndex);
      if (!a) this.byApprover.set(r.approverIndex, (a = new Set()));
      a.add(r.id);
    }
  }

  private unindex(r: ReportRecord): void {
    this.byStatus.get(r.status)?.delete(r.id);
    if (r.approverIndex !== null) this.byApprover.get(r.approverIndex)?.delete(r.id);
  }

  private require(id: string): ReportRecord {
    const r = this.reports.get(id);
    if (!r) throw new SandboxError(404, `no report ${id}`);
    return r;
  }

  private requirePending(id: string): ReportRecord {
    const r = this.require(id);
    if (!STATUSES_WITH_APPROVER.has(r.status) || r.approverIndex === null) {
      throw new SandboxError(409, `report ${id} is ${r.status}, not pending approval`);
    }
    return r;
  }

  private requireUser(login: string, role: string): SandboxUser {
    const u = this.directory.byLoginId(login);
    if (!u) throw new SandboxError(400, `${role} ${login} is not a user of this company`);
    return u;
  }

  private uniqueId(): string {
    let id = this.rng.hex(20);
    while (this.reports.has(id)) id = this.rng.hex(20);
    return id;
  }

  private entryPlan(
    entries: SubmitSpec['entries'],
    currency: string,
    createdMs: number,
  ): { seed: number; count: number; explicit: readonly EntryData[] | null } {
    const seed = this.rng.uint32();
    if (entries === undefined) return { seed, count: this.rng.int(1, 8), explicit: null };
    if (typeof entries === 'number') {
      if (!Number.isInteger(entries) || entries < 0 || entries > 50) throw new SandboxError(400, 'entries must be 0..50');
      return { seed, count: entries, explicit: null };
    }
    const explicit = entriesFromSpecs(seed, entries, currency, createdMs);
    return { seed, count: explicit.length, explicit };
  }

  /** A fresh A_NOTF record for `owner`; callers patch status, approver and dates. */
  private newRecord(owner: SandboxUser, createdMs: number, plan: { seed: number; count: number; explicit: readonly EntryData[] | null }): ReportRecord {
    const entries = plan.explicit ?? generateEntries(plan.seed, plan.count, owner.currencyCode, createdMs, false);
    const summary = summarizeEntries(entries);
    return {
      id: this.uniqueId(),
      reportNumber: this.rng.chars(6, 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'),
      name: `${this.rng.pick(PURPOSES)} - ${this.rng.pick(CITIES)}`,
      ownerIndex: owner.index,
      approverIndex: null,
      status: 'A_NOTF',
      paymentStatus: 'P_NOTP',
      currencyCode: owner.currencyCode,
      country: owner.country,
      countrySubdivision: owner.countrySubdivision,
      policyId: owner.policyId,
      totalCents: summary.totalCents,
      personalCents: 0,
      companyCardCents: summary.companyCardCents,
      createdMs,
      submitMs: null,
      processingPaymentMs: null,
      paidMs: null,
      lastModifiedMs: createdMs,
      userDefinedMs: utcMidnight(createdMs),
      receiptsReceived: summary.receiptsReceived,
      everSentBack: false,
      hasException: summary.hasException,
      lastComment: '',
      entrySeed: plan.seed,
      entryCount: plan.count,
      explicitEntries: plan.explicit,
      approvalLevel: 0,
    };
  }

  /**
   * `reports` pending reports plus `otherReports` in other states. Dates fall in the 25 days before
   * now; a quarter land on whole seconds (printed without a fraction) and about 5% share the
   * previous report's LastModifiedDate, so clients meet equal timestamps at page boundaries.
   */
  private seed(nowMs: number): void {
    const others = ['A_NOTF', 'A_APPR', 'A_RESU', 'A_ACCO'];
    const otherWeights = [3, 4, 2, 1];
    let previousModified: number | undefined;
    const total = this.options.reports + this.options.otherReports;
    for (let i = 0; i < total; i++) {
      const status = i < this.options.reports ? 'A_PEND' : this.rng.weighted(others, otherWeights);
      const owner = this.rng.pick(this.employees);
      const wholeSecond = this.rng.chance(0.25);
      const round = (ms: number): number => (wholeSecond ? Math.floor(ms / 1000) * 1000 : sqlDatetimeMs(ms));
      const createdMs = round(nowMs - this.rng.int(3_600_000, 25 * DAY));
      const count = this.rng.chance(0.05) ? 0 : this.rng.int(1, 8);
      const base = this.newRecord(owner, createdMs, { seed: this.rng.uint32(), count, explicit: null });
      const submitted = status !== 'A_NOTF';
      const submitMs = submitted ? round(Math.min(nowMs - 120_000, createdMs + this.rng.int(600_000, 2 * DAY))) : null;
      let lastModifiedMs = round(Math.min(nowMs - 1_000, (submitMs ?? createdMs) + this.rng.int(0, 3_600_000)));
      if (previousModified !== undefined && previousModified >= createdMs && this.rng.chance(0.05)) {
        lastModifiedMs = previousModified;
      }
      previousModified = lastModifiedMs;
      let record: ReportRecord = {
        ...base,
        status,
        submitMs,
        lastModifiedMs,
        approverIndex: STATUSES_WITH_APPROVER.has(status) ? owner.managerIndex : null,
      };
      if (status === 'A_RESU') {
        record = { ...record, everSentBack: true, lastComment: this.rng.pick(SEND_BACK_COMMENTS) };
      } else if (status === 'A_APPR' && this.rng.chance(0.5)) {
        const processing = Math.min(lastModifiedMs, (submitMs ?? createdMs) + 60_000);
        record = { ...record, paymentStatus: 'P_PROC', processingPaymentMs: processing };
      }
      this.insert(record);
    }
  }
}
