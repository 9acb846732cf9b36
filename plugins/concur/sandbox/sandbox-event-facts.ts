import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ReportChange, ReportRecord } from './sandbox-company.js';
import type { SandboxDirectory } from './sandbox-people.js';

/**
 * ESS expense events (v4.expense-events.md) from the company's report changes: the envelope and
 * facts exactly as the docs' samples show them. Which changes publish what:
 *
 * - created → `reportCreated`; deleted → `reportDeleted` (no `href`, as in the sample); a header
 *   edit → `reportUpdated` (never for workflow steps, as the doc says).
 * - submit / resubmit → `statusChanged` from A_NOTF / A_RESU (always published).
 * - send back → `statusChanged` with stepCode SENDBACK; recall → RECALL (always published).
 * - approve (to the next manager or out of A_PEND) → `statusChanged` only when `stepNotifications`
 *   (Concur publishes mid-workflow steps only when an admin configured the step for notifications).
 * - an edit to payment status P_PAID → `statusChanged` with stepCode PAIDREPORT (always), besides `reportUpdated`.
 * - reassign → nothing (the doc names no event for it).
 */

export const EXPENSE_TOPIC = 'public.concur.expense.report';

/** The event envelope (v4.expense-events.md "Event Schema"). */
export interface EssEvent {
  readonly id: string;
  readonly correlationId: string;
  readonly route: 'stable';
  readonly eventType: 'reportCreated' | 'reportUpdated' | 'reportDeleted' | 'statusChanged';
  readonly topic: string;
  readonly timeStamp: string;
  readonly facts: Record<string, unknown>;
}

export interface FactsContext {
  readonly companyId: string;
  readonly directory: SandboxDirectory;
  /** Origin the `href` API URLs point at (the sandbox's base URL). */
  readonly baseUrl: string;
  readonly nowMs: number;
  /** Publish approvals of mid-workflow steps (default true in the sandbox). */
  readonly stepNotifications: boolean;
}

const iso = (ms: number): string => new Date(ms).toISOString();
/** 32 upper-case hex digits, the shape of `processId` and step-instance ids in the samples. */
const hex32 = (): string => randomBytes(16).toString('hex').toUpperCase();
/** One workflow process per report, stable across its events. */
const processIdOf = (reportId: string): string => createHash('sha256').update(`process:${reportId}`).digest('hex').slice(0, 32).toUpperCase();

/** The events `change` publishes, in order; empty when it publishes none. */
export function eventsFor(change: ReportChange, ctx: FactsContext): EssEvent[] {
  const correlationId = randomUUID();
  const envelope = (eventType: EssEvent['eventType'], facts: Record<string, unknown>): EssEvent => ({
    id: randomUUID(),
    correlationId,
    route: 'stable',
    eventType,
    topic: EXPENSE_TOPIC,
    timeStamp: iso(ctx.nowMs),
    facts,
  });
  const userId = (index: number | null): string | null => (index === null ? null : ctx.directory.get(index).id);
  const href = (r: ReportRecord): string => `${ctx.baseUrl}/expensereports/v4/users/${ctx.directory.get(r.ownerIndex).id}/context/TRAVELER/reports/${r.id}`;
  const header = (r: ReportRecord, withHref: boolean): Record<string, unknown> => ({
    reportType: 'Regular',
    companyId: ctx.companyId,
    reportId: r.id,
    lastModifiedDate: iso(r.lastModifiedMs),
    actingUserId: null,
    ...(withHref ? { href: href(r) } : {}),
    userId: userId(change.actorIndex),
  });
  const status = (before: ReportRecord, after: ReportRecord, stepCode: string | null): EssEvent =>
    envelope('statusChanged', {
      currentApprovalStatus: after.status,
      reportId: after.id,
      stepCode,
      lastModifiedDate: iso(after.lastModifiedMs),
      userId: userId(change.actorIndex),
      reportType: 'Regular',
      previousPaymentStatus: before.paymentStatus,
      companyId: ctx.companyId,
      processId: processIdOf(after.id),
      currentPaymentStatus: after.paymentStatus,
      startingStep: startingStep(after),
      previousApprovalStatus: before.status,
      actingUserId: null,
      href: href(after),
    });
  const startingStep = (r: ReportRecord): { roleCode: string; stepInstances: { id: string; assignedUserId: string | null }[] } => {
    switch (r.status) {
      case 'A_PEND':
        return { roleCode: 'MANAGER', stepInstances: [{ id: hex32(), assignedUserId: userId(r.approverIndex) }] };
      case 'A_PECO':
        return { roleCode: 'CO_APPROVER', stepInstances: [{ id: hex32(), assignedUserId: userId(r.approverIndex) }] };
      case 'A_PBDG':
        return { roleCode: 'BUDGET_APPROVER', stepInstances: [{ id: hex32(), assignedUserId: userId(r.approverIndex) }] };
      case 'A_RESU':
      case 'A_NOTF':
        // Back with the employee: the sandbox's choice (the samples show no such step).
        return { roleCode: 'EMPLOYEE', stepInstances: [{ id: hex32(), assignedUserId: userId(r.ownerIndex) }] };
      default:
        // Processor steps: nobody assigned yet, as in the accounting-review sample.
        return { roleCode: 'ACCT_CLERK', stepInstances: [{ id: hex32(), assignedUserId: null }] };
    }
  };
  const stepCodeOf = (r: ReportRecord): string => {
    switch (r.status) {
      case 'A_PEND':
        return 'MANAGER';
      case 'A_PECO':
        return 'CO_STEP';
      case 'A_PBDG':
        return 'BUDGET';
      case 'A_ACCO':
        return 'ACCTCLERK';
      default:
        return 'APPROVED';
    }
  };

  const { before, after } = change;
  switch (change.kind) {
    case 'created':
      return after ? [envelope('reportCreated', header(after, true))] : [];
    case 'deleted':
      return before ? [envelope('reportDeleted', header(before, false))] : [];
    case 'edited': {
      if (!before || !after) return [];
      const out = [envelope('reportUpdated', header(after, true))];
      if (after.paymentStatus === 'P_PAID' && before.paymentStatus !== 'P_PAID') out.push(status(before, after, 'PAIDREPORT'));
      return out;
    }
    case 'submitted':
      // "If the target step is not configured for notifications, then step code will be NULL."
      return before && after ? [status(before, after, ctx.stepNotifications ? stepCodeOf(after) : null)] : [];
    case 'sentBack':
      return before && after ? [status(before, after, 'SENDBACK')] : [];
    case 'recalled':
      return before && after ? [status(before, after, 'RECALL')] : [];
    case 'approved':
      return before && after && ctx.stepNotifications ? [status(before, after, stepCodeOf(after))] : [];
    case 'reassigned':
      return [];
  }
}
