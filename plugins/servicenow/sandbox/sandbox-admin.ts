import type { SandboxContext, ListPageHook } from './sandbox-context.js';
import type { FaultInput } from './sandbox-faults.js';
import { SandboxError, type Row } from './sandbox-instance.js';
import { APPROVAL_STATES, TASK_TABLES, type TaskTable } from './sandbox-schema.js';

export interface SandboxUser {
  readonly sysId: string;
  readonly userName: string;
  readonly name: string;
  readonly email: string;
}

export interface CreateApprovalsSpec {
  /** Tasks to create, each with its approval records. Default 1. */
  readonly count?: number;
  /** Default sc_req_item. */
  readonly table?: TaskTable;
  /** sys_ids or user_names; every task gets one approval record per approver. Default: one approver drawn per task. */
  readonly approvers?: readonly string[];
  /** Default requested. */
  readonly state?: string;
  readonly shortDescription?: string;
}

export interface CreatedApprovals {
  readonly tasks: readonly string[];
  readonly approvals: readonly string[];
}

/**
 * The back door tests and the CLI use to play ServiceNow's users: create approvals in bulk, decide,
 * reassign or delete them, update many records in one second, move records while a client pages,
 * and set faults. Every change goes through the instance the way a form save would (sys_updated_on,
 * sys_updated_by, sys_mod_count).
 */
export class ServiceNowSandboxAdmin {
  constructor(private readonly ctx: SandboxContext) {}

  /** Every user, the integration user first. */
  users(): SandboxUser[] {
    return [...this.ctx.instance.rows('sys_user').values()].map((r) => ({ sysId: r.sys_id!, userName: r.user_name!, name: r.name!, email: r.email! }));
  }

  /** Users who hold at least one approval record. */
  approvers(): SandboxUser[] {
    const ids = new Set([...this.ctx.instance.rows('sysapproval_approver').values()].map((r) => r.approver));
    return this.users().filter((u) => ids.has(u.sysId));
  }

  /** A copy of one stored record (actual values), or undefined. */
  record(table: string, sysId: string): Row | undefined {
    const row = this.ctx.instance.get(table, sysId);
    return row ? { ...row } : undefined;
  }

  /** Copies of the approval records, optionally only those in `state`. */
  approvals(state?: string): Row[] {
    return [...this.ctx.instance.rows('sysapproval_approver').values()].filter((r) => state === undefined || r.state === state).map((r) => ({ ...r }));
  }

  /** Creates `count` tasks with their approval records, all stamped with the same second. */
  createApprovals(spec: CreateApprovalsSpec = {}): CreatedApprovals {
    const instance = this.ctx.instance;
    const table = spec.table ?? 'sc_req_item';
    if (!TASK_TABLES.includes(table)) throw new SandboxError(400, `approvals can be created for ${TASK_TABLES.join(' or ')}, not ${table}`);
    const state = spec.state ?? 'requested';
    this.checkState(state);
    const count = spec.count ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new SandboxError(400, 'count must be a whole number >= 1');
    const named = spec.approvers?.map((a) => this.userId(a));
    const pool = this.approvers().map((u) => u.sysId);
    const everyone = this.users()
      .slice(1)
      .map((u) => u.sysId);
    const at = instance.clock.glideNow();
    const tasks: string[] = [];
    const approvals: string[] = [];
    for (let i = 0; i < count; i++) {
      const requester = instance.rng.pick(everyone);
      const parent = instance.insert(
        table,
        table === 'sc_req_item'
          ? {
              number: instance.nextNumber(table),
              short_description: spec.shortDescription ?? 'Standard laptop',
              requested_for: requester,
              opened_by: requester,
              price: '1299.00',
              quantity: '1',
              approval: state,
              active: 'true',
            }
          : {
              number: instance.nextNumber(table),
              short_description: spec.shortDescription ?? 'Patch database cluster',
              risk: '3',
              start_date: at,
              end_date: at,
              requested_by: requester,
              approval: state,
              active: 'true',
            },
        at,
      );
      tasks.push(parent.sys_id!);
      for (const approver of named ?? [instance.rng.pick(pool.length > 0 ? pool : everyone)]) {
        const row = instance.insert(
          'sysapproval_approver',
          { approver, state, sysapproval: parent.sys_id!, document_id: parent.sys_id!, source_table: table, due_date: at },
          at,
        );
        approvals.push(row.sys_id!);
      }
    }
    return { tasks, approvals };
  }

