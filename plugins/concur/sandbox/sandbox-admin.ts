import { USER_SCOPES } from './sandbox-auth.js';
import type { CallCounts } from './sandbox-calls.js';
import { SandboxError, type ApproveOptions, type EditSpec, type ReportRecord, type ReportState, type SubmitSpec } from './sandbox-company.js';
import type { SandboxContext } from './sandbox-context.js';
import type { DelegateRecord, DelegateSpec } from './sandbox-delegates.js';
import { renderV3Entry } from './sandbox-entries.js';
import type { FaultInput, FaultOptions } from './sandbox-faults.js';
import type { OtpMessage } from './sandbox-otp.js';
import { renderV3Report } from './sandbox-report-view.js';

/** A v3 report as the API prints it (every key of v3-reports-list.json's item). */
export interface V3Report {
  readonly ID: string;
  readonly Name: string;
  readonly ApprovalStatusCode: string;
  readonly ApproverLoginID: string | null;
  readonly OwnerLoginID: string;
  readonly LastModifiedDate: string;
  readonly Total: number;
  readonly [field: string]: unknown;
}

export interface SandboxUserInfo {
  readonly id: string;
  readonly loginId: string;
  readonly email: string;
  readonly displayName: string;
  readonly employeeNumber: string;
  readonly managerLoginId: string | null;
  readonly isApprover: boolean;
}

export interface SandboxState {
  /** Sandbox time, ISO-8601 UTC. */
  readonly now: string;
  readonly companyId: string;
  readonly reports: readonly ReportState[];
}

/**
 * The sandbox's back door: what a tester does in the Concur UI (submit, approve, recall …) plus
 * control of time, faults and call counts. In-process methods here; the same operations are
 * served over HTTP under `/_admin` (sandbox-admin-routes.ts) for a driver in another process.
 * Report-changing methods throw SandboxError (404 unknown report, 409 wrong state, 400 bad input).
 */
export class SandboxAdmin {
  constructor(private readonly ctx: SandboxContext) {}

  private view(r: ReportRecord): V3Report {
    return renderV3Report(r, this.ctx.company.directory, this.ctx.baseUrl(), '') as unknown as V3Report;
  }

  /** Submits a new report (A_PEND) and returns it as the v3 API shows it. */
  submit(spec: SubmitSpec = {}): V3Report {
    return this.view(this.ctx.company.submit(spec));
  }

  /** A_RESU / A_NOTF → A_PEND with the owner's manager. */
  resubmit(id: string): V3Report {
    return this.view(this.ctx.company.resubmit(id));
  }

  /** Approves the current step: next manager, or A_APPR with no approver (configurable). */
  approve(id: string, options?: ApproveOptions): V3Report {
    return this.view(this.ctx.company.approve(id, options));
  }

  /** → A_RESU, approver cleared, EverSentBack, LastComment = comment. */
  sendBack(id: string, comment?: string): V3Report {
    return this.view(this.ctx.company.sendBack(id, comment));
  }

  /** → A_RESU (see SandboxCompany.recall for why not A_NOTF). */
  recall(id: string): V3Report {
    return this.view(this.ctx.company.recall(id));
  }

  reassign(id: string, newApproverLogin: string): V3Report {
    return this.view(this.ctx.company.reassign(id, newApproverLogin));
  }

  edit(id: string, spec: EditSpec): V3Report {
    return this.view(this.ctx.company.edit(id, spec));
  }

  delete(id: string): void {
    this.ctx.company.delete(id);
  }

  report(id: string): V3Report | undefined {
    const r = this.ctx.company.get(id);
    return r ? this.view(r) : undefined;
  }

  entries(id: string): Record<string, unknown>[] {
    const r = this.ctx.company.get(id);
    if (!r) return [];
    const owner = this.ctx.company.directory.get(r.ownerIndex).loginId;
    return this.ctx.company.entries(r).map((e) => renderV3Entry(e, r.id, owner, this.ctx.baseUrl()));
  }

  users(): SandboxUserInfo[] {
    const { directory } = this.ctx.company;
    return directory.users.map((u) => ({
      id: u.id,
      loginId: u.loginId,
      email: u.email,
      displayName: u.displayName,
      employeeNumber: u.employeeNumber,
      managerLoginId: directory.manager(u)?.loginId ?? null,
      isApprover: u.isApprover,
    }));
  }

