import type { Approval } from '../model/approval.js';
import { parseApprovalKey } from '../model/approval.js';
import type { Completion, QueuedApproval } from '../model/queue-types.js';
import type { SourceRunner } from '../pipeline/source-runner.js';
import { EVENTS_STATUS_STATE } from '../pipeline/events-health.js';
import { DEPRECATIONS_STATE_KEY, parseDeprecations, type SourceDeprecation } from '../model/source-deprecation.js';
import type { Host } from './host.js';

export interface AuditDifference {
  readonly source: string;
  readonly key: string;
  /** missing: pending in the source, not queued. stale: queued, no longer pending. changed: queued with other data. */
  readonly kind: 'missing' | 'stale' | 'changed';
  readonly detail: string;
}

export interface UnreachableApprover {
  readonly source: string;
  readonly approver: string;
  /** `channel` is set when a channel refused the person; unset when the person has no e-mail yet. */
  readonly channel?: string | undefined;
  readonly reason: string;
  /** Queued approvals waiting on this person that they have not been told about. */
  readonly waiting: number;
}

/** A source's push events as `diagnostics` shows them. */
export interface SourceEvents {
  readonly source: string;
  readonly mode: 'events' | 'polling' | 'unknown';
  readonly reason: string;
  /** When a runner reported this mode. */
  readonly since: string | null;
  readonly lastEventAt: string | null;
  readonly pendingTriggers: number;
  readonly oldestPendingAt: string | null;
}

/** A deprecated endpoint a source still calls, as `diagnostics` shows it. */
export interface DeprecatedEndpoint extends SourceDeprecation {
  readonly source: string;
  /** `sunset` read as a date (ISO), when it is one. */
  readonly sunsetAt: string | null;
}

/**
 * The operator's tools (`queue remove`, `queue resync`, `audit --fix`). Every change goes through
 * its source's runner ({@link SourceRunner.apply}: approvers resolved, then planned and committed
 * like detection's) with an audit entry, so it lands in the same transaction as its log line.
 */
export class Operations {
  constructor(private readonly host: Host) {}

  /**
   * The runner of the source a key belongs to. Repairs commit through it, so a repaired approval's
   * approvers are resolved to e-mails exactly as detection resolves them.
   */
  private runner(key: string): SourceRunner {
    const { source } = parseApprovalKey(key);
    return this.runnerOf(source);
  }

  private runnerOf(source: string): SourceRunner {
    const found = this.host.runners.find((r) => r.source.id === source);
    if (!found) throw new Error(`no source "${source}" in this deployment (known: ${[...this.host.sources.keys()].join(', ') || 'none'})`);
    return found;
  }

  async remove(key: string, actor: string): Promise<QueuedApproval> {
    const row = await this.host.queue.get(key);
    if (!row) throw new Error(`${key} is not queued`);
    const batch = { approvals: [], completions: [{ key, status: 'no_longer_required' as const }], audit: [{ actor, action: 'queue.remove', key }] };
    // A row whose source left the deployment can still be removed by hand.
    if (this.host.runners.some((r) => r.source.id === row.source)) await this.runnerOf(row.source).apply(batch);
    else await this.host.queue.commit({ ...batch, source: row.source }, this.host.commitContext());
    return row;
  }

  /** Re-reads one approval from its source: updated if still pending, removed otherwise. */
  async resync(key: string, actor: string): Promise<{ status: string; queued: boolean }> {
    const { externalId } = parseApprovalKey(key);
    const runner = this.runner(key);
    const signal = AbortSignal.timeout(60_000);
    const queued = await this.host.queue.get(key);
    const [result] = await runner.source.verify([{ externalId, sourceData: queued?.sourceData }], { signal, now: this.host.clock.now() });
    const approvals: Approval[] = result?.found ? [result.approval] : [];
    const completions: Completion[] = result?.found ? [] : [{ key, status: 'no_longer_required' }];
    const status = result?.found ? result.approval.status : 'not found';
    await runner.apply({ approvals, completions, audit: [{ actor, action: 'queue.resync', key, detail: `source says ${status}` }] }, signal);
    return { status, queued: (await this.host.queue.get(key)) !== undefined };
  }

  /**
   * Approvers who cannot be reached: parked (no e-mail: identity unknown or failing) or
   * dead-lettered by a channel (e.g. Slack `users_not_found`), with how many queued approvals wait.
   */
  async unreachable(): Promise<UnreachableApprover[]> {
    const groups = new Map<string, { row: Omit<UnreachableApprover, 'waiting'>; keys: Set<string> }>();
    const add = (id: string, row: Omit<UnreachableApprover, 'waiting'>, key: string) => {
      const g = groups.get(id) ?? { row, keys: new Set<string>() };
      g.keys.add(key);
      groups.set(id, g);
    };
    for (const e of await this.host.queue.listOutbox('parked', 100_000)) {
      add(
        `${e.source}|${e.approver.sourceUserId}`,
        { source: e.source, approver: e.approver.sourceUserId, reason: 'no e-mail: identity lookup failing or person unknown' },
        e.approvalKey,
      );
    }
    for (const e of await this.host.queue.listOutbox('dead', 100_000)) {
      const who = e.approver.email ?? e.approver.sourceUserId;
      add(`${e.source}|${who}|${e.channel}`, { source: e.source, approver: who, channel: e.channel, reason: e.lastError ?? 'delivery failed' }, e.approvalKey);
    }
    const out: UnreachableApprover[] = [];
    for (const { row, keys } of groups.values()) {
      let waiting = 0;
      for (const key of keys) if ((await this.host.queue.get(key))?.status === 'pending') waiting++;
      if (waiting > 0) out.push({ ...row, waiting });
    }
    return out.sort((a, b) => b.waiting - a.waiting || a.approver.localeCompare(b.approver));
  }

