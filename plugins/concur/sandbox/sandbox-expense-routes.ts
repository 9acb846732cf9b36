import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WORKFLOW_SCOPE, type Principal } from './sandbox-auth.js';
import { SandboxError, stepSequence, type ReportFilter, type ReportRecord } from './sandbox-company.js';
import { addRoute, hasScope, principalOf, QueryParams, rawQuery, type SandboxContext } from './sandbox-context.js';
import { renderV3Entry } from './sandbox-entries.js';
import { parseConcurDateParam, v4Error, type V4ValidationError } from './sandbox-format.js';
import { decodeOffset, encodeOffset, nextPageUrl } from './sandbox-paging.js';
import { renderReportToApprove, renderV3Report, renderV4Report } from './sandbox-report-view.js';

/**
 * Expense endpoints: v3 reports (list, by ID), v3 entries, v4 reportsToApprove, one v4 report and
 * the v4 approve / sendBack long URLs. Facts and their sources are in docs/concur-api.md (sections 1-3, 8).
 */

const V4_CONTEXTS = new Set(['TRAVELER', 'MANAGER', 'PROCESSOR', 'PROXY']);

/**
 * `expectedStepSequence`: v4.workflows.markdown types it as a string; a JSON number is taken too,
 * as a Java JSON binder would. undefined when absent, null when it is not a positive whole number.
 */
function stepSequenceParam(value: unknown): number | undefined | null {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 ? n : null;
}

const REPORTS = '/api/v3.0/expense/reports';
const ENTRIES = '/api/v3.0/expense/entries';

/** v3 page size: default 25 is documented; the maximum is UNCONFIRMED, the sandbox clamps to 100. */
const V3_DEFAULT_LIMIT = 25;
const V3_MAX_LIMIT = 100;

/**
 * Filters the v3 list documents but the sandbox does not evaluate. They are refused with a 400
 * instead of being ignored, so no client test passes against a filter that silently did nothing.
 */
const UNIMPLEMENTED_REPORT_FILTERS = [
  'paymentType',
  'reimbursementMethod',
  'expenseTypeCode',
  'attendeeTypeCode',
  'countryCode',
  'batchID',
  'vendorName',
  'expenseGroupConfigID',
  'hasVAT',
  'hasImages',
  'hasAttendees',
  'hasBillableExpenses',
  'isTestUser',
  'entryTransactionDateBefore',
  'entryTransactionDateAfter',
  'createDateBefore',
  'createDateAfter',
  'userDefinedDateBefore',
  'userDefinedDateAfter',
  'processingPaymentDateBefore',
  'processingPaymentDateAfter',
  'paidDateBefore',
  'paidDateAfter',
  'costObject',
];

const csv = (value: string | undefined): string[] | undefined =>
  value === undefined
    ? undefined
    : value
        .split(',')
        .map((s) => s.trim().toUpperCase())
        .filter((s) => s.length > 0);

function dateParam(q: QueryParams, name: string): number | undefined {
  const raw = q.get(name);
  if (raw === undefined) return undefined;
  const ms = parseConcurDateParam(raw);
  if (ms === undefined) {
    throw new SandboxError(400, `${name} must be yyyy-MM-dd or yyyy-MM-ddTHH:mm:ss[.SSS] without a time zone, got "${raw}"`);
  }
  return ms;
}

function limitParam(q: QueryParams): number {
  return Math.min(q.int('limit', V3_DEFAULT_LIMIT, 1), V3_MAX_LIMIT);
}

/**
 * Whose reports a v3 call may see. `user=ALL` (every owner) needs the Web Services Admin role:
 * the sandbox grants it to the company token and refuses it to user tokens. Omitting `user`
 * means the token owner's own reports, which for a company token is none.
 */
