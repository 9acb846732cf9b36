import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { emailKey } from '../../core/index.js';

/**
 * What a token is for. Each purpose signs with its own key derived from the configured one, so a
 * session cookie can never be replayed as a sign-in link, nor a link as a cookie.
 */
export type TokenPurpose = 'link' | 'session';

/** What a link or a session cookie says, under our signature. */
export interface TokenClaims {
  /** The person, in canonical form ({@link normaliseEmail}). */
  readonly email: string;
  readonly expiresAt: Date;
  /** Random, unique per token: what makes a link single-use and lets one session be signed out. */
  readonly id: string;
  /** The person's session generation when the token was made; `inbox revoke` moves it on. */
  readonly generation: number;
}

export type VerifiedToken = ({ readonly ok: true } & TokenClaims) | { readonly ok: false; readonly reason: 'malformed' | 'forged' | 'expired' };

/** Longer than any token we issue (an e-mail is at most 254 characters); bounds the work a forged token costs. */
const MAX_TOKEN_LENGTH = 1024;
const MAC_BYTES = 32;
const EMAIL = /^[^\s@|]+@[^\s@|]+$/;
const EXPIRY = /^[0-9]{1,12}$/;
const ID = /^[A-Za-z0-9_-]{16,64}$/;
const GENERATION = /^[0-9]{1,15}$/;

/** The canonical form sessions and the queue compare (the core's `emailKey`). Undefined if it is not an e-mail. */
export function normaliseEmail(raw: string): string | undefined {
  const email = emailKey(raw) ?? '';
  return email.length <= 254 && EMAIL.test(email) && !/[\u0000-\u001f\u007f]/.test(email) ? email : undefined;
}

/** A fresh token id: 128 random bits, base64url. */
export function newTokenId(): string {
  return randomBytes(16).toString('base64url');
}

function purposeKey(signingKey: string, purpose: TokenPurpose): Buffer {
  return createHmac('sha256', signingKey).update(`approvals-hub/web-inbox/${purpose}`).digest();
}

function mac(signingKey: string, purpose: TokenPurpose, claim: string): Buffer {
  return createHmac('sha256', purposeKey(signingKey, purpose)).update(claim, 'utf8').digest();
}

/**
 * `base64url(email|expiry|id|generation) "." base64url(HMAC-SHA256(key_purpose, claim))`, where
 * expiry is whole seconds since the epoch and `key_purpose = HMAC-SHA256(signingKey, purpose label)`.
 * @throws Error when `email` is not an e-mail address, or `id`/`generation` are not ours.
 */
export function signToken(signingKey: string, purpose: TokenPurpose, claims: TokenClaims): string {
  const email = normaliseEmail(claims.email);
  if (!email) throw new Error(`not an e-mail address: "${claims.email}"`);
  if (!ID.test(claims.id)) throw new Error('a token id must be 16-64 base64url characters');
  if (!Number.isSafeInteger(claims.generation) || claims.generation < 0) throw new Error('a token generation must be a whole number ≥ 0');
  const claim = `${email}|${Math.floor(claims.expiresAt.getTime() / 1000)}|${claims.id}|${claims.generation}`;
  return `${Buffer.from(claim, 'utf8').toString('base64url')}.${mac(signingKey, purpose, claim).toString('base64url')}`;
}

/**
 * Checks a token's signature in constant time, then its expiry against `now`. Never throws: a
 * token that is not ours in any way is `malformed` or `forged`. Single use and revocation are
 * not checked here (they need the store; see InboxSessions).
 */
export function verifyToken(signingKey: string, purpose: TokenPurpose, token: string, now: Date): VerifiedToken {
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
  const parts = token.split('.');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return { ok: false, reason: 'malformed' };
  const claim = Buffer.from(parts[0], 'base64url').toString('utf8');
  const given = Buffer.from(parts[1], 'base64url');
  if (given.length !== MAC_BYTES) return { ok: false, reason: 'malformed' };
  if (!timingSafeEqual(given, mac(signingKey, purpose, claim))) return { ok: false, reason: 'forged' };
  const fields = claim.split('|');
  // Signed by us, so this only fails for a token signed by an older version of this code (links
  // and cookies without an id and a generation, from before single use): they no longer work.
  if (fields.length !== 4) return { ok: false, reason: 'malformed' };
  const [rawEmail, expiry, id, generation] = fields as [string, string, string, string];
  const email = normaliseEmail(rawEmail);
  if (!email || !EXPIRY.test(expiry) || !ID.test(id) || !GENERATION.test(generation)) return { ok: false, reason: 'malformed' };
  const expiresAt = new Date(Number(expiry) * 1000);
  if (now.getTime() >= expiresAt.getTime()) return { ok: false, reason: 'expired' };
  return { ok: true, email, expiresAt, id, generation: Number(generation) };
}
