import { APPROVAL_STATUS_NAMES, PAYMENT_STATUS_NAMES, type ReportRecord } from './sandbox-company.js';
import { concurDateTime, concurMidnight, fromCents, isoDate } from './sandbox-format.js';
import type { SandboxDirectory } from './sandbox-people.js';
import { CONCUR_ID_ALPHABET, SeededRandom, hashString } from './sandbox-random.js';

const orNull = (ms: number | null): string | null => (ms === null ? null : concurDateTime(ms));

/** The workflow-step token in WorkflowActionUrl; stable per report, like Concur's. */
const workflowToken = (id: string): string => `gW${new SeededRandom(hashString(id)).chars(29, CONCUR_ID_ALPHABET)}`;

/**
 * v3 `ReportGet` with exactly the keys of the v3-reports-list.json item, in its order. The
 * WorkflowActionUrl copies the sample's quirk of carrying the calling request's query string; it
 * is `""` for a report that was never submitted (v3-report.json). The null custom fields are
 * spelled out rather than spread in: a literal keeps V8 on its fast path, which matters when a
 * benchmark pages through 100,000 reports.
 */
export function renderV3Report(r: ReportRecord, directory: SandboxDirectory, baseUrl: string, queryString: string): Record<string, unknown> {
  const owner = directory.get(r.ownerIndex);
  const approver = r.approverIndex === null ? undefined : directory.get(r.approverIndex);
  const claimed = r.totalCents - r.personalCents;
  return {
    Name: r.name,
    Total: fromCents(r.totalCents),
    CurrencyCode: r.currencyCode,
    Country: r.country,
    CountrySubdivision: r.countrySubdivision,
    CreateDate: concurDateTime(r.createdMs),
    SubmitDate: orNull(r.submitMs),
    ProcessingPaymentDate: orNull(r.processingPaymentMs),
    PaidDate: orNull(r.paidMs),
    ReceiptsReceived: r.receiptsReceived,
    UserDefinedDate: concurMidnight(r.userDefinedMs),
    LastComment: r.lastComment,
    OwnerLoginID: owner.loginId,
    OwnerName: owner.displayName,
    ApproverLoginID: approver ? approver.loginId : null,
    ApproverName: approver ? approver.displayName : null,
    ApprovalStatusName: APPROVAL_STATUS_NAMES[r.status] ?? r.status,
    ApprovalStatusCode: r.status,
    PaymentStatusName: PAYMENT_STATUS_NAMES[r.paymentStatus] ?? r.paymentStatus,
    PaymentStatusCode: r.paymentStatus,
    LastModifiedDate: concurDateTime(r.lastModifiedMs),
    PersonalAmount: fromCents(r.personalCents),
    AmountDueEmployee: fromCents(claimed - r.companyCardCents),
    AmountDueCompanyCard: fromCents(r.companyCardCents),
    TotalClaimedAmount: fromCents(claimed),
    TotalApprovedAmount: fromCents(claimed),
    LedgerName: 'DEFAULT',
    PolicyID: r.policyId,
    EverSentBack: r.everSentBack,
    HasException: r.hasException,
    WorkflowActionUrl:
      r.submitMs === null ? '' : `${baseUrl}/api/v3.0/expense/reports/report/${workflowToken(r.id)}/WorkFlowAction${queryString ? `?${queryString}` : ''}`,
    OrgUnit1: null,
    OrgUnit2: null,
    OrgUnit3: null,
    OrgUnit4: null,
    OrgUnit5: null,
    OrgUnit6: null,
    Custom1: null,
    Custom2: null,
    Custom3: null,
    Custom4: null,
    Custom5: null,
    Custom6: null,
    Custom7: null,
    Custom8: null,
    Custom9: null,
    Custom10: null,
    Custom11: null,
    Custom12: null,
    Custom13: null,
    Custom14: null,
    Custom15: null,
    Custom16: null,
    Custom17: null,
    Custom18: null,
    Custom19: null,
    Custom20: null,
    ID: r.id,
    URI: `${baseUrl}/api/v3.0/expense/reports/${r.id}`,
  };
}