  approve(approvalId: string, comment = ''): Row {
    return this.setState(approvalId, 'approved', comment);
  }

  reject(approvalId: string, comment = ''): Row {
    return this.setState(approvalId, 'rejected', comment);
  }

  cancel(approvalId: string): Row {
    return this.setState(approvalId, 'cancelled');
  }

  /** Sets an approval's state (and, for approved/rejected, its task's approval), as the approver's user_name when deciding. */
  setState(approvalId: string, state: string, comment = ''): Row {
    this.checkState(state);
    const instance = this.ctx.instance;
    const row = this.approval(approvalId);
    const at = instance.clock.glideNow();
    const by = ['approved', 'rejected'].includes(state) ? (instance.get('sys_user', row.approver ?? '')?.user_name ?? 'system') : 'system';
    const patch: Row = { state };
    if (comment) patch.comments = comment;
    instance.update('sysapproval_approver', approvalId, patch, at, by);
    const task = instance.findTask(row.sysapproval ?? '');
    if (task && ['approved', 'rejected', 'cancelled'].includes(state)) instance.update(task.table, task.row.sys_id!, { approval: state }, at, by);
    return { ...row };
  }

  /** Gives the approval to another user (sys_id or user_name). */
  reassign(approvalId: string, approver: string): Row {
    this.approval(approvalId);
    return { ...this.ctx.instance.update('sysapproval_approver', approvalId, { approver: this.userId(approver) }) };
  }

  /** Deletes a record (an approval by default); true when it existed. */
  delete(sysId: string, table = 'sysapproval_approver'): boolean {
    return this.ctx.instance.delete(table, sysId);
  }

  /**
   * Updates every record in `sysIds` in one and the same second (sys_updated_on, sys_mod_count, plus
   * `fields`), the case that makes a `sys_updated_on>` cursor without a tie-break lose records.
   */
  touch(sysIds: readonly string[], fields: Row = {}, table = 'sysapproval_approver'): string {
    const at = this.ctx.instance.clock.glideNow();
    for (const id of sysIds) this.ctx.instance.update(table, id, fields, at);
    return at;
  }

  /**
   * Runs `hook` after the sandbox has worked out each list page and before it sends it, so a test can
   * move records between the pages a client fetches (touch, delete, create). `undefined` removes it.
   */
  onListPage(hook: ListPageHook | undefined): void {
    this.ctx.listHook = hook;
  }

  /** The next `requests` Table API requests get 429 with `Retry-After: retryAfterSeconds`. */
  rateLimitStorm(requests: number, retryAfterSeconds = 1): void {
    this.ctx.faults.startStorm(requests, retryAfterSeconds);
  }

  setFaults(faults: FaultInput): void {
    this.ctx.faults.set(faults);
  }

  /** Every issued access token expires now (refresh tokens still work). */
  expireAccessTokens(): void {
    this.ctx.tokens.expireAccessTokens();
  }

  advanceClock(seconds: number): void {
    this.ctx.instance.clock.advance(seconds);
  }

  setClock(time: string | number | Date): void {
    this.ctx.instance.clock.set(time);
  }

  /** true: time stands still (every update lands in one second) until `freezeClock(false)`. */
  freezeClock(frozen: boolean): void {
    this.ctx.instance.clock.freeze(frozen);
  }

  /** Sandbox time as a ServiceNow date/time (UTC). */
  now(): string {
    return this.ctx.instance.clock.glideNow();
  }

  /** Non-admin requests per `METHOD /path` (query left out) since start. */
  calls(): Record<string, number> {
    return Object.fromEntries(this.ctx.calls);
  }

  private approval(sysId: string): Row {
    const row = this.ctx.instance.get('sysapproval_approver', sysId);
    if (!row) throw new SandboxError(404, 'No Record found', `no approval ${sysId}`);
    return row;
  }

  private userId(idOrName: string): string {
    const users = this.ctx.instance.rows('sys_user');
    if (users.has(idOrName)) return idOrName;
    for (const row of users.values()) if (row.user_name === idOrName) return row.sys_id!;
    throw new SandboxError(400, `no user ${idOrName}`);
  }

  private checkState(state: string): void {
    if (!Object.prototype.hasOwnProperty.call(APPROVAL_STATES, state)) {
      throw new SandboxError(400, `unknown approval state "${state}" (one of ${Object.keys(APPROVAL_STATES).join(', ')})`);
    }
  }
}
