import type { Money } from '../model/approval.js';
import type { CardAction } from '../model/card.js';
import type { QueuedApproval } from '../model/queue-types.js';
import type { SourceCapabilities } from '../contracts/approval-source.js';
import type { CardRenderer } from './planner.js';

/**
 * Sources describe kind-specific card content in `details` with these optional keys; anything
 * else in `details` is data for the source itself and is not shown.
 */
interface ShownDetails {
  fields?: { label: string; value: string }[];
  lineItems?: { label: string; amount?: Money; flags?: string[] }[];
  flags?: string[];
}

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
 * `fields` / `lineItems` / `flags` a source puts in `details`. The View button opens the approval
 * in its source (Concur: **View Expense Report**); act buttons appear only for actions the source
 * says it supports, and no button survives an outcome.
 */
export function createCardRenderer(capabilities: ReadonlyMap<string, SourceCapabilities>): CardRenderer {
  return (approval: QueuedApproval, outcome) => {
    const details = readShownDetails(approval.details);
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
      fields: details.fields ?? [],
      lineItems: details.lineItems ?? [],
      flags: details.flags ?? [],
      outcome,
      actions,
    };
  };
}

function readShownDetails(details: QueuedApproval['details']): ShownDetails {
  if (!details) return {};
  const out: ShownDetails = {};
  if (Array.isArray(details.fields)) {
    out.fields = details.fields.filter(
      (f): f is { label: string; value: string } => isRecord(f) && typeof f.label === 'string' && typeof f.value === 'string',
    );
  }
  if (Array.isArray(details.lineItems)) {
    out.lineItems = details.lineItems.filter(
      (l): l is { label: string; amount?: Money; flags?: string[] } => isRecord(l) && typeof l.label === 'string',
    );
  }
  if (Array.isArray(details.flags)) out.flags = details.flags.filter((f): f is string => typeof f === 'string');
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
