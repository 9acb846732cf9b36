import { SandboxClock, glideDateTime, parseGlideDateTime } from './sandbox-clock.js';
import { SeededRandom } from './sandbox-random.js';
import { TABLES, TASK_TABLES, tableDef, type FieldDef, type TaskTable } from './sandbox-schema.js';

/** A stored record: every field's actual value as a string, as ServiceNow returns them ('' when empty). */
export type Row = Record<string, string>;

export interface JournalEntry {
  /** `YYYY-MM-DD HH:mm:ss` UTC. */
  readonly at: string;
  /** user_name of the writer. */
  readonly by: string;
  readonly text: string;
}

/** Where a (possibly dot-walked) field path ends: its definition, its actual value and the record holding it. */
export interface Resolved {
  readonly def: FieldDef;
  readonly value: string;
  readonly row: Row | undefined;
  readonly table: string;
  readonly field: string;
}

/** Thrown for anything the sandbox refuses; the server answers `status` in ServiceNow's error shape. */
export class SandboxError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly detail: string | null = null,
  ) {
    super(message);
  }
}

export interface InstanceOptions {
  readonly clock: SandboxClock;
  readonly rng: SeededRandom;
  /** Minutes the API user's time zone is ahead of UTC: display values of date/time fields and gs.dateGenerate use it. */
  readonly userTimeZoneOffsetMinutes: number;
}

/**
 * The in-memory instance: four tables of string-valued rows, journals, and the reference resolution
 * that queries and display values share. Knows nothing of HTTP.
 */
export class SandboxInstance {
  readonly clock: SandboxClock;
  readonly rng: SeededRandom;
  readonly userTimeZoneOffsetMinutes: number;
  private readonly tables = new Map<string, Map<string, Row>>();
  private readonly journals = new Map<string, JournalEntry[]>();
  private readonly counters = new Map<string, number>([
    ['sc_req_item', 10000],
    ['change_request', 30000],
  ]);

  constructor(options: InstanceOptions) {
    this.clock = options.clock;
    this.rng = options.rng;
    this.userTimeZoneOffsetMinutes = options.userTimeZoneOffsetMinutes;
    for (const name of Object.keys(TABLES)) this.tables.set(name, new Map());
  }

  /** Rows of `table` in insertion order (the live map: callers must not mutate). */
  rows(table: string): Map<string, Row> {
    const rows = this.tables.get(table);
    if (!rows) throw new SandboxError(400, `Invalid table ${table}`);
    return rows;
  }

  get(table: string, sysId: string): Row | undefined {
    return this.tables.get(table)?.get(sysId);
  }

  /** The task record (sc_req_item or change_request) with this sys_id. */
  findTask(sysId: string): { table: TaskTable; row: Row } | undefined {
    for (const table of TASK_TABLES) {
      const row = this.get(table, sysId);
      if (row) return { table, row };
    }
    return undefined;
  }

  /** The next task number of `table`: RITM0010001, CHG0030001. */
  nextNumber(table: TaskTable): string {
    const n = (this.counters.get(table) ?? 0) + 1;
    this.counters.set(table, n);
    return `${table === 'sc_req_item' ? 'RITM' : 'CHG'}${String(n).padStart(7, '0')}`;
  }

  /** Inserts a row with every field of the table ('' where not given) and the system fields set at `at`. */
  insert(table: string, fields: Row, at = this.clock.glideNow(), by = 'system'): Row {
    const def = tableDef(table);
    if (!def) throw new SandboxError(400, `Invalid table ${table}`);
    const row: Row = {};
    for (const name of Object.keys(def.fields)) row[name] = '';
    Object.assign(row, fields);
    row.sys_id = fields.sys_id ?? this.rng.sysId();
    row.sys_created_on = fields.sys_created_on ?? at;
    row.sys_updated_on = fields.sys_updated_on ?? at;
    row.sys_created_by = fields.sys_created_by ?? by;
    row.sys_updated_by = fields.sys_updated_by ?? by;
    row.sys_mod_count = fields.sys_mod_count ?? '0';
    if (def.fields.comments?.type === 'journal') row.comments = '';
    this.rows(table).set(row.sys_id, row);
    return row;
  }

