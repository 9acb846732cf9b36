import { approvalKey, type Approval, type ApprovalContent, type Approver, type ApprovalStatus } from '../model/approval.js';
import type { ApprovalSource, SourceBatch, SyncContext, VerifyRef, VerifyResult } from '../contracts/approval-source.js';

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
  readonly capabilities = { actions: [] as string[] };
  private readonly truth = new Map<string, Truth>();
  private seq = 0;
  /** Calls served, by method, for cost assertions. */
  readonly calls = { changes: 0, listPending: 0, verify: 0 };
  /** When set, the next calls, and the next page of a `changes` under way, throw this error (a failing API). */
  failWith: Error | undefined;
  /** The refs of the last `verify` call (each with the queued `sourceData` the host handed back). */
  lastVerifyRefs: readonly VerifyRef[] = [];

  constructor(
    readonly id: string,
    private readonly clock: { now(): Date },
    private readonly pageSize = 100,
    readonly kind = 'expense-report',
  ) {}

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
}
