import type { ServiceIdentifier } from '../di.js';
import type { Approver } from '../model/approval.js';
import type { Card } from '../model/card.js';
import type { DeliveryReceipt, OutboxAction } from '../model/queue-types.js';

export interface OutboundMessage {
  /** Stable across retries; a channel that can dedupe by it must. */
  readonly idempotencyKey: string;
  /**
   * `notify` posts a new message; `update` and `close` edit the one in `previous`. `remind` nudges
   * the approver about the card in `previous` without a second card with live buttons (a reply,
   * a text line); it always has `previous`. `digest` posts one message listing `digest`, with
   * link buttons only. A channel that does not know an action should refuse it for good
   * ({@link PermanentDeliveryError}) rather than post a second card.
   */
  readonly action: OutboxAction;
  readonly recipient: Approver & { readonly email: string };
  /** The approval's card; for a `digest`, a summary card whose title says how many wait. */
  readonly card: Card;
  /** `digest` only: the cards of the approvals still waiting, oldest first. */
  readonly digest?: readonly Card[] | undefined;
  /** The receipt of the message this one updates or reminds of; absent for `notify` and `digest`. */
  readonly previous?: DeliveryReceipt | undefined;
}

/** A delivery the channel refused for good (unknown user, bad request): dead-lettered, not retried. */
export class PermanentDeliveryError extends Error {
  override readonly name = 'PermanentDeliveryError';
}

/**
 * A delivery the channel asked to retry no sooner than `retryAfterMs` from now (HTTP 429 or 503
 * with Retry-After). The outbox worker waits at least that long, whatever its backoff says.
 */
export class RetryLaterError extends Error {
  override readonly name: string = 'RetryLaterError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/**
 * A chat channel. Multi-bound: one binding per configured notifier. Throws on failure; the
 * outbox worker retries with backoff unless the error is a {@link PermanentDeliveryError}.
 */
export interface Notifier {
  /** Channel id from the deployment file; part of every idempotency key. */
  readonly id: string;
  deliver(message: OutboundMessage): Promise<DeliveryReceipt>;
  /**
   * For an entry that may have been sent before a crash: the receipt if the channel already has
   * a message with this idempotency key. `recipient` says where to look (a chat channel keys its
   * history by its own user, not by the key). Channels that cannot tell omit it (the entry is re-sent).
   */
  findDelivered?(idempotencyKey: string, recipient: OutboundMessage['recipient']): Promise<DeliveryReceipt | undefined>;
}
export const Notifier: ServiceIdentifier<Notifier> = Symbol.for('approvals.core.Notifier');
