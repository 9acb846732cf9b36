import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { SqliteApprovalQueue, type SqliteTuning } from '../../adapters/queue-sqlite/sqlite-approval-queue.js';
import type { Approval, ApprovalQueue, CommitContext } from '../../core/index.js';
import { createCardRenderer } from '../../core/index.js';
import type { Host } from '../../core/host/host.js';
import { startConcurSandbox, type ConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { hostOnSandbox } from './bench-host.js';
import { progress, round, summarise, sandboxAccessToken } from './bench-util.js';

const DAY = 86_400_000;
export const BENCH_NOW = new Date('2026-03-02T09:00:00.000Z');
export const APPROVERS = 20_000;

const render = createCardRenderer(new Map());
const ctx = (): CommitContext => ({ now: BENCH_NOW, channels: [], notBefore: new Date(BENCH_NOW.getTime() - 30 * DAY), render });
const email = (i: number) => `approver${i}@bench.example`;

/** Adds approvals `from`..`to`-1 of source `acme`, spread over APPROVERS people and the last 20 days. */
export async function loadQueue(queue: ApprovalQueue, from: number, to: number): Promise<number> {
  const started = performance.now();
  const BATCH = 5_000;
  for (let i = from; i < to; i += BATCH) {
    const approvals: Approval[] = [];
    for (let j = i; j < Math.min(to, i + BATCH); j++) {
      const updated = new Date(BENCH_NOW.getTime() - ((j * 7919) % (20 * DAY))).toISOString();
      approvals.push({
        key: `acme:expense-report:B${j}`,
        source: 'acme',
        kind: 'expense-report',
        externalId: `B${j}`,
        title: `Bench report ${j}`,
        status: 'pending',
        requester: { name: `Employee ${j % 5000}` },
        approvers: [{ sourceUserId: `a${j % APPROVERS}`, email: email(j % APPROVERS) }],
        amount: { value: `${(j % 100000) / 100}`, currency: 'USD' },
        submittedAt: updated,
        sourceUpdatedAt: updated,
        links: { view: `https://www.concursolutions.com/goto/expense-report/B${j}` },
        sourceData: { ownerLoginId: `e${j % 5000}@bench.example` },
      });
    }
    await queue.commit({ source: 'acme', approvals }, ctx());
    if ((i / BATCH) % 40 === 0 && i > from) progress(`loaded ${i.toLocaleString()} approvals`);
  }
  return (performance.now() - started) / 1000;
}

/** "What's waiting on me" latency from the queue, in ms. */
export async function lookupLatency(queue: ApprovalQueue, queries = 5_000): Promise<{ p50: number; p99: number; rowsPerAnswer: number }> {
  const samples: number[] = [];
  let rows = 0;
  const notBefore = ctx().notBefore;
  for (let q = 0; q < 500; q++) await queue.listForApprover(email(q), { notBefore }); // warm caches
  for (let q = 0; q < queries; q++) {
    const who = email((q * 7907) % APPROVERS);
    const t = performance.now();
    const r = await queue.listForApprover(who, { notBefore });
    samples.push(performance.now() - t);
    rows += r.length;
  }
  const s = summarise(samples);
  return { p50: round(s.p50, 4), p99: round(s.p99, 4), rowsPerAnswer: round(rows / queries, 1) };
}

/** The same question asked of Concur live: v4 reportsToApprove on a sandbox with realistic latency. */
export async function liveLatency(calls = 20): Promise<{ p50: number; p99: number }> {
  const sandbox = await startConcurSandbox({ seed: 9, reports: 200, approvers: 10, employees: 50, faults: 'slow' });
  try {
    const accessToken = await sandboxAccessToken(sandbox);
    const approver = sandbox.admin.users().find((u) => u.isApprover)!;
    const samples: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t = performance.now();
      const r = await fetch(`${sandbox.baseUrl}/expensereports/v4/users/${approver.id}/context/MANAGER/reportsToApprove`, {
        headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
      });
      await r.arrayBuffer();
      samples.push(performance.now() - t);
    }
    const s = summarise(samples);
    return { p50: round(s.p50, 1), p99: round(s.p99, 1) };
  } finally {
    await sandbox.close();
  }
}

/**
 * P5: one quiet cycle (one Concur call, parked retries, sweep check, retention purge) with the
 * queue holding `queued` approvals. The sweep is scheduled separately and is O(pending) by nature.
 */
