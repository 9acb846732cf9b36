import { createHmac, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../../core/index.js';

/** Why a request was refused; logged, never sent back to the caller. */
export type SignatureCheck = { readonly ok: true } | { readonly ok: false; readonly reason: 'missing' | 'malformed' | 'stale' | 'mismatch' | 'replayed' };

export interface SignatureOptions {
  /** How far the request timestamp may be from now; Slack's guide uses five minutes. */
  readonly windowMs?: number;
  /** Signatures remembered for replay detection (each is kept until its timestamp leaves the window). */
  readonly remembered?: number;
}

const SIGNATURE = /^v0=[0-9a-f]{64}$/;
const TIMESTAMP = /^\d{1,12}$/;

/**
 * Verifies Slack's request signing (docs.slack.dev/authentication/verifying-requests-from-slack):
 * `X-Slack-Signature` is `v0=` + hex HMAC-SHA256, keyed by the app's signing secret, of
 * `v0:{X-Slack-Request-Timestamp}:{raw body}`. The body must be the bytes Slack sent, before any
 * parsing. A timestamp more than five minutes from now is refused, and so is a signature already
 * accepted within that window: a signature is only valid for its own body and timestamp, so
 * remembering signatures until their timestamp expires is enough to refuse every replay.
 * The memory is per process; in a scale-out deployment a replay sent to another process within
 * the window is only caught by the timestamp check.
 */
export class SlackSignatureVerifier {
  private readonly windowMs: number;
  private readonly seen: LRUCache<string, true>;

  constructor(
    private readonly signingSecret: string,
    private readonly clock: Clock,
    options: SignatureOptions = {},
  ) {
    if (!signingSecret) throw new Error('a Slack signing secret is required');
    this.windowMs = options.windowMs ?? 5 * 60_000;
    this.seen = new LRUCache<string, true>({
      max: options.remembered ?? 50_000,
      ttl: this.windowMs * 2,
      perf: { now: () => this.clock.now().getTime() },
    });
  }

  verify(timestamp: string | undefined, signature: string | undefined, rawBody: Buffer | string): SignatureCheck {
    if (!timestamp || !signature) return { ok: false, reason: 'missing' };
    if (!TIMESTAMP.test(timestamp) || !SIGNATURE.test(signature)) return { ok: false, reason: 'malformed' };
    const sentMs = Number(timestamp) * 1000;
    const now = this.clock.now().getTime();
    if (Math.abs(now - sentMs) > this.windowMs) return { ok: false, reason: 'stale' };

    const expected = createHmac('sha256', this.signingSecret).update(`v0:${timestamp}:`).update(rawBody).digest();
    const given = Buffer.from(signature.slice(3), 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'mismatch' };

    if (this.seen.has(signature)) return { ok: false, reason: 'replayed' };
    // Kept until the timestamp itself would be refused (plus a second for rounding).
    this.seen.set(signature, true, { ttl: Math.max(1, sentMs + this.windowMs - now + 1000) });
    return { ok: true };
  }
}
