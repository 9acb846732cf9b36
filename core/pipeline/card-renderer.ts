import type { ApprovalContent, ContentField, ContentLineItem } from '../model/approval.js';
import type { CardAction } from '../model/card.js';
import type { QueuedApproval } from '../model/queue-types.js';
import type { SourceCapabilities } from '../contracts/approval-source.js';
import type { CardRenderer } from './planner.js';

const ACTION_LABELS: Record<string, string> = { approve: 'Approve', sendBack: 'Send Back', reject: 'Reject' };

/** `expense-report` → `Expense Report`. */
export function kindTitle(kind: string): string {
  return kind
    .split(/[-_\s]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join(' ');
}

/**
 * The default renderer: one card shape for every kind, filled from the approval and the
 * `fields` / `lineItems` / `flags` of its `content` (its `sourceData` is never shown). The View button opens the approval
 * in its source (Concur: **View Expense Report**); act buttons appear only for actions the source
 * says it supports, and no button survives an outcome.
 */
export function createCardRenderer(capabilities: ReadonlyMap<string, SourceCapabilities>): CardRenderer {
  return (approval: QueuedApproval, outcome) => {
    const content = readContent(approval.content);
    const actions: CardAction[] = [];
    if (!outcome) {
      if (approval.links.view) actions.push({ type: 'link', label: `View ${kindTitle(approval.kind)}`, url: approval.links.view });
      for (const action of capabilities.get(approval.source)?.actions ?? []) {
        actions.push({ type: 'act', label: ACTION_LABELS[action] ?? action, action, style: action === 'approve' ? 'primary' : undefined });
      }
    }
    return {
      approvalKey: approval.key,
      kind: approval.kind,
      revision: approval.revision,
      title: approval.title,
      requester: approval.requester,
      amount: approval.amount ?? null,
      submittedAt: approval.submittedAt ?? null,
      source: approval.source,
      queuedAt: approval.queuedAt,
      fields: content.fields ?? [],
      lineItems: content.lineItems ?? [],
      flags: content.flags ?? [],
      outcome,
      actions,
    };
  };
}

/** The content, defensively: the host checks what sources yield, but a stored row may predate the check. */
function readContent(c: QueuedApproval['content']): { fields?: ContentField[]; lineItems?: ContentLineItem[]; flags?: string[] } {
  if (!c) return {};
  const out: { fields?: ContentField[]; lineItems?: ContentLineItem[]; flags?: string[] } = {};
  if (Array.isArray(c.fields)) {
    out.fields = c.fields.filter((f): f is ContentField => isRecord(f) && typeof f.label === 'string' && typeof f.value === 'string');
  }
  if (Array.isArray(c.lineItems)) {
    out.lineItems = c.lineItems.filter((l): l is ContentLineItem => isRecord(l) && typeof l.label === 'string');
  }
  if (Array.isArray(c.flags)) out.flags = c.flags.filter((f): f is string => typeof f === 'string');
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
