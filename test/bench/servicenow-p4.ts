import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { Host } from '../../core/host/host.js';
import { loadDeployment } from '../../core/host/deployment.js';
import type { DeliveryReceipt, Notifier } from '../../core/index.js';
import { APPROVAL_FIELDS, TASK_FIELDS } from '../../plugins/servicenow/approval-mapper.js';
import { nextOffset } from '../../plugins/servicenow/client/table-client.js';
import { startServiceNowSandbox } from '../../plugins/servicenow/sandbox/index.js';
import { benchDir, removeBenchDirs } from './bench-host.js';
import { peakRssMb, progress, round } from './bench-util.js';
import { anonRssPeak } from './p4-first-sync.js';

const SELF = fileURLToPath(import.meta.url);
const PAGE_SIZE = 100;
const LIST = 'GET /api/now/table/sysapproval_approver';
const ITEMS = 'GET /api/now/table/sc_req_item';
const SECRET_ENV = 'AH_BENCH_SNOW_CLIENT_SECRET';

/** Where the child processes find the sandbox (the secret goes by env, never argv). */
interface Target {
  readonly url: string;
  readonly clientId: string;
}

type Calls = Record<string, number>;
const diff = (after: Calls, before: Calls): Calls =>
  Object.fromEntries(Object.entries(after).flatMap(([k, n]) => (n - (before[k] ?? 0) > 0 ? [[k, n - (before[k] ?? 0)]] : [])));

/**
 * ServiceNow P4: first sync of `approvals` requested approvals (each on its own requested item)
 * through the real host into SQLite, against the same Table API requests made with plain `fetch`
 * and no processing. The sandbox runs in this process and answers each Table API call `latencyMs`
 * late; the host and the raw fetch each run in a child process of their own (so RSS is the host's
 * alone, with the same 160 MB heap cap as the Concur P4), and the sandbox counts the calls.
 */
export async function snowP4FirstSync(approvals = 10_000, latencyMs = 100): Promise<Record<string, unknown>> {
  progress(`ServiceNow P4: seeding ${approvals.toLocaleString()} requested approvals, ${latencyMs} ms per Table API call`);
  const sandbox = await startServiceNowSandbox({
    seed: 5,
    requestedItems: 0,
    changeRequests: 0,
    users: 60,
    approvers: 50,
    clock: Date.now() - Math.ceil(approvals / 1000) * 3_600_000,
  });
  try {
    const { admin } = sandbox;
    // A backlog built up over time: a thousand an hour.
    for (let left = approvals; left > 0; left -= 1000) {
      admin.createApprovals({ count: Math.min(1000, left) });
      admin.advanceClock(3600);
    }
    admin.setFaults({ latencyMs });
    const target: Target = { url: sandbox.url, clientId: sandbox.credentials.clientId };
    const env = { ...process.env, [SECRET_ENV]: sandbox.credentials.clientSecret };
    const child = async (mode: 'host' | 'raw'): Promise<Record<string, unknown>> => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--max-old-space-size=160', SELF, mode, JSON.stringify(target)], {
        env,
        maxBuffer: 1 << 20,
      });
      return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    };
    let before = admin.calls();
    const host = await child('host');
    const hostCalls = diff(admin.calls(), before);
    progress(`ServiceNow P4: first sync took ${String(host.syncSeconds)} s; now the raw fetch`);
    before = admin.calls();
    const raw = await child('raw');
    const rawCalls = diff(admin.calls(), before);
    const syncSeconds = host.syncSeconds as number;
    const rawSeconds = raw.seconds as number;
    const pages = Math.ceil(approvals / PAGE_SIZE);
    return {
      approvals,
      latencyMsPerCall: latencyMs,
      queued: host.queued,
      syncSeconds,
      rawFetchSeconds: rawSeconds,
      ratioToRawFetch: round(syncSeconds / rawSeconds, 3),
      rawListPagesOnlySeconds: raw.listSeconds,
      ratioToListPagesOnly: round(syncSeconds / (raw.listSeconds as number), 3),
      processingMsPerPage: round((Math.max(0, syncSeconds - rawSeconds) * 1000) / pages, 2),
      hostCalls,
      rawCalls,
      expectedTableApiCalls: `${pages} list + ${pages} sys_idIN = ${2 * pages}`,
      peakRssMb: host.peakRssMb,
      peakAnonRssMb: host.peakAnonRssMb,
      heapLimitMb: 160,
      loadAverage: round(loadavg()[0]!, 2),
    };
  } finally {
    await sandbox.close();
  }
}

