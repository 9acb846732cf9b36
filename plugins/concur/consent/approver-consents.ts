import { randomBytes } from 'node:crypto';
import { registerSecret, type Clock, type CredentialStore, type Logger } from '../../../core/index.js';
import type { ConcurUserClient, UserAccess } from '../client/user-client.js';
import { ConcurAuthError } from '../client/token-manager.js';
import { trustedGeolocation } from '../mappers/token-mapper.js';

/** One approver's consent, as the credential store keeps it (encrypted) under their e-mail. */
export interface StoredConsent {
  /** Concur user UUID (the id_token's `sub`, checked against Identity at the callback). */
  readonly userId: string;
  readonly loginId?: string | undefined;
  readonly refreshToken: string;
  readonly geolocation: string;
  /** ISO-8601: when they connected. */
  readonly connectedAt: string;
  readonly accessToken?: string | undefined;
  /** Epoch ms. */
  readonly accessExpiresAt?: number | undefined;
}

/** One connected approver, for `approvals-hub consent list`. */
export interface ConsentEntry {
  readonly email: string;
  readonly userId: string;
  readonly connectedAt: string;
}

/** A consent link on its way: the approver it was made for and the PKCE verifier, once the browser opened it. */
interface PendingState {
  readonly nonce: string;
  /** Epoch ms. */
  readonly expiresAt: number;
  readonly verifier?: string | undefined;
  /** Set once a one-time code was e-mailed for this link: the client parameter that binds codes to it. */
  readonly otpBinding?: string | undefined;
  /** Codes typed for this link so far. */
  readonly otpTries?: number | undefined;
}

/** A link's one-time-password step: its approver and the client parameter its codes were requested with. */
export interface OtpStep {
  readonly email: string;
  readonly binding: string;
}

/** The index of connected approvers (the store has no listing); `#` never starts an e-mail. */
const INDEX = '#index';
/** Links open at once per approver: a few clicks before connecting each get a working link, the oldest go first. */
const MAX_PENDING = 5;
/** Codes that may be typed for one link: a guess at an 8-digit code gets this many chances per press on the card. */
export const MAX_OTP_TRIES = 5;
/** Refresh this long before the access token expires. */
const EXPIRY_SKEW_MS = 60_000;
/** Concur's code for a refresh token it no longer accepts: revoked in Concur, or expired (docs/concur-api.md 4.2). */
const DEAD_REFRESH_TOKEN = '108';

const encode = (email: string) => Buffer.from(email, 'utf8').toString('base64url');

/**
 * Approvers' own Concur tokens and their consent links, in the credential store (encrypted, shared
 * by every process on the queue): namespace `concur-consent:<source id>`, one entry per approver
 * e-mail, plus `#index`; links in `concur-consent-state:<source id>`. The store cannot delete, so
 * a forgotten entry is overwritten with the empty string.
 *
 * A consent link's `state` is `<base64url e-mail>.<random nonce>`: the nonce is stored with the
 * approver it was made for, works until `linkTtlMs`, and is consumed by the callback, so a forged,
 * foreign, expired or replayed state matches nothing. Refreshes run under the store's
 * cross-process lock and store the rotated refresh token before the lock is released.
 */
export class ApproverConsents {
  private readonly tokens: string;
  private readonly states: string;

  constructor(
    sourceId: string,
    private readonly credentials: CredentialStore,
    private readonly client: ConcurUserClient,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: { readonly linkTtlMs: number; readonly baseUrl?: string | undefined; readonly configuredOrigins: readonly string[] },
  ) {
    this.tokens = `concur-consent:${sourceId}`;
    this.states = `concur-consent-state:${sourceId}`;
  }

  /** A fresh consent `state` for `email`, valid for the link lifetime. */
  async issueState(email: string): Promise<string> {
    const nonce = randomBytes(24).toString('base64url');
    const now = this.clock.now().getTime();
    await this.credentials.rotate(this.states, email, async (raw) => {
      const open = readStates(raw).filter((s) => s.expiresAt > now);
      return { value: JSON.stringify([...open, { nonce, expiresAt: now + this.options.linkTtlMs }].slice(-MAX_PENDING)), result: undefined };
    });
    return `${encode(email)}.${nonce}`;
  }

