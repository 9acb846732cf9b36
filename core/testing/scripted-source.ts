import { actionStatus } from '../model/card.js';
import { approvalKey, type Approval, type ApprovalContent, type Approver, type ApprovalStatus } from '../model/approval.js';
import type {
  ApprovalSource,
  SourceBatch,
  SourceCapabilities,
  SourceEventsPolicy,
  SyncContext,
  VerifyRef,
  VerifyResult,
} from '../contracts/approval-source.js';
import type { ActionResult, SourceActRequest } from '../contracts/approval-actions.js';

interface Truth {
  approval: Approval;
  /** Monotonic change number; the cursor is the highest one committed. */
  seq: number;
}

/**
 * An in-memory source whose truth tests change directly (submit, modify, approve, reassign,
 * ...). Its incremental feed reports only changes whose `seq` is above the cursor, and, like
 * Concur when a workflow step does not bump LastModifiedDate, it can be told to hide a
 * completion from the feed (`silent`), so only a sweep finds it.
 */
export class ScriptedSource implements ApprovalSource {
  /**
   * `actions` empty: cards link out only; set them (e.g. `['approve', 'sendBack']`) to let approvers
   * act through {@link act}. `events` set: the source's changes also arrive as pushes (hand them to
   * the host's `SourceTriggers`); the core refreshes them through {@link verify}.
   */
  readonly capabilities: SourceCapabilities;
  private readonly truth = new Map<string, Truth>();
  private seq = 0;
  /** Calls served, by method, for cost assertions. */
  readonly calls = { changes: 0, listPending: 0, verify: 0, act: 0 };
  /** Approvers (by e-mail) who must consent before acting: `act` answers `consent_needed` for them. */
  readonly needsConsent = new Set<string>();
  /** Approvers (by e-mail) connected for actions, with when: what `connections` lists; a disconnect puts them in `needsConsent`. */
  readonly connected = new Map<string, string>();
  readonly connections = {
    connectedAt: async (email: string): Promise<string | undefined> => this.connected.get(email),
    disconnect: async (email: string): Promise<boolean> => {
      const had = this.connected.delete(email);
      if (had) this.needsConsent.add(email);
      return had;
    },
  };
  /** Every action the source took, in order. */
  readonly acted: { externalId: string; action: string; by: string; comment?: string | undefined }[] = [];
  /** When set, the next calls, and the next page of a `changes` under way, throw this error (a failing API). */
  failWith: Error | undefined;
  /** The refs of the last `verify` call (each with the queued `sourceData` the host handed back). */
  lastVerifyRefs: readonly VerifyRef[] = [];

  constructor(
    readonly id: string,
    private readonly clock: { now(): Date },
    private readonly pageSize = 100,
    readonly kind = 'expense-report',
    actions: readonly string[] = [],
    events?: SourceEventsPolicy,
  ) {
    this.capabilities = events ? { actions, events } : { actions };
  }

  submit(externalId: string, fields: { title?: string; approvers: Approver[]; amount?: string; requester?: string; content?: ApprovalContent }): Approval {
    const approval: Approval = {
      key: approvalKey(this.id, this.kind, externalId),
      source: this.id,
      kind: this.kind,
      externalId,
      title: fields.title ?? `Report ${externalId}`,
      status: 'pending',
      requester: { name: fields.requester ?? 'Requester', email: 'requester@example.test' },
      approvers: fields.approvers,
      amount: { value: fields.amount ?? '10.00', currency: 'USD' },
      submittedAt: this.clock.now().toISOString(),
      sourceUpdatedAt: this.clock.now().toISOString(),
      links: { view: `https://example.test/${externalId}` },
      ...(fields.content ? { content: fields.content } : {}),
      // The source's own data: what a real source would need to address the record again.
      sourceData: { scriptedId: externalId },
    };
    this.truth.set(externalId, { approval, seq: ++this.seq });
    return approval;
  }

  private change(externalId: string, patch: Partial<Approval>, silent = false): void {
    const t = this.truth.get(externalId);
    if (!t) throw new Error(`no approval ${externalId}`);
    t.approval = { ...t.approval, ...patch, sourceUpdatedAt: silent ? t.approval.sourceUpdatedAt : this.clock.now().toISOString() };
    if (!silent) t.seq = ++this.seq;
  }

