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
}

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
  };
}
