import { createHmac } from 'node:crypto';
import {
  PermanentDeliveryError,
  RetryLaterError,
  retryAfterMs,
  type DeliveryReceipt,
  type Notifier,
  type OutboundMessage,
  type MessageAction,
} from '../../core/index.js';

/**
 * The signature a receiver checks: `sha256=` + hex HMAC-SHA256 of `<timestamp>.<raw body>` with the
 * shared secret. The timestamp (epoch seconds, `X-Approvals-Timestamp`) lets receivers refuse replays.
 */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** The actions a receiver is told about; see {@link OutboundMessage.action}. */
const WEBHOOK_ACTIONS: ReadonlySet<string> = new Set<MessageAction>(['notify', 'update', 'close', 'remind', 'digest', 'link']);

/** What went wrong with a request that got no answer, from fetch's error and its `cause`. */
function requestFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'TimeoutError') return 'no answer within the timeout';
  const cause = (error as { cause?: unknown }).cause;
  if (!(cause instanceof Error)) return error.message;
  const code = (cause as { code?: unknown }).code;
  return `${error.message}: ${typeof code === 'string' ? code : cause.message}`;
}

/**
 * POSTs `{idempotencyKey, action, recipient, card, previous}` as JSON; a `digest` also carries
 * `digest`, the cards it lists, and a `remind` names in `previous` the message it reminds of (the
 * receiver should not post a second card with buttons); a `link` carries a sign-in link for the
 * recipient as the card's one link button, with no approval behind it. 2xx delivers (the receiver
 * may answer `{"ref": "..."}` to name its message); 408, 429, 5xx, a network error and a timeout
 * are a {@link RetryLaterError} the outbox retries, no sooner than the receiver's `Retry-After`
 * (seconds or an HTTP date, at most an hour); any other status is permanent
 * (dead-lettered). `Idempotency-Key` carries the outbox key, so a receiver can drop a retry it
 * already processed. An action this notifier does not know is refused for good before anything is
 * sent: the receiver is written against the six below, not against whatever the outbox passes on.
 *
 * Redirects are never followed: fetch's default would re-send the signed body to whatever host a
 * `Location` names (307/308 keep the method and body), plain http included. A 3xx is permanent, and
 * its error names the status and the `Location`, so the operator can fix the configured `url`.
 */
export class WebhookNotifier implements Notifier {
  constructor(
    readonly id: string,
    private readonly url: string,
    private readonly secret: string,
    private readonly timeoutMs: number,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async deliver(message: OutboundMessage): Promise<DeliveryReceipt> {
    if (!WEBHOOK_ACTIONS.has(message.action)) {
      throw new PermanentDeliveryError(`webhook ${this.id}: action ${JSON.stringify(message.action)} is not one it sends (${[...WEBHOOK_ACTIONS].join(', ')})`);
    }
    const body = JSON.stringify({
      idempotencyKey: message.idempotencyKey,
      action: message.action,
      recipient: message.recipient,
      card: message.card,
      ...(message.digest ? { digest: message.digest } : {}),
      previous: message.previous ?? null,
    });
    const timestamp = String(Math.floor(this.now().getTime() / 1000));
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Idempotency-Key': message.idempotencyKey,
          'X-Approvals-Timestamp': timestamp,
          'X-Approvals-Signature': webhookSignature(this.secret, timestamp, body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      // No answer (refused, reset, DNS, timeout): nothing says the receiver refused it, so retry.
      // The cause names the failure, never the URL, which may carry a token in its query.
      throw new RetryLaterError(`webhook ${this.id}: request failed (${requestFailure(error)})`, 0);
    }
    const text = await response.text();
    if (response.ok) {
      let ref: unknown;
      try {
        ref = (JSON.parse(text) as { ref?: unknown }).ref;
      } catch {
        ref = undefined;
      }
      return { ref: typeof ref === 'string' && ref ? ref : (message.previous?.ref ?? message.idempotencyKey) };
    }
    const detail = `webhook ${this.id} answered HTTP ${response.status}`;
    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get('location');
      throw new PermanentDeliveryError(
        `${detail} redirecting to ${location === null ? '(no Location header)' : JSON.stringify(location.slice(0, 300))}; ` +
          'redirects are not followed (the signed body would go to another address): configure the final URL as "url"',
      );
    }
    if (response.status === 408 || response.status === 429 || response.status >= 500) {
      const wait = retryAfterMs(response.headers.get('retry-after'), { now: this.now() });
      throw new RetryLaterError(`${detail}${wait === undefined ? '' : `, Retry-After ${Math.ceil(wait / 1000)}s`}`, wait ?? 0);
    }
    throw new PermanentDeliveryError(`${detail}: ${text.slice(0, 200)}`);
  }
}
