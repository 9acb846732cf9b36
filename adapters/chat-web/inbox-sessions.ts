import { ApprovalQueue, Clock, inject, injectable, type Lease } from '../../core/index.js';
import { newTokenId, normaliseEmail, signToken, verifyToken, type TokenClaims } from './signed-links.js';
import { WebInboxSettings } from './web-inbox-settings.js';

/** A signed-in browser: the claims of its session cookie. */
export type InboxSession = TokenClaims;

/** Why a sign-in link does not sign anyone in. */
export type LinkRefusal = 'malformed' | 'forged' | 'expired' | 'used' | 'revoked';

export type LinkCheck = ({ readonly ok: true } & TokenClaims) | { readonly ok: false; readonly reason: LinkRefusal; readonly email?: string };

export type Redemption =
  | { readonly ok: true; readonly session: InboxSession; readonly cookie: string }
  | { readonly ok: false; readonly reason: LinkRefusal; readonly email?: string };

/** What the store holds about one person (three keys, so a revoke never overwrites a sign-in's write). */
interface PersonState {
  readonly generation: number;
  /** Ids of links already redeemed, with their expiry (seconds): kept only until they would expire anyway. */
  readonly usedLinks: ReadonlyMap<string, number>;
  /** Ids of sessions signed out, with their expiry (seconds). */
  readonly endedSessions: ReadonlyMap<string, number>;
}

/** The lock around one person's read-modify-write is retried this often, this far apart, before the sign-in is refused as busy. */
const LOCK_ATTEMPTS = 40;
const LOCK_RETRY_MS = 25;

/** Another sign-in or sign-out of the same person held the lock for longer than a second: try again. */
export class InboxBusyError extends Error {
  constructor() {
    super('the web inbox is busy signing this person in or out; try again');
  }
}

/**
 * Sign-in links and sessions, with the state that makes a link single-use and a session
 * revocable kept in the queue's durable state (`getState`/`setState`, namespace
 * `web-inbox:<instance>`), so it holds across hosts sharing a PostgreSQL queue and across
 * restarts. Per person (key suffix `:<email>`):
 * - `generation`: a counter `inbox revoke` moves on; links and sessions carry the one they were
 *   made under and stop working when it moves;
 * - `used-links`: ids of redeemed links, each until its expiry, so a link signs in once;
 * - `ended-sessions`: ids of signed-out sessions, each until its expiry;
 * - `link-requested`: when the person last was sent a link they asked for (epoch ms).
 * A redemption and a sign-out read, change and write under a per-person lock: a lease on a
 * shared (PostgreSQL) queue, so two hosts redeeming one link at once sign in once, and an
 * in-process lock otherwise (an SQLite queue serves one host).
 */
@injectable()
export class InboxSessions {
  private readonly namespace: string;
  private readonly local = new Map<string, Promise<void>>();

  constructor(
    @inject(WebInboxSettings) private readonly settings: WebInboxSettings,
    @inject(ApprovalQueue) private readonly queue: ApprovalQueue,
    @inject(Clock) private readonly clock: Clock,
  ) {
    this.namespace = `web-inbox:${settings.instanceId}`;
  }

  /**
   * A sign-in link token for `email`, valid once for `linkTtlMinutes` from now (host clock).
   * @throws Error when `email` is not an e-mail address.
   */
  async issueLink(email: string): Promise<{ token: string; email: string; expiresAt: Date }> {
    const normalised = normaliseEmail(email);
    if (!normalised) throw new Error(`not an e-mail address: "${email}"`);
    // Tokens carry whole seconds; the expiry reported is the one the token holds.
    const expiresAt = new Date(Math.floor((this.clock.now().getTime() + this.settings.linkTtlMs) / 1000) * 1000);
    const generation = await this.generation(normalised);
    const token = signToken(this.settings.signingKey, 'link', { email: normalised, expiresAt, id: newTokenId(), generation });
    return { token, email: normalised, expiresAt };
  }

  /** What a link would do if redeemed now, without redeeming it (the page a GET of the link shows). */
  async checkLink(token: string): Promise<LinkCheck> {
    const link = verifyToken(this.settings.signingKey, 'link', token, this.clock.now());
    if (!link.ok) return link;
    const state = await this.state(link.email);
    const refused = this.linkRefusal(link, state);
    return refused ? { ok: false, reason: refused, email: link.email } : link;
  }

  /**
   * Redeems a link: marks it used and returns a new session and its cookie value, once. A link
   * redeemed before, expired, forged, or made before the person's sessions were revoked is refused.
   * @throws InboxBusyError when the person's lock stays taken (another sign-in of theirs in progress).
   */
  async redeem(token: string): Promise<Redemption> {
    const link = verifyToken(this.settings.signingKey, 'link', token, this.clock.now());
    if (!link.ok) return link;
    return this.locked(link.email, async (stillHeld) => {
      const state = await this.state(link.email);
      const refused = this.linkRefusal(link, state);
      if (refused) return { ok: false, reason: refused, email: link.email };
      const now = this.clock.now();
      stillHeld();
      await this.queue.setState(this.namespace, `used-links:${link.email}`, encodeIds(state.usedLinks, [link.id, seconds(link.expiresAt)], now));
      const expiresAt = new Date(Math.floor((now.getTime() + this.settings.sessionTtlMs) / 1000) * 1000);
      const session: InboxSession = { email: link.email, expiresAt, id: newTokenId(), generation: state.generation };
      return { ok: true, session, cookie: signToken(this.settings.signingKey, 'session', session) };
    });
  }

  /** The session a cookie value names, if it is ours, unexpired, not signed out and not revoked. */
  async session(cookie: string): Promise<InboxSession | undefined> {
    const verified = verifyToken(this.settings.signingKey, 'session', cookie, this.clock.now());
    if (!verified.ok) return undefined;
    const { ok: _ok, ...session } = verified;
    return this.isLive(session, await this.state(session.email)) ? session : undefined;
  }

