import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * What a token is for. Each purpose signs with its own key derived from the configured one, so a
 * session cookie can never be replayed as a sign-in link, nor a link as a cookie.
 */
export type TokenPurpose = 'link' | 'session';

export type VerifiedToken =
  | { readonly ok: true; readonly email: string; readonly expiresAt: Date }
  | { readonly ok: false; readonly reason: 'malformed' | 'forged' | 'expired' };

/** Longer than any token we issue (an e-mail is at most 254 characters); bounds the work a forged token costs. */
const MAX_TOKEN_LENGTH = 1024;
const MAC_BYTES = 32;
const EMAIL = /^[^\s@|]+@[^\s@|]+$/;
const EXPIRY = /^[0-9]{1,12}$/;

/** The canonical form sessions and the queue compare: trimmed, lower case. Undefined if it is not an e-mail. */
export function normaliseEmail(raw: string): string | undefined {
  const email = raw.trim().toLowerCase();
  return email.length <= 254 && EMAIL.test(email) && !/[\u0000-\u001f\u007f]/.test(email) ? email : undefined;
}

function purposeKey(signingKey: string, purpose: TokenPurpose): Buffer {
  return createHmac('sha256', signingKey).update(`approvals-hub/web-inbox/${purpose}`).digest();
}

function mac(signingKey: string, purpose: TokenPurpose, claim: string): Buffer {
  return createHmac('sha256', purposeKey(signingKey, purpose)).update(claim, 'utf8').digest();
}

/**
 * `base64url(email|expiry) "." base64url(HMAC-SHA256(key_purpose, email|expiry))`, where expiry is
 * whole seconds since the epoch and `key_purpose = HMAC-SHA256(signingKey, purpose label)`.
 * @throws Error when `email` is not an e-mail address.
 */
export function signToken(signingKey: string, purpose: TokenPurpose, email: string, expiresAt: Date): string {
  const normalised = normaliseEmail(email);
  if (!normalised) throw new Error(`not an e-mail address: "${email}"`);
  const claim = `${normalised}|${Math.floor(expiresAt.getTime() / 1000)}`;
  return `${Buffer.from(claim, 'utf8').toString('base64url')}.${mac(signingKey, purpose, claim).toString('base64url')}`;
}

/**
 * Checks a token's signature in constant time, then its expiry against `now`. Never throws: a
 * token that is not ours in any way is `malformed` or `forged`.
 */
export function verifyToken(signingKey: string, purpose: TokenPurpose, token: string, now: Date): VerifiedToken {
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return { ok: false, reason: 'malformed' };
  const claim = Buffer.from(parts[0], 'base64url').toString('utf8');
  const given = Buffer.from(parts[1], 'base64url');
  if (given.length !== MAC_BYTES) return { ok: false, reason: 'malformed' };
  if (!timingSafeEqual(given, mac(signingKey, purpose, claim))) return { ok: false, reason: 'forged' };
  const bar = claim.lastIndexOf('|');
  const email = normaliseEmail(claim.slice(0, bar));
  const expiry = claim.slice(bar + 1);
  // Signed by us, so this only fails for a token signed by a different version of this code.
  if (bar < 0 || !email || !EXPIRY.test(expiry)) return { ok: false, reason: 'malformed' };
  const expiresAt = new Date(Number(expiry) * 1000);
  if (now.getTime() >= expiresAt.getTime()) return { ok: false, reason: 'expired' };
  return { ok: true, email, expiresAt };
}
