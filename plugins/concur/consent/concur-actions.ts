import type { ActionResult, Clock, Logger, QueuedApproval, SourceActRequest } from '../../../core/index.js';
import type { ConcurClient } from '../client/concur-client.js';
import type { ConcurDelegateDirectory, DelegateCheck } from '../concur-delegates.js';
import type { ConcurUserClient, ReportToApprove, UserAccess, UserCallResult, WorkflowAction } from '../client/user-client.js';
import type { ApproverConsents } from './approver-consents.js';

/** Concur's limit on a workflow comment (v4.workflows.markdown). */
const MAX_COMMENT = 2000;

const refused = (message: string): ActionResult => ({ outcome: 'refused', message });

/**
 * Approve and send back as the approver, under their own Concur user token (docs/concur-api.md
 * 2.4, 13), or as one of their expense delegates under the delegate's own token (Delegates). Per click: the approver's access token (a refresh only when the cached one is spent),
 * one guard read of their `reportsToApprove`, and one long-URL PATCH. A report missing from that
 * list costs one company read more, to tell the clicker what happened instead (decided, or moved
 * to someone else). The click's correlation id goes to Concur as `concur-correlationid`.
 */
export class ConcurActions {
  constructor(
    private readonly consents: ApproverConsents,
    private readonly user: ConcurUserClient,
    private readonly company: ConcurClient,
    private readonly pendingCodes: readonly string[],
    /** The "Connect your Concur account" URL for a fresh consent state. */
    private readonly connectUrl: (state: string) => string,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** Set when `delegates.notify` is on: an expense delegate's click is checked against Concur's delegate list, fresh. */
    private readonly delegates?: ConcurDelegateDirectory,
  ) {}

  async act(request: SourceActRequest): Promise<ActionResult> {
    const { approval, approver, action, input, correlationId, signal } = request;
    if (action !== 'approve' && action !== 'sendBack') return refused(`Concur has no action "${action}" here; use Approve or Send back.`);
    const comment = input.comment?.trim() || undefined;
    if (action === 'sendBack' && !comment) return refused('Sending a report back needs a comment for the employee: say what to fix.');
    if (comment && comment.length > MAX_COMMENT) return refused(`Concur takes comments of up to ${MAX_COMMENT} characters; this one has ${comment.length}.`);

    // A delegate (docs/concur-api.md, Delegates) acts under their own token, on their own UUID's URL,
    // once a fresh Spend User read says the approver still lets them approve.
    const behalf = approver.onBehalfOf;
    if (behalf && !this.delegates) return refused('Acting as a Concur delegate is not turned on here (delegates.notify); open the report in Concur.');
    let access = await this.consents.access(approver.email);
    if (!access) return this.consentNeeded(approver.email);
    let expected = access.userId;
    if (behalf) {
      const who = behalf.name ?? behalf.sourceUserId;
      let check: DelegateCheck;
      try {
        check = await this.delegates!.check(behalf.sourceUserId, access.userId, signal);
      } catch (error) {
        this.logger.warn({ report: approval.externalId, err: (error as Error).message }, "could not read the approver's Concur delegates at click time");
        return refused(`Concur could not say whether you may still approve for ${who}; nothing was done. Try again in a minute.`);
      }
      if (!check.ok) return { outcome: 'not_yours', message: notDelegate(check.reason, who, approval.title) };
      expected = check.approverId;
    }
    let guard = await this.user.reportsToApprove(access, correlationId, signal, Boolean(behalf));
    if (guard.status === 401) {
      // The cached access token died early (Concur revoked it): one refresh, one more read.
      access = await this.consents.access(approver.email, access.token);
      if (!access) return this.consentNeeded(approver.email);
      guard = await this.user.reportsToApprove(access, correlationId, signal, Boolean(behalf));
    }
    if (guard.status === 401) {
      await this.consents.forget(approver.email);
      return this.consentNeeded(approver.email);
    }
    if (guard.status === 403) return this.scopeMissing(approver.email, guard);
    if (!guard.data) return refused(`Concur could not list the reports waiting on you (HTTP ${guard.status}); nothing was done. Try again in a minute.`);
    const item = guard.data.find((r) => r.reportId === approval.externalId);
    // The step's approver is the clicker, or for a delegate the approver they stand in for.
    if (!item || (item.approverUuid !== undefined && item.approverUuid !== expected)) {
      return this.explain(approval, behalf?.sourceUserId ?? approver.sourceUserId, signal, behalf ? (behalf.name ?? behalf.sourceUserId) : undefined);
    }
    const change = changeSince(approval, item);
    if (change)
      return { outcome: 'changed', message: `“${approval.title}” changed in Concur since this card was drawn (${change}); look at it again before deciding.` };

    const write = await this.user.act(access, approval.externalId, action, comment, correlationId, signal);
    return this.outcome(approval, action, write, access, approver.email);
  }

  private async consentNeeded(email: string): Promise<ActionResult> {
    return {
      outcome: 'consent_needed',
      label: 'Connect your Concur account',
      message: 'Connect your Concur account once so approvals-hub can act as you in Concur; then press the button again.',
      url: this.connectUrl(await this.consents.issueState(email)),
    };
  }

