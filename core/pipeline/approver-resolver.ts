import type { Approval, Approver } from '../model/approval.js';
import { emailKey } from '../model/email.js';
import type { IdentityDirectory, Resolution } from '../contracts/identity-directory.js';
import type { Logger } from '../contracts/logger.js';

const BACKOFF_BASE_MS = 5_000;
const BACKOFF_MAX_MS = 15 * 60_000;

/**
 * Fills approvers' e-mails through the source's IdentityDirectory before a batch is committed.
 * Never throws and never waits longer than `timeoutMs`: an approver it cannot resolve goes into
 * the queue without an e-mail, so its messages are parked (kept, retried with backoff) while the
 * rest of the batch proceeds.
 */
export class ApproverResolver {
  private readonly retryAt = new Map<string, { at: number; failures: number }>();

  constructor(
    private readonly directory: IdentityDirectory | undefined,
    private readonly logger: Logger,
    private readonly timeoutMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  async resolveBatch(approvals: readonly Approval[], signal: AbortSignal): Promise<Approval[]> {
    const wanted = new Map<string, Approver>();
    for (const approval of approvals) for (const a of approval.approvers) if (!a.email) wanted.set(a.sourceUserId, a);
    if (wanted.size === 0) return [...approvals];
    const found = await this.resolve([...wanted.values()], signal);
    return approvals.map((approval) => ({
      ...approval,
      approvers: approval.approvers.map((a) => {
        const hit = found.get(a.sourceUserId);
        if (hit?.status !== 'resolved') return a;
        const timeZone = a.timeZone ?? hit.approver.timeZone;
        return { ...a, email: hit.approver.email, name: a.name ?? hit.approver.name, ...(timeZone ? { timeZone } : {}) };
      }),
    }));
  }

  /** Parked approvers due for a retry (exponential backoff per approver). */
  due(approvers: readonly Approver[], now: number): Approver[] {
    return approvers.filter((a) => (this.retryAt.get(a.sourceUserId)?.at ?? 0) <= now);
  }

  async resolve(approvers: readonly Approver[], signal: AbortSignal): Promise<Map<string, Resolution>> {
    const result = new Map<string, Resolution>();
    const pending: Approver[] = [];
    for (const a of approvers) {
      if (a.email) result.set(a.sourceUserId, { status: 'resolved', approver: { ...a, email: a.email } });
      else if (!this.directory) {
        // Without a directory, a login id that is an e-mail address is the best identity we have.
        result.set(
          a.sourceUserId,
          a.sourceUserId.includes('@') ? { status: 'resolved', approver: { ...a, email: emailKey(a.sourceUserId)! } } : { status: 'unknown' },
        );
      } else pending.push(a);
    }
    if (pending.length === 0 || !this.directory) return result;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      const answers = await this.directory.resolve(pending, AbortSignal.any([signal, timeout]));
      for (const a of pending) result.set(a.sourceUserId, answers.get(a.sourceUserId) ?? { status: 'unknown' });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.logger.warn({ source: this.directory.source, approvers: pending.length, err: message }, 'identity lookup failed; approvers parked');
      for (const a of pending) result.set(a.sourceUserId, { status: 'failed', error: message });
    }
    const now = this.now();
    for (const [id, r] of result) {
      if (r.status === 'resolved') this.retryAt.delete(id);
      else {
        const failures = (this.retryAt.get(id)?.failures ?? 0) + 1;
        const wait = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 1));
        this.retryAt.set(id, { at: now + wait * (0.5 + Math.random() / 2), failures });
      }
    }
    return result;
  }
}