/** The first sync in this process: a host with the real ServiceNow plugin on a fresh SQLite file; one source cycle, no delivery. */
async function hostRun(target: Target): Promise<Record<string, unknown>> {
  const deployment = loadDeployment(undefined, {
    env: { AH_BENCH_SNOW_CREDENTIALS_KEY: randomBytes(32).toString('base64'), [SECRET_ENV]: process.env[SECRET_ENV] ?? '' },
    raw: {
      queue: { adapter: 'sqlite', config: { path: join(benchDir(), 'queue.db') } },
      sources: [
        {
          id: 'snow',
          plugin: 'servicenow',
          config: {
            instanceUrl: target.url,
            auth: { type: 'oauth', clientId: target.clientId, clientSecret: { env: SECRET_ENV }, grant: 'client_credentials' },
          },
        },
      ],
      notifiers: [],
      credentials: { key: { env: 'AH_BENCH_SNOW_CREDENTIALS_KEY' } },
    },
  });
  const sink: Notifier = { id: 'chat', deliver: async (m): Promise<DeliveryReceipt> => ({ ref: m.idempotencyKey }) };
  const host = await Host.create(deployment, { logger: pino({ level: 'silent' }), notifiers: [sink] });
  try {
    const anonPeak = anonRssPeak();
    const started = performance.now();
    const report = await host.runners[0]!.runOnce();
    const syncSeconds = (performance.now() - started) / 1000;
    return {
      syncSeconds: round(syncSeconds, 2),
      committed: report?.committed.inserted,
      queued: await host.queue.count({ notBefore: host.commitContext().notBefore }),
      peakAnonRssMb: anonPeak() ?? null,
      peakRssMb: peakRssMb(),
    };
  } finally {
    await host.stop();
  }
}

/**
 * The same requests the source makes on a first sync (servicenow-approval-source.ts): a token, then
 * per page of `state=requested` in (sys_updated_on, sys_id) order, keyset-paged, one `sys_idIN…`
 * read of its requested items; nothing parsed beyond what the next request needs.
 */
async function rawRun(target: Target): Promise<Record<string, unknown>> {
  const started = performance.now();
  const token = (await (
    await fetch(`${target.url}/oauth_token.do`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: target.clientId, client_secret: process.env[SECRET_ENV] ?? '' }),
    })
  ).json()) as { access_token: string };
  const headers = { accept: 'application/json', authorization: `Bearer ${token.access_token}` };
  const get = async (table: string, query: string, fields: readonly string[], limit: number) => {
    const params = new URLSearchParams({
      sysparm_query: query,
      sysparm_fields: fields.join(','),
      sysparm_limit: String(limit),
      sysparm_offset: '0',
      sysparm_display_value: 'all',
      sysparm_exclude_reference_link: 'true',
    });
    const response = await fetch(`${target.url}/api/now/table/${table}?${params}`, { headers });
    const body = (await response.json()) as { result: Record<string, { value: string }>[] };
    return { records: body.result, more: nextOffset(response.headers.get('link')) !== undefined };
  };
  const condition = 'state=requested';
  const order = 'ORDERBYsys_updated_on^ORDERBYsys_id';
  let query = `${condition}^${order}`;
  let listMs = 0;
  let pages = 0;
  let records = 0;
  for (;;) {
    const t = performance.now();
    const page = await get('sysapproval_approver', query, APPROVAL_FIELDS, PAGE_SIZE);
    listMs += performance.now() - t;
    pages++;
    records += page.records.length;
    const items = page.records.map((r) => r.sysapproval!.value);
    if (items.length > 0) await get('sc_req_item', `sys_idIN${items.join(',')}`, TASK_FIELDS.sc_req_item, items.length);
    if (!page.more) break;
    const last = page.records.at(-1)!;
    const [at, id] = [last.sys_updated_on!.value, last.sys_id!.value];
    query = `${condition}^sys_updated_on>${at}^NQ${condition}^sys_updated_on=${at}^sys_id>${id}^${order}`;
  }
  return { seconds: round((performance.now() - started) / 1000, 2), listSeconds: round(listMs / 1000, 2), pages, records };
}

// The child processes snowP4FirstSync starts: `host` or `raw`, then the target as JSON.
if (process.argv[1] === SELF) {
  try {
    const target = JSON.parse(process.argv[3] ?? '{}') as Target;
    const result = process.argv[2] === 'raw' ? await rawRun(target) : await hostRun(target);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    removeBenchDirs();
  }
}
