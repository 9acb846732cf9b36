import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { p1Calls } from './p1-calls.js';
import { p2Lag } from './p2-lag.js';
import { p2bEventsLag, quietCallsPerHour } from './p2b-events.js';
import { liveLatency, queueBenchmarks } from './p3-p5-queue.js';
import { benchDir, removeBenchDirs } from './bench-host.js';
import { round } from './bench-util.js';
import { p4Backfill } from './p4-backfill.js';
import { p6Actions } from './p6-actions.js';
import { snowP1Calls } from './servicenow-p1.js';
import { snowP4FirstSync } from './servicenow-p4.js';

/**
 * `npm run bench`: P1–P5 from the scale-out issue, P2b (push events) and P6 (acting from chat). Prints each figure with its target and the
 * ratio to a baseline measured in the same run, and writes everything to bench-results/bench.json.
 * `--quick` stops the queue benchmarks at 100,000 approvals and P4 at 20,000 reports.
 */
const quick = process.argv.includes('--quick');
/** `--only p3` (or p1, p2, p2b, p4, p6, snow-p1, snow-p4; comma-separated) runs just those. */
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const wanted = (name: string): boolean => !only || only.includes(name);
/** `--queues=postgres` (or sqlite) limits P3/P5 to those adapters. */
const queueFilter = process.argv
  .find((a) => a.startsWith('--queues='))
  ?.slice('--queues='.length)
  .split(',');
const queueWanted = (name: string): boolean => !queueFilter || queueFilter.includes(name);
const PG_URL = process.env.APPROVALS_HUB_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

function heading(title: string): void {
  process.stdout.write(`\n== ${title}\n`);
}

function table(rows: Record<string, unknown>[]): void {
  for (const row of rows)
    process.stdout.write(
      `   ${Object.entries(row)
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
        .join('  ')}\n`,
    );
}

async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const results: Record<string, unknown> = { startedAt: new Date().toISOString(), quick, node: process.version };
const sizes = quick ? [1_000, 10_000, 100_000] : [1_000, 100_000, 1_000_000];

if (wanted('p1')) {
  heading('P1 Concur calls per cycle (minimum: 1 per quiet cycle; ceil(k/100) + k for k changed reports, plus what the overlap window re-lists)');
  const p1 = await p1Calls(1000);
  table(p1.rows as Record<string, unknown>[]);
  process.stdout.write(`   naive poller, measured: ${String(p1.naiveMeasuredPerCycle)} calls per cycle at ${String(p1.naiveListed)} pending\n`);
  results.p1 = p1;
}

if (wanted('p2')) {
  heading('P2 submission → notification lag (target p99 <= interval + 1 s)');
  const p2 = await p2Lag(40, 1);
  table([p2]);
  results.p2 = p2;
}

