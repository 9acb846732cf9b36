import type { ServiceIdentifier } from '../di.js';
import type { Approver } from '../model/approval.js';
import type { Card } from '../model/card.js';
import type { DeliveryReceipt, OutboxAction } from '../model/queue-types.js';

/**
 * What a notifier may be asked to deliver: the outbox's actions, and `link`, a sign-in link for the
 * recipient (`card.title` says what it is, `card.actions` holds one link button; no approval behind
 * it). A `link` is never queued: the web inbox delivers it directly, once, when a person asks for one.
 */
export type MessageAction = OutboxAction | 'link';

export interface OutboundMessage {
  /** Stable across retries; a channel that can dedupe by it must. */
  readonly idempotencyKey: string;
  /**
   * `notify` posts a new message; `update` and `close` edit the one in `previous`. `remind` nudges
   * the approver about the card in `previous` without a second card with live buttons (a reply,
   * a text line); it always has `previous`. `digest` posts one message listing `digest`, with
   * link buttons only. `link` posts one message holding a sign-in link for the recipient and
   * nothing else ({@link MessageAction}). A channel that does not know an action should refuse it
   * for good ({@link PermanentDeliveryError}) rather than post a second card.
   */
  readonly action: MessageAction;
  readonly recipient: Approver & { readonly email: string };
  /** The approval's card; for a `digest`, a summary card whose title says how many wait. */
  readonly card: Card;
  /** `digest` only: the cards of the approvals still waiting, oldest first. */
  readonly digest?: readonly Card[] | undefined;
  /** The receipt of the message this one updates or reminds of; absent for `notify` and `digest`. */
  readonly previous?: DeliveryReceipt | undefined;
}

/**
 * The `code` every {@link PermanentDeliveryError} carries. The outbox worker recognises a permanent
 * failure by this code, not by `instanceof`: a plugin that bundles its own copy of approvals-hub
 * throws its copy's class, which `instanceof` against the host's class does not see.
 */
export const PERMANENT_DELIVERY_ERROR_CODE = 'APPROVALS_HUB_PERMANENT_DELIVERY';

/** The `code` every {@link RetryLaterError} carries; see {@link PERMANENT_DELIVERY_ERROR_CODE}. */
export const RETRY_LATER_ERROR_CODE = 'APPROVALS_HUB_RETRY_LATER';

/**
 * A delivery the channel refused for good (unknown user, bad request): dead-lettered, not retried.
 * Throw it (or any error whose `code` is {@link PERMANENT_DELIVERY_ERROR_CODE}); test for it with
 * {@link isPermanentDeliveryError}, never `instanceof`.
 */
export class PermanentDeliveryError extends Error {
  override readonly name: string = 'PermanentDeliveryError';
  readonly code: string = PERMANENT_DELIVERY_ERROR_CODE;
}

/**
 * A delivery the channel asked to retry no sooner than `retryAfterMs` from now (HTTP 429 or 503
 * with Retry-After). The outbox worker waits at least that long, whatever its backoff says.
 * Recognised by its `code` ({@link RETRY_LATER_ERROR_CODE}); test for it with {@link isRetryLaterError}.
 */
export class RetryLaterError extends Error {
  override readonly name: string = 'RetryLaterError';
  readonly code: string = RETRY_LATER_ERROR_CODE;
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/** Whether `error` is a permanent delivery failure, whichever copy of approvals-hub created it. */
export function isPermanentDeliveryError(error: unknown): error is Error & { readonly code: typeof PERMANENT_DELIVERY_ERROR_CODE } {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === PERMANENT_DELIVERY_ERROR_CODE;
}

/**
 * Whether `error` asks for a later retry, whichever copy of approvals-hub created it. Its
 * `retryAfterMs` is whatever the thrower set: check it is a finite number before relying on it.
 */
export function isRetryLaterError(error: unknown): error is Error & { readonly code: typeof RETRY_LATER_ERROR_CODE; readonly retryAfterMs?: unknown } {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === RETRY_LATER_ERROR_CODE;
}

/**
 * A chat channel. Multi-bound: one binding per configured notifier. Throws on failure; the
 * outbox worker retries with backoff unless the error is a {@link PermanentDeliveryError}
 * (by its `code`, see {@link isPermanentDeliveryError}).
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

/**
 * Every notifier of the deployment, by id, bound by the host in the root container. It fills up
 * as notifiers load, so a plugin reads it when it handles a request, not in its constructor.
 */
export const Notifiers: ServiceIdentifier<ReadonlyMap<string, Notifier>> = Symbol.for('approvals.core.Notifiers');
