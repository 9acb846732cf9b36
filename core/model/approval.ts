import { createHash } from 'node:crypto';

/**
 * Where an approval stands in its source. Only `pending` approvals are queued; every other
 * status is an outcome that removes the approval from the queue and closes its cards.
 */
export const APPROVAL_STATUSES = [
  'pending',
  'approved',
  'rejected',
  'sent_back',
  'recalled',
  'no_longer_required',
  'expired',
] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];

/** A decimal amount kept as a string, so `0.1 + 0.2` never shows up on a card. */
export interface Money {
  /** Decimal string, e.g. `"1234.50"`; never a float. */
  readonly value: string;
  /** ISO 4217 code. */
  readonly currency: string;
}

export interface Person {
  readonly name?: string | undefined;
  readonly email?: string | undefined;
}

/** One person who can act on an approval, as the source names them. */
export interface Approver {
  /** The source's own id for the person (Concur: the approver's login id). */
  readonly sourceUserId: string;
  readonly name?: string | undefined;
  /** Work e-mail, filled in by the IdentityDirectory; absent while unresolved. */
  readonly email?: string | undefined;
  /**
   * IANA time zone (`Europe/Berlin`), filled in by the IdentityDirectory where the source knows it
   * (Concur Identity v4 `timezone`). Reminders keep out of the approver's quiet hours in it.
   */
  readonly timeZone?: string | undefined;
}

/** A normalised approval as a source reports it. */
export interface Approval {
  /** `<sourceInstance>:<kind>:<externalId>`, see {@link approvalKey}. */
  readonly key: string;
  /** Source instance id from the deployment file (e.g. `concur-acme`). */
  readonly source: string;
  /** Approval kind within the source (e.g. `expense-report`). */
  readonly kind: string;
  /** The source's id of the approved object. */
  readonly externalId: string;
  readonly title: string;
  readonly status: ApprovalStatus;
  readonly requester: Person;
  readonly approvers: readonly Approver[];
  readonly amount?: Money | null | undefined;
  /** ISO-8601 UTC. */
  readonly submittedAt?: string | null | undefined;
  /** ISO-8601 UTC: when the source last changed this approval; drives retention. */
  readonly sourceUpdatedAt: string;
  readonly links: { readonly view?: string | undefined };
  /** Kind-specific details shown on the card (line items, flags); JSON-serialisable. */
  readonly details?: Readonly<Record<string, unknown>> | undefined;
}

export function approvalKey(source: string, kind: string, externalId: string): string {
  return `${source}:${kind}:${externalId}`;
}

/** Splits a key into its three parts; the external id may itself contain colons. */
export function parseApprovalKey(key: string): { source: string; kind: string; externalId: string } {
  const first = key.indexOf(':');
  const second = key.indexOf(':', first + 1);
  if (first <= 0 || second <= first + 1 || second === key.length - 1) {
    throw new Error(`not an approval key: "${key}" (expected <source>:<kind>:<externalId>)`);
  }
  return { source: key.slice(0, first), kind: key.slice(first + 1, second), externalId: key.slice(second + 1) };
}

/**
 * A hash of everything a notification shows. Two versions with the same fingerprint render the
 * same card, so a change that leaves it equal must not touch any delivered message.
 * Approver e-mails and time zones are left out: resolving an identity changes who gets the card
 * and when they are reminded, not the card.
 * Of `details`, only the shown keys count (`fields`, `lineItems`, `flags`, see the card
 * renderer); the rest is the source's bookkeeping (Concur's raw LastModifiedDate, owner login).
 */
/** The keys of `Approval.details` a card shows. */
export const SHOWN_DETAILS = ['fields', 'lineItems', 'flags'] as const;

export function fingerprint(approval: Approval): string {
  const shown = {
    title: approval.title,
    status: approval.status,
    requester: approval.requester,
    approvers: approval.approvers.map((a) => [a.sourceUserId, a.name ?? null]),
    amount: approval.amount ?? null,
    submittedAt: approval.submittedAt ?? null,
    links: approval.links,
    details: approval.details ? SHOWN_DETAILS.map((k) => approval.details?.[k] ?? null) : null,
  };
  return createHash('sha256').update(stableStringify(shown)).digest('hex').slice(0, 32);
}

/** JSON with object keys sorted, so equal values always hash equal. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

/** Converts a source's number to a decimal string without float noise (1900 → "1900.00" for 2-digit currencies). */
export function moneyFromNumber(value: number, currency: string, fractionDigits = 2): Money {
  if (!Number.isFinite(value)) throw new Error(`amount is not a finite number: ${value}`);
  return { value: value.toFixed(fractionDigits), currency };
}