  /**
   * A 403 on the guard read: the user lacks an approver role, or the token lacks the read scope (a
   * consent given before the app asked for it). Reconnecting fixes only the second, so the token
   * is kept and the clicker told; `approvals-hub consent revoke` makes them connect anew.
   */
  private scopeMissing(email: string, result: UserCallResult<unknown>): ActionResult {
    this.logger.warn({ approver: email, correlationId: result.correlationId, err: result.message }, 'Concur refused the approver token for reportsToApprove');
    return refused(
      'Concur did not let approvals-hub see the reports waiting on you (HTTP 403): your Concur account may lack the approver role, or your ' +
        'connection predates a scope the app now needs. Ask your approvals-hub operator; nothing was done.',
    );
  }

  /** The report is not in the approver's queue: read it (company token) to say why, never act. */
  private async explain(approval: QueuedApproval, approverLogin: string, signal: AbortSignal, delegateOf?: string): Promise<ActionResult> {
    const owner = typeof approval.sourceData?.ownerLoginId === 'string' ? approval.sourceData.ownerLoginId : undefined;
    const report = await this.company.getReport(approval.externalId, owner, signal);
    if (!report) return { outcome: 'already_decided', message: `“${approval.title}” is no longer in Concur.` };
    if (!this.pendingCodes.includes(report.ApprovalStatusCode)) {
      const comment = report.LastComment ? `: “${report.LastComment}”` : '';
      const status = (report.ApprovalStatusName ?? report.ApprovalStatusCode).toLowerCase();
      return {
        outcome: 'already_decided',
        message: `“${approval.title}” is already ${status} in Concur (last change ${report.LastModifiedDate} UTC)${comment}.`,
      };
    }
    const now =
      report.ApproverLoginID && report.ApproverLoginID.toLowerCase() !== approverLogin.toLowerCase()
        ? (report.ApproverName ?? report.ApproverLoginID)
        : undefined;
    return {
      outcome: 'not_yours',
      message: now
        ? `“${approval.title}” now waits on ${now} in Concur, not on ${delegateOf ?? 'you'}.`
        : `Concur does not list “${approval.title}” among the reports waiting on you${delegateOf ? ` or on ${delegateOf}` : ''}.`,
    };
  }

  private async outcome(approval: QueuedApproval, action: WorkflowAction, write: UserCallResult, access: UserAccess, email: string): Promise<ActionResult> {
    const title = `“${approval.title}”`;
    const said = write.message ? ` Concur said: ${write.message}` : '';
    if (write.status === 204) {
      return {
        outcome: 'done',
        action,
        message: action === 'approve' ? `Approved ${title} in Concur.` : `Sent ${title} back to its owner in Concur.`,
        at: this.clock.now().toISOString(),
        correlationId: write.correlationId,
      };
    }
    this.logger.warn(
      { report: approval.externalId, action, status: write.status, correlationId: write.correlationId, userId: access.userId },
      'Concur refused a workflow action',
    );
    switch (write.status) {
      case 400:
        // Concur asks for this only when the approver rejected some expenses in its UI; chat cannot show which.
        if (action === 'approve' && write.message?.includes('expenseRejectedComment')) {
          return refused(
            `Some expenses on ${title} were rejected in Concur, and Concur then needs a comment about them: approve it in Concur (View Expense Report).`,
          );
        }
        return refused(`Concur refused to ${action === 'approve' ? 'approve' : 'send back'} ${title}.${said}`);
      case 401:
        await this.consents.forget(email);
        return this.consentNeeded(email);
      case 403:
        return {
          outcome: 'not_yours',
          message: `Concur does not let you ${action === 'approve' ? 'approve' : 'send back'} ${title} now (it may have moved to another approver).${said}`,
        };
      case 404:
        return { outcome: 'already_decided', message: `${title} is no longer in Concur.` };
      case 409:
        return { outcome: 'changed', message: `${title} moved to another workflow step in Concur since this card was drawn; look at it again.` };
      default:
        return refused(`Concur could not take the action on ${title} (HTTP ${write.status}); nothing was changed. Try again in a minute.${said}`);
    }
  }
}

/** Why a delegate may not act for `who` now, in a sentence. */
function notDelegate(reason: Exclude<DelegateCheck, { ok: true }>['reason'], who: string, title: string): string {
  switch (reason) {
    case 'cannot_approve':
      return `${who} no longer lets you approve for them in Concur (your delegate rights changed), so nothing was done with “${title}”.`;
    case 'outside_window':
      return `Your temporary delegation for ${who} is not in effect in Concur now, so nothing was done with “${title}”.`;
    case 'unknown_approver':
      return `Concur no longer knows ${who}, so nothing was done with “${title}”.`;
    default:
      return `You are no longer ${who}'s expense delegate in Concur, so nothing was done with “${title}”.`;
  }
}

/**
 * What differs between the card's version and the report as Concur lists it now (name, submit
 * date, exceptions), or undefined. `reportsToApprove` carries no modification date, so these are
 * the fields a resubmit or an edit visibly changes.
 */
function changeSince(approval: QueuedApproval, now: ReportToApprove): string | undefined {
  if (now.name !== undefined && now.name !== approval.title && !(now.name.trim() === '' && approval.title.startsWith('Expense report '))) return 'its name';
  const shownSubmit = approval.submittedAt?.slice(0, 10);
  if (now.submitDate !== undefined && shownSubmit !== undefined && now.submitDate.slice(0, 10) !== shownSubmit) return 'it was submitted again';
  const shownException = approval.sourceData?.hasException;
  if (now.hasExceptions !== undefined && typeof shownException === 'boolean' && now.hasExceptions !== shownException) return 'its exceptions';
  return undefined;
}
