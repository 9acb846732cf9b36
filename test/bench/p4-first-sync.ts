import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { DeliveryReceipt, Notifier } from '../../core/index.js';
import type { SandboxLike } from '../support/sandbox-deployment.js';
import { hostOnSandbox, removeBenchDirs } from './bench-host.js';
import { peakRssMb, progress, round, sandboxAccessToken } from './bench-util.js';

const CLI = fileURLToPath(new URL('../../core/host/cli.js', import.meta.url));

interface SandboxProcess extends SandboxLike {
  readonly child: ChildProcess;
}

/** The sandbox in a process of its own, so this process's RSS is the host's alone. */
async function sandboxProcess(reports: number, latencyMs: number): Promise<SandboxProcess> {
  const args = [CLI, 'sandbox', 'concur', '--port', '0', '--reports', String(reports), '--approvers', '50', '--seed', '1', '--latency-ms', String(latencyMs)];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`sandbox exited with ${code}`)));
  });
  const info = JSON.parse(line) as { baseUrl: string; companyId: string; clientId: string; clientSecret: string; refreshToken: string; requestToken: string };
  return { child, baseUrl: info.baseUrl, companyId: info.companyId, credentials: info };
}

async function calls(baseUrl: string): Promise<number> {
  const c = (await (await fetch(`${baseUrl}/_admin/calls`)).json()) as { total: number };
  await fetch(`${baseUrl}/_admin/calls`, { method: 'DELETE' });
  return c.total;
}

/** This process's resident memory that is not file pages (RssAnon in /proc/self/status, MB); undefined off Linux. */
function anonRssMb(): number | undefined {
  try {
    const kb = /^RssAnon:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/**
 * Samples {@link anonRssMb} every 100 ms until stopped and returns its peak. The SQLite queue reads
 * its file through a memory map, so the process's RSS also counts the file pages it read: page cache
 * the kernel holds and reclaims either way. The memory the sync itself holds (heap, buffers, SQLite's
 * own cache) is the anonymous part, and that is what must not grow with the backlog.
 */
export function anonRssPeak(): () => number | undefined {
  let peak = anonRssMb();
  const timer = setInterval(() => {
    const now = anonRssMb();
    if (now !== undefined) peak = Math.max(peak ?? 0, now);
  }, 100);
  return () => {
    clearInterval(timer);
    const now = anonRssMb();
    return peak === undefined || now === undefined ? peak : round(Math.max(peak, now), 1);
  };
}

/** Fetching every page of pending reports with no processing at all: the floor a sync can reach. */
async function rawFetch(sandbox: SandboxProcess): Promise<{ seconds: number; pages: number; reports: number }> {
  const accessToken = await sandboxAccessToken(sandbox);
  const started = performance.now();
  let url: string | undefined = `${sandbox.baseUrl}/api/v3.0/expense/reports?user=ALL&approvalStatusCode=A_PEND&limit=100`;
  let pages = 0;
  let reports = 0;
  while (url) {
    const page = (await (await fetch(url, { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' } })).json()) as {
      Items: unknown[];
      NextPage?: string | null;
    };
    pages++;
    reports += page.Items.length;
    url = page.NextPage ?? undefined;
  }
  return { seconds: (performance.now() - started) / 1000, pages, reports };
}

/**
 * P4: first full sync of `reports` pending reports into SQLite, against fetching the same pages
 * with no processing. `latencyMs` is how late the sandbox answers each call (Concur is not a
 * loopback server); with 0 the ratio shows our CPU cost per page instead.
 */
export async function p4FirstSync(reports = 100_000, latencyMs = 100): Promise<Record<string, unknown>> {
  progress(`P4: starting a sandbox process with ${reports.toLocaleString()} pending reports, ${latencyMs} ms per call`);
  const sandbox = await sandboxProcess(reports, latencyMs);
  try {
    // The sync goes first, so the peak RSS read after it is the sync's own.
    await calls(sandbox.baseUrl);
    const sink: Notifier = { id: 'chat', deliver: async (m): Promise<DeliveryReceipt> => ({ ref: m.idempotencyKey }) };
    const host = await hostOnSandbox(sandbox, { notifiers: [sink] });
    const started = performance.now();
    const anonPeak = anonRssPeak();
    const report = await host.runners[0]!.runOnce();
    const syncSeconds = (performance.now() - started) / 1000;
    const anonAfterSync = anonPeak();
    const syncCalls = await calls(sandbox.baseUrl);
    const rssAfterSync = peakRssMb();
    const held = anonAfterSync ?? rssAfterSync;
    const queued = await host.queue.count({ notBefore: host.commitContext().notBefore });
    await host.stop();
    progress(`P4: first sync took ${syncSeconds.toFixed(1)} s; now the raw page fetch`);
    const raw = await rawFetch(sandbox);
    return {
      reports,
      latencyMsPerCall: latencyMs,
      queued,
      committed: report?.committed.inserted,
      syncSeconds: round(syncSeconds, 2),
      rawFetchSeconds: round(raw.seconds, 2),
      ratioToRawFetch: round(syncSeconds / raw.seconds, 3),
      processingMsPerPage: round((Math.max(0, syncSeconds - raw.seconds) * 1000) / raw.pages, 2),
      concurCalls: syncCalls,
      minimumCalls: Math.ceil(reports / 100),
      peakRssMb: rssAfterSync,
      peakAnonRssMb: anonAfterSync ?? null,
      heapLimitMb: Number(process.execArgv.find((a) => a.startsWith('--max-old-space-size='))?.split('=')[1] ?? NaN),
      targets: 'ratio <= 1.1, peak RSS without mapped file pages (RssAnon; total RSS off Linux) <= 256 MB',
      met: syncSeconds / raw.seconds <= 1.1 && held <= 256,
    };
  } finally {
    sandbox.child.kill('SIGTERM');
  }
}

// Run on its own (the bench runner starts it as a child so its RSS is measured alone).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const result = await p4FirstSync(Number(process.argv[2] ?? 100_000), Number(process.argv[3] ?? 100));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    removeBenchDirs();
  }
}
