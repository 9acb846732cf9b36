import { LRUCache } from 'lru-cache';
import type { Approval, Approver, Clock, Logger, SourceState } from '../../core/index.js';
import type { ConcurClient } from './client/concur-client.js';
import { delegationActive, type ExpenseDelegate } from './mappers/delegate-mapper.js';
import { displayName, timeZoneOf, workEmail } from './mappers/identity-mapper.js';

/** How long an approver's delegate list is used before it is read again. */
const TTL_MS = 60 * 60_000;
/** After a failed read, the last known list is used this long before the next try. */
const RETRY_MS = 5 * 60_000;
/** Approvers whose delegates are read at once. */
const CONCURRENCY = 4;

/** One expense delegate with the identity the card goes to (Identity v4 by UUID). */
interface KnownDelegate extends ExpenseDelegate {
  readonly login?: string | undefined;
  readonly name?: string | undefined;
  readonly email?: string | undefined;
  readonly timeZone?: string | undefined;
  /** Epoch ms when Identity last confirmed login, name and e-mail. */
  readonly identityAt: number;
}

/** An approver's delegates as cached and persisted (`delegates:<login>`). */
interface Entry {
  /** The approver's Concur UUID (Identity v4 `userName eq`); undefined when Identity does not know the login. */
  readonly approverId?: string | undefined;
  readonly delegates: readonly KnownDelegate[];
  /** Epoch ms of the read. */
  readonly at: number;
}

/** What a fresh read says about one delegate of one approver (at click time). */
export type DelegateCheck =
  | { readonly ok: true; readonly approverId: string }
  | { readonly ok: false; readonly reason: 'not_delegate' | 'cannot_approve' | 'outside_window' | 'unknown_approver' };

/**
 * Approver login → their Concur expense delegates (Spend User v4.1 Delegate extension, company
 * token), for `delegates.notify`. The approver's UUID comes from Identity v4 (`userName eq`,
 * kept for good: UUIDs do not change), each delegate's login, name and e-mail from Identity v4 by
 * UUID. Lists are cached in memory and in SourceState for {@link TTL_MS}; a failed read keeps the
 * last known list (none for an approver never read) and is logged once until reads work again.
 * Reads for many approvers (a first sync) run {@link CONCURRENCY} at a time.
 */
export class ConcurDelegateDirectory {
  private readonly cache = new LRUCache<string, Entry>({ max: 50_000 });
  /** Logins whose last read failed, with when to try again. */
  private readonly retryAt = new Map<string, number>();
  private failing = false;

  constructor(
    private readonly client: ConcurClient,
    private readonly state: SourceState,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly identityTtlMs: number,
  ) {}