  /** An update as ServiceNow makes one: the fields, then sys_updated_on/by and sys_mod_count. */
  update(table: string, sysId: string, patch: Row, at = this.clock.glideNow(), by = 'system'): Row {
    const row = this.get(table, sysId);
    if (!row) throw new SandboxError(404, 'No Record found', "Record doesn't exist or ACL restricts the record retrieval");
    const def = tableDef(table)!;
    for (const [name, value] of Object.entries(patch)) {
      if (!def.fields[name]) throw new SandboxError(400, `Unknown field ${name} in table ${table}`);
      if (def.fields[name].type === 'journal') this.addJournal(sysId, value, at, by);
      else row[name] = value;
    }
    row.sys_updated_on = at;
    row.sys_updated_by = by;
    row.sys_mod_count = String(Number(row.sys_mod_count || '0') + 1);
    return row;
  }

  delete(table: string, sysId: string): boolean {
    this.journals.delete(sysId);
    return this.rows(table).delete(sysId);
  }

  addJournal(sysId: string, text: string, at: string, by: string): void {
    if (text === '') return;
    const list = this.journals.get(sysId) ?? [];
    list.unshift({ at, by, text });
    this.journals.set(sysId, list);
  }

  journal(sysId: string): readonly JournalEntry[] {
    return this.journals.get(sysId) ?? [];
  }

  /** Whether `path` (`state`, `approver.email`, `sysapproval.number`) names a field of `table`. */
  fieldPath(table: string, path: string): FieldDef | undefined {
    let current = tableDef(table);
    const parts = path.split('.');
    for (let i = 0; i < parts.length; i++) {
      const def = current?.fields[parts[i] ?? ''];
      if (!def) return undefined;
      if (i === parts.length - 1) return def;
      if (def.type !== 'reference') return undefined;
      current = def.reference === 'task' ? TABLES.sc_req_item : tableDef(def.reference ?? '');
      if (
        def.reference === 'task' &&
        !['number', 'short_description', 'sys_id', 'sys_updated_on', 'sys_created_on', 'approval', 'active'].includes(parts[i + 1] ?? '')
      ) {
        return undefined; // only fields common to every task table can be walked to through `task`
      }
    }
    return undefined;
  }

  /** Follows `path` from `row`; undefined when the path is not a field. A broken reference gives value ''. */
  resolve(table: string, row: Row, path: string): Resolved | undefined {
    if (!this.fieldPath(table, path)) return undefined;
    const parts = path.split('.');
    let currentTable = table;
    let current: Row | undefined = row;
    for (let i = 0; i < parts.length - 1; i++) {
      const def = tableDef(currentTable)!.fields[parts[i]!]!;
      const target: string = current?.[parts[i]!] ?? '';
      if (def.reference === 'task') {
        const found: { table: TaskTable; row: Row } | undefined = target ? this.findTask(target) : undefined;
        currentTable = found?.table ?? 'sc_req_item';
        current = found?.row;
      } else {
        currentTable = def.reference!;
        current = target ? this.get(currentTable, target) : undefined;
      }
    }
    const field = parts[parts.length - 1]!;
    const def = tableDef(currentTable)!.fields[field]!;
    return { def, value: current?.[field] ?? '', row: current, table: currentTable, field };
  }

  /**
   * The display value of a resolved field: the referenced record's display field, a choice's label, a
   * date/time in the API user's time zone, a currency with its symbol, a journal's entries.
   */
  display(r: Resolved): string {
    const { def, value } = r;
    switch (def.type) {
      case 'reference': {
        if (!value) return '';
        if (def.reference === 'task') return this.findTask(value)?.row.number ?? '';
        const target = this.get(def.reference!, value);
        return target ? (target[tableDef(def.reference!)!.displayField] ?? '') : '';
      }
      case 'document_id': {
        const source = r.row?.source_table ?? '';
        const target = value && source ? this.get(source, value) : undefined;
        return target ? (target[tableDef(source)!.displayField] ?? '') : '';
      }
      case 'choice':
        return def.choices?.[value] ?? value;
      case 'glide_date_time': {
        const ms = parseGlideDateTime(value);
        return Number.isNaN(ms) ? value : glideDateTime(ms + this.userTimeZoneOffsetMinutes * 60_000);
      }
      case 'currency':
        return value === '' ? '' : `$${Number(value).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
      case 'journal':
        return this.journal(r.row?.sys_id ?? '')
          .map(
            (e) =>
              `${glideDateTime(parseGlideDateTime(e.at) + this.userTimeZoneOffsetMinutes * 60_000)} - ${this.userDisplay(e.by)} (Additional comments)\n${e.text}\n\n`,
          )
          .join('');
      default:
        return value;
    }
  }

  private userDisplay(userName: string): string {
    for (const row of this.rows('sys_user').values()) if (row.user_name === userName) return row.name ?? userName;
    return userName;
  }
}
