import { approvalKey, type Approval, type ApprovalStatus, type Approver } from '../../../core/index.js';
import type { components } from '../generated/expense-v3.js';
import { concurDateToIso, isConcurDate } from './concur-dates.js';
import { FLAG_EXCEPTIONS, FLAG_MISSING_RECEIPT, type LineItemSummary } from './entry-mapper.js';
import { JsonObject, JsonValue } from './json-reader.js';
import { concurMoney } from './money.js';

/** Expense Report v3 `ReportGet`, as generated from openapi/concur/expense-v3.yaml. */
export type ReportGet = components['schemas']['ReportGet'];
export type ReportCollection = components['schemas']['ReportCollection'];
type CustomField = components['schemas']['CustomField'];

/** The approval kind this mapper produces. */
export const EXPENSE_REPORT_KIND = 'expense-report';

export interface ReportMappingContext {
  /** Source instance id from the deployment file (e.g. `concur-acme`). */
  readonly source: string;
  /** Company UUID for the deep link; without it Concur first asks the user for a login ID. */
  readonly companyId?: string | undefined;
  /** Host of the Concur web UI for deep links, e.g. `www.concursolutions.com` (no scheme, no path). */
  readonly webHost: string;
  /** The approval status codes that mean "waiting on an approver this source serves" (e.g. `A_PEND`). */
  readonly pendingCodes: readonly string[];
}

const CUSTOM_FIELD_KEYS = [
  'OrgUnit1',
  'OrgUnit2',
  'OrgUnit3',
  'OrgUnit4',
  'OrgUnit5',
  'OrgUnit6',
  'Custom1',
  'Custom2',
  'Custom3',
  'Custom4',
  'Custom5',
  'Custom6',
  'Custom7',
  'Custom8',
  'Custom9',
  'Custom10',
  'Custom11',
  'Custom12',
  'Custom13',
  'Custom14',
  'Custom15',
  'Custom16',
  'Custom17',
  'Custom18',
  'Custom19',
  'Custom20',
] as const;
type CustomFieldKey = (typeof CUSTOM_FIELD_KEYS)[number];

function customField(value: JsonValue): CustomField | undefined {
  if (value.isAbsent) return undefined;
  if (value.isNull) return null;
  const o = value.object();
  return {
    Type: o.optionalString('Type'),
    Value: o.optionalString('Value'),
    Code: o.optionalString('Code'),
    ListItemID: o.optionalString('ListItemID'),
  };
}

function concurDate(o: JsonObject, key: string): string {
  const raw = o.string(key);
  if (!isConcurDate(raw)) o.fail(key, 'is not a Concur date-time (yyyy-MM-ddTHH:mm:ss[.fff])');
  return raw;
}

function nullableConcurDate(o: JsonObject, key: string): string | null | undefined {
  const raw = o.nullableString(key);
  if (typeof raw === 'string' && !isConcurDate(raw)) o.fail(key, 'is not a Concur date-time (yyyy-MM-ddTHH:mm:ss[.fff])');
  return raw;
}

