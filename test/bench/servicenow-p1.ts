import { serviceNowHarness, type ServiceNowHarness } from '../support/servicenow-harness.js';
import { progress } from './bench-util.js';

const LIST = 'GET /api/now/table/sysapproval_approver';
const ITEMS = 'GET /api/now/table/sc_req_item';
const TOKEN = 'POST /oauth_token.do';
/** The plugin's defaults (config-schema.ts): records per list page, and how far before the cursor each poll reads again. */
const PAGE_SIZE = 100;
const OVERLAP_SECONDS = 60;
/** The states a poll after the first sync reads: pending, and those it leaves for (approval-mapper.ts). */
const POLLED = new Set(['requested', 'approved', 'rejected', 'cancelled', 'not_required', 'duplicate']);

const tableApi = (calls: Record<string, number>): number =>
  Object.entries(calls)
    .filter(([endpoint]) => endpoint.includes('/api/now/table/'))
    .reduce((sum, [, n]) => sum + n, 0);

/** `YYYY-MM-DD HH:mm:ss` (UTC) `seconds` earlier. */
const earlier = (glide: string, seconds: number): string =>
  new Date(Date.parse(`${glide.replace(' ', 'T')}Z`) - seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');

/**
 * ServiceNow P1: Table API calls per poll cycle, counted by the sandbox, against what the source
 * should make:
 * - list calls: max(1, ceil((k + w) / pageSize)), where w is what the overlap window reads again
 *   (records updated from `overlapSeconds` before the cursor's second on; the cursor is the last
 *   record read, so it stays on the last change until something newer comes);
 * - approved-record reads: one `sys_idIN…` call per list page that holds new approval versions
 *   (each version is read once, cached; a page holds at most 100, the chunk of a read): the re-read
 *   window comes first, so that is ceil((w + n) / pageSize) - floor(w / pageSize) for n new ones;
 *   none for a decided approval (its queued card is reused) nor a re-read one;
 * - identity reads: none once every approver is known (24 h).
 * `pending` approvals are seeded ten per hour (so the overlap window holds ten), then the first
 * sync runs, then k = 1, 10, 100, 1000 new requests and k decided ones, a cycle each, 10 minutes apart.
 */
export async function snowP1Calls(pending = 2000, ks: readonly number[] = [1, 10, 100, 1000]): Promise<Record<string, unknown>> {
  progress(`ServiceNow P1: seeding ${pending} requested approvals`);
  // Sweeps (ceil(pending/pageSize) list calls, every 15 minutes by default) run apart from the poll and are left out.
  const h: ServiceNowHarness = await serviceNowHarness({ sandbox: { users: 40, approvers: 20 }, sweepIntervalSeconds: 86_400 });
  const { admin } = h.sandbox;
  try {
    const seeded: string[] = [];
    for (let i = 0; i < pending; i += 10) {
      h.advance(3600);
      seeded.push(...admin.createApprovals({ count: Math.min(10, pending - i) }).approvals);
    }
    let lastChange = admin.now();
    let before = admin.calls();
    /** One cycle; the calls it made, by endpoint. */
    const cycle = async (): Promise<{ calls: Record<string, number>; unchanged: number }> => {
      before = admin.calls();
      const report = await h.cycle();
      const after = admin.calls();
      const calls: Record<string, number> = {};
      for (const [endpoint, n] of Object.entries(after)) if (n - (before[endpoint] ?? 0) > 0) calls[endpoint] = n - (before[endpoint] ?? 0);
      return { calls, unchanged: report.cycles[0]?.committed.unchanged ?? 0 };
    };
    const approvers = new Set(admin.approvals('requested').map((r) => r.approver)).size;
    const first = await cycle();
    const firstTable = tableApi(first.calls);
    // Approvers are resolved in bulk (identity.bulkThreshold 5 or more unknown at once), 100 a listing.
    const firstExpected = 2 * Math.ceil(pending / PAGE_SIZE) + Math.ceil(approvers / 100);
    const rows: Record<string, unknown>[] = [];
    const measure = async (label: string, changedNew: number, changedDecided: number): Promise<void> => {
      // What the overlap window holds besides this round's changes: the records of the last change's second and the minute before.
      const since = earlier(lastChange, OVERLAP_SECONDS);
      const window = admin.approvals().filter((r) => POLLED.has(r.state ?? '') && r.sys_updated_on! >= since && r.sys_updated_on! <= lastChange).length;
      const k = changedNew + changedDecided;
      const { calls, unchanged } = await cycle();
      const list = calls[LIST] ?? 0;
      const items = calls[ITEMS] ?? 0;
      const table = tableApi(calls);
      const reads = changedNew === 0 ? 0 : Math.ceil((window + changedNew) / PAGE_SIZE) - Math.floor(window / PAGE_SIZE);
      const expected = Math.max(1, Math.ceil((k + window) / PAGE_SIZE)) + reads;
      rows.push({
        case: label,
        tableApiCalls: table,
        list,
        itemReads: items,
        other: table - list - items,
        tokenCalls: calls[TOKEN] ?? 0,
        overlapReread: window,
        expected,
        formula: `max(1,ceil((${k}+${window})/${PAGE_SIZE}))${changedNew ? ` + ceil((${window}+${changedNew})/${PAGE_SIZE})-floor(${window}/${PAGE_SIZE})` : ''}`,
        ratio: Number((table / expected).toFixed(2)),
        minimumWithoutOverlap: Math.max(1, Math.ceil(k / PAGE_SIZE)) + Math.ceil(changedNew / PAGE_SIZE),
        unchangedInReport: unchanged,
      });
    };
    h.advance(600);
    await measure('quiet cycle', 0, 0);
    // Oldest first: none of them is in the overlap window when decided.
    const decidable = [...seeded];
    for (const k of ks) {
      h.advance(600);
      decidable.push(...admin.createApprovals({ count: k }).approvals);
      await measure(`${k} new`, k, 0);
      lastChange = admin.now();
      h.advance(600);
      const decided = decidable.splice(0, k);
      if (decided.length < k) throw new Error(`ServiceNow P1: only ${decided.length} approvals left to decide, ${k} wanted; seed more`);
      for (const id of decided) admin.approve(id, 'bench');
      await measure(`${k} decided`, 0, k);
      lastChange = admin.now();
    }
    h.advance(600);
    await measure(`quiet cycle after ${ks.at(-1)} decided in one second`, 0, 0);
    return {
      pageSize: PAGE_SIZE,
      overlapSeconds: OVERLAP_SECONDS,
      pending,
      firstSync: {
        calls: first.calls,
        tableApiCalls: firstTable,
        expected: firstExpected,
        formula: `ceil(${pending}/${PAGE_SIZE}) list + as many sys_idIN reads + ceil(${approvers}/100) approver listings`,
        ratio: Number((firstTable / firstExpected).toFixed(2)),
      },
      rows,
      atExpected: rows.every((r) => r.ratio === 1) && firstTable === firstExpected,
    };
  } finally {
    await h.close();
  }
}
