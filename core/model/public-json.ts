import type { Approval } from './approval.js';

/**
 * The stable `--json` shape of an approval (documented in the README). Fields are always
 * present; unknown values are `null`.
 */
export interface PublicApproval {
  key: string;
  source: string;
  kind: string;
  externalId: string;
  title: string;
  status: string;
  requester: { name: string | null; email: string | null };
  approvers: { sourceUserId: string; name: string | null; email: string | null }[];
  amount: { value: string; currency: string } | null;
  submittedAt: string | null;
  sourceUpdatedAt: string;
  links: { view: string | null };
  /** Extra lines the card shows (Concur: number of entries, expense types); null when the source did not read them (yet). */
  fields: { label: string; value: string }[] | null;
  /** The card's line items (Concur: the largest expense entries); null when not read (yet), e.g. a backlog the backfill has not reached. */
  lineItems: { label: string; amount: { value: string; currency: string } | null; flags: string[] }[] | null;
  /** Warnings the card shows (exceptions, missing receipt); null when not read (yet). */
  flags: string[] | null;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);
const money = (v: unknown): { value: string; currency: string } | null =>
  isRecord(v) && typeof v.value === 'string' && typeof v.currency === 'string' ? { value: v.value, currency: v.currency } : null;

export function toPublicJson(a: Approval): PublicApproval {
  return {
    key: a.key,
    source: a.source,
    kind: a.kind,
    externalId: a.externalId,
    title: a.title,
    status: a.status,
    requester: { name: a.requester.name ?? null, email: a.requester.email ?? null },
    approvers: a.approvers.map((p) => ({ sourceUserId: p.sourceUserId, name: p.name ?? null, email: p.email ?? null })),
    amount: a.amount ? { value: a.amount.value, currency: a.amount.currency } : null,
    submittedAt: a.submittedAt ?? null,
    sourceUpdatedAt: a.sourceUpdatedAt,
    links: { view: a.links.view ?? null },
    fields: Array.isArray(a.content?.fields)
      ? a.content.fields.filter(isRecord).map((f) => ({ label: String(f.label ?? ''), value: String(f.value ?? '') }))
      : null,
    lineItems: Array.isArray(a.content?.lineItems)
      ? a.content.lineItems.filter(isRecord).map((l) => ({ label: String(l.label ?? ''), amount: money(l.amount), flags: strings(l.flags) }))
      : null,
    flags: Array.isArray(a.content?.flags) ? strings(a.content.flags) : null,
  };
}
