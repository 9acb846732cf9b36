import { emailKey } from '../model/email.js';
import { parseIdempotencyKey } from '../model/idempotency-key.js';
import { CARD_ACTIONS, type DeliveryReceipt, type OutboxEntry, type OutboxOutcome } from '../model/queue-types.js';
import type { ApprovalReader, OutboxStore } from '../contracts/approval-queue.js';
import type { Clock } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import { isPermanentDeliveryError, isRetryLaterError, type Notifier } from '../contracts/notifier.js';
import { digestTitle } from './reminder-scheduler.js';
import type { Card } from '../model/card.js';

export interface OutboxWorkerOptions {
  readonly batchSize: number;
  /** An inflight entry older than this is presumed abandoned by a dead worker and re-claimed. */
  readonly leaseMs: number;
  /** Attempts before an entry is dead-lettered. */
  readonly maxAttempts: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

export const defaultOutboxWorkerOptions: OutboxWorkerOptions = {
  batchSize: 50,
  leaseMs: 60_000,
  maxAttempts: 10,
  backoffBaseMs: 1_000,
  backoffMaxMs: 5 * 60_000,
};

export interface DrainReport {
  delivered: number;
  superseded: number;
  retried: number;
  dead: number;
}

/**
 * Delivers the outbox: each entry goes to its channel once. `notify` posts; `update` and `close`
 * edit the message recorded by the last receipt (a `notify` that never reached the approver
 * is folded into the update; a `close` for a message never sent is dropped). A `remind` goes out
 * only while its approval is still queued, at that generation, on that approver; it points at the
 * card's receipt (without one it posts the card instead) and leaves that receipt in place. A
 * `digest` lists only the approvals still waiting on its recipient. An entry claimed
 * again after a crash asks the channel whether it already holds the message before resending.
 * Failures retry with exponential backoff and jitter, then go to the dead-letter list.
 */
export class OutboxWorker {
  private readonly notifiers: ReadonlyMap<string, Notifier>;

  constructor(
    private readonly queue: OutboxStore & Pick<ApprovalReader, 'get'>,
    notifiers: readonly Notifier[],
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: OutboxWorkerOptions = defaultOutboxWorkerOptions,
    private readonly onSettled: (entry: OutboxEntry, outcome: OutboxOutcome) => void = () => {},
    /** Puts the recipient's action tokens on a card's act buttons (the host's `ActionService.withTokens`). */
    private readonly withTokens: ((card: Card, generation: string, email: string) => Promise<Card>) | undefined = undefined,
  ) {
    this.notifiers = new Map(notifiers.map((n) => [n.id, n]));
  }

  /** Delivers every due entry; returns when none is left due. */
  async drain(signal?: AbortSignal): Promise<DrainReport> {
    const report: DrainReport = { delivered: 0, superseded: 0, retried: 0, dead: 0 };
    for (;;) {
      if (signal?.aborted) return report;
      const claimed = await this.queue.claimOutbox(this.options.batchSize, this.clock.now(), this.options.leaseMs);
      if (claimed.length === 0) return report;
      for (const entry of claimed) {
        const outcome = await this.deliver(entry);
        await this.queue.settleOutbox(entry.id, outcome, this.clock.now());
        this.onSettled(entry, outcome);
        if (outcome.state === 'retry') report.retried++;
        else report[outcome.state]++;
      }
    }
  }