const amount = (cents: number, currencyCode: string): { value: number; currencyCode: string } => ({
  value: fromCents(cents),
  currencyCode,
});

/**
 * v4 `ReportToApprove` with the keys of v4-reports-to-approve.json. `reportId` is the v3 ID (that
 * the two are equal is UNCONFIRMED, concur-api.md 9; the sandbox assumes it), `submitDate` is
 * `YYYY-MM-DD` as the swagger says (the markdown also mentions a datetime).
 */
export function renderReportToApprove(r: ReportRecord, directory: SandboxDirectory): Record<string, unknown> {
  const owner = directory.get(r.ownerIndex);
  const approver = r.approverIndex === null ? undefined : directory.get(r.approverIndex);
  const claimed = r.totalCents - r.personalCents;
  return {
    name: r.name,
    reportDate: isoDate(r.userDefinedMs),
    reportId: r.id,
    reportNumber: r.reportNumber,
    submitDate: r.submitMs === null ? null : isoDate(r.submitMs),
    approver: approver ? { employeeId: approver.employeeNumber, employeeUuid: approver.id } : null,
    employee: { employeeId: owner.employeeNumber, employeeUuid: owner.id },
    amountDueEmployee: amount(claimed - r.companyCardCents, r.currencyCode),
    claimedAmount: amount(claimed, r.currencyCode),
    totalApprovedAmount: amount(claimed, r.currencyCode),
    hasExceptions: r.hasException,
    reportType: 'Regular',
  };
}

/** v4 datetimes: UTC `YYYY-MM-DDTHH:mm:ssZ` (v4.reports.markdown "ReportDetails"). */
const v4DateTime = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * v4 `ReportDetails`, the subset the sandbox has data for: keys of v4-report.json in its order
 * (opaque form, ledger and custom-field IDs left out), then the documented `reportNumber`,
 * `hasExceptions`, `isSentBack` and `isReportEverSentBack`. The self link names the context it
 * was read in, as in the sample.
 */
export function renderV4Report(r: ReportRecord, directory: SandboxDirectory, baseUrl: string, userId: string, contextType: string): Record<string, unknown> {
  const claimed = r.totalCents - r.personalCents;
  const money = (cents: number): { value: number; currencyCode: string } => amount(cents, r.currencyCode);
  return {
    approvalStatus: APPROVAL_STATUS_NAMES[r.status] ?? r.status,
    approvalStatusId: r.status,
    paymentStatus: PAYMENT_STATUS_NAMES[r.paymentStatus] ?? r.paymentStatus,
    paymentStatusId: r.paymentStatus,
    submitDate: r.submitMs === null ? null : v4DateTime(r.submitMs),
    approvedAmount: money(claimed),
    claimedAmount: money(claimed),
    amountDueCompanyCard: money(r.companyCardCents),
    amountDueEmployee: money(claimed - r.companyCardCents),
    personalAmount: money(r.personalCents),
    reportTotal: money(r.totalCents),
    isPaperReceiptsReceived: r.receiptsReceived,
    reportId: r.id,
    currencyCode: r.currencyCode,
    links: [
      {
        rel: 'self',
        href: `${baseUrl}/expensereports/v4/users/${userId}/context/${contextType}/reports/${r.id}`,
        hreflang: null,
        media: null,
        title: null,
        type: null,
        deprecation: null,
        method: 'GET',
        isTemplated: false,
      },
    ],
    reportDate: isoDate(r.userDefinedMs),
    policyId: r.policyId,
    name: r.name,
    userId: directory.get(r.ownerIndex).id,
    reportType: 'Regular',
    creationDate: v4DateTime(r.createdMs),
    reportNumber: r.reportNumber,
    hasExceptions: r.hasException,
    isSentBack: r.status === 'A_RESU' && r.everSentBack,
    isReportEverSentBack: r.everSentBack,
  };
}