function ownerScope(ctx: SandboxContext, principal: Principal, user: string | undefined): { all: true } | { ownerIndex: number | null } {
  if (principal.kind === 'user') {
    const self = ctx.company.directory.get(principal.userIndex);
    if (user !== undefined && user.toLowerCase() !== self.loginId.toLowerCase()) {
      throw new SandboxError(403, 'The user parameter requires the Web Services Admin role');
    }
    return { ownerIndex: self.index };
  }
  if (user === undefined) return { ownerIndex: null };
  if (user.toUpperCase() === 'ALL') return { all: true };
  return { ownerIndex: ctx.company.directory.byLoginId(user)?.index ?? null };
}

function lastPage(ctx: SandboxContext): { NextPage?: null } {
  // The doc's list example has no NextPage key at all; `omitNextPageWhenLast: false` sends null.
  return ctx.settings.omitNextPageWhenLast ? {} : { NextPage: null };
}

function sendMaybeMalformed(ctx: SandboxContext, request: FastifyRequest, reply: FastifyReply, body: unknown): FastifyReply {
  if (ctx.requests.get(request)?.malformed) {
    const text = JSON.stringify(body);
    return reply.type('application/json; charset=utf-8').send(text.slice(0, Math.max(1, Math.floor(text.length * 0.6))));
  }
  return reply.send(body);
}

