import { glideDateTime, parseGlideDateTime } from './sandbox-clock.js';
import { SandboxError, type Row, type SandboxInstance } from './sandbox-instance.js';
import { hashString } from './sandbox-random.js';
import type { FieldDef } from './sandbox-schema.js';

/**
 * Encoded queries (`sysparm_query`), the subset the plugin needs: conditions `field` + operator + value
 * joined by `^` (AND) and `^OR` (binds to the condition just before it), `^NQ` (a new OR'ed query),
 * `ORDERBY<field>` / `ORDERBYDESC<field>` in the order given, and a trailing `^EQ`. docs/servicenow-api.md
 * section 2.
 */

/** Longest first, so `!=` is not read as `=` and `NOT IN` not as `IN`. */
const OPERATORS = ['ISNOTEMPTY', 'ISEMPTY', 'STARTSWITH', 'ENDSWITH', 'NOT LIKE', 'NOTLIKE', 'NOT IN', 'LIKE', 'IN', '!=', '>=', '<=', '=', '>', '<'] as const;
type Operator = (typeof OPERATORS)[number];

export interface Condition {
  readonly field: string;
  readonly op: Operator;
  readonly value: string;
  readonly def: FieldDef;
}

export interface OrderBy {
  readonly field: string;
  readonly desc: boolean;
  readonly def: FieldDef;
}

export interface ParsedQuery {
  /** OR of groups (`^NQ`); each group an AND of OR-lists. Empty: every record matches. */
  readonly groups: readonly (readonly (readonly Condition[])[])[];
  readonly orderBy: readonly OrderBy[];
}

/** What the sandbox does with a condition naming an unknown field or operator. */
export type InvalidQueryMode = 'error' | 'ignore' | 'no_rows';

/** Thrown while parsing; the server turns it into a 400 in ServiceNow's error shape (mode `error`). */
export class InvalidQueryError extends SandboxError {
  constructor(detail: string) {
    super(400, 'Invalid query', detail);
  }
}

/** A parse that also says whether an invalid part was dropped (`ignore`) or makes the result empty (`no_rows`). */
export interface QueryParse {
  readonly query: ParsedQuery;
  readonly noRows: boolean;
}

export function parseQuery(instance: SandboxInstance, table: string, text: string | undefined, mode: InvalidQueryMode): QueryParse {
  const groups: Condition[][][] = [[]];
  const orderBy: OrderBy[] = [];
  let noRows = false;
  const invalid = (detail: string): void => {
    if (mode === 'error') throw new InvalidQueryError(detail);
    if (mode === 'no_rows') noRows = true;
  };
  if (text === undefined || text === '') return { query: { groups: [], orderBy }, noRows };

  for (const raw of text.split('^')) {
    if (raw === '' || raw === 'EQ') continue;
    if (raw === 'NQ' || raw.startsWith('NQ')) {
      groups.push([]);
      if (raw === 'NQ') continue;
    }
    let part = raw.startsWith('NQ') ? raw.slice(2) : raw;
    const desc = part.startsWith('ORDERBYDESC');
    if (desc || part.startsWith('ORDERBY')) {
      const field = part.slice(desc ? 'ORDERBYDESC'.length : 'ORDERBY'.length);
      const def = instance.fieldPath(table, field);
      if (!def) invalid(`ORDERBY names no field of ${table}: ${field || '(empty)'}`);
      else orderBy.push({ field, desc, def });
      continue;
    }
    // Field names are lowercase, so an uppercase OR in front is the operator, never part of a name.
    const isOr = part.startsWith('OR') && /^[a-z]/.test(part.slice(2));
    if (isOr) part = part.slice(2);
    const condition = parseCondition(instance, table, part);
    if (typeof condition === 'string') {
      invalid(condition);
      continue;
    }
    const group = groups[groups.length - 1]!;
    if (isOr && group.length > 0) group[group.length - 1]!.push(condition);
    else group.push([condition]);
  }
  return { query: { groups: groups.filter((g) => g.length > 0), orderBy }, noRows };
}

function parseCondition(instance: SandboxInstance, table: string, text: string): Condition | string {
  const m = /^([a-z0-9_]+(?:\.[a-z0-9_]+)*)(.*)$/s.exec(text);
  if (!m) return `not a condition: ${text}`;
  const field = m[1]!;
  const rest = m[2]!;
  const op = OPERATORS.find((o) => rest.startsWith(o));
  if (!op) return `unknown operator in ${text}`;
  const def = instance.fieldPath(table, field);
  if (!def) return `${field} is not a field of ${table}`;
  let value = rest.slice(op.length);
  if (value.startsWith('javascript:')) {
    const converted = evaluateScript(instance, value);
    if (converted === undefined) return `the sandbox evaluates no script but gs.dateGenerate('YYYY-MM-DD','HH:mm:ss'): ${value}`;
    value = converted;
  }
  return { field, op, value, def };
}

