import { approvalKey, type Approval, type ApprovalContent, type ApprovalStatus, type ContentField, type Money, type Person } from '../../core/index.js';
import { actual, display, type TableRecord } from './client/table-client.js';

/** The approval table (docs/servicenow-api.md section 5.1). */
export const APPROVAL_TABLE = 'sysapproval_approver';

/** What the card needs of an approval record, and nothing else (`sysparm_fields`). */
export const APPROVAL_FIELDS = [
  'sys_id',
  'approver',
  'state',
  'sysapproval',
  'document_id',
  'source_table',
  'sys_created_on',
  'sys_updated_on',
  'due_date',
] as const;

/** The tables whose record the card shows, with the fields it reads of each (sections 5.4, 5.5). */
export const TASK_FIELDS = {
  sc_req_item: ['sys_id', 'number', 'short_description', 'requested_for', 'opened_by', 'price', 'quantity'],
  change_request: ['sys_id', 'number', 'short_description', 'risk', 'start_date', 'end_date', 'requested_by'],
} as const;
export type TaskTable = keyof typeof TASK_FIELDS;

/** The approval kinds this source reports: one per table it reads, and one for every other table. */
export const KINDS: Readonly<Record<TaskTable, string>> = { sc_req_item: 'requested-item', change_request: 'change-request' };
export const OTHER_KIND = 'approval';

/** The pending state: the only one a card is shown for (section 5.2). */
export const PENDING_STATE = 'requested';

/**
 * The states an approval leaves `requested` for, and what each closes its card as. `cancelled`
 * is not "recalled by the requester": ServiceNow sets it when the approval is withdrawn for any
 * reason (the task cancelled, the flow moved on), so it reads "no longer required".
 */
export const COMPLETION_STATES: Readonly<Record<string, ApprovalStatus>> = {
  approved: 'approved',
  rejected: 'rejected',
  cancelled: 'no_longer_required',
  not_required: 'no_longer_required',
  duplicate: 'no_longer_required',
};

export interface MapOptions {
  readonly source: string;
  readonly instanceUrl: string;
  readonly currency: string;
}

/** A ServiceNow date/time (UTC, whole seconds, no zone: section 4.1) as ISO-8601 UTC; undefined when it is not one. */
export function isoOf(glide: string): string | undefined {
  return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(glide) ? `${glide.replace(' ', 'T')}Z` : undefined;
}

/**
 * The approval record's own page in the standard UI, inside the navigation frame, with `uri`
 * URL-encoded (docs/servicenow-api.md section 11).
 */
export function deepLink(instanceUrl: string, sysId: string): string {
  return `${instanceUrl.replace(/\/+$/, '')}/nav_to.do?uri=${encodeURIComponent(`${APPROVAL_TABLE}.do?sys_id=${sysId}`)}`;
}

/** The record an approval is for: `sysapproval` (a task), else `document_id` (any table). */
export function taskOf(record: TableRecord): { table: string; sysId: string } {
  return { table: actual(record.source_table), sysId: actual(record.sysapproval) || actual(record.document_id) };
}

export function kindOf(record: TableRecord): string {
  const table = actual(record.source_table);
  return Object.prototype.hasOwnProperty.call(KINDS, table) ? KINDS[table as TaskTable] : OTHER_KIND;
}

/** The approval's status: `requested` is pending, the others close the card; an unknown state counts as no longer required. */
export function statusOf(record: TableRecord): ApprovalStatus {
  const state = actual(record.state);
  return state === PENDING_STATE ? 'pending' : (COMPLETION_STATES[state] ?? 'no_longer_required');
}

/** What the card shows of the approved record, read from its own table. */
export interface TaskView {
  readonly title: string;
  readonly requester: Person;
  readonly amount?: Money | undefined;
  readonly fields: readonly ContentField[];
}

/** A requested item or change as the card shows it; the actual values of dates are UTC (display values are in the API user's zone). */
export function viewOf(table: string, task: TableRecord, currency: string): TaskView {
  const number = display(task.number) || actual(task.number);
  const description = display(task.short_description);
  const title = description ? `${number}: ${description}` : number;
  const field = (label: string, value: string): ContentField[] => (value ? [{ label, value }] : []);
  if (table === 'sc_req_item') {
    const amount = total(actual(task.price), actual(task.quantity), currency);
    return {
      title,
      requester: { name: display(task.requested_for) || undefined },
      amount,
      fields: [
        ...field('Number', number),
        ...field('Requested for', display(task.requested_for)),
        ...field('Opened by', display(task.opened_by)),
        ...field('Price', display(task.price)),
        ...field('Quantity', actual(task.quantity)),
      ],
    };
  }
  const utc = (v: string) => (isoOf(v) ? `${v} UTC` : v);
  return {
    title,
    requester: { name: display(task.requested_by) || undefined },
    fields: [
      ...field('Number', number),
      ...field('Risk', display(task.risk)),
      ...field('Planned start', utc(actual(task.start_date))),
      ...field('Planned end', utc(actual(task.end_date))),
    ],
  };
}

/**
 * One approval record as the queue's approval. `view` is what its approved record shows (absent:
 * the table is not read, or the record could not be); without it the card names the record by its
 * display value (its number).
 */
export function mapApproval(record: TableRecord, view: TaskView | undefined, options: MapOptions, now: Date): Approval {
  const sysId = actual(record.sys_id);
  const kind = kindOf(record);
  const updatedOn = actual(record.sys_updated_on);
  const approverId = actual(record.approver);
  const task = taskOf(record);
  const due = isoOf(actual(record.due_date));
  const content: ApprovalContent = { fields: [...(view?.fields ?? []), ...(due ? [{ label: 'Due', value: `${actual(record.due_date)} UTC` }] : [])] };
  return {
    key: approvalKey(options.source, kind, sysId),
    source: options.source,
    kind,
    externalId: sysId,
    title: view?.title ?? (display(record.sysapproval) || display(record.document_id) || `ServiceNow approval ${sysId}`),
    status: statusOf(record),
    requester: view?.requester ?? {},
    approvers: approverId ? [{ sourceUserId: approverId, name: display(record.approver) || undefined }] : [],
    amount: view?.amount ?? null,
    submittedAt: isoOf(actual(record.sys_created_on)) ?? null,
    // sys_updated_on is system-maintained; a record without one is read as changed now.
    sourceUpdatedAt: isoOf(updatedOn) ?? now.toISOString(),
    links: { view: deepLink(options.instanceUrl, sysId) },
    content,
    sourceData: { updatedOn, table: task.table, task: task.sysId },
  };
}

/** price × quantity as a decimal string, without floats; undefined without a positive price. */
export function total(price: string, quantity: string, currency: string): Money | undefined {
  const match = /^(\d+)(?:\.(\d+))?$/.exec(price.trim());
  if (!match) return undefined;
  const q = /^\d+$/.test(quantity.trim()) ? BigInt(quantity.trim()) : 1n;
  const scale = Math.max(2, match[2]?.length ?? 0);
  const units = BigInt(match[1]! + (match[2] ?? '').padEnd(scale, '0')) * q;
  if (units === 0n) return undefined;
  const digits = units.toString().padStart(scale + 1, '0');
  return { value: `${digits.slice(0, -scale)}.${digits.slice(-scale)}`, currency };
}