export function registerExpenseRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const v3 = { family: 'v3', auth: true } as const;
  const v4 = { group: 'workflow', family: 'v4', auth: true } as const;

  // GET /api/v3.0/expense/reports (v3.reports.markdown "Parameters", "Schema").
  addRoute(app, ctx, 'GET', REPORTS, { ...v3, group: 'reports', reportList: true }, async (request, reply) => {
    const q = new QueryParams(request.query);
    const limit = limitParam(q);
    const offset = q.get('offset');
    let snapshotId: string;
    let position: number;
    let items: readonly ReportRecord[];
    if (offset !== undefined) {
      const decoded = decodeOffset('r', offset);
      const snapshot = decoded ? ctx.snapshots.get(decoded.key) : undefined;
      if (!decoded || !snapshot) throw new SandboxError(400, `offset "${offset}" is not a valid page marker (or it expired)`);
      snapshotId = decoded.key;
      position = decoded.position;
      items = snapshot;
    } else {
      for (const name of UNIMPLEMENTED_REPORT_FILTERS) {
        if (q.has(name)) throw new SandboxError(400, `the Concur sandbox does not implement the ${name} filter`);
      }
      const scope = ownerScope(ctx, principalOf(ctx, request), q.get('user'));
      if ('ownerIndex' in scope && scope.ownerIndex === null) {
        items = [];
      } else {
        const statuses = csv(q.get('approvalStatusCode'));
        const currencies = csv(q.get('currencyCode'));
        const payments = csv(q.get('paymentStatusCode'));
        const approver = q.get('approverLoginID');
        const after = dateParam(q, 'modifiedDateAfter');
        const before = dateParam(q, 'modifiedDateBefore');
        const submitAfter = dateParam(q, 'submitDateAfter');
        const submitBefore = dateParam(q, 'submitDateBefore');
        const filter: ReportFilter = {
          ...(statuses ? { statuses } : {}),
          ...(currencies ? { currencyCodes: currencies } : {}),
          ...(payments ? { paymentStatuses: payments } : {}),
          ...(approver !== undefined ? { approverLogin: approver } : {}),
          ...('ownerIndex' in scope && scope.ownerIndex !== null ? { ownerIndex: scope.ownerIndex } : {}),
          ...(after !== undefined ? { modifiedAfterMs: after } : {}),
          ...(before !== undefined ? { modifiedBeforeMs: before } : {}),
          ...(submitAfter !== undefined ? { submitAfterMs: submitAfter } : {}),
          ...(submitBefore !== undefined ? { submitBeforeMs: submitBefore } : {}),
        };
        // Concur documents no order for this list, so the sandbox makes one up per request.
        items = ctx.listingRng.shuffle(ctx.company.query(filter));
      }
      snapshotId = ctx.snapshots.create(items);
      position = 0;
    }
    const slice = items.slice(position, position + limit);
    const page = ctx.settings.listingConsistency === 'live' ? slice.map((r) => ctx.company.get(r.id)).filter((r): r is ReportRecord => r !== undefined) : slice;
    const query = rawQuery(request);
    const base = ctx.baseUrl();
    const body = {
      Items: page.map((r) => renderV3Report(r, ctx.company.directory, base, query)),
      ...(position + limit < items.length
        ? { NextPage: nextPageUrl(base, REPORTS, new URLSearchParams(query), 'offset', encodeOffset('r', snapshotId, position + limit)) }
        : lastPage(ctx)),
    };
    return sendMaybeMalformed(ctx, request, reply, body);
  });

  // GET /api/v3.0/expense/reports/{id} (v3.reports.markdown; user=ALL is refused on single resources).
  addRoute(app, ctx, 'GET', `${REPORTS}/:id`, { ...v3, group: 'reports' }, async (request, reply) => {
    const { id } = request.params as { id: string };
    const q = new QueryParams(request.query);
    const user = q.get('user');
    if (user !== undefined && user.toUpperCase() === 'ALL') {
      throw new SandboxError(400, 'The user parameter cannot be ALL when requesting a single resource');
    }
    const principal = principalOf(ctx, request);
    const record = ctx.company.get(id);
    const notFound = (): SandboxError => new SandboxError(404, `Report ${id} was not found`);
    if (!record) throw notFound();
    const owner = ctx.company.directory.get(record.ownerIndex);
    if (user !== undefined && user.toLowerCase() !== owner.loginId.toLowerCase()) throw notFound();
    if (principal.kind === 'user') {
      const self = ctx.company.directory.get(principal.userIndex);
      if (user !== undefined && user.toLowerCase() !== self.loginId.toLowerCase()) {
        throw new SandboxError(403, 'The user parameter requires the Web Services Admin role');
      }
      if (record.ownerIndex !== self.index && record.approverIndex !== self.index) throw notFound();
    }
    return reply.send(renderV3Report(record, ctx.company.directory, ctx.baseUrl(), rawQuery(request)));
  });

  // GET /api/v3.0/expense/entries?reportID= (expense-entry.markdown). Sandbox subset: reportID is required.
  addRoute(app, ctx, 'GET', ENTRIES, { ...v3, group: 'entries' }, async (request, reply) => {
    const q = new QueryParams(request.query);
    const limit = limitParam(q);
    const offset = q.get('offset');
    let reportId = q.get('reportID');
    let position = 0;
    if (offset !== undefined) {
      const decoded = decodeOffset('e', offset);
      if (!decoded) throw new SandboxError(400, `offset "${offset}" is not a valid page marker`);
      reportId = decoded.key;
      position = decoded.position;
    }
    if (reportId === undefined) throw new SandboxError(400, 'the Concur sandbox lists entries only by reportID');
    const principal = principalOf(ctx, request);
    const record = ctx.company.get(reportId);
    let visible = record !== undefined;
    if (record && principal.kind === 'user') {
      visible = record.ownerIndex === principal.userIndex || record.approverIndex === principal.userIndex;
    }
    const entries = record && visible ? ctx.company.entries(record) : [];
    const owner = record ? ctx.company.directory.get(record.ownerIndex).loginId : '';
    const base = ctx.baseUrl();
    return reply.send({
      Items: entries.slice(position, position + limit).map((e) => renderV3Entry(e, reportId, owner, base)),
      ...(position + limit < entries.length
        ? {
            NextPage: nextPageUrl(base, ENTRIES, new URLSearchParams(rawQuery(request)), 'offset', encodeOffset('e', reportId, position + limit)),
          }
        : lastPage(ctx)),
    });
  });

  const SORTS: Record<string, (r: ReportRecord) => string | number> = {
    reportDate: (r) => r.userDefinedMs,
    submitDate: (r) => r.submitMs ?? 0,
    name: (r) => r.name.toLowerCase(),
    claimedAmount: (r) => r.totalCents - r.personalCents,
    amountDueEmployee: (r) => r.totalCents - r.personalCents - r.companyCardCents,
    employeeFirstName: (r) => ctx.company.directory.get(r.ownerIndex).givenName.toLowerCase(),
    employeeLastName: (r) => ctx.company.directory.get(r.ownerIndex).familyName.toLowerCase(),
  };

  // GET /expensereports/v4/users/{userId}/context/{contextType}/reportsToApprove (v4.reports.markdown):
  // a bare array, no paging, company or user token.
  addRoute(app, ctx, 'GET', '/expensereports/v4/users/:userId/context/:contextType/reportsToApprove', v4, async (request, reply) => {
    const { userId, contextType } = request.params as { userId: string; contextType: string };
    if (contextType !== 'MANAGER') throw new SandboxError(403, 'Specified context type is invalid or not supported');
    const user = ctx.company.directory.byUuid(userId);
    if (!user) throw new SandboxError(404, `User ${userId} was not found`);
    const principal = principalOf(ctx, request);
    if (principal.kind === 'user' && principal.userIndex !== user.index) {
      throw new SandboxError(403, 'User does not have proper role');
    }
    const q = new QueryParams(request.query);
    const sort = q.get('sort') ?? 'reportDate';
    const order = (q.get('order') ?? 'desc').toLowerCase();
    const key = SORTS[sort];
    if (!key) throw new SandboxError(400, `sort must be one of ${Object.keys(SORTS).join(', ')}`);
    if (order !== 'asc' && order !== 'desc') throw new SandboxError(400, 'order must be asc or desc');
    const sign = order === 'asc' ? 1 : -1;
    // includeDelegateApprovals=true adds the reports of every user this one may approve for as an
    // expense delegate now (canApprove, inside any temporary window): "as either an approver or delegate".
    const delegated = q.get('includeDelegateApprovals')?.toLowerCase() === 'true' ? ctx.company.delegates.principalsOf(user.index, ctx.clock.nowMs()) : [];
    const reports = [user.index, ...delegated]
      .flatMap((i) => ctx.company.waitingOn(i))
      .sort((a, b) => {
        const ka = key(a);
        const kb = key(b);
        return ka < kb ? -sign : ka > kb ? sign : 0;
      });
    return reply.send(reports.map((r) => renderReportToApprove(r, ctx.company.directory)));
  });

  // GET .../users/{userId}/context/{contextType}/reports/{reportId} (v4.reports.markdown "Retrieve a Report
  // by ID"): company or user token; a user token only for its own userId. Who may read in which
  // context is the sandbox's choice (UNCONFIRMED): TRAVELER the owner; MANAGER the current approver,
  // or any approver once the report was submitted, so an approver can re-read a report someone else
  // moved on. PROCESSOR and PROXY are not modelled.
  addRoute(app, ctx, 'GET', '/expensereports/v4/users/:userId/context/:contextType/reports/:reportId', v4, async (request, reply) => {
    const { userId, contextType, reportId } = request.params as { userId: string; contextType: string; reportId: string };
    if (!V4_CONTEXTS.has(contextType)) throw new SandboxError(403, 'Specified context type is invalid or not supported');
    if (contextType === 'PROCESSOR' || contextType === 'PROXY') throw new SandboxError(403, `the Concur sandbox does not model the ${contextType} context`);
    const user = ctx.company.directory.byUuid(userId);
    if (!user) throw new SandboxError(404, `User ${userId} was not found`);
    const principal = principalOf(ctx, request);
    if (principal.kind === 'user' && principal.userIndex !== user.index) throw new SandboxError(403, 'User is not allowed to access this report');
    const record = ctx.company.get(reportId);
    if (!record) throw new SandboxError(404, `Report ${reportId} was not found`);
    const allowed =
      contextType === 'TRAVELER'
        ? record.ownerIndex === user.index
        : record.approverIndex === user.index || (user.isApprover && record.submitMs !== null && record.ownerIndex !== user.index);
    if (!allowed) throw new SandboxError(403, 'User is not allowed to access this report');
    return reply.send(renderV4Report(record, ctx.company.directory, ctx.baseUrl(), userId, contextType));
  });

  // PATCH .../users/{userId}/context/MANAGER/reports/{reportId}/approve|sendBack (v4.workflows.markdown):
  // only with the approver's (or an approving delegate's) own user-level token carrying expense.report.workflowstatus.write, only
  // while the report waits on them; 204. `expectedStepSequence` must name the step the report is in,
  // else 409: whether Concur honours it on the long URL, and with which status, is UNCONFIRMED
  // (docs/concur-api.md 2.4), so this is the sandbox's choice.
  for (const action of ['approve', 'sendBack'] as const) {
    const url = `/expensereports/v4/users/:userId/context/:contextType/reports/:reportId/${action}`;
    addRoute(app, ctx, 'PATCH', url, v4, async (request, reply) => {
      const { userId, contextType, reportId } = request.params as { userId: string; contextType: string; reportId: string };
      const principal = principalOf(ctx, request);
      const user = ctx.company.directory.byUuid(userId);
      if (principal.kind !== 'user' || !user || principal.userIndex !== user.index) {
        throw new SandboxError(403, 'User is not allowed to modify this report');
      }
      if (contextType !== 'MANAGER') throw new SandboxError(403, 'Specified context type is invalid or not supported');
      if (!hasScope(ctx, request, WORKFLOW_SCOPE)) throw new SandboxError(403, `The access token lacks the ${WORKFLOW_SCOPE} scope`);
      const body = (request.body ?? {}) as Record<string, unknown>;
      const errors: V4ValidationError[] = [];
      for (const field of ['comment', 'expenseRejectedComment'] as const) {
        const v = body[field];
        if (v !== undefined && (typeof v !== 'string' || v.length > 2000)) {
          errors.push({ id: field, message: `${field} must be a string of at most 2000 characters`, source: field });
        }
      }
      const comment = typeof body['comment'] === 'string' ? body['comment'] : '';
      if (action === 'sendBack' && comment.trim() === '') {
        errors.push({ id: 'comment', message: 'comment is required to send a report back', source: 'comment' });
      }
      const expected = stepSequenceParam(body['expectedStepSequence']);
      if (expected === null) {
        errors.push({ id: 'expectedStepSequence', message: 'expectedStepSequence must be a step sequence number', source: 'expectedStepSequence' });
      }
      if (errors.length > 0) {
        return reply.code(400).send(v4Error(400, 'Validation failed', request.url.split('?')[0] ?? request.url, ctx.clock.nowMs(), errors));
      }
      const record = ctx.company.get(reportId);
      if (!record) throw new SandboxError(404, `Report ${reportId} was not found`);
      // v4.workflows: expenseRejectedComment is "required when some expenses were rejected".
      const rejectedComment = typeof body['expenseRejectedComment'] === 'string' ? body['expenseRejectedComment'].trim() : '';
      if (action === 'approve' && record.rejectedExpenses && rejectedComment === '') {
        const missing = [
          { id: 'expenseRejectedComment', message: 'expenseRejectedComment is required when some expenses were rejected', source: 'expenseRejectedComment' },
        ];
        return reply.code(400).send(v4Error(400, 'Validation failed', request.url.split('?')[0] ?? request.url, ctx.clock.nowMs(), missing));
      }
      if (expected !== undefined && expected !== null && stepSequence(record) !== expected) {
        throw new SandboxError(409, `The report is not in workflow step ${String(expected)} any more`);
      }
      // The step's approver, or one of their expense delegates with canApprove (and inside any
      // temporary window), each on their own URL with their own token: v4.workflows says approve and
      // sendBack "support delegates"; which userId a delegate puts in the URL is UNCONFIRMED (docs/concur-api.md, Delegates).
      const mayAct =
        record.approverIndex === user.index ||
        (record.approverIndex !== null && ctx.company.delegates.canActFor(user.index, record.approverIndex, ctx.clock.nowMs()));
      if (!mayAct || record.status !== 'A_PEND') {
        throw new SandboxError(403, 'User is not allowed to modify this report');
      }
      if (action === 'approve') ctx.company.approve(reportId);
      else ctx.company.sendBack(reportId, comment);
      return reply.code(204).send();
    });
  }
}