  /** Of `sessions`, the ids of those still live (one read of the store per person). */
  async live(sessions: readonly InboxSession[]): Promise<Set<string>> {
    const live = new Set<string>();
    const byPerson = new Map<string, InboxSession[]>();
    for (const s of sessions) byPerson.set(s.email, [...(byPerson.get(s.email) ?? []), s]);
    await Promise.all(
      [...byPerson].map(async ([email, mine]) => {
        const state = await this.state(email);
        for (const s of mine) if (this.isLive(s, state)) live.add(s.id);
      }),
    );
    return live;
  }

  /** Ends one session, on every host: its cookie is refused from now on. Idempotent. */
  async signOut(session: InboxSession): Promise<void> {
    await this.locked(session.email, async (stillHeld) => {
      const state = await this.state(session.email);
      if (state.endedSessions.has(session.id)) return;
      stillHeld();
      await this.queue.setState(
        this.namespace,
        `ended-sessions:${session.email}`,
        encodeIds(state.endedSessions, [session.id, seconds(session.expiresAt)], this.clock.now()),
      );
    });
  }

  /**
   * Ends every session of `email`, and every link made for them so far, on every host: moves
   * their generation on. Returns the new generation.
   * @throws Error when `email` is not an e-mail address.
   */
  async revoke(email: string): Promise<number> {
    const normalised = normaliseEmail(email);
    if (!normalised) throw new Error(`not an e-mail address: "${email}"`);
    return this.locked(normalised, async () => {
      const next = (await this.generation(normalised)) + 1;
      await this.queue.setState(this.namespace, `generation:${normalised}`, String(next));
      return next;
    });
  }

  /**
   * Whether `email` may be sent a link it asked for now: true at most once per `intervalMs`, on
   * every host (the time of the last one is kept under the person's key `link-requested`).
   * @throws InboxBusyError when the person's lock stays taken.
   */
  async claimLinkRequest(email: string, intervalMs: number): Promise<boolean> {
    return this.locked(email, async (stillHeld) => {
      const now = this.clock.now().getTime();
      const last = Number(await this.queue.getState(this.namespace, `link-requested:${email}`));
      // Hosts' clocks differ a little: a last time slightly ahead of this host's throttles too.
      if (Number.isFinite(last) && Math.abs(now - last) < intervalMs) return false;
      stillHeld();
      await this.queue.setState(this.namespace, `link-requested:${email}`, String(now));
      return true;
    });
  }

  private linkRefusal(link: TokenClaims, state: PersonState): LinkRefusal | undefined {
    if (link.generation !== state.generation) return 'revoked';
    if (state.usedLinks.has(link.id)) return 'used';
    return undefined;
  }

  private isLive(session: InboxSession, state: PersonState): boolean {
    return session.generation === state.generation && !state.endedSessions.has(session.id) && this.clock.now() < session.expiresAt;
  }

  private async generation(email: string): Promise<number> {
    const raw = await this.queue.getState(this.namespace, `generation:${email}`);
    const n = raw === undefined ? 0 : Number(raw);
    return Number.isSafeInteger(n) && n >= 0 ? n : 0;
  }

  private async state(email: string): Promise<PersonState> {
    const [generation, used, ended] = await Promise.all([
      this.generation(email),
      this.queue.getState(this.namespace, `used-links:${email}`),
      this.queue.getState(this.namespace, `ended-sessions:${email}`),
    ]);
    return { generation, usedLinks: decodeIds(used), endedSessions: decodeIds(ended) };
  }

  /**
   * Runs `fn` holding `email`'s lock across hosts (a lease, when the queue has them), one such
   * section at a time in this process. One at a time, not one per person: a lease holds a pooled
   * connection while `fn` needs another, so a burst of sign-ins of different people could
   * otherwise take every connection as leases and wait for ever for one to query with.
   */
  private async locked<T>(email: string, fn: (stillHeld: () => void) => Promise<T>): Promise<T> {
    const name = `${this.namespace}:${email}`;
    const before = this.local.get(this.namespace) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = before.then(() => mine);
    this.local.set(this.namespace, tail);
    try {
      await before;
      const lease = await this.lease(name);
      try {
        // A lease whose connection dropped is no longer exclusive: write nothing under it.
        return await fn(() => {
          if (lease && !lease.held()) throw new Error('the web inbox lost its lock on the shared queue; try again');
        });
      } finally {
        await lease?.release();
      }
    } finally {
      done();
      if (this.local.get(this.namespace) === tail) this.local.delete(this.namespace);
    }
  }

  private async lease(name: string): Promise<Lease | undefined> {
    if (!this.queue.acquireLease) return undefined;
    for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
      const lease = await this.queue.acquireLease(name);
      if (lease) return lease;
      await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
    }
    throw new InboxBusyError();
  }
}

function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/** `[[id, expirySeconds], …]`, as {@link encodeIds} wrote it. Anything else fails closed: no link or session is taken on a state we cannot read. */
function decodeIds(raw: string | undefined): Map<string, number> {
  const ids = new Map<string, number>();
  if (raw === undefined) return ids;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) throw new Error('web inbox session state is unreadable');
  for (const e of parsed) {
    if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number') throw new Error('web inbox session state is unreadable');
    ids.set(e[0], e[1]);
  }
  return ids;
}

/** The ids plus `added`, less those expired by `now`: the list stays as short as what is still valid. */
function encodeIds(ids: ReadonlyMap<string, number>, added: [string, number], now: Date): string {
  const nowSeconds = seconds(now);
  return JSON.stringify([...ids, added].filter(([, expiry]) => expiry > nowSeconds));
}
