import type { ServiceIdentifier } from '../di.js';
import type { QueuedApproval } from '../model/queue-types.js';

/**
 * "What is waiting on me?", answered from the queue only (never by a call to a source), with
 * retention applied. Bound by the host; chat adapters use it for lookups and to check that a
 * person may see an approval (invariant 4: only its approvers may).
 */
export interface ApprovalLookup {
  /** Pending approvals where `email` is an approver, newest first. */
  waitingOn(email: string, options?: { source?: string; limit?: number }): Promise<QueuedApproval[]>;
  /** The approval if it is queued, unexpired, and `email` is one of its approvers; otherwise undefined. */
  forApprover(key: string, email: string): Promise<QueuedApproval | undefined>;
}
export const ApprovalLookup: ServiceIdentifier<ApprovalLookup> = Symbol.for('approvals.core.ApprovalLookup');