function readReport(o: JsonObject): ReportGet {
  const custom: { [K in CustomFieldKey]?: CustomField } = {};
  for (const key of CUSTOM_FIELD_KEYS) {
    const value = customField(o.get(key));
    if (value !== undefined) custom[key] = value;
  }
  const createDate = o.has('CreateDate') ? concurDate(o, 'CreateDate') : undefined;
  return {
    ...custom,
    ID: o.string('ID'),
    URI: o.optionalString('URI'),
    Name: o.string('Name'),
    Total: o.number('Total'),
    CurrencyCode: o.string('CurrencyCode'),
    Country: o.nullableString('Country'),
    CountrySubdivision: o.nullableString('CountrySubdivision'),
    CreateDate: createDate,
    SubmitDate: nullableConcurDate(o, 'SubmitDate'),
    ProcessingPaymentDate: nullableConcurDate(o, 'ProcessingPaymentDate'),
    PaidDate: nullableConcurDate(o, 'PaidDate'),
    UserDefinedDate: nullableConcurDate(o, 'UserDefinedDate'),
    LastModifiedDate: concurDate(o, 'LastModifiedDate'),
    OwnerLoginID: o.string('OwnerLoginID'),
    OwnerName: o.string('OwnerName'),
    ApproverLoginID: o.nullableString('ApproverLoginID'),
    ApproverName: o.nullableString('ApproverName'),
    ApprovalStatusCode: o.string('ApprovalStatusCode'),
    ApprovalStatusName: o.optionalString('ApprovalStatusName'),
    PaymentStatusCode: o.optionalString('PaymentStatusCode'),
    PaymentStatusName: o.optionalString('PaymentStatusName'),
    PersonalAmount: o.optionalNumber('PersonalAmount'),
    AmountDueEmployee: o.optionalNumber('AmountDueEmployee'),
    AmountDueCompanyCard: o.optionalNumber('AmountDueCompanyCard'),
    TotalClaimedAmount: o.optionalNumber('TotalClaimedAmount'),
    TotalApprovedAmount: o.optionalNumber('TotalApprovedAmount'),
    ReceiptsReceived: o.optionalBoolean('ReceiptsReceived'),
    EverSentBack: o.optionalBoolean('EverSentBack'),
    HasException: o.optionalBoolean('HasException'),
    LastComment: o.nullableString('LastComment'),
    LedgerName: o.nullableString('LedgerName'),
    PolicyID: o.nullableString('PolicyID'),
    WorkflowActionUrl: o.nullableString('WorkflowActionUrl'),
  };
}

/**
 * Validates one page of `GET /api/v3.0/expense/reports` and returns it typed.
 * https://developer.concur.com/api-reference/expense/expense-report/v3.reports.html
 * @throws ConcurPayloadError naming the first offending field, e.g.
 *   `malformed Concur reports page: Items[3].LastModifiedDate is not a string (got a number)`.
 */
export function parseReportCollection(json: unknown): ReportCollection {
  const page = JsonObject.root(json, 'Concur reports page');
  const next = page.get('NextPage');
  return {
    Items: page.array('Items').map((item) => readReport(item.object())),
    NextPage: next.isAbsent || next.isNull ? null : next.string(),
  };
}

/**
 * Validates the body of `GET /api/v3.0/expense/reports/{id}`.
 * @throws ConcurPayloadError naming the offending field (`malformed Concur report: LastModifiedDate is missing ...`).
 */
export function parseReport(json: unknown): ReportGet {
  return readReport(JsonObject.root(json, 'Concur report'));
}

/** Type guard over {@link parseReport}: true when `x` has every field the mapper relies on, well typed. */
export function isReportGet(x: unknown): x is ReportGet {
  try {
    parseReport(x);
    return true;
  } catch {
    return false;
  }
}

/** Codes after which the report has passed the manager-type approval steps (concur-api.md section 1.3). */
const PAST_APPROVAL = new Set(['A_APPR', 'A_ACCO', 'A_PVAL', 'A_EXTV', 'A_PECO', 'A_PBDG']);

/**
 * What a report's approval status code means for the approvers this source serves.
 *
 * A code in `pendingCodes` is `pending`. Any other code means the report left those approvers' hands:
 * - A_APPR, and the later-step codes A_ACCO, A_PVAL, A_EXTV, A_PECO, A_PBDG when they are not themselves
 *   configured as pending: the approver approved it and it moved on → `approved`.
 * - A_RESU → `sent_back`. Concur uses A_RESU for both "sent back by an approver" and "recalled by the owner"
 *   (v4.expense-events.md). The v3 payload cannot tell them apart (EverSentBack stays true from any earlier send
 *   back), and sent back is the case an approver's card must explain; a recall can be told apart only by an
 *   event's stepCode RECALL.
 * - A_NOTF (not submitted) → `recalled`: a report that was waiting on an approver and is now unsubmitted was
 *   pulled back without a send-back.
 * - A_TEXP (expired in the approval queue) → `expired`.
 * - Anything else (A_FILE, A_RHLD, A_AAFH, custom codes) → `no_longer_required`: it is not waiting on these
 *   approvers, and nothing says they approved it.
 */