/**
 * `javascript:gs.dateGenerate('2026-03-02','10:00:00')`: a date and time in the API user's time zone,
 * turned into the UTC value ServiceNow stores (docs/servicenow-api.md section 4.2).
 */
function evaluateScript(instance: SandboxInstance, value: string): string | undefined {
  const m = /^javascript:\s*gs\.dateGenerate\(\s*'(\d{4}-\d{2}-\d{2})'\s*,\s*'(\d{2}:\d{2}:\d{2})'\s*\)\s*;?$/.exec(value);
  if (!m) return undefined;
  const local = parseGlideDateTime(`${m[1]} ${m[2]}`);
  if (Number.isNaN(local)) return undefined;
  return glideDateTime(local - instance.userTimeZoneOffsetMinutes * 60_000);
}

function compare(def: FieldDef, a: string, b: string): number {
  if (def.type === 'integer' || def.type === 'currency') {
    const x = a === '' ? Number.NEGATIVE_INFINITY : Number(a);
    const y = b === '' ? Number.NEGATIVE_INFINITY : Number(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function test(instance: SandboxInstance, table: string, row: Row, c: Condition): boolean {
  const actual = instance.resolve(table, row, c.field)?.value ?? '';
  const lower = actual.toLowerCase();
  switch (c.op) {
    case '=':
      return actual === c.value;
    case '!=':
      return actual !== c.value;
    case '>':
      return actual !== '' && compare(c.def, actual, c.value) > 0;
    case '>=':
      return actual !== '' && compare(c.def, actual, c.value) >= 0;
    case '<':
      return actual !== '' && compare(c.def, actual, c.value) < 0;
    case '<=':
      return actual !== '' && compare(c.def, actual, c.value) <= 0;
    case 'IN':
      return c.value.split(',').includes(actual);
    case 'NOT IN':
      return !c.value.split(',').includes(actual);
    case 'LIKE':
      return lower.includes(c.value.toLowerCase());
    case 'NOT LIKE':
    case 'NOTLIKE':
      return !lower.includes(c.value.toLowerCase());
    case 'STARTSWITH':
      return lower.startsWith(c.value.toLowerCase());
    case 'ENDSWITH':
      return lower.endsWith(c.value.toLowerCase());
    case 'ISEMPTY':
      return actual === '';
    case 'ISNOTEMPTY':
      return actual !== '';
  }
}

export function matches(instance: SandboxInstance, table: string, row: Row, query: ParsedQuery): boolean {
  if (query.groups.length === 0) return true;
  return query.groups.some((group) => group.every((ors) => ors.some((c) => test(instance, table, row, c))));
}

/** How records equal on every ORDERBY field are ordered (docs/servicenow-api.md section 2.3). */
export type TieOrder = 'unstable' | 'sys_id' | 'insertion';

/**
 * Sorts by the ORDERBY clauses; without any, by sys_id. Ties: `unstable` orders them by a hash of the
 * sys_id salted per request, so two pages of one listing may disagree unless the client ends its
 * ORDERBY with sys_id; `sys_id` and `insertion` are stable.
 */
export function sortRows(instance: SandboxInstance, table: string, rows: Row[], query: ParsedQuery, ties: TieOrder, salt: number): Row[] {
  const keyed = rows.map((row, index) => ({ row, index, tie: ties === 'unstable' ? hashString(row.sys_id ?? '', salt) : 0 }));
  const order = query.orderBy.length > 0 ? query.orderBy : [];
  keyed.sort((a, b) => {
    for (const o of order) {
      const x = instance.resolve(table, a.row, o.field)?.value ?? '';
      const y = instance.resolve(table, b.row, o.field)?.value ?? '';
      const c = compare(o.def, x, y);
      if (c !== 0) return o.desc ? -c : c;
    }
    if (order.length === 0 || ties === 'sys_id') return (a.row.sys_id ?? '') < (b.row.sys_id ?? '') ? -1 : 1;
    if (ties === 'unstable') return a.tie - b.tie || a.index - b.index;
    return a.index - b.index;
  });
  return keyed.map((k) => k.row);
}
