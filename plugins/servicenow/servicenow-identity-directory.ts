import { LRUCache } from 'lru-cache';
import type { Approver, IdentityDirectory, Logger, Resolution, SourceState } from '../../core/index.js';
import { actual, display, type ServiceNowTableClient, type TableRecord } from './client/table-client.js';
import type { ServiceNowSourceConfig } from './servicenow-config.js';

interface Mapping {
  email: string;
  name?: string | undefined;
  /** Epoch ms when ServiceNow last confirmed it. */
  at: number;
}

const USER_TABLE = 'sys_user';
const USER_FIELDS = ['sys_id', 'user_name', 'name', 'email'] as const;
/** sys_ids per `sys_idIN…` read. */
const IN_CHUNK = 100;
const SYS_ID = /^[0-9a-f]{32}$/;
/** Deliberately loose: the core checks e-mails again; this only keeps a blank or junk `email` from counting. */
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * Approver `sys_user` sys_id → work e-mail, from the `sys_user` table (docs/servicenow-api.md
 * section 5.3). Mappings are cached with a TTL and persisted in the source state, so a restart or
 * an outage falls back to the last known mapping. Many unknown approvers at once (a first sync)
 * are read with `sys_idIN…` listings, 100 a call, instead of one GET each.
 */
export class ServiceNowIdentityDirectory implements IdentityDirectory {
  private readonly cache: LRUCache<string, Mapping>;

  constructor(
    readonly source: string,
    private readonly config: ServiceNowSourceConfig,
    private readonly client: ServiceNowTableClient,
    private readonly state: SourceState,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.cache = new LRUCache<string, Mapping>({ max: 50_000 });
  }

  async resolve(approvers: readonly Approver[], signal: AbortSignal): Promise<Map<string, Resolution>> {
    const result = new Map<string, Resolution>();
    const known = new Map<string, Mapping>();
    const unknown: Approver[] = [];
    const ttlMs = this.config.identity.ttlHours * 3_600_000;
    for (const a of approvers) {
      const cached = this.cache.get(a.sourceUserId) ?? (await this.persisted(a.sourceUserId));
      if (cached) known.set(a.sourceUserId, cached);
      if (cached && this.now() - cached.at < ttlMs) result.set(a.sourceUserId, resolved(a, cached));
      else if (!SYS_ID.test(a.sourceUserId)) result.set(a.sourceUserId, { status: 'unknown' });
      else unknown.push(a);
    }
    if (unknown.length === 0) return result;
    let found: Map<string, TableRecord>;
    try {
      found = unknown.length >= this.config.identity.bulkThreshold ? await this.listing(unknown, signal) : await this.lookup(unknown, signal);
    } catch (error) {
      if (signal.aborted) throw error;
      this.logger.warn({ approvers: unknown.length, err: (error as Error).message }, 'ServiceNow user lookup failed; using last known mappings');
      for (const a of unknown) {
        const last = known.get(a.sourceUserId);
        result.set(a.sourceUserId, last ? resolved(a, last) : { status: 'failed', error: (error as Error).message });
      }
      return result;
    }
    for (const a of unknown) {
      const user = found.get(a.sourceUserId);
      const email = user ? actual(user.email).trim().toLowerCase() : '';
      if (!user || !EMAIL.test(email)) {
        result.set(a.sourceUserId, { status: 'unknown' });
        continue;
      }
      const mapping: Mapping = { email, name: display(user.name) || undefined, at: this.now() };
      this.cache.set(a.sourceUserId, mapping);
      await this.state.set(`identity:${a.sourceUserId}`, JSON.stringify(mapping));
      result.set(a.sourceUserId, resolved(a, mapping));
    }
    return result;
  }

  private async persisted(sysId: string): Promise<Mapping | undefined> {
    const raw = await this.state.get(`identity:${sysId}`);
    if (!raw) return undefined;
    const mapping = JSON.parse(raw) as Mapping;
    this.cache.set(sysId, mapping);
    return mapping;
  }

  /** One GET per user; a user ServiceNow does not return (404) is left out. */
  private async lookup(approvers: readonly Approver[], signal: AbortSignal): Promise<Map<string, TableRecord>> {
    const found = new Map<string, TableRecord>();
    for (const a of approvers) {
      const user = await this.client.get(USER_TABLE, a.sourceUserId, USER_FIELDS, signal);
      if (user) found.set(a.sourceUserId, user);
    }
    return found;
  }

  /** `sys_idIN…` listings, 100 users a call. */
  private async listing(approvers: readonly Approver[], signal: AbortSignal): Promise<Map<string, TableRecord>> {
    const found = new Map<string, TableRecord>();
    const ids = approvers.map((a) => a.sourceUserId);
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const chunk = ids.slice(i, i + IN_CHUNK);
      const { records } = await this.client.list(USER_TABLE, { query: `sys_idIN${chunk.join(',')}`, fields: USER_FIELDS, limit: chunk.length }, signal);
      for (const user of records) found.set(actual(user.sys_id), user);
    }
    this.logger.info({ asked: ids.length, found: found.size }, 'read ServiceNow approvers in bulk');
    return found;
  }
}

function resolved(a: Approver, m: Mapping): Resolution {
  return { status: 'resolved', approver: { sourceUserId: a.sourceUserId, name: a.name ?? m.name, email: m.email } };
}