  /**
   * Endpoints each source system flagged as deprecated (recorded by the source plugin in its
   * `SourceState`, e.g. Concur's `x-api-warn` / `sunset` headers), earliest sunset first.
   */
  async deprecations(): Promise<DeprecatedEndpoint[]> {
    const out: DeprecatedEndpoint[] = [];
    // The deployment's source ids, not the composed sources: a read-only command composes none.
    const sources = new Set([...this.host.deployment.sources.map((s) => s.id), ...this.host.sources.keys()]);
    for (const source of sources) {
      // The namespace the host gives each source instance's SourceState.
      for (const d of parseDeprecations(await this.host.queue.getState(`source:${source}`, DEPRECATIONS_STATE_KEY))) {
        const at = d.sunset === null ? NaN : Date.parse(d.sunset);
        out.push({ source, ...d, sunsetAt: Number.isNaN(at) ? null : new Date(at).toISOString() });
      }
    }
    const order = (d: DeprecatedEndpoint) => d.sunsetAt ?? '9999';
    return out.sort((a, b) => order(a).localeCompare(order(b)) || a.source.localeCompare(b.source) || a.endpoint.localeCompare(b.endpoint));
  }

  /**
   * Per source with push events: the mode its runner last reported (events or polling, and why) and
   * the triggers stored and not yet refreshed. Read from the queue, so a read-only process sees it.
   */
  async events(): Promise<SourceEvents[]> {
    const out: SourceEvents[] = [];
    const sources = new Set([...this.host.deployment.sources.map((s) => s.id), ...this.host.sources.keys()]);
    for (const source of sources) {
      const raw = await this.host.queue.getState(EVENTS_STATUS_STATE, source);
      const pending = await this.host.queue.pendingTriggers(source);
      if (!raw && pending.count === 0) continue;
      const status = raw ? (JSON.parse(raw) as Partial<SourceEvents> & { at?: string }) : {};
      out.push({
        source,
        mode: status.mode ?? 'unknown',
        reason: status.reason ?? 'no runner has reported yet',
        since: status.at ?? null,
        lastEventAt: status.lastEventAt ?? null,
        pendingTriggers: pending.count,
        oldestPendingAt: pending.oldestReceivedAt ?? null,
      });
    }
    return out;
  }

  /** Compares the queue with each source; with `fix`, repairs every difference (logged as `audit.fix`). */
  async audit(options: { source?: string; fix: boolean; actor: string }): Promise<AuditDifference[]> {
    const differences: AuditDifference[] = [];
    for (const runner of this.host.runners) {
      const source = runner.source;
      if (options.source && source.id !== options.source) continue;
      const ctx = { signal: AbortSignal.timeout(30 * 60_000), now: this.host.clock.now() };
      const pending = new Map<string, Approval>();
      for await (const page of source.listPending(ctx)) for (const a of page) pending.set(a.key, a);
      const queuedKeys = await this.host.queue.keys(source.id);
      const queued = new Set(queuedKeys.map((k) => k.key));
      const found: AuditDifference[] = [];
      for (const [key, a] of pending) {
        if (!queued.has(key)) found.push({ source: source.id, key, kind: 'missing', detail: `pending in ${source.id} since ${a.sourceUpdatedAt}, not queued` });
        else {
          const row = await this.host.queue.get(key);
          const approversNow = a.approvers
            .map((p) => p.sourceUserId)
            .sort()
            .join(',');
          const approversQueued = row?.approvers
            .map((p) => p.sourceUserId)
            .sort()
            .join(',');
          if (row && (approversNow !== approversQueued || row.title !== a.title || row.amount?.value !== a.amount?.value)) {
            found.push({ source: source.id, key, kind: 'changed', detail: `queue differs from ${source.id} (approvers ${approversQueued} → ${approversNow})` });
          }
        }
      }
      const notSeen = queuedKeys.filter((k) => !pending.has(k.key));
      const refs = await Promise.all(notSeen.map(async (k) => ({ externalId: k.externalId, sourceData: (await this.host.queue.get(k.key))?.sourceData })));
      const verified = refs.length ? await source.verify(refs, ctx) : [];
      const byId = new Map(verified.map((r) => [r.found ? r.approval.externalId : r.externalId, r]));
      for (const k of notSeen) {
        const r = byId.get(k.externalId);
        if (r?.found && r.approval.status === 'pending') continue; // listed late: not a difference
        found.push({ source: source.id, key: k.key, kind: 'stale', detail: r?.found ? `${r.approval.status} in ${source.id}` : `not found in ${source.id}` });
      }
      differences.push(...found);
      if (options.fix && found.length) {
        const approvals: Approval[] = [];
        const completions: Completion[] = [];
        for (const d of found) {
          if (d.kind === 'stale') {
            const r = byId.get(parseApprovalKey(d.key).externalId);
            if (r?.found) approvals.push(r.approval);
            else completions.push({ key: d.key, status: 'no_longer_required' });
          } else approvals.push(pending.get(d.key)!);
        }
        await runner.apply(
          { approvals, completions, audit: found.map((d) => ({ actor: options.actor, action: 'audit.fix', key: d.key, detail: `${d.kind}: ${d.detail}` })) },
          ctx.signal,
        );
      }
    }
    return differences;
  }
}