  /**
   * The connect step: the approver `state` was made for, with a new PKCE verifier stored beside it;
   * undefined when the state is unknown, expired or used.
   */
  async startConnect(state: string): Promise<{ email: string; verifier: string } | undefined> {
    const parsed = parseState(state);
    if (!parsed) return undefined;
    const verifier = randomBytes(32).toString('base64url');
    const now = this.clock.now().getTime();
    return this.credentials.rotate(this.states, parsed.email, async (raw) => {
      const open = readStates(raw).filter((s) => s.expiresAt > now);
      if (!open.some((s) => s.nonce === parsed.nonce)) return { result: undefined };
      return {
        value: JSON.stringify(open.map((s) => (s.nonce === parsed.nonce ? { ...s, verifier } : s))),
        result: { email: parsed.email, verifier },
      };
    });
  }

  /** The callback step: consumes `state` and answers its approver and verifier; undefined when it is unknown, expired, used or never opened. */
  async finishConnect(state: string): Promise<{ email: string; verifier: string } | undefined> {
    const parsed = parseState(state);
    if (!parsed) return undefined;
    const now = this.clock.now().getTime();
    return this.credentials.rotate(this.states, parsed.email, async (raw) => {
      const all = readStates(raw);
      const found = all.find((s) => s.nonce === parsed.nonce && s.expiresAt > now && s.verifier !== undefined);
      if (!found) return { result: undefined };
      return { value: JSON.stringify(all.filter((s) => s !== found && s.expiresAt > now)), result: { email: parsed.email, verifier: found.verifier! } };
    });
  }

  /** The approver an open `state` was made for, without using it (the connect page); undefined when it is unknown, expired or used. */
  async peek(state: string): Promise<string | undefined> {
    const parsed = parseState(state);
    if (!parsed) return undefined;
    const now = this.clock.now().getTime();
    const open = readStates(await this.credentials.get(this.states, parsed.email)).some((s) => s.nonce === parsed.nonce && s.expiresAt > now);
    return open ? parsed.email : undefined;
  }

  /**
   * "E-mail me a code": the approver of an open `state` and a random binding stored beside it,
   * sent to Concur as a client parameter so that only codes requested for this link redeem here.
   * A second press keeps the binding, so any code sent for the link works. Undefined when the
   * state is unknown, expired or used.
   */
  async startOtp(state: string): Promise<OtpStep | undefined> {
    const parsed = parseState(state);
    if (!parsed) return undefined;
    const now = this.clock.now().getTime();
    return this.credentials.rotate(this.states, parsed.email, async (raw) => {
      const open = readStates(raw).filter((s) => s.expiresAt > now);
      const found = open.find((s) => s.nonce === parsed.nonce);
      if (!found) return { result: undefined };
      const binding = found.otpBinding ?? randomBytes(24).toString('base64url');
      return {
        value: JSON.stringify(open.map((s) => (s === found ? { ...s, otpBinding: binding } : s))),
        result: { email: parsed.email, binding },
      };
    });
  }

  /**
   * One typed code for `state`: counts the try and answers the link's approver and binding;
   * undefined when the state is unknown, expired, used, never e-mailed or out of tries
   * ({@link MAX_OTP_TRIES}). The state stays open until {@link consume}, so a mistyped code can be retried.
   */
  async tryOtp(state: string): Promise<(OtpStep & { triesLeft: number }) | undefined> {
    const parsed = parseState(state);
    if (!parsed) return undefined;
    const now = this.clock.now().getTime();
    return this.credentials.rotate(this.states, parsed.email, async (raw) => {
      const open = readStates(raw).filter((s) => s.expiresAt > now);
      const found = open.find((s) => s.nonce === parsed.nonce && s.otpBinding !== undefined && (s.otpTries ?? 0) < MAX_OTP_TRIES);
      if (!found) return { result: undefined };
      const tries = (found.otpTries ?? 0) + 1;
      return {
        value: JSON.stringify(open.map((s) => (s === found ? { ...s, otpTries: tries } : s))),
        result: { email: parsed.email, binding: found.otpBinding!, triesLeft: MAX_OTP_TRIES - tries },
      };
    });
  }

  /** Uses `state` up: its one-time code connected the approver, or proved to be someone else's. */
  async consume(state: string): Promise<void> {
    const parsed = parseState(state);
    if (!parsed) return;
    const now = this.clock.now().getTime();
    await this.credentials.rotate(this.states, parsed.email, async (raw) => ({
      value: JSON.stringify(readStates(raw).filter((s) => s.nonce !== parsed.nonce && s.expiresAt > now)),
      result: undefined,
    }));
  }

  /** Stores `email`'s consent (replacing an older one) and lists them as connected. */
  async save(email: string, consent: StoredConsent): Promise<void> {
    registerSecret(consent.refreshToken);
    await this.credentials.set(this.tokens, email, JSON.stringify(consent));
    await this.index((entries) => [...entries.filter((e) => e.email !== email), { email, userId: consent.userId, connectedAt: consent.connectedAt }]);
  }

