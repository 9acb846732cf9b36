import { randomInt } from 'node:crypto';
import type { SandboxClock } from './sandbox-clock.js';

/**
 * The One Time Password grant's state (apidoc.markdown "One Time Password grant"): `POST
 * /oauth2/v0/otp` "e-mails" a one-time token, which lands in this outbox instead of a mailbox;
 * the token grant later redeems it. Concur documents neither the token's lifetime nor how many
 * requests may be open (only that there is a limit, code 82), so both are the sandbox's choice.
 */

/** Parameters of /otp that are the API's own, not the client's (the doc's reserved words plus name, company, link). */
export const OTP_API_PARAMS: ReadonlySet<string> = new Set(['client_id', 'client_secret', 'channel_type', 'channel_handle', 'name', 'company', 'link']);
/** Parameters of /token that are the grant's own (the doc's reserved words for /token, plus name, company, link if sent again). */
export const OTP_TOKEN_PARAMS: ReadonlySet<string> = new Set([
  'client_id',
  'client_secret',
  'channel_type',
  'channel_handle',
  'scope',
  'grant_type',
  'otp',
  'name',
  'company',
  'link',
]);

/** A sent one-time token as the user's mailbox would show it. */
export interface OtpMessage {
  readonly to: string;
  readonly otp: string;
  readonly name: string | undefined;
  readonly company: string | undefined;
  /** The callback the e-mail offers; how Concur adds the token to it is UNCONFIRMED, so it is shown as given. */
  readonly link: string | undefined;
  /** The client's own parameters, which the token request must repeat exactly. */
  readonly params: Readonly<Record<string, string>>;
  /** ISO-8601 sandbox time. */
  readonly sentAt: string;
}

interface OpenOtp {
  readonly message: OtpMessage;
  readonly userIndex: number;
  readonly expiresAtMs: number;
}

export type OtpRedemption = { readonly ok: true; readonly userIndex: number } | { readonly ok: false; readonly reason: 'not_found' | 'verification' };

/** Open one-time tokens per channel handle; more are refused (code 82). */
export const MAX_OPEN_OTPS = 5;
const OTP_LIFETIME_SECONDS = 600;

export class OtpStore {
  private readonly open = new Map<string, OpenOtp>();
  private readonly sent: OtpMessage[] = [];

  constructor(private readonly clock: SandboxClock) {}

  /** Sends a one-time token to `handle`; undefined when too many are open for it. */
  send(handle: string, userIndex: number, extras: Omit<OtpMessage, 'to' | 'otp' | 'sentAt'>): OtpMessage | undefined {
    this.sweep();
    const to = handle.toLowerCase();
    if ([...this.open.values()].filter((o) => o.message.to === to).length >= MAX_OPEN_OTPS) return undefined;
    const otp = String(randomInt(0, 100_000_000)).padStart(8, '0');
    const message: OtpMessage = { to, otp, ...extras, sentAt: this.clock.now().toISOString() };
    this.open.set(`${to} ${otp}`, { message, userIndex, expiresAtMs: this.clock.nowMs() + OTP_LIFETIME_SECONDS * 1000 });
    this.sent.push(message);
    return message;
  }

  /**
   * Redeems a one-time token sent to `handle`. It is single-use: a try with the wrong client
   * parameters consumes it too, so a guessed signature cannot be retried against the same token.
   */
  redeem(handle: string, otp: string, params: Readonly<Record<string, string>>): OtpRedemption {
    this.sweep();
    const key = `${handle.toLowerCase()} ${otp}`;
    const found = this.open.get(key);
    if (!found) return { ok: false, reason: 'not_found' };
    this.open.delete(key);
    if (!sameParams(found.message.params, params)) return { ok: false, reason: 'verification' };
    return { ok: true, userIndex: found.userIndex };
  }

  /** Every message sent so far, oldest first. */
  outbox(): readonly OtpMessage[] {
    return [...this.sent];
  }

  private sweep(): void {
    const now = this.clock.nowMs();
    for (const [key, o] of this.open) if (now >= o.expiresAtMs) this.open.delete(key);
  }
}

function sameParams(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** The client's own parameters of a request: everything that is not in `reserved`. */
export function clientParams(body: Readonly<Record<string, string | undefined>>, reserved: ReadonlySet<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (!reserved.has(k) && v !== undefined) out[k] = v;
  return out;
}
