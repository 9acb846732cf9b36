import type { ServiceIdentifier } from '../di.js';
import type { Approver } from '../model/approval.js';

/** The outcome of resolving one source user. */
export type Resolution =
  | { readonly status: 'resolved'; readonly approver: Approver & { readonly email: string } }
  /** The directory answered and the person has no e-mail: stays parked until an operator acts. */
  | { readonly status: 'unknown' }
  /** The directory failed (timeout, 5xx): parked and retried with backoff. */
  | { readonly status: 'failed'; readonly error: string };

/**
 * Source user → person with a work e-mail. Multi-bound, one per source instance that needs one
 * (matched by `source`); a source without a directory uses its approvers' e-mails as given.
 * Implementations cache and persist mappings, and answer in bulk so a first sync of many
 * unknown approvers costs a listing, not one call each.
 */
export interface IdentityDirectory {
  readonly source: string;
  resolve(approvers: readonly Approver[], signal: AbortSignal): Promise<Map<string, Resolution>>;
}
export const IdentityDirectory: ServiceIdentifier<IdentityDirectory> = Symbol.for('approvals.core.IdentityDirectory');