if (wanted('p2b')) {
  heading('P2b submission → notification lag with push events, duplicates, reordering and dropped attempts on (target p99 <= 2 s)');
  const p2b = await p2bEventsLag(quick ? 200 : 250);
  const { sender, ...lag } = p2b;
  table([lag]);
  const s = sender as Record<string, number>;
  process.stdout.write(
    `   the sender reports: ${s.published} events published, ${s.duplicated} duplicated, ${s.dropped} attempts dropped, ${s.retried} retried (${s.attempts} attempts, ${s.delivered} delivered); ` +
      `one statusChanged event per submission (the subscription's filter), so a dropped attempt costs its retry\n`,
  );
  const p99 = p2b.p99Seconds as number;
  const p2 = results.p2 as { p99Seconds: number; intervalSeconds: number } | undefined;
  process.stdout.write(
    `   p99 ${p99} s, target <= 2 s: ${p2b.met ? 'met' : 'NOT met'}; ` +
      (p2
        ? `P2's polling lag in this run (poll every ${p2.intervalSeconds} s): p99 ${p2.p99Seconds} s, ${round(p2.p99Seconds / p99, 1)}x the events p99\n`
        : `polling every 60 s (the default; P2 did not run) waits up to one interval: 60 s, ${round(60 / p99, 1)}x the events p99\n`),
  );
  heading('P2b Concur calls per hour of a quiet company: events healthy (safety poll every 900 s) vs polling every 60 s');
  const quiet = await quietCallsPerHour(1000);
  type Hour = { cycles: number; sweeps: number; calls: number; callsPerQuietPoll: number; callsPerSweepCycle: number; byEndpoint: Record<string, number> };
  process.stdout.write(`   ${String(quiet.method)}; ${String(quiet.pending)} pending reports, nothing changing\n`);
  for (const [name, hour] of [
    ['events healthy', quiet.events],
    ['polling 60 s ', quiet.polling],
  ] as const) {
    const h = hour as Hour;
    process.stdout.write(
      `   ${name}: ${h.calls} calls/hour (${h.cycles} cycles, ${h.sweeps} with a sweep; ${h.callsPerQuietPoll} calls per quiet poll, ${h.callsPerSweepCycle} per cycle with a sweep) ${JSON.stringify(h.byEndpoint)}\n`,
    );
  }
  process.stdout.write(`   polling / events: ${String(quiet.ratio)}x; events mode before and after the hour: ${JSON.stringify(quiet.eventsMode)}\n`);
  results.p2b = { lag: p2b, quietCallsPerHour: quiet };
}