export function approvalStatusFor(code: string, pendingCodes: readonly string[]): ApprovalStatus {
  if (pendingCodes.includes(code)) return 'pending';
  if (PAST_APPROVAL.has(code)) return 'approved';
  switch (code) {
    case 'A_RESU':
      return 'sent_back';
    case 'A_NOTF':
      return 'recalled';
    case 'A_TEXP':
      return 'expired';
    default:
      return 'no_longer_required';
  }
}

const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$/;

/**
 * The "View Expense Report" deep link into the Concur web UI, opened as the approver:
 * `https://{webHost}/goto/expense-report/{reportID}?companyUUID={companyId}&context=MANAGER`.
 * https://developer.concur.com/api-guides/expense/deeplink-url.html
 */
export function reportDeepLink(reportId: string, webHost: string, companyId?: string): string {
  if (!HOST.test(webHost)) throw new Error(`webHost must be a bare host name like www.concursolutions.com, got "${webHost}"`);
  const company = companyId === undefined || companyId === '' ? '' : `companyUUID=${encodeURIComponent(companyId)}&`;
  return `https://${webHost}/goto/expense-report/${encodeURIComponent(reportId)}?${company}context=MANAGER`;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Maps a validated v3 report to core's Approval. Dates become ISO-8601 UTC under the UTC assumption of
 * {@link concurDateToIso}; the raw LastModifiedDate is kept in `sourceData` for the polling cursor.
 *
 * `sourceData` holds the source's bookkeeping (reportId, raw lastModifiedDate, status codes, header flags);
 * `content` what the card shows: `flags` (`exceptions` from the header, plus the entries' flags) and, when
 * the report's `entries` summary is given, `lineItems`.
 */
export function mapReport(report: ReportGet, ctx: ReportMappingContext, entries?: LineItemSummary): Approval {
  const approvers: Approver[] =
    report.ApproverLoginID === null || report.ApproverLoginID === undefined || report.ApproverLoginID === ''
      ? []
      : [{ sourceUserId: report.ApproverLoginID, name: report.ApproverName ?? undefined }];
  const ownerLogin = report.OwnerLoginID.trim();
  const flagSet = new Set(entries?.flags ?? []);
  if (report.HasException === true) flagSet.add(FLAG_EXCEPTIONS);
  const flags = [FLAG_EXCEPTIONS, FLAG_MISSING_RECEIPT].filter((f) => flagSet.has(f));
  return {
    key: approvalKey(ctx.source, EXPENSE_REPORT_KIND, report.ID),
    source: ctx.source,
    kind: EXPENSE_REPORT_KIND,
    externalId: report.ID,
    title: report.Name.trim() === '' ? `Expense report ${report.ID}` : report.Name,
    status: approvalStatusFor(report.ApprovalStatusCode, ctx.pendingCodes),
    requester: {
      name: report.OwnerName,
      email: EMAIL.test(ownerLogin) ? ownerLogin.toLowerCase() : undefined,
    },
    approvers,
    amount: concurMoney(report.Total, report.CurrencyCode),
    submittedAt: report.SubmitDate === null || report.SubmitDate === undefined ? null : concurDateToIso(report.SubmitDate),
    sourceUpdatedAt: concurDateToIso(report.LastModifiedDate),
    links: { view: reportDeepLink(report.ID, ctx.webHost, ctx.companyId) },
    content: {
      flags,
      ...(entries === undefined ? {} : { lineItems: entries.lines }),
    },
    sourceData: {
      reportId: report.ID,
      lastModifiedDate: report.LastModifiedDate,
      approvalStatusCode: report.ApprovalStatusCode,
      hasException: report.HasException ?? null,
      receiptsReceived: report.ReceiptsReceived ?? null,
      everSentBack: report.EverSentBack ?? null,
      lastComment: report.LastComment === undefined || report.LastComment === '' ? null : report.LastComment,
      paymentStatusCode: report.PaymentStatusCode ?? null,
    },
  };
}
