import { LRUCache } from 'lru-cache';
import type { Approver, IdentityDirectory, Logger, Resolution, SourceState } from '../../core/index.js';
import type { ConcurClient } from './client/concur-client.js';
import type { ConcurSourceConfig } from './concur-config.js';
import { displayName, timeZoneOf, workEmail, type IdentityUser } from './mappers/identity-mapper.js';

interface Mapping {
  email: string;
  name?: string | undefined;
  /** IANA zone from Identity's `timezone`; absent in mappings persisted before it was kept. */
  timeZone?: string | undefined;
  /** Epoch ms when Identity last confirmed it. */
  at: number;
  /** The user's Concur UUID, what profile events name; absent in mappings persisted before it was kept. */
  id?: string | undefined;
}

const PAGE = 100;
/** A company listing stops here; past it, unknown approvers are looked up one by one. */
const MAX_LISTING_PAGES = 2_000;

/**
 * Concur login id (`ApproverLoginID`) → work e-mail, through Identity v4 (v4.identity.md:
 * company tokens only, `filter=userName eq "…"`, `count` ≤ 100). Mappings are cached with a TTL
 * and persisted, so a restart or an identity outage (the product brief: "unstable & time out")
 * falls back to the last known mapping. Many unknown approvers at once (a first sync) are loaded
 * from the company listing, 100 a page, instead of one call each.
 */
export class ConcurIdentityDirectory implements IdentityDirectory {
  private readonly cache: LRUCache<string, Mapping>;
  /** Concur UUID → lower-cased login, for the mappings this process has seen: what an identity event needs. */
  private readonly logins = new LRUCache<string, string>({ max: 100_000 });

  constructor(
    readonly source: string,
    private readonly config: ConcurSourceConfig,
    private readonly client: ConcurClient,
    private readonly state: SourceState,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.cache = new LRUCache<string, Mapping>({ max: 50_000, ttl: config.identity.ttlHours * 3_600_000 });
  }

  async resolve(approvers: readonly Approver[], signal: AbortSignal): Promise<Map<string, Resolution>> {
    const result = new Map<string, Resolution>();
    const known = new Map<string, Mapping>();
    const unknown: Approver[] = [];
    const ttlMs = this.config.identity.ttlHours * 3_600_000;
    for (const a of approvers) {
      const login = a.sourceUserId.toLowerCase();
      const cached = this.cache.get(login) ?? (await this.persisted(login));
      if (cached) known.set(login, cached);
      if (cached && this.now() - cached.at < ttlMs) result.set(a.sourceUserId, resolved(a, cached));
      else unknown.push(a);
    }
    if (unknown.length === 0) return result;
    let found: Map<string, IdentityUser>;
    // One-by-one lookups that fail leave the others standing: what was found is kept (and
    // persisted), so a flaky identity API costs the failed approvers a retry, not the whole round.
    const failed = new Map<string, Error>();
    try {
      found = unknown.length >= this.config.identity.bulkThreshold ? await this.listing(signal) : await this.lookup(unknown, signal, failed);
    } catch (error) {
      this.logger.warn({ approvers: unknown.length, err: (error as Error).message }, 'Concur identity lookup failed; using last known mappings');
      for (const a of unknown) {
        const last = known.get(a.sourceUserId.toLowerCase());
        result.set(a.sourceUserId, last ? resolved(a, last) : { status: 'failed', error: (error as Error).message });
      }
      return result;
    }
    if (failed.size > 0) {
      const [first] = failed.values();
      this.logger.warn({ approvers: failed.size, err: first!.message }, 'Concur identity lookup failed; using last known mappings');
    }
    for (const a of unknown) {
      const error = failed.get(a.sourceUserId.toLowerCase());
      if (error) {
        const last = known.get(a.sourceUserId.toLowerCase());
        result.set(a.sourceUserId, last ? resolved(a, last) : { status: 'failed', error: error.message });
        continue;
      }
      const user = found.get(a.sourceUserId.toLowerCase());
      const email = user && workEmail(user);
      if (!user || !email) {
        result.set(a.sourceUserId, { status: 'unknown' });
        continue;
      }
      const mapping: Mapping = { email, name: displayName(user), timeZone: timeZoneOf(user), at: this.now(), id: user.id };
      await this.remember(a.sourceUserId.toLowerCase(), mapping);
      result.set(a.sourceUserId, resolved(a, mapping));
    }
    return result;
  }

  private async persisted(login: string): Promise<Mapping | undefined> {
    const raw = await this.state.get(`identity:${login}`);
    if (!raw) return undefined;
    const mapping = JSON.parse(raw) as Mapping;
    this.cache.set(login, mapping);
    if (mapping.id) this.logins.set(mapping.id, login);
    return mapping;
  }

  private async remember(login: string, mapping: Mapping): Promise<void> {
    this.cache.set(login, mapping);
    if (mapping.id) this.logins.set(mapping.id, login);
    await this.state.set(`identity:${login}`, JSON.stringify(mapping));
  }

  /**
   * A Concur identity event said this user's profile changed: their mapping is due for a fresh
   * look-up at its next use (the last known one still stands in if that fails). Resolves whether
   * this process knew the user.
   */
  async forget(userId: string): Promise<boolean> {
    const login = this.logins.get(userId);
    if (!login) return false;
    const mapping = this.cache.get(login) ?? (await this.persisted(login));
    if (mapping) await this.remember(login, { ...mapping, at: 0 });
    this.logger.debug({ login }, 'Concur identity event: mapping refreshed at next use');
    return true;
  }

  /** One call per approver; a failed one is recorded in `failed` (by lower-cased login) and the rest go on. */
  private async lookup(approvers: readonly Approver[], signal: AbortSignal, failed: Map<string, Error>): Promise<Map<string, IdentityUser>> {
    const found = new Map<string, IdentityUser>();
    for (const a of approvers) {
      const login = a.sourceUserId.replaceAll('"', '\\"');
      try {
        const page = await this.client.listUsers({ filter: `userName eq "${login}"`, count: 1 }, signal);
        const user = page.users.find((u) => u.userName?.toLowerCase() === a.sourceUserId.toLowerCase());
        if (user) found.set(a.sourceUserId.toLowerCase(), user);
      } catch (error) {
        if (signal.aborted) throw error;
        failed.set(a.sourceUserId.toLowerCase(), error as Error);
      }
    }
    return found;
  }

  /** Every user of the company, 100 a page (startIndex is 1-based). */
  private async listing(signal: AbortSignal): Promise<Map<string, IdentityUser>> {
    const found = new Map<string, IdentityUser>();
    for (let page = 0, startIndex = 1; page < MAX_LISTING_PAGES; page++) {
      const result = await this.client.listUsers({ startIndex, count: PAGE }, signal);
      for (const user of result.users) {
        if (!user.userName) continue;
        found.set(user.userName.toLowerCase(), user);
        const email = workEmail(user);
        if (email) this.cache.set(user.userName.toLowerCase(), { email, name: displayName(user), timeZone: timeZoneOf(user), at: this.now(), id: user.id });
        this.logins.set(user.id, user.userName.toLowerCase());
      }
      startIndex += result.users.length;
      if (result.users.length === 0 || (result.totalResults !== undefined && startIndex > result.totalResults)) break;
    }
    this.logger.info({ users: found.size }, 'loaded the Concur company user listing');
    return found;
  }
}

function resolved(a: Approver, m: Mapping): Resolution {
  return {
    status: 'resolved',
    approver: { sourceUserId: a.sourceUserId, name: a.name ?? m.name, email: m.email, ...(m.timeZone ? { timeZone: m.timeZone } : {}) },
  };
}
