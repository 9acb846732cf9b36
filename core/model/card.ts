import type { ApprovalStatus, ContentField, ContentLineItem, Money, Person } from './approval.js';

/** How a card ended: the approval's final status, or `reassigned` for an approver it moved away from. */
export type CardOutcome = Exclude<ApprovalStatus, 'pending'> | 'reassigned';

/** A button. `link` opens a URL (Concur: View Expense Report); `act` calls back into the source. */
export type CardAction =
  | { readonly type: 'link'; readonly label: string; readonly url: string }
  | {
      readonly type: 'act';
      readonly label: string;
      readonly action: string;
      readonly style?: 'primary' | 'danger';
      /**
       * The opaque, signed token the channel hands back with the click (`ApprovalActions.act`): bound to
       * this card's approval, revision, recipient and action. Added at delivery, per recipient.
       */
      readonly token?: string | undefined;
    };

/**
 * The channel-neutral notification. Notifiers render it (Block Kit, Adaptive Card, HTML, text);
 * every string in it is plain text and must be escaped by the renderer.
 */
export interface Card {
  readonly approvalKey: string;
  readonly kind: string;
  /** Approval revision this card shows; a notifier never replaces a newer card with an older one. */
  readonly revision: number;
  readonly title: string;
  readonly requester: Person;
  readonly amount?: Money | null | undefined;
  readonly submittedAt?: string | null | undefined;
  /** The source instance the approval comes from (`concur`), for channels that list several sources' approvals together. */
  readonly source?: string | undefined;
  /** ISO-8601 UTC, host clock: when the approval first entered the queue, i.e. since when it has been waiting here. */
  readonly queuedAt?: string | undefined;
  /** Extra label/value lines (e.g. policy, report number). */
  readonly fields: readonly ContentField[];
  /** Top line items, already summarised by the source. */
  readonly lineItems: readonly ContentLineItem[];
  /** Warnings such as "has exceptions" or "missing receipt". */
  readonly flags: readonly string[];
  /** Set once the approval left the approver's hands; a card with an outcome has no buttons. */
  readonly outcome?: CardOutcome | undefined;
  /**
   * Set on the copy sent to a delegate (see `Approver.onBehalfOf`): the name of the approver they may
   * act for, shown as "As delegate of <name>". Absent on an approver's own card.
   */
  readonly onBehalfOf?: string | undefined;
  /** With an outcome: who acted, where and when, from an action taken in chat ("Approved by ann@… in Slack at …"). */
  readonly outcomeNote?: string | undefined;
  readonly actions: readonly CardAction[];
}

/**
 * Whether an act button asks the approver for a comment, the same on every channel: `required`
 * (a reason for the requester, before acting: send back, reject), `optional` (the button also comes
 * as "… with comment": approve), or undefined (acts at once).
 */
export function actionComment(action: string): 'required' | 'optional' | undefined {
  return ACTION_COMMENTS[action];
}
const ACTION_COMMENTS: Readonly<Record<string, 'required' | 'optional'>> = { approve: 'optional', sendBack: 'required', reject: 'required' };

/** The status an approval reaches for its approver once they took `action` in the source (undefined: an action the core does not know). */
export function actionStatus(action: string): Exclude<ApprovalStatus, 'pending'> | undefined {
  return ACTION_STATUSES[action];
}
const ACTION_STATUSES: Readonly<Record<string, Exclude<ApprovalStatus, 'pending'>>> = { approve: 'approved', sendBack: 'sent_back', reject: 'rejected' };

/** How each outcome reads on a closed card, the same on every channel. */
export const OUTCOME_LABELS: Readonly<Record<CardOutcome, string>> = {
  approved: '✅ Approved',
  rejected: '⛔ Rejected',
  sent_back: '↩️ Sent back',
  recalled: '↩️ Recalled by the requester',
  no_longer_required: '✔️ No longer needs your approval',
  expired: '⌛ Expired',
  reassigned: '➡️ Reassigned to another approver',
};

export function outcomeLabel(outcome: CardOutcome): string {
  return OUTCOME_LABELS[outcome] ?? outcome;
}

/** An amount as every channel shows it: `EUR 120.00`. */
export function moneyText(amount: Money | null | undefined): string | undefined {
  return amount ? `${amount.currency} ${amount.value}` : undefined;
}

/** A person as every channel names them: name, else e-mail. */
export function personText(person: Person): string {
  return person.name ?? person.email ?? 'Unknown requester';
}

/** The line a delegate's card shows about whom they act for, or undefined on an approver's own card. */
export function delegateText(card: Pick<Card, 'onBehalfOf'>): string | undefined {
  return card.onBehalfOf ? `As delegate of ${card.onBehalfOf}` : undefined;
}

/** The card as `approver` gets it: a delegate's copy names the approver they stand in for. */
export function cardFor<T extends Card>(
  card: T,
  approver: { readonly onBehalfOf?: { readonly sourceUserId: string; readonly name?: string | undefined } | undefined },
): T {
  return approver.onBehalfOf ? { ...card, onBehalfOf: approver.onBehalfOf.name ?? approver.onBehalfOf.sourceUserId } : card;
}

/** The date part of an ISO-8601 time. */
export function dayText(iso: string | null | undefined): string | undefined {
  return iso ? iso.slice(0, 10) : undefined;
}