  modify(externalId: string, title: string): void {
    this.change(externalId, { title });
  }

  complete(externalId: string, status: Exclude<ApprovalStatus, 'pending'>, options: { silent?: boolean } = {}): void {
    this.change(externalId, { status, approvers: [] }, options.silent);
  }

  reassign(externalId: string, approvers: Approver[], options: { silent?: boolean } = {}): void {
    this.change(externalId, { approvers }, options.silent);
  }

  delete(externalId: string): void {
    this.truth.delete(externalId);
  }

  /** Pending approvals as the source sees them now. */
  pending(): Approval[] {
    return [...this.truth.values()].map((t) => t.approval).filter((a) => a.status === 'pending');
  }

  async *changes(cursor: string | undefined, ctx: SyncContext): AsyncIterable<SourceBatch> {
    this.calls.changes++;
    if (this.failWith) throw this.failWith;
    const from = cursor ? Number(cursor) : 0;
    const changed = [...this.truth.values()].filter((t) => t.seq > from).sort((a, b) => a.seq - b.seq);
    const top = changed.at(-1)?.seq ?? from;
    for (let i = 0; i < changed.length; i += this.pageSize) {
      if (ctx.signal.aborted) return;
      if (this.failWith) throw this.failWith;
      const page = changed.slice(i, i + this.pageSize);
      const last = i + this.pageSize >= changed.length;
      yield { approvals: page.map((t) => t.approval), cursor: last ? String(top) : undefined };
    }
  }

  async *listPending(): AsyncIterable<readonly Approval[]> {
    this.calls.listPending++;
    if (this.failWith) throw this.failWith;
    const all = this.pending();
    for (let i = 0; i < all.length; i += this.pageSize) yield all.slice(i, i + this.pageSize);
  }

  async verify(refs: readonly VerifyRef[]): Promise<VerifyResult[]> {
    this.calls.verify++;
    this.lastVerifyRefs = refs;
    if (this.failWith) throw this.failWith;
    return refs.map(({ externalId }) => {
      const t = this.truth.get(externalId);
      return t ? { found: true as const, approval: t.approval } : { found: false as const, externalId };
    });
  }

  /**
   * Acts as a real source would: re-reads its truth, refuses a stale card (`changed`), an approval
   * no longer pending (`already_decided`) or no longer on this approver (`not_yours`), asks for
   * consent first where told to, requires a comment to send back, and then decides: `approve`
   * completes the approval, `sendBack` sends it back.
   */
  async act(request: SourceActRequest): Promise<ActionResult> {
    this.calls.act++;
    if (this.failWith) throw this.failWith;
    const t = this.truth.get(request.approval.externalId);
    const email = request.approver.email.toLowerCase();
    if (this.needsConsent.has(email)) {
      return {
        outcome: 'consent_needed',
        message: 'Connect your account first.',
        url: `https://consent.example.test/connect?user=${encodeURIComponent(email)}`,
      };
    }
    if (!t || t.approval.status !== 'pending')
      return { outcome: 'already_decided', message: `This was already ${t?.approval.status ?? 'withdrawn'} in the source.` };
    if (!t.approval.approvers.some((a) => a.sourceUserId === request.approver.sourceUserId)) {
      return { outcome: 'not_yours', message: 'This approval now waits on someone else.' };
    }
    if (t.approval.sourceUpdatedAt !== request.approval.sourceUpdatedAt)
      return { outcome: 'changed', message: 'This approval changed since its card was drawn.' };
    if (request.action === 'sendBack' && !request.input.comment?.trim())
      return { outcome: 'refused', message: 'Say why you send it back: a comment is required.' };
    this.acted.push({ externalId: t.approval.externalId, action: request.action, by: email, comment: request.input.comment });
    this.change(t.approval.externalId, { status: actionStatus(request.action) ?? 'approved', approvers: [] });
    return { outcome: 'done', action: request.action, message: request.action === 'sendBack' ? 'Sent back.' : 'Approved.', at: this.clock.now().toISOString() };
  }
}