if (wanted('p3')) {
  heading('P3 "what is waiting on me" from the queue vs one live call; P5 quiet cycle cost vs queue size');
  const live = await liveLatency(20);
  process.stdout.write(`   live call to the sandbox (v4 reportsToApprove, 'slow' profile): p50 ${live.p50} ms, p99 ${live.p99} ms\n`);
  const queues: Record<string, unknown>[] = [];
  if (queueWanted('sqlite')) {
    queues.push(await queueBenchmarks({ adapter: 'sqlite', config: { path: join(benchDir(), 'queue.db') } }, sizes));
    removeBenchDirs();
  }
  if (!queueWanted('postgres')) {
    // left out on request
  } else if (await postgresAvailable()) {
    const schema = `ah_bench_${process.pid}`;
    try {
      queues.push(await queueBenchmarks({ adapter: 'postgres', config: { connectionString: PG_URL, schema } }, sizes));
    } finally {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  } else {
    process.stdout.write(`   PostgreSQL not reachable at ${PG_URL}: skipped\n`);
  }
  for (const q of queues) {
    const lookup = q.lookupMs as { p50: number; p99: number; rowsPerAnswer: number; loadAverage?: number };
    const target = q.adapter === 'sqlite' ? 1 : 5;
    process.stdout.write(
      `   ${String(q.adapter)} at ${Number(q.queued).toLocaleString()} queued (loaded in ${String(q.loadSeconds)} s): p50 ${lookup.p50} ms, p99 ${lookup.p99} ms ` +
        `(${lookup.rowsPerAnswer} approvals per answer; load average ${String(lookup.loadAverage)}; target p99 <= ${target} ms: ${lookup.p99 <= target ? 'met' : 'NOT met'}); ` +
        `live/queue p50 ratio ${Math.round(live.p50 / lookup.p50).toLocaleString()}x\n`,
    );
    type Measured = { p50: number; p99: number; loadAverage: number };
    const busy = q.lookupMsBesideBusyProcess as Measured;
    process.stdout.write(
      `   ${String(q.adapter)} beside a CPU-bound process: p50 ${busy.p50} ms, p99 ${busy.p99} ms (load average ${busy.loadAverage}; target: ${busy.p99 <= target ? 'met' : 'NOT met'})\n`,
    );
    const unmapped = q.lookupMsUnmapped as { quiet: Measured; loaded: Measured } | undefined;
    if (unmapped) {
      process.stdout.write(
        `   ${String(q.adapter)} without the memory map (queue.config.mmapSizeMB: 0): p50 ${unmapped.quiet.p50} ms, p99 ${unmapped.quiet.p99} ms (load average ${unmapped.quiet.loadAverage}); ` +
          `beside a CPU-bound process p50 ${unmapped.loaded.p50} ms, p99 ${unmapped.loaded.p99} ms (load average ${unmapped.loaded.loadAverage})\n`,
      );
    }
    table((q.quietCycle as Record<string, unknown>[]).map((r) => ({ adapter: q.adapter, ...r })));
    const cycles = q.quietCycle as { p50: number }[];
    process.stdout.write(`   quiet cycle p50 at the largest vs smallest queue: ${(cycles.at(-1)!.p50 / cycles[0]!.p50).toFixed(2)}x (flat = ~1x)\n`);
  }
  results.p3 = { live, queues };
}

if (wanted('p4')) {
  heading('P4 first full sync (targets: <= 1.1x the raw page fetch, peak RSS without mapped file pages <= 256 MB)');
  const child = fileURLToPath(new URL('./p4-first-sync.js', import.meta.url));
  /** In a process of its own, with a 160 MB heap: completing proves the sync streams, and RSS is its own. */
  async function firstSync(reports: number, latencyMs: number): Promise<Record<string, unknown>> {
    const { stdout } = await promisify(execFile)(process.execPath, ['--max-old-space-size=160', child, String(reports), String(latencyMs)], {
      maxBuffer: 1 << 20,
    });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  }
  const p4 = await firstSync(quick ? 20_000 : 100_000, 100);
  table([p4]);
  const p4cpu = await firstSync(20_000, 0);
  process.stdout.write(
    `   with no network latency (CPU-bound): ${String(p4cpu.syncSeconds)} s vs ${String(p4cpu.rawFetchSeconds)} s raw, ${String(p4cpu.processingMsPerPage)} ms of processing per page of 100\n`,
  );
  const backfill = await p4Backfill(quick ? 1_000 : 2_000);
  process.stdout.write('   after go-live, every card of the backlog gets its line items (backfillCallsPerCycle 20, scaled down, projected):\n');
  table([backfill]);
  results.p4 = { realistic: p4, noLatency: p4cpu, backfill };
}

if (wanted('p6')) {
  heading('P6 Approve from chat: click → Concur answered, p50/p99, and Concur calls per action (target: one guard read + one write)');
  const p6 = await p6Actions(quick ? 50 : 200);
  table(p6.rows as Record<string, unknown>[]);
  results.p6 = p6;
}

if (wanted('snow-p1')) {
  heading(
    'ServiceNow P1 Table API calls per cycle (expected: max(1, ceil((k + w)/100)) list calls + one sys_idIN read per page holding new versions; w = what the 60 s overlap window re-reads)',
  );
  const snowP1 = await snowP1Calls(quick ? 1000 : 2000);
  table(snowP1.rows as Record<string, unknown>[]);
  process.stdout.write(
    `   first sync of ${String(snowP1.pending)}: ${JSON.stringify(snowP1.firstSync)}; every row at the expected count: ${String(snowP1.atExpected)}\n`,
  );
  results.snowP1 = snowP1;
}

if (wanted('snow-p4')) {
  heading('ServiceNow P4 first sync vs the same Table API requests with plain fetch (sandbox answering in 100 ms; host in its own process, 160 MB heap)');
  const realistic = await snowP4FirstSync(quick ? 2_000 : 10_000, 100);
  table([realistic]);
  const noLatency = await snowP4FirstSync(quick ? 2_000 : 10_000, 0);
  process.stdout.write(
    `   with no network latency (CPU-bound): ${String(noLatency.syncSeconds)} s vs ${String(noLatency.rawFetchSeconds)} s raw, ${String(noLatency.processingMsPerPage)} ms of processing per page of 100\n`,
  );
  results.snowP4 = { realistic, noLatency };
}

removeBenchDirs();
mkdirSync('bench-results', { recursive: true });
const written = only ? `bench-results/bench-${only.join('-')}.json` : 'bench-results/bench.json';
writeFileSync(written, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`\nwrote ${written}\n`);
