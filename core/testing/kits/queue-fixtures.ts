import assert from 'node:assert/strict';
import { approvalKey, type Approval, type Approver } from '../../model/approval.js';
import type { CardRenderer, ChangeBatch, CommitContext } from '../../model/queue-types.js';

/**
 * The world the queue contract kit commits: one Concur-like source, approvers at `acme.test`, a
 * fixed "now". The repo's own tests import these too (test/support/queue-fixtures.ts).
 */
export const DAY_MS = 86_400_000;
export const NOW = new Date('2025-06-02T12:00:00.000Z');
export const SOURCE = 'concur-acme';

/** An ISO time `ms` before `from`. */
export function ago(ms: number, from: Date = NOW): string {
  return new Date(from.getTime() - ms).toISOString();
}

/** An approver whose e-mail is `<id>@acme.test`. */
export function approver(id: string): Approver {
  return { sourceUserId: id, name: id.toUpperCase(), email: `${id}@acme.test` };
}

/** An approver the identity directory could not resolve yet. */
export function unresolved(id: string): Approver {
  return { sourceUserId: id, name: id.toUpperCase() };
}

/** A pending Concur-like expense report, one day old, approved by `grace`. */
export function approval(externalId: string, overrides: Partial<Approval> = {}): Approval {
  const source = overrides.source ?? SOURCE;
  const kind = overrides.kind ?? 'expense-report';
  return {
    key: approvalKey(source, kind, externalId),
    source,
    kind,
    externalId,
    title: `Report ${externalId}`,
    status: 'pending',
    requester: { name: 'Ada Lovelace', email: 'ada@acme.test' },
    approvers: [approver('grace')],
    amount: { value: '120.00', currency: 'EUR' },
    submittedAt: ago(2 * DAY_MS),
    sourceUpdatedAt: ago(DAY_MS),
    links: { view: `https://www.concursolutions.com/goto/expense-report/${externalId}` },
    ...overrides,
  };
}

export function batch(approvals: readonly Approval[], extra: Partial<ChangeBatch> = {}): ChangeBatch {
  return { source: SOURCE, approvals, ...extra };
}

export const renderCard: CardRenderer = (a, outcome) => ({
  approvalKey: a.key,
  kind: a.kind,
  revision: a.revision,
  title: a.title,
  requester: a.requester,
  amount: a.amount,
  submittedAt: a.submittedAt,
  fields: [],
  lineItems: [],
  flags: [],
  outcome,
  actions: [],
});

/** One channel (`console`), 30 days' retention, at {@link NOW} unless overridden. */
export function commitContext(overrides: Partial<CommitContext> = {}): CommitContext {
  const now = overrides.now ?? NOW;
  return { now, channels: ['console'], notBefore: new Date(now.getTime() - 30 * DAY_MS), render: renderCard, ...overrides };
}

/** Fails unless `promise` rejects. */
export async function expectRejection(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, 'expected the call to fail');
}
