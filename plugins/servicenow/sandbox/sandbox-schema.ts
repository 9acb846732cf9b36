/**
 * The four tables the sandbox holds and the type of each field, which decides how a value compares in a
 * query and how it is displayed (docs/servicenow-api.md sections 3 and 5). Field and choice names follow
 * ServiceNow's base system; the display labels the docs do not state are marked in README.md.
 */

export type FieldType =
  'guid' | 'string' | 'email' | 'boolean' | 'integer' | 'currency' | 'glide_date_time' | 'choice' | 'reference' | 'document_id' | 'table_name' | 'journal';

export interface FieldDef {
  readonly type: FieldType;
  /** For `reference`: the table it points to (`task` means any task table: sc_req_item, change_request). */
  readonly reference?: string;
  /** For `choice`: value → label. */
  readonly choices?: Readonly<Record<string, string>>;
}

export interface TableDef {
  readonly name: string;
  /** The field a reference to this table displays. */
  readonly displayField: string;
  readonly fields: Readonly<Record<string, FieldDef>>;
}

/** Tables that extend task, i.e. what `sysapproval` (a reference to task) may point at. */
export const TASK_TABLES = ['sc_req_item', 'change_request'] as const;
export type TaskTable = (typeof TASK_TABLES)[number];

/** sysapproval_approver.state: value → label (docs/servicenow-api.md section 5.2). */
export const APPROVAL_STATES: Readonly<Record<string, string>> = {
  'not requested': 'Not Yet Requested',
  requested: 'Requested',
  approved: 'Approved',
  rejected: 'Rejected',
  cancelled: 'Cancelled',
  not_required: 'No Longer Required',
  duplicate: 'Duplicate',
};

/** The task `approval` field uses the same values as the approval record's state. */
const TASK_APPROVAL = APPROVAL_STATES;

const SYSTEM_FIELDS: Readonly<Record<string, FieldDef>> = {
  sys_id: { type: 'guid' },
  sys_created_on: { type: 'glide_date_time' },
  sys_created_by: { type: 'string' },
  sys_updated_on: { type: 'glide_date_time' },
  sys_updated_by: { type: 'string' },
  sys_mod_count: { type: 'integer' },
};

export const TABLES: Readonly<Record<string, TableDef>> = {
  sys_user: {
    name: 'sys_user',
    displayField: 'name',
    fields: {
      ...SYSTEM_FIELDS,
      user_name: { type: 'string' },
      first_name: { type: 'string' },
      last_name: { type: 'string' },
      name: { type: 'string' },
      email: { type: 'email' },
      active: { type: 'boolean' },
    },
  },
  sc_req_item: {
    name: 'sc_req_item',
    displayField: 'number',
    fields: {
      ...SYSTEM_FIELDS,
      number: { type: 'string' },
      short_description: { type: 'string' },
      requested_for: { type: 'reference', reference: 'sys_user' },
      opened_by: { type: 'reference', reference: 'sys_user' },
      price: { type: 'currency' },
      quantity: { type: 'integer' },
      approval: { type: 'choice', choices: TASK_APPROVAL },
      active: { type: 'boolean' },
    },
  },
  change_request: {
    name: 'change_request',
    displayField: 'number',
    fields: {
      ...SYSTEM_FIELDS,
      number: { type: 'string' },
      short_description: { type: 'string' },
      // Base-system risk choices (UNCONFIRMED labels, README.md).
      risk: { type: 'choice', choices: { '1': 'Very High', '2': 'High', '3': 'Moderate', '4': 'Low' } },
      start_date: { type: 'glide_date_time' },
      end_date: { type: 'glide_date_time' },
      requested_by: { type: 'reference', reference: 'sys_user' },
      approval: { type: 'choice', choices: TASK_APPROVAL },
      active: { type: 'boolean' },
    },
  },
  sysapproval_approver: {
    name: 'sysapproval_approver',
    displayField: 'sys_id',
    fields: {
      ...SYSTEM_FIELDS,
      approver: { type: 'reference', reference: 'sys_user' },
      state: { type: 'choice', choices: APPROVAL_STATES },
      sysapproval: { type: 'reference', reference: 'task' },
      source_table: { type: 'table_name' },
      document_id: { type: 'document_id' },
      due_date: { type: 'glide_date_time' },
      comments: { type: 'journal' },
    },
  },
};

export function tableDef(name: string): TableDef | undefined {
  return Object.prototype.hasOwnProperty.call(TABLES, name) ? TABLES[name] : undefined;
}
