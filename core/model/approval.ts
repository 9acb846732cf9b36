import { createHash } from 'node:crypto';

/**
 * Where an approval stands in its source. Only `pending` approvals are queued; every other
 * status is an outcome that removes the approval from the queue and closes its cards.
 */
export const APPROVAL_STATUSES = ['pending', 'approved', 'rejected', 'sent_back', 'recalled', 'no_longer_required', 'expired'] as const;
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
  /**
   * Set when this person is not the approver but a delegate allowed to act for one (Concur: an
   * expense delegate with "can approve"): the approver they stand in for. Their card says so, and
   * an action they take is recorded as theirs on the approver's behalf. Absent for approvers.
   */
  readonly onBehalfOf?: { readonly sourceUserId: string; readonly name?: string | undefined } | undefined;
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
  /**
   * What the card shows besides the common fields (label/value lines, line items, warnings);
   * checked by the host when a source yields it. Undefined means "not loaded" (sweeps): the
   * queued content is kept.
   */
  readonly content?: ApprovalContent | undefined;
  /**
   * The source's own data about this approval (Concur: the owner's login, the raw
   * LastModifiedDate): JSON-serialisable, opaque to the core, never shown, and handed back to the
   * source with the queued approval (`VerifyRef`, `SyncContext.queued`). Undefined means "not
   * loaded": the queued data is kept.
   */
  readonly sourceData?: Readonly<Record<string, unknown>> | undefined;
}

/** One label/value line of a card (e.g. policy, report number). */
export interface ContentField {
  readonly label: string;
  readonly value: string;
}

/** One line item of a card, already summarised by the source. */
export interface ContentLineItem {
  readonly label: string;
  readonly amount?: Money | undefined;
  readonly flags?: readonly string[] | undefined;
}

/** What a card shows of an approval beyond title, requester, amount and dates. */
export interface ApprovalContent {
  readonly fields?: readonly ContentField[] | undefined;
  readonly lineItems?: readonly ContentLineItem[] | undefined;
  /** Warnings such as "exceptions" or "missing receipt". */
  readonly flags?: readonly string[] | undefined;
}

/** The keys of {@link ApprovalContent}. */
export const CONTENT_KEYS = ['fields', 'lineItems', 'flags'] as const;

/**
 * An approval body as a queue stored it, in the current shape. Earlier versions kept card
 * content and the source's data in one `details` object: its `fields` / `lineItems` / `flags`
 * become `content`, the rest `sourceData`. Every queue adapter reads stored bodies through this,
 * so old rows need no migration (they are rewritten in the new shape on their next change).
 */
export function fromStoredBody<T extends Approval>(body: T): T {
  const old = body as T & { details?: unknown };
  if (!('details' in old)) return body;
  const { details, ...rest } = old;
  if (rest.content !== undefined || rest.sourceData !== undefined || typeof details !== 'object' || details === null || Array.isArray(details)) {
    return rest as unknown as T;
  }
  const content: Record<string, unknown> = {};
  const sourceData: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) {
    if ((CONTENT_KEYS as readonly string[]).includes(k)) content[k] = v;
    else sourceData[k] = v;
  }
  return { ...rest, content: content as ApprovalContent, sourceData } as unknown as T;
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
 * `sourceData` is left out: it is the source's bookkeeping (Concur's raw LastModifiedDate, owner
 * login) and never shown. (The hash keeps the layout of the old `details` so a stored fingerprint
 * still matches after an upgrade.)
 */
export function fingerprint(approval: Approval): string {
  const shown = {
    title: approval.title,
    status: approval.status,
    requester: approval.requester,
    // A delegate's entry carries whom they stand in for; an approver's keeps its old two-item shape, so stored fingerprints still match.
    approvers: approval.approvers.map((a) => (a.onBehalfOf ? [a.sourceUserId, a.name ?? null, a.onBehalfOf.sourceUserId] : [a.sourceUserId, a.name ?? null])),
    amount: approval.amount ?? null,
    submittedAt: approval.submittedAt ?? null,
    links: approval.links,
    details: approval.content ? CONTENT_KEYS.map((k) => approval.content?.[k] ?? null) : null,
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