  /**
   * `approvals` with each pending one's approvers followed by the approvers' delegates who can
   * approve and receive approval e-mails now, each `onBehalfOf` their approver, in a stable order
   * (by login) so an unchanged list never looks like a reassignment. Delegate entries already on
   * an approval (a queued copy) are replaced by the current ones.
   */
  async expand(approvals: readonly Approval[], signal: AbortSignal): Promise<Approval[]> {
    const logins = new Set<string>();
    for (const a of approvals) if (a.status === 'pending') for (const p of a.approvers) if (!p.onBehalfOf) logins.add(p.sourceUserId.toLowerCase());
    const entries = new Map<string, Entry | undefined>();
    const queue = [...logins];
    const worker = async () => {
      for (let login = queue.shift(); login !== undefined; login = queue.shift()) entries.set(login, await this.entry(login, signal));
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
    const now = this.clock.now().getTime();
    return approvals.map((approval) => {
      if (approval.status !== 'pending') return approval;
      const approvers = approval.approvers.filter((p) => !p.onBehalfOf);
      const taken = new Set(approvers.map((p) => p.sourceUserId.toLowerCase()));
      const added: Approver[] = [];
      for (const approver of approvers) {
        for (const d of entries.get(approver.sourceUserId.toLowerCase())?.delegates ?? []) {
          if (!d.canApprove || !d.canReceiveApprovalEmail || !delegationActive(d, now)) continue;
          const id = d.login ?? d.userId;
          if (taken.has(id.toLowerCase())) continue;
          taken.add(id.toLowerCase());
          added.push({
            sourceUserId: id,
            name: d.name,
            email: d.email,
            ...(d.timeZone ? { timeZone: d.timeZone } : {}),
            onBehalfOf: { sourceUserId: approver.sourceUserId, ...(approver.name ? { name: approver.name } : {}) },
          });
        }
      }
      if (added.length === 0 && approvers.length === approval.approvers.length) return approval;
      added.sort((x, y) => (x.sourceUserId < y.sourceUserId ? -1 : x.sourceUserId > y.sourceUserId ? 1 : 0));
      return { ...approval, approvers: [...approvers, ...added] };
    });
  }

  /**
   * A Concur spend-profile event said this user's profile changed (their delegates among it): the
   * list cached for them is read again at its next use. Resolves whether this process held one.
   */
  async forget(userId: string): Promise<boolean> {
    let found = false;
    for (const [login, entry] of this.cache.entries()) {
      if (entry.approverId?.toLowerCase() !== userId.toLowerCase()) continue;
      const stale: Entry = { ...entry, at: 0 };
      this.cache.set(login, stale);
      await this.state.set(`delegates:${login}`, JSON.stringify(stale));
      found = true;
    }
    return found;
  }

  /**
   * At click time: whether `delegateId` (a Concur UUID) may approve for `approverLogin` now, read
   * fresh from Concur (never the cache: a right removed an hour ago must not still work). Throws
   * when Concur cannot be read.
   */
  async check(approverLogin: string, delegateId: string, signal: AbortSignal): Promise<DelegateCheck> {
    const login = approverLogin.toLowerCase();
    const known = this.cache.get(login) ?? (await this.persisted(login));
    const approverId = known?.approverId ?? (await this.uuidOf(login, signal));
    if (!approverId) return { ok: false, reason: 'unknown_approver' };
    const delegates = (await this.client.getExpenseDelegates(approverId, signal)) ?? [];
    // Concur's list moved on since the cached read: mark that stale, so the redraw after this click reads it anew.
    if (known && rights(known.delegates) !== rights(delegates)) {
      const stale: Entry = { ...known, at: 0 };
      this.cache.set(login, stale);
      await this.state.set(`delegates:${login}`, JSON.stringify(stale));
    }
    const found = delegates.find((d) => d.userId.toLowerCase() === delegateId.toLowerCase());
    if (!found) return { ok: false, reason: 'not_delegate' };
    if (!found.canApprove) return { ok: false, reason: 'cannot_approve' };
    if (!delegationActive(found, this.clock.now().getTime())) return { ok: false, reason: 'outside_window' };
    return { ok: true, approverId };
  }

  /** The approver's cached entry, read again once older than the TTL; the last known one while reads fail. */
  private async entry(login: string, signal: AbortSignal): Promise<Entry | undefined> {
    const now = this.clock.now().getTime();
    const known = this.cache.get(login) ?? (await this.persisted(login));
    if (known && now - known.at < TTL_MS) return known;
    if ((this.retryAt.get(login) ?? 0) > now) return known;
    try {
      const fresh = await this.read(login, known, signal);
      this.retryAt.delete(login);
      if (this.failing && this.retryAt.size === 0) {
        this.failing = false;
        this.logger.info({}, 'Concur delegate lists can be read again');
      }
      this.cache.set(login, fresh);
      await this.state.set(`delegates:${login}`, JSON.stringify(fresh));
      return fresh;
    } catch (error) {
      if (signal.aborted) throw error;
      this.retryAt.set(login, now + RETRY_MS);
      if (!this.failing) {
        this.failing = true;
        this.logger.warn(
          { approver: login, err: (error as Error).message },
          "could not read a Concur approver's expense delegates; using the last known lists until reads work again",
        );
      }
      return known;
    }
  }

  private async read(login: string, known: Entry | undefined, signal: AbortSignal): Promise<Entry> {
    const now = this.clock.now().getTime();
    const approverId = known?.approverId ?? (await this.uuidOf(login, signal));
    if (!approverId) return { delegates: [], at: now };
    const delegates = (await this.client.getExpenseDelegates(approverId, signal)) ?? [];
    const out: KnownDelegate[] = [];
    for (const d of delegates) {
      const was = known?.delegates.find((k) => k.userId === d.userId);
      if (was && now - was.identityAt < this.identityTtlMs) {
        out.push({ ...was, ...d });
        continue;
      }
      const user = await this.client.getUser(d.userId, signal);
      out.push({
        ...d,
        login: user?.userName,
        name: user && displayName(user),
        email: user && workEmail(user),
        timeZone: user && timeZoneOf(user),
        identityAt: now,
      });
    }
    return { approverId, delegates: out, at: now };
  }

  private async uuidOf(login: string, signal: AbortSignal): Promise<string | undefined> {
    const page = await this.client.listUsers({ filter: `userName eq "${login.replaceAll('"', '\\"')}"`, count: 1 }, signal);
    return page.users.find((u) => u.userName?.toLowerCase() === login)?.id;
  }

  private async persisted(login: string): Promise<Entry | undefined> {
    const raw = await this.state.get(`delegates:${login}`);
    if (!raw) return undefined;
    try {
      const entry = JSON.parse(raw) as Entry;
      if (!Array.isArray(entry.delegates) || typeof entry.at !== 'number') return undefined;
      this.cache.set(login, entry);
      return entry;
    } catch {
      return undefined;
    }
  }
}

/** A delegate list's rights, comparable: who, and what they may do when. */
function rights(delegates: readonly ExpenseDelegate[]): string {
  return JSON.stringify(
    delegates
      .map((d) => [d.userId.toLowerCase(), d.canApprove, d.canReceiveApprovalEmail, d.from ?? null, d.to ?? null])
      .sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)),
  );
}