  /** Forgets `email`'s token (a revoke, or a token Concur refused); true when there was one. */
  async forget(email: string): Promise<boolean> {
    const had = await this.credentials.rotate(this.tokens, email, async (raw) => ({ value: raw ? '' : undefined, result: Boolean(raw) }));
    await this.index((entries) => entries.filter((e) => e.email !== email));
    return had;
  }

  /** Connected approvers, oldest connection first. */
  async list(): Promise<ConsentEntry[]> {
    return readIndex(await this.credentials.get(this.tokens, INDEX));
  }

  /**
   * A valid access token of `email`'s: the stored one if it is still good (and not `refused`, one the
   * API just answered 401 to), else a refresh under the lock, storing the successor. Undefined when
   * the approver has not connected or Concur refused the refresh token as revoked or expired; that
   * token is forgotten then.
   */
  async access(email: string, refused?: string): Promise<UserAccess | undefined> {
    const seen = readConsent(await this.credentials.get(this.tokens, email));
    if (!seen) return undefined;
    if (this.valid(seen, refused)) return this.accessOf(seen, seen.accessToken!);
    let dead = false;
    const result = await this.credentials.rotate(this.tokens, email, async (raw) => {
      const stored = readConsent(raw);
      if (!stored) return { result: undefined };
      if (this.valid(stored, refused)) return { result: this.accessOf(stored, stored.accessToken!) };
      try {
        const token = await this.client.refresh(this.base(stored), stored.refreshToken);
        const next: StoredConsent = {
          ...stored,
          refreshToken: token.refreshToken ?? stored.refreshToken,
          geolocation: token.geolocation,
          accessToken: token.accessToken,
          accessExpiresAt: this.clock.now().getTime() + token.expiresInSeconds * 1000,
        };
        return { value: JSON.stringify(next), result: this.accessOf(next, token.accessToken) };
      } catch (error) {
        if (!(error instanceof ConcurAuthError && error.code === DEAD_REFRESH_TOKEN)) throw error;
        dead = true;
        return { value: '', result: undefined };
      }
    });
    if (dead) {
      this.logger.warn({ approver: email }, "Concur refused the approver's refresh token (revoked or expired); they must connect again");
      await this.index((entries) => entries.filter((e) => e.email !== email));
    }
    return result;
  }

  private valid(stored: StoredConsent, refused: string | undefined): boolean {
    return (
      stored.accessToken !== undefined &&
      stored.accessToken !== refused &&
      stored.accessExpiresAt !== undefined &&
      stored.accessExpiresAt - EXPIRY_SKEW_MS > this.clock.now().getTime()
    );
  }

  private base(stored: StoredConsent): string {
    return this.options.baseUrl ?? trustedGeolocation(stored.geolocation, this.options.configuredOrigins, 'stored geolocation');
  }

  private accessOf(stored: StoredConsent, token: string): UserAccess {
    registerSecret(token);
    return { token, userId: stored.userId, base: this.base(stored) };
  }

  private async index(change: (entries: ConsentEntry[]) => ConsentEntry[]): Promise<void> {
    await this.credentials.rotate(this.tokens, INDEX, async (raw) => ({ value: JSON.stringify(change(readIndex(raw))), result: undefined }));
  }
}

function parseState(state: string): { email: string; nonce: string } | undefined {
  const match = /^([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{32})$/.exec(state);
  if (!match) return undefined;
  const email = Buffer.from(match[1]!, 'base64url').toString('utf8');
  return email.includes('@') && encode(email) === match[1] ? { email, nonce: match[2]! } : undefined;
}

function readStates(raw: string | undefined): PendingState[] {
  const parsed = parseJson(raw);
  return Array.isArray(parsed) ? (parsed as PendingState[]).filter((s) => typeof s?.nonce === 'string' && typeof s.expiresAt === 'number') : [];
}

function readConsent(raw: string | undefined): StoredConsent | undefined {
  const parsed = parseJson(raw) as StoredConsent | undefined;
  if (typeof parsed?.refreshToken !== 'string' || typeof parsed.userId !== 'string') return undefined;
  registerSecret(parsed.refreshToken);
  registerSecret(parsed.accessToken);
  return parsed;
}

function readIndex(raw: string | undefined): ConsentEntry[] {
  const parsed = parseJson(raw);
  return Array.isArray(parsed) ? (parsed as ConsentEntry[]).filter((e) => typeof e?.email === 'string') : [];
}

function parseJson(raw: string | undefined): unknown {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