  private async deliver(entry: OutboxEntry): Promise<OutboxOutcome> {
    const notifier = this.notifiers.get(entry.channel);
    if (!notifier) return { state: 'dead', error: `no notifier "${entry.channel}" is configured` };
    const email = entry.approver.email;
    if (!email) return { state: 'dead', error: 'approver has no e-mail' };
    try {
      if (entry.attempts > 0 && notifier.findDelivered) {
        const earlier = await notifier.findDelivered(entry.idempotencyKey, { ...entry.approver, email });
        if (earlier) return (await this.isCardMessage(entry)) ? { state: 'delivered', receipt: earlier } : { state: 'delivered' };
      }
      if (entry.action === 'digest') return await this.deliverDigest(notifier, entry, email);
      if (entry.action === 'remind' && !(await this.stillWaiting(entry))) return { state: 'superseded' };
      const previous = await this.queue.receipt(entry.approvalKey, entry.approver.sourceUserId, entry.channel);
      // A close for a message never sent has nothing to close; an update whose notify never
      // arrived is the approver's first message, and so is a reminder of a card never received.
      if (!previous && entry.action === 'close') return { state: 'superseded' };
      const action = previous || entry.action === 'notify' ? entry.action : 'notify';
      const receipt: DeliveryReceipt = await notifier.deliver({
        idempotencyKey: entry.idempotencyKey,
        action,
        recipient: { ...entry.approver, email },
        card: await this.cardFor(entry, email),
        previous: action === 'notify' ? undefined : previous,
      });
      // A reminder is a message of its own (a thread reply, a line of text): the card's receipt
      // stays the one later updates and the close must edit.
      return action === 'remind' ? { state: 'delivered' } : { state: 'delivered', receipt };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // By `code`, not `instanceof`: a plugin bundling its own copy of approvals-hub throws its copy's classes.
      if (isPermanentDeliveryError(error) || entry.attempts + 1 >= this.options.maxAttempts) {
        this.logger.error({ channel: entry.channel, key: entry.approvalKey, err: message }, 'delivery dead-lettered');
        return { state: 'dead', error: message };
      }
      const wait = Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * 2 ** entry.attempts);
      const jittered = wait / 2 + Math.random() * (wait / 2);
      // The channel's own Retry-After is a floor: retrying sooner only earns another 429.
      const retryAfterMs = isRetryLaterError(error) ? error.retryAfterMs : undefined;
      const delay = typeof retryAfterMs === 'number' && Number.isFinite(retryAfterMs) ? Math.max(jittered, retryAfterMs) : jittered;
      this.logger.warn({ channel: entry.channel, key: entry.approvalKey, attempt: entry.attempts + 1, err: message }, 'delivery failed; will retry');
      return { state: 'retry', error: message, nextAttemptAt: new Date(this.clock.now().getTime() + delay) };
    }
  }

  /** The entry's card as this recipient gets it: its act buttons carry tokens bound to them. */
  private async cardFor(entry: OutboxEntry, email: string): Promise<Card> {
    if (!this.withTokens || !entry.card.actions.some((a) => a.type === 'act')) return entry.card;
    const names = parseIdempotencyKey(entry.idempotencyKey);
    return names.kind === 'approval' ? this.withTokens(entry.card, names.generation, email) : entry.card;
  }

  /** Whether a delivered entry is the approver's card (a reminder is, when there was no card to remind of). */
  private async isCardMessage(entry: OutboxEntry): Promise<boolean> {
    if (CARD_ACTIONS.has(entry.action)) return true;
    return entry.action === 'remind' && !(await this.queue.receipt(entry.approvalKey, entry.approver.sourceUserId, entry.channel));
  }

  /** A reminder is owed only while its approval version still waits on its approver. */
  private async stillWaiting(entry: OutboxEntry): Promise<boolean> {
    const row = await this.queue.get(entry.approvalKey);
    const names = parseIdempotencyKey(entry.idempotencyKey);
    return (
      row !== undefined &&
      row.status === 'pending' &&
      names.kind === 'approval' &&
      names.approvalKey === row.key &&
      names.generation === row.generation &&
      row.approvers.some((a) => a.sourceUserId === entry.approver.sourceUserId)
    );
  }

  /** Sends a digest without the approvals that left its recipient's hands since it was scheduled. */
  private async deliverDigest(notifier: Notifier, entry: OutboxEntry, email: string): Promise<OutboxOutcome> {
    const wanted = emailKey(email);
    const listed = [];
    for (const card of entry.digest ?? []) {
      const row = await this.queue.get(card.approvalKey);
      if (row?.status === 'pending' && wanted !== undefined && row.approvers.some((a) => emailKey(a.email) === wanted)) listed.push(card);
    }
    if (listed.length === 0) return { state: 'superseded' };
    const shown = listed.length === (entry.digest ?? []).length ? entry.card : { ...entry.card, title: digestTitle(listed.length) };
    await notifier.deliver({ idempotencyKey: entry.idempotencyKey, action: 'digest', recipient: { ...entry.approver, email }, card: shown, digest: listed });
    return { state: 'delivered' };
  }
}