  /** The truth: every existing report with its status and approver. */
  state(): SandboxState {
    return { now: this.now(), companyId: this.ctx.company.companyId, reports: this.ctx.company.state() };
  }

  now(): string {
    return this.ctx.clock.now().toISOString();
  }

  advanceClock(seconds: number): string {
    this.ctx.clock.advance(seconds);
    return this.now();
  }

  setClock(iso: string): string {
    this.ctx.clock.set(iso);
    return this.now();
  }

  setFaults(profile: FaultInput): void {
    this.ctx.faults.set(profile);
  }

  faults(): FaultOptions {
    return this.ctx.faults.current;
  }

  calls(): CallCounts {
    return this.ctx.calls.snapshot();
  }

  resetCalls(): void {
    this.ctx.calls.reset();
  }

  /** A new valid company refresh token (e.g. for a second client after the first rotated). */
  mintCompanyRefreshToken(): string {
    return this.ctx.tokens.addCompanyRefreshToken();
  }

  /**
   * What a user's finished consent (the authorization grant) leaves a client with: a user refresh
   * token, for tests that need a consented approver without driving the consent page. `scopes`
   * defaults to every scope the app holds for users. `user` is a login ID or UUID.
   */
  consent(user: string, scopes: readonly string[] = USER_SCOPES): { refreshToken: string } {
    const unknown = scopes.filter((s) => !USER_SCOPES.includes(s));
    if (unknown.length > 0) throw new SandboxError(400, `the app holds no scope ${unknown.join(', ')}`);
    const grant = this.ctx.tokens.issue({ kind: 'user', userIndex: this.requireUser(user) }, scopes.join(' '));
    return { refreshToken: grant.refreshToken };
  }

  /**
   * The user withdraws the app's access in Concur (as `DELETE /app-mgmt/v0/connections` does): every
   * refresh token of theirs stops working (code 108). Returns how many were revoked.
   */
  revokeConsent(user: string): { revoked: number } {
    return { revoked: this.ctx.tokens.revokeUser(this.requireUser(user)) };
  }

  /** `user`'s expense delegates (login ID or UUID), as the admin API shows them. */
  delegates(user: string): DelegateSpec[] {
    const { directory, delegates } = this.ctx.company;
    return delegates.of(this.requireUser(user)).map(({ delegateIndex, ...rights }) => ({ delegate: directory.get(delegateIndex).loginId, ...rights }));
  }

  /**
   * Replaces `user`'s expense delegates, as an administrator does in Concur's delegate settings:
   * each by login ID or UUID, with its rights and an optional temporary window (ISO-8601).
   */
  setDelegates(user: string, specs: readonly DelegateSpec[]): DelegateSpec[] {
    const index = this.requireUser(user);
    const records = specs.map((s): DelegateRecord => {
      if (typeof s?.delegate !== 'string') throw new SandboxError(400, 'each delegate needs a delegate (login ID or UUID)');
      if (typeof s.canApprove !== 'boolean' || typeof s.canReceiveApprovalEmail !== 'boolean') {
        throw new SandboxError(400, 'each delegate needs canApprove and canReceiveApprovalEmail (booleans)');
      }
      for (const end of [s.from, s.to]) if (end !== undefined && Number.isNaN(Date.parse(end))) throw new SandboxError(400, `not an ISO-8601 time: ${end}`);
      const { delegate, ...rights } = s;
      return { ...rights, delegateIndex: this.requireUser(delegate) };
    });
    try {
      this.ctx.company.delegates.set(this.ctx.company.directory.get(index), records);
    } catch (e) {
      if (e instanceof RangeError) throw new SandboxError(400, e.message);
      throw e;
    }
    return this.delegates(user);
  }

  /** One-time tokens "e-mailed" by `POST /oauth2/v0/otp`, oldest first (the sandbox has no mailbox). */
  otpOutbox(): readonly OtpMessage[] {
    return this.ctx.otp.outbox();
  }

  private requireUser(user: string): number {
    const { directory } = this.ctx.company;
    const found = directory.byLoginId(user) ?? directory.byUuid(user);
    if (!found) throw new SandboxError(404, `no user ${user}`);
    return found.index;
  }

  /** A new company request token, valid 24 h of sandbox time. */
  mintRequestToken(): string {
    return this.ctx.tokens.addRequestToken();
  }
}
