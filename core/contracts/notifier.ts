import type { ServiceIdentifier } from '../di.js';
import type { Approver } from '../model/approval.js';
import type { Card } from '../model/card.js';
import type { DeliveryReceipt, OutboxAction } from '../model/queue-types.js';

export interface OutboundMessage {
  /** Stable across retries; a channel that can dedupe by it must. */
  readonly idempotencyKey: string;
  /** `notify` posts a new message; `update` and `close` edit the one in `previous`. */
  readonly action: OutboxAction;
  readonly recipient: Approver & { readonly email: string };
  readonly card: Card;
  /** The receipt of the message this one updates; absent for `notify`. */
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