export async function quietCycleMs(host: Host, sandbox: ConcurSandbox, cycles = 20): Promise<{ p50: number; p99: number; concurCalls: number }> {
  const runner = host.runners[0]!;
  await host.queue.setState('core.sweep', 'acme', BENCH_NOW.toISOString());
  await runner.runOnce();
  sandbox.resetCalls();
  const samples: number[] = [];
  for (let i = 0; i < cycles; i++) {
    const t = performance.now();
    await runner.runOnce();
    samples.push(performance.now() - t);
  }
  const s = summarise(samples);
  return { p50: round(s.p50, 2), p99: round(s.p99, 2), concurCalls: sandbox.calls().total / cycles };
}

/**
 * After a bulk load PostgreSQL's autovacuum rewrites statistics and visibility maps for a while;
 * measuring during that measures the vacuum. Production runs vacuumed, so the bench settles first.
 */
async function settle(adapter: { adapter: string; config: Record<string, unknown> }): Promise<void> {
  if (adapter.adapter !== 'postgres') return;
  const client = new pg.Client({ connectionString: String(adapter.config.connectionString) });
  await client.connect();
  try {
    await client.query(`SET search_path TO ${String(adapter.config.schema)}`);
    await client.query('VACUUM ANALYZE');
  } finally {
    await client.end();
  }
}

type Latency = Awaited<ReturnType<typeof lookupLatency>>;

/**
 * Runs `measure` with a CPU-bound process beside it (a busy loop, as a compiler or another service
 * on the same machine), so P3 is also measured the way a busy host sees it: on a 2-core machine the
 * measurement gets at most the other core, and is preempted now and then.
 */
export async function besideBusyProcess<T>(measure: () => Promise<T>): Promise<T> {
  const busy = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  await once(busy, 'spawn');
  const exited = once(busy, 'exit');
  await sleep(500); // on a core and spinning before the first sample
  try {
    return await measure();
  } finally {
    busy.kill('SIGKILL');
    await exited;
  }
}

/**
 * P3 on the machine as it is and beside a CPU-bound process. Each carries the 1-minute load average
 * at its start: on a shared machine "quiet" is only as quiet as that says, and p99 moves with it.
 */
async function lookupQuietAndLoaded(queue: ApprovalQueue): Promise<{ quiet: Latency & { loadAverage: number }; loaded: Latency & { loadAverage: number } }> {
  const measure = async () => ({ loadAverage: round(loadavg()[0]!, 1), ...(await lookupLatency(queue)) });
  const quiet = await measure();
  const loaded = await besideBusyProcess(measure);
  return { quiet, loaded };
}

/** P3 on a second connection to a SQLite file with other settings (e.g. the former default, no memory map). */
async function sqliteLookupWith(path: string, tuning: SqliteTuning): ReturnType<typeof lookupQuietAndLoaded> {
  const queue = new SqliteApprovalQueue(path, tuning);
  await queue.init();
  try {
    return await lookupQuietAndLoaded(queue);
  } finally {
    await queue.close();
  }
}

/** P3 and P5 on one queue adapter: loads up to 1,000,000 approvals, measuring along the way. */
export async function queueBenchmarks(adapter: { adapter: string; config: Record<string, unknown> }, sizes = [1_000, 100_000, 1_000_000]) {
  const sandbox = await startConcurSandbox({ seed: 4, reports: 3, otherReports: 0, approvers: 3, employees: 10, clock: BENCH_NOW, freezeClock: true });
  const host = await hostOnSandbox(sandbox, { queue: adapter, clock: { now: () => new Date(sandbox.admin.now()) } });
  try {
    await host.runOnce();
    const quiet: Record<string, unknown>[] = [];
    let loaded = 0;
    let loadSeconds = 0;
    for (const size of sizes) {
      progress(`${adapter.adapter}: loading to ${size.toLocaleString()} queued approvals`);
      loadSeconds += await loadQueue(host.queue, loaded, size);
      loaded = size;
      await settle(adapter);
      const q = await quietCycleMs(host, sandbox);
      quiet.push({ queued: size, ...q });
      progress(`${adapter.adapter}: quiet cycle at ${size.toLocaleString()}: p50 ${q.p50} ms`);
    }
    // The host's queue, with the adapter's default settings.
    const lookup = await lookupQuietAndLoaded(host.queue);
    // The same file without the memory map (queue.config.mmapSizeMB: 0, the default before 9.5).
    const unmapped = adapter.adapter === 'sqlite' ? await sqliteLookupWith(String(adapter.config.path), { mmapSizeMB: 0 }) : undefined;
    return {
      adapter: adapter.adapter,
      queued: loaded,
      loadSeconds: round(loadSeconds, 1),
      lookupMs: lookup.quiet,
      lookupMsBesideBusyProcess: lookup.loaded,
      ...(unmapped ? { lookupMsUnmapped: unmapped } : {}),
      quietCycle: quiet,
    };
  } finally {
    await host.stop();
    await sandbox.close();
  }
}
