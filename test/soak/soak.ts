import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { ApprovalQueue } from '../../core/contracts/approval-queue.js';
import type { QueuedApproval } from '../../core/model/queue-types.js';
import { parseIdempotencyKey } from '../../core/model/idempotency-key.js';
import { PostgresApprovalQueue } from '../../adapters/queue-postgres/postgres-approval-queue.js';
import { SqliteApprovalQueue } from '../../adapters/queue-sqlite/sqlite-approval-queue.js';
import { SeededRandom } from '../../plugins/concur/sandbox/sandbox-random.js';
import {
  SandboxError,
  startConcurSandbox,
  TEST_SIGNING_PUBLIC_KEY,
  type ConcurSandbox,
  type EventCounters,
  type EventFaultOptions,
  type FaultInput,
  type SandboxUserInfo,
} from '../../plugins/concur/sandbox/index.js';
import { sandboxSource } from '../support/sandbox-deployment.js';

/*
 * The chaos soak: a real `approvals-hub run` child process against a Concur sandbox in this
 * process, with chaos faults on, a seeded driver changing reports several times a second, and
 * SIGKILLs at random intervals. At the end the faults stop, one last host runs until a sweep that
 * started after the last change has completed and the outbox is drained, and the queue and the
 * delivery sink are compared with the sandbox's truth. The helpers are exported for the fleet test.
 * With `events`, the hosts also serve Concur's webhook on a fixed loopback port and the sandbox pushes
 * its signed events there, duplicating, reordering and dropping attempts; an event sent while the host
 * is dead fails with an I/O error and the sandbox sends it again later, as Concur does.
 */

export const SOURCE_ID = 'acme';
const KIND = 'expense-report';
/** Where the core keeps the start time of the last completed sweep (core/pipeline/source-runner.ts). */
const SWEEP_STATE = 'core.sweep';
/** The hosts' sweep interval unless a deployment names another. */
const SWEEP_SECONDS = 5;
/** The safety poll of a soak with events, at its shortest (the plugin's default is 900 s). */
const EVENTS_POLL_SECONDS = 60;
/** The longest the first host is left alone to commit its first sync. */
const WARM_UP_MAX_MS = 60_000;
/** The PostgreSQL server CI starts; another can be named with APPROVALS_HUB_TEST_PG. */
export const DATABASE_URL = process.env.APPROVALS_HUB_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

// ---- where things are ------------------------------------------------------------------------

const here = dirname(fileURLToPath(import.meta.url));

/** The compiled CLI next to this compiled file (dist/test/soak → dist/core/host/cli.js). */
export const CLI_PATH = fileURLToPath(new URL('../../core/host/cli.js', import.meta.url));

/** The nearest folder above the compiled output whose package.json is approvals-hub's (self-reference). */
function packageRoot(): string {
  for (let dir = here; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        if ((JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'approvals-hub') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    if (dirname(dir) === dir) throw new Error(`no approvals-hub package.json above ${here}`);
  }
}

/** The file-notifier fixture (plain JS, so tsc does not copy it): in the checkout, found from the package or cwd. */
function notifierFixture(): string {
  const candidates = [
    process.env.APPROVALS_HUB_FIXTURES && join(process.env.APPROVALS_HUB_FIXTURES, 'file-notifier-plugin'),
    join(packageRoot(), 'test/fixtures/file-notifier-plugin'),
    resolve(process.cwd(), 'test/fixtures/file-notifier-plugin'),
  ].filter((c): c is string => !!c);
  const found = candidates.find((c) => existsSync(join(c, 'plugin.json')));
  if (!found) throw new Error(`test/fixtures/file-notifier-plugin not found (looked in ${candidates.join(', ')})`);
  return found;
}

/**
 * Copies the file-notifier plugin into the run folder and lets its `import 'approvals-hub'` resolve
 * to the same compiled core the CLI runs (a node_modules link to the package root). Hosts then do not
 * depend on a shared dist/ another build may be rewriting, and plugin and host share one core.
 */
export function installNotifierPlugin(dir: string): string {
  const target = join(dir, 'plugins', 'file-notifier');
  cpSync(notifierFixture(), target, { recursive: true });
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  const link = join(dir, 'node_modules', 'approvals-hub');
  if (!existsSync(link)) symlinkSync(packageRoot(), link, 'dir');
  return target;
}

// ---- randomness --------------------------------------------------------------------------------

/** Deterministic pseudo-random numbers (the sandbox's mulberry32), so a failing run can be replayed by seed. */
export function prng(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

// ---- the queue ---------------------------------------------------------------------------------

export type QueueSpec =
  { readonly kind: 'sqlite'; readonly path: string } | { readonly kind: 'postgres'; readonly connectionString: string; readonly schema: string };

export function queueConfig(spec: QueueSpec): { adapter: string; config: Record<string, unknown> } {
  return spec.kind === 'sqlite'
    ? { adapter: 'sqlite', config: { path: spec.path } }
    : { adapter: 'postgres', config: { connectionString: spec.connectionString, schema: spec.schema, poolSize: 4 } };
}

/** Opens the hosts' queue in this process through its adapter class (reads only). */
export async function openQueue(spec: QueueSpec): Promise<ApprovalQueue> {
  const queue =
    spec.kind === 'sqlite'
      ? new SqliteApprovalQueue(spec.path)
      : new PostgresApprovalQueue({ connectionString: spec.connectionString, schema: spec.schema, poolSize: 2 });
  await queue.init();
  return queue;
}

/** A fresh schema name for one run (other runs share the database). */
export function freshSchema(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

export async function dropSchema(connectionString: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Every queued approval, expired or not. */
export async function queuedRows(queue: ApprovalQueue): Promise<QueuedApproval[]> {
  const rows: QueuedApproval[] = [];
  for (const k of await queue.keys(SOURCE_ID)) {
    const row = await queue.get(k.key);
    if (row) rows.push(row);
  }
  return rows;
}

// ---- the deployment ----------------------------------------------------------------------------

export interface DeploymentOptions {
  readonly dir: string;
  readonly sandbox: ConcurSandbox;
  readonly queue: QueueSpec;
  readonly sinkPath: string;
  readonly pollIntervalSeconds?: number;
  readonly sweepIntervalSeconds?: number;
  /** An inflight delivery older than this is re-claimed (hosts sharing PostgreSQL do not release each other's). */
  readonly leaseSeconds?: number;
  /**
   * The Concur source's overlap window; left out, the plugin's default (300 s), so every cycle
   * re-lists what changed in the last five minutes, as in production. A restarted host reuses the
   * line items of versions already queued and commits as it reads, so kills every few seconds
   * still let it progress.
   */
  readonly overlapSeconds?: number;
  /**
   * Also configure the company request token (default true), the documented fallback when the
   * stored refresh token no longer works: Concur rotates it on every refresh, so a host killed
   * between the token response and its write to the queue store restarts with a dead one.
   */
  readonly requestTokenFallback?: boolean;
  /**
   * Serve Concur's push events on this loopback port (the same for every host, so the sandbox's
   * subscription outlives each host), verifying the sandbox's TEST-ONLY signing key.
   */
  readonly eventsPort?: number;
}

/** Where the hosts serve Concur's webhook when the soak runs with events. */
export function eventsEndpoint(port: number): string {
  return `http://127.0.0.1:${port}/concur/${SOURCE_ID}/events`;
}

/** A loopback port nothing listens on now (the kernel's pick, released at once). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

/** Writes the deployment file every host of the run reads; returns its path and the env its secrets need. */
export function writeDeployment(options: DeploymentOptions): { configPath: string; env: Record<string, string> } {
  const plugin = installNotifierPlugin(options.dir);
  const { source, env, credentials } = sandboxSource(options.sandbox, {
    id: SOURCE_ID,
    envPrefix: 'SOAK_CONCUR',
    pollIntervalSeconds: options.pollIntervalSeconds ?? 1,
    sweepIntervalSeconds: options.sweepIntervalSeconds ?? SWEEP_SECONDS,
    // The documented fallback when the refresh token is lost (killed between Concur's rotation and our write).
    requestToken: options.requestTokenFallback !== false,
    config: {
      timeoutSeconds: 2,
      maxAttempts: 3,
      ...(options.overlapSeconds === undefined ? {} : { overlapSeconds: options.overlapSeconds }),
      // Below the chaos profile's 5 s identity delay, so those calls really time out.
      identity: { timeoutSeconds: 2 },
      // The safety poll at its shortest (default 900 s): a host that lives past it polls too, and the last one settles sooner.
      ...(options.eventsPort === undefined
        ? {}
        : { events: { enabled: true, pollIntervalSeconds: EVENTS_POLL_SECONDS, signature: { publicKeyFiles: [writeSigningKey(options.dir)] } } }),
    },
  });
  const deployment = {
    plugins: [plugin],
    queue: queueConfig(options.queue),
    sources: [source],
    credentials,
    notifiers: [{ id: 'sink', plugin: 'file-notifier', config: { path: options.sinkPath } }],
    delivery: { maxAttempts: 10, leaseSeconds: options.leaseSeconds ?? 5 },
    ...(options.eventsPort === undefined ? {} : { http: { host: '127.0.0.1', port: options.eventsPort } }),
  };
  const configPath = join(options.dir, 'approvals.config.json');
  writeFileSync(configPath, JSON.stringify(deployment, null, 2));
  return { configPath, env };
}

/** The sandbox's public signing key beside the deployment file; its name, relative to that file. */
function writeSigningKey(dir: string): string {
  writeFileSync(join(dir, 'concur-signing-public-key.pem'), TEST_SIGNING_PUBLIC_KEY);
  return 'concur-signing-public-key.pem';
}

// ---- host processes ----------------------------------------------------------------------------

export interface LogLine {
  readonly level: number;
  readonly time: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** One `approvals-hub run --config F` child; its stderr (JSON log lines) goes to a file and is parsed. */
export class HostProcess {
  readonly child: ChildProcess;
  readonly startedAt = Date.now();
  readonly lines: LogLine[] = [];
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  exited: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
  /** Set when this side sent the signal that ended it. */
  killedBy: NodeJS.Signals | undefined;
  private readonly log: WriteStream;
  private partial = '';

  constructor(
    readonly label: string,
    configPath: string,
    env: Record<string, string>,
    logFile: string,
    private readonly onLine: (line: LogLine, host: HostProcess) => void = () => {},
    /** Keep only lines at or above this pino level in memory (all go to the file). */
    private readonly keepLevel = 30,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
    this.child = spawn(process.execPath, [CLI_PATH, 'run', '--config', configPath], {
      cwd: dirname(configPath),
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child.stderr!.on('data', (d: Buffer) => this.take(d.toString()));
    this.exit = new Promise((done) => {
      this.child.once('close', (code, signal) => {
        this.exited = { code, signal, at: Date.now() };
        this.log.end();
        done(this.exited);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exited === undefined;
  }

  private take(text: string): void {
    this.log.write(text);
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const raw of parts) {
      if (!raw.trim()) continue;
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        line = { level: 50, time: Date.now(), msg: raw };
      }
      if (line.level >= this.keepLevel) this.lines.push(line);
      this.onLine(line, this);
    }
  }

  /** Sends `signal` and waits for the process to end (SIGKILL after `graceMs` if it does not). */
  async stop(signal: NodeJS.Signals, graceMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number; forced: boolean }> {
    if (!this.alive) return { ...this.exited!, forced: false };
    this.killedBy ??= signal;
    this.child.kill(signal);
    const timer = sleep(graceMs).then(() => 'timeout' as const);
    const first = await Promise.race([this.exit, timer]);
    if (first !== 'timeout') return { ...first, forced: false };
    this.child.kill('SIGKILL');
    return { ...(await this.exit), forced: true };
  }
}

// ---- the driver ----------------------------------------------------------------------------------

export type DriverAction = 'submit' | 'edit' | 'approve' | 'sendBack' | 'recall' | 'reassign' | 'resubmit';

export interface DriverOptions {
  readonly actionsPerSecond: number;
  /** Keep about this many reports pending: submits are favoured below it and approvals above. */
  readonly targetPending: number;
  /** Weights of the actions; omitted ones are not used. */
  readonly weights?: Partial<Record<DriverAction, number>>;
}

const DEFAULT_WEIGHTS: Record<DriverAction, number> = { submit: 3, edit: 2, approve: 3, sendBack: 1, recall: 1, reassign: 1.5, resubmit: 1 };

/** Changes reports through `sandbox.admin` at random (seeded), as people in the Concur UI would. */
export class Driver {
  readonly counts: Record<DriverAction | 'refused', number> = { submit: 0, edit: 0, approve: 0, sendBack: 0, recall: 0, reassign: 0, resubmit: 0, refused: 0 };
  /** Every action per report, for evidence when a report ends up wrong. */
  readonly history = new Map<string, string[]>();
  lastChangeAt = 0;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly approvers: SandboxUserInfo[];
  private readonly started = Date.now();

  constructor(
    private readonly sandbox: ConcurSandbox,
    private readonly random: () => number,
    private readonly options: DriverOptions,
  ) {
    this.approvers = sandbox.admin.users().filter((u) => u.isApprover);
  }

  get actions(): number {
    return Object.entries(this.counts).reduce((n, [k, v]) => (k === 'refused' ? n : n + v), 0);
  }

  private pick<T>(items: readonly T[]): T | undefined {
    return items.length ? items[Math.floor(this.random() * items.length)] : undefined;
  }

  private record(id: string, what: string): void {
    const at = ((Date.now() - this.started) / 1000).toFixed(2);
    const list = this.history.get(id) ?? [];
    list.push(`+${at}s ${what}`);
    this.history.set(id, list);
    this.lastChangeAt = Date.now();
  }

  /** One random action; returns what it did. */
  step(): string {
    const { reports } = this.sandbox.admin.state();
    const pending = reports.filter((r) => r.status === 'A_PEND');
    const returned = reports.filter((r) => r.status === 'A_RESU' || r.status === 'A_NOTF');
    const w = { ...DEFAULT_WEIGHTS, ...this.options.weights };
    const few = pending.length < this.options.targetPending;
    const weights: [DriverAction, number][] = [
      ['submit', (w.submit ?? 0) * (few ? 2 : 0.5)],
      ['edit', pending.length ? (w.edit ?? 0) : 0],
      ['approve', pending.length ? (w.approve ?? 0) * (few ? 0.5 : 2) : 0],
      ['sendBack', pending.length ? (w.sendBack ?? 0) : 0],
      ['recall', pending.length ? (w.recall ?? 0) : 0],
      ['reassign', pending.length ? (w.reassign ?? 0) : 0],
      ['resubmit', returned.length ? (w.resubmit ?? 0) : 0],
    ];
    const total = weights.reduce((n, [, x]) => n + x, 0);
    let r = this.random() * total;
    const action = (weights.find(([, x]) => (r -= x) < 0) ?? weights[0]!)[0];
    const admin = this.sandbox.admin;
    const target = this.pick(pending);
    try {
      switch (action) {
        case 'submit': {
          const report = admin.submit({});
          this.record(report.ID, `submit → ${report.ApproverLoginID}`);
          break;
        }
        case 'edit': {
          const n = Math.floor(this.random() * 1000);
          const spec = this.random() < 0.5 ? { name: `${target!.name.replace(/ #\d+$/, '')} #${n}` } : { total: Math.round(this.random() * 200_000) / 100 };
          admin.edit(target!.id, spec);
          this.record(target!.id, `edit ${JSON.stringify(spec)}`);
          break;
        }
        case 'approve': {
          const report = admin.approve(target!.id);
          this.record(
            target!.id,
            `approve by ${target!.approverLoginID} → ${report.ApprovalStatusCode}${report.ApproverLoginID ? ` ${report.ApproverLoginID}` : ''}`,
          );
          break;
        }
        case 'sendBack':
          admin.sendBack(target!.id, 'Please attach the hotel receipt.');
          this.record(target!.id, `sendBack by ${target!.approverLoginID}`);
          break;
        case 'recall':
          admin.recall(target!.id);
          this.record(target!.id, 'recall');
          break;
        case 'reassign': {
          const to = this.pick(this.approvers.filter((u) => u.loginId !== target!.approverLoginID && u.loginId !== target!.ownerLoginID));
          if (!to) throw new SandboxError(409, 'nobody to reassign to');
          admin.reassign(target!.id, to.loginId);
          this.record(target!.id, `reassign ${target!.approverLoginID} → ${to.loginId}`);
          break;
        }
        case 'resubmit': {
          const back = this.pick(returned)!;
          const report = admin.resubmit(back.id);
          this.record(back.id, `resubmit → ${report.ApproverLoginID}`);
          break;
        }
      }
      this.counts[action]++;
      return action;
    } catch (error) {
      if (!(error instanceof SandboxError)) throw error;
      this.counts.refused++;
      return `${action} refused`;
    }
  }

  /** Acts `actionsPerSecond` times a second (jittered) until {@link stop} or `untilMs`. */
  start(untilMs: number): void {
    const meanMs = 1000 / this.options.actionsPerSecond;
    this.running = (async () => {
      while (!this.stopped && Date.now() < untilMs) {
        this.step();
        await sleep(meanMs * (0.5 + this.random()));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }
}

// ---- the sink ------------------------------------------------------------------------------------

/** The messages that post or edit an approver's card. */
const CARD_ACTIONS: ReadonlySet<string> = new Set(['notify', 'update', 'close']);

export interface SinkLine {
  readonly key: string;
  readonly action: string;
  readonly to: string;
  readonly approval: string;
  readonly revision: number;
  readonly outcome: string | null;
  readonly ref: string;
}

/** The sink file, line by line; a line that does not parse is returned in `broken`. */
export function readSink(path: string): { lines: SinkLine[]; broken: string[] } {
  if (!existsSync(path)) return { lines: [], broken: [] };
  const lines: SinkLine[] = [];
  const broken: string[] = [];
  for (const text of readFileSync(path, 'utf8').split('\n')) {
    if (!text) continue;
    try {
      lines.push(JSON.parse(text) as SinkLine);
    } catch {
      broken.push(text);
    }
  }
  return { lines, broken };
}

/** Counts the lines of the sink without parsing them (progress lines). */
export function countSinkLines(path: string): number {
  if (!existsSync(path)) return 0;
  const text = readFileSync(path, 'utf8');
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** The generation in an idempotency key `<key>#<generation>.<revision>:<approver>:<channel>:<action>`; '' for a digest's. */
function generationOf(idempotencyKey: string): string {
  const parts = parseIdempotencyKey(idempotencyKey);
  return parts.kind === 'approval' ? parts.generation : '';
}

/** The approval an idempotency key is about; the key itself for a digest's. */
function approvalKeyOf(idempotencyKey: string): string {
  const parts = parseIdempotencyKey(idempotencyKey);
  return parts.kind === 'approval' ? parts.approvalKey : idempotencyKey;
}

// ---- the comparison --------------------------------------------------------------------------

export interface Finding {
  readonly kind: 'missing' | 'stale' | 'duplicate' | 'lost';
  readonly key: string;
  readonly detail: string;
}

export interface Comparison {
  readonly missing: number;
  readonly stale: number;
  readonly duplicates: number;
  readonly lost: number;
  readonly findings: Finding[];
  readonly pendingInSource: number;
  readonly queued: number;
  readonly deliveries: number;
  readonly brokenSinkLines: number;
}

/**
 * The queue and the sink against the sandbox's truth:
 * - missing: pending in the sandbox, not queued;
 * - stale: queued, but not pending in the sandbox, or with another approver (login or e-mail);
 * - duplicate: an idempotency key delivered more than once;
 * - lost: a current approver of a queued approval whose last message for it is not a notify or
 *   update of the queued generation (never notified, or closed), or someone who is not a current
 *   approver (anymore) whose last message for an approval is not a `close` (a live stale card).
 */
export function compareWithTruth(sandbox: ConcurSandbox, rows: readonly QueuedApproval[], sink: { lines: SinkLine[]; broken: string[] }): Comparison {
  const findings: Finding[] = [];
  const emails = new Map(sandbox.admin.users().map((u) => [u.loginId.toLowerCase(), u.email.toLowerCase()]));
  const emailOf = (login: string | null): string | undefined => (login ? emails.get(login.toLowerCase()) : undefined);
  const keyOf = (id: string): string => `${SOURCE_ID}:${KIND}:${id}`;
  const truth = new Map(sandbox.admin.state().reports.map((r) => [keyOf(r.id), r]));
  const pending = [...truth.values()].filter((r) => r.status === 'A_PEND');
  const queued = new Map(rows.map((r) => [r.key, r]));

  for (const r of pending) {
    if (!queued.has(keyOf(r.id)))
      findings.push({ kind: 'missing', key: keyOf(r.id), detail: `A_PEND on ${r.approverLoginID}, last modified ${r.lastModifiedDate}; not queued` });
  }
  for (const row of rows) {
    const t = truth.get(row.key);
    const shown = row.approvers.map((a) => `${a.sourceUserId} <${a.email ?? 'no e-mail'}>`).join(', ');
    if (!t || t.status !== 'A_PEND') {
      findings.push({
        kind: 'stale',
        key: row.key,
        detail: `queued (${row.status}, r${row.revision}, for ${shown}) but the sandbox has ${t ? `${t.status}` : 'no such report'}`,
      });
      continue;
    }
    const login = t.approverLoginID?.toLowerCase();
    const sameApprover =
      row.approvers.length === 1 && row.approvers[0]!.sourceUserId.toLowerCase() === login && row.approvers[0]!.email?.toLowerCase() === emailOf(login ?? null);
    if (!sameApprover)
      findings.push({ kind: 'stale', key: row.key, detail: `queued for ${shown} but pending on ${t.approverLoginID} <${emailOf(t.approverLoginID)}>` });
  }

  const byKey = new Map<string, number>();
  for (const l of sink.lines) byKey.set(l.key, (byKey.get(l.key) ?? 0) + 1);
  for (const [key, n] of byKey) if (n > 1) findings.push({ kind: 'duplicate', key, detail: `delivered ${n} times` });

  // The last card message each person got for each approval (reminders and digests point at cards; they are not cards).
  const last = new Map<string, SinkLine>();
  for (const l of sink.lines) if (CARD_ACTIONS.has(l.action)) last.set(`${l.approval}\u0000${l.to.toLowerCase()}`, l);
  const current = new Set<string>();
  for (const row of rows) {
    const t = truth.get(row.key);
    const email = emailOf(t?.approverLoginID ?? null) ?? row.approvers[0]?.email?.toLowerCase();
    if (!email) {
      findings.push({ kind: 'lost', key: row.key, detail: 'no current approver e-mail to deliver to' });
      continue;
    }
    current.add(`${row.key}\u0000${email}`);
    const l = last.get(`${row.key}\u0000${email}`);
    if (!l)
      findings.push({ kind: 'lost', key: row.key, detail: `${email} never received a message for it (queued generation ${row.generation}, r${row.revision})` });
    else if (l.action === 'close' || generationOf(l.key) !== row.generation) {
      findings.push({
        kind: 'lost',
        key: row.key,
        detail: `${email}'s last message is ${l.action} ${l.key} (${l.outcome ?? '-'}), not a notify/update of generation ${row.generation}`,
      });
    }
  }
  for (const [k, l] of last) {
    if (current.has(k) || l.action === 'close') continue;
    findings.push({ kind: 'lost', key: l.approval, detail: `${l.to} is not its current approver but their last message is ${l.action} ${l.key} (no close)` });
  }

  const count = (kind: Finding['kind']) => findings.filter((f) => f.kind === kind).length;
  return {
    missing: count('missing'),
    stale: count('stale'),
    duplicates: count('duplicate'),
    lost: count('lost'),
    findings,
    pendingInSource: pending.length,
    queued: rows.length,
    deliveries: sink.lines.length,
    brokenSinkLines: sink.broken.length,
  };
}

/** For each finding: the driver's actions on the report, the truth, the queued row and the sink lines. */
export function evidence(
  findings: readonly Finding[],
  sandbox: ConcurSandbox,
  rows: readonly QueuedApproval[],
  sink: SinkLine[],
  driver: Driver | undefined,
  limit = 10,
): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of findings) {
    const approval = f.kind === 'duplicate' ? approvalKeyOf(f.key) : f.key;
    if (seen.has(approval)) continue;
    seen.add(approval);
    if (seen.size > limit) {
      out.push(`… and more (${findings.length} findings in all)`);
      break;
    }
    const id = approval.split(':').pop()!;
    const t = sandbox.admin.state().reports.find((r) => r.id === id);
    const row = rows.find((r) => r.key === approval);
    out.push(`${f.kind.toUpperCase()} ${approval}: ${f.detail}`);
    out.push(`  sandbox: ${t ? `${t.status} approver ${t.approverLoginID} modified ${t.lastModifiedDate}` : 'no such report'}`);
    out.push(
      `  queue:   ${row ? `r${row.revision} gen ${row.generation} approvers ${row.approvers.map((a) => `${a.sourceUserId}<${a.email ?? '-'}>`).join(',')} updated ${row.sourceUpdatedAt}` : 'not queued'}`,
    );
    for (const h of driver?.history.get(id) ?? ['(seeded, never touched by the driver)']) out.push(`  driver:  ${h}`);
    for (const l of sink.filter((s) => s.approval === approval)) out.push(`  sink:    ${l.action} to ${l.to} ${l.key} ${l.outcome ?? ''}`);
  }
  return out;
}

// ---- waiting for the end -----------------------------------------------------------------------

/**
 * Waits until two sweeps that started at or after `since` have completed (the source runner records
 * a sweep's start time when it ends) and the outbox holds nothing pending, inflight or parked, twice
 * in a row. Two, because a first sync also records itself as a sweep without the second look at
 * what is queued, and a first sync cut short by a kill may have queued some approvals already.
 * Bounded by `timeoutMs`; returns what it saw last.
 */
export async function waitUntilSettled(
  queue: ApprovalQueue,
  since: number,
  timeoutMs: number,
): Promise<{ settled: boolean; sweptAt?: string; sweeps: number; outbox: Record<string, number>; waitedMs: number }> {
  const started = Date.now();
  const sweeps = new Set<string>();
  let quiet = 0;
  let sweptAt: string | undefined;
  let outbox: Record<string, number> = {};
  while (Date.now() - started < timeoutMs) {
    sweptAt = await queue.getState(SWEEP_STATE, SOURCE_ID);
    if (sweptAt !== undefined && Date.parse(sweptAt) >= since) sweeps.add(sweptAt);
    outbox = await queue.outboxCounts();
    quiet = sweeps.size >= 2 && outbox.pending === 0 && outbox.inflight === 0 && outbox.parked === 0 ? quiet + 1 : 0;
    if (quiet >= 2) return { settled: true, sweptAt, sweeps: sweeps.size, outbox, waitedMs: Date.now() - started };
    await sleep(250);
  }
  return { settled: false, ...(sweptAt ? { sweptAt } : {}), sweeps: sweeps.size, outbox, waitedMs: Date.now() - started };
}

// ---- the soak ------------------------------------------------------------------------------------

export interface SoakOptions {
  /** How long hosts are killed and restarted while the driver runs and faults are on (after the warm-up). */
  readonly durationSeconds: number;
  readonly queue: 'sqlite' | 'postgres';
  readonly seed: number;
  /** A host lives a random time in [min, max] seconds before it is SIGKILLed and restarted. */
  readonly killEverySeconds: readonly [number, number];
  /** Pending reports the sandbox is seeded with. */
  readonly reports: number;
  readonly quiet?: boolean;
  /** Driver actions per second (default 3). */
  readonly actionsPerSecond?: number;
  /** The Concur source's overlap window (default: the plugin's 300 s; see {@link DeploymentOptions.overlapSeconds}). */
  readonly overlapSeconds?: number;
  /** Configure the request-token fallback (default true; see {@link DeploymentOptions.requestTokenFallback}). */
  readonly requestTokenFallback?: boolean;
  /** Fault profile while the driver runs (default `chaos`). */
  readonly faults?: FaultInput;
  /**
   * Leave the first host alone (faults on) until its first sync is committed and a first message is
   * delivered, before killing hosts for `durationSeconds` (default true). On the Concur
   * plugin as it is, a listing page is committed only once every report on it has been enriched
   * (one entries call each, ~0.3 s under chaos) and the enrichment cache lives in memory; an
   * identity round persists its mappings only once every lookup of the round succeeded. Killed
   * every few seconds, a first sync of more than a few reports never completes. `false` shows that
   * (e.g. with 40 reports).
   */
  readonly warmUp?: boolean;
  /**
   * Push events too (default false): the hosts serve the Concur webhook on a fixed loopback port, the
   * sandbox is subscribed to it and delivers with `eventFaults` on, through the kills.
   */
  readonly events?: boolean;
  /** The sender's faults while the driver runs (default {@link SOAK_EVENT_FAULTS}). */
  readonly eventFaults?: EventFaultOptions;
  /** Keep the run folder (logs, sink, SQLite file) even when the run passes. */
  readonly keepDir?: boolean;
  /** PostgreSQL connection string (default {@link DATABASE_URL}). */
  readonly connectionString?: string;
  /** LOG_LEVEL of the host processes (default `warn`); their logs are in the run folder. */
  readonly hostLogLevel?: string;
  /** Where progress and the summary go (default: console.log). */
  readonly print?: (line: string) => void;
}

export interface SoakResult {
  readonly ok: boolean;
  readonly missing: number;
  readonly stale: number;
  readonly duplicates: number;
  readonly lost: number;
  readonly totals: {
    readonly seconds: number;
    readonly reportsTouched: number;
    readonly actions: number;
    readonly actionsByKind: Record<string, number>;
    readonly deliveries: number;
    /** Delivered while hosts were being killed (after the warm-up), faults on; 0 means the kills never met a delivery. */
    readonly deliveriesDuringChaos: number;
    readonly deliveriesByAction: Record<string, number>;
    readonly kills: number;
    readonly hostStarts: number;
    /** Hosts that exited without being told to (a crash is a failure too: invariant 5). */
    readonly unexpectedExits: number;
    readonly sandboxCalls: number;
    readonly faultsByStatus: Record<string, number>;
    readonly malformedPagesSeen: number;
    readonly refreshTokensRefused: number;
    readonly pendingInSource: number;
    readonly queued: number;
    readonly outboxAtEnd: Record<string, number>;
    readonly settleMs: number;
    /** How long the first host took to commit its first sync and deliver, untouched (0 without warm-up). */
    readonly warmUpMs: number;
    /** With events: what the sandbox's sender did (deliveries to a dead host count as `failed` and are retried). */
    readonly events?: EventCounters | undefined;
  };
  readonly findings: Finding[];
  readonly evidence: string[];
  readonly problems: string[];
  readonly dir: string;
}

/** Event delivery faults of a soak with events: a fifth of deliveries sent twice, 50 ms reordering windows, a tenth of attempts dropped. */
export const SOAK_EVENT_FAULTS: EventFaultOptions = { duplicateRate: 0.2, reorder: 50, dropRate: 0.1 };

/** Runs the chaos soak; see the top of this file. Never throws for a failed check: `ok` says. */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const print = options.print ?? ((line: string) => console.log(line));
  const say = (line: string) => {
    if (!options.quiet) print(line);
  };
  const [killMin, killMax] = options.killEverySeconds;
  if (!(killMin > 0 && killMax >= killMin)) throw new RangeError('killEverySeconds must be [min, max] with 0 < min <= max');
  if (!(options.durationSeconds > 0)) throw new RangeError('durationSeconds must be > 0');
  const random = prng(options.seed);
  const dir = mkdtempSync(join(tmpdir(), 'ah-soak-'));
  const sinkPath = join(dir, 'sink.jsonl');
  const connectionString = options.connectionString ?? DATABASE_URL;
  const queueSpec: QueueSpec =
    options.queue === 'sqlite' ? { kind: 'sqlite', path: join(dir, 'queue.db') } : { kind: 'postgres', connectionString, schema: freshSchema('ah_soak') };
  const problems: string[] = [];
  const hosts: HostProcess[] = [];
  let sandbox: ConcurSandbox | undefined;
  let reader: ApprovalQueue | undefined;
  let driver: Driver | undefined;
  let kills = 0;
  let malformed = 0;
  let refused = 0;
  let deliveriesDuringChaos = 0;
  let warmUpMs = 0;
  const started = Date.now();
  const elapsed = () => ((Date.now() - started) / 1000).toFixed(0);

  const onLine = (line: LogLine) => {
    const text = JSON.stringify(line);
    if (text.includes('malformed JSON')) malformed++;
    if (line.msg === 'Concur token request refused') refused++;
  };
  const startHost = (configPath: string, env: Record<string, string>, extraEnv: Record<string, string> = {}) => {
    const host = new HostProcess(
      `host-${hosts.length + 1}`,
      configPath,
      { ...env, LOG_LEVEL: options.hostLogLevel ?? 'warn', ...extraEnv },
      join(dir, `host-${hosts.length + 1}.log`),
      onLine,
      40,
    );
    hosts.push(host);
    void host.exit.then((e) => {
      if (!host.killedBy) problems.push(`${host.label} (pid ${host.pid}) exited by itself: code ${e.code}, signal ${e.signal}; see ${dir}/${host.label}.log`);
    });
    return host;
  };

  try {
    sandbox = await startConcurSandbox({
      seed: options.seed,
      reports: options.reports,
      approvers: 6,
      employees: 40,
      approvalLevels: 2,
      faults: options.faults ?? 'chaos',
      clock: Date.now(),
      ...(options.events ? { events: { faults: { ...(options.eventFaults ?? SOAK_EVENT_FAULTS) } } } : {}),
    });
    const eventsPort = options.events ? await freePort() : undefined;
    if (eventsPort !== undefined) sandbox.events.subscribe(eventsEndpoint(eventsPort));
    const { configPath, env } = writeDeployment({
      dir,
      sandbox,
      queue: queueSpec,
      sinkPath,
      ...(options.overlapSeconds !== undefined ? { overlapSeconds: options.overlapSeconds } : {}),
      ...(options.requestTokenFallback === false ? { requestTokenFallback: false } : {}),
      ...(eventsPort === undefined ? {} : { eventsPort }),
    });
    say(
      `[soak] ${options.durationSeconds}s on ${options.queue}, seed ${options.seed}, kills every ${killMin}–${killMax}s, ${options.reports} seeded reports` +
        `${eventsPort === undefined ? '' : `, push events to ${eventsEndpoint(eventsPort)} with faults ${JSON.stringify(options.eventFaults ?? SOAK_EVENT_FAULTS)}`}; run folder ${dir}`,
    );

    driver = new Driver(sandbox, random, { actionsPerSecond: options.actionsPerSecond ?? 3, targetPending: Math.max(10, options.reports) });
    // The driver runs from the start (through the warm-up) until the kill phase ends; this bound only backs that up.
    driver.start(started + WARM_UP_MAX_MS + options.durationSeconds * 1000 + 5_000);
    let endAt = started + options.durationSeconds * 1000;
    let deliveredBeforeKills = 0;

    const progress = setInterval(() => {
      const up = hosts.at(-1);
      say(
        `[soak ${elapsed()}s] kills ${kills}, actions ${driver!.actions}, deliveries ${countSinkLines(sinkPath)}, host ${up?.alive ? `up (pid ${up.pid})` : 'down'}`,
      );
    }, 5_000);
    try {
      let host = startHost(configPath, env);
      if (options.warmUp ?? true) {
        // The first host is left alone (faults on) until its first sync is committed and a first
        // message delivered: on the plugin as it is, a listing page and an identity lookup round
        // are each all or nothing, and cut short by every kill they never complete (see
        // SoakOptions.warmUp). Bounded by WARM_UP_MAX_MS.
        reader = await openQueue(queueSpec);
        const from = Date.now();
        const initialised = async (): Promise<boolean> => (await reader!.getCursor(SOURCE_ID)) !== undefined && countSinkLines(sinkPath) > 0;
        while (Date.now() - from < WARM_UP_MAX_MS && !(await initialised())) {
          if (!host.alive) host = startHost(configPath, env);
          await sleep(250);
        }
        warmUpMs = Date.now() - from;
        // The kill phase lasts durationSeconds from here.
        endAt = Date.now() + options.durationSeconds * 1000;
        deliveredBeforeKills = countSinkLines(sinkPath);
        say(`[soak ${elapsed()}s] first sync committed and delivered after ${(warmUpMs / 1000).toFixed(1)}s; kills start`);
      }
      // Kill and restart at random intervals until the time is up. Bounded: each turn waits >= killMin.
      for (;;) {
        const life = (killMin + random() * (killMax - killMin)) * 1000;
        const wait = Math.min(life, endAt - Date.now());
        if (wait <= 0) break;
        await Promise.race([sleep(wait), host.exit]);
        if (Date.now() >= endAt) break;
        if (host.alive) {
          await host.stop('SIGKILL');
          kills++;
        }
        host = startHost(configPath, env);
      }
      await driver.stop();
      deliveriesDuringChaos = countSinkLines(sinkPath) - deliveredBeforeKills;
      sandbox.setFaults('none');
      if (options.events) sandbox.events.setFaults({});
      say(`[soak ${elapsed()}s] driver stopped after ${driver.actions} actions; faults off; last restart`);
      if (host.alive) {
        await host.stop('SIGKILL');
        kills++;
      }
    } finally {
      clearInterval(progress);
    }

    // The last host: runs until a sweep that started after the last change completes and the outbox is drained.
    const lastChange = Math.max(driver.lastChangeAt, Date.now());
    // With events healthy the last host's cycles are EVENTS_POLL_SECONDS apart: it starts once a sweep
    // interval has passed since any killed host's sweep, so its first cycle sweeps, and the second sweep comes a poll later.
    if (options.events) await sleep(SWEEP_SECONDS * 1000 + 1000);
    const last = startHost(configPath, env);
    reader ??= await openQueue(queueSpec);
    const settle = await waitUntilSettled(reader, lastChange, 120_000 + (options.events ? EVENTS_POLL_SECONDS * 1000 : 0));
    if (!settle.settled)
      problems.push(
        `the last host did not settle in ${settle.waitedMs} ms: ${settle.sweeps} sweep(s) since the last change, last ${settle.sweptAt ?? 'never'}, outbox ${JSON.stringify(settle.outbox)}`,
      );
    const stopped = await last.stop('SIGTERM');
    if (stopped.forced) problems.push(`${last.label} did not stop within 30 s of SIGTERM and was killed`);
    else if (stopped.code !== 0) problems.push(`${last.label} exited with code ${stopped.code} after SIGTERM; see ${dir}/${last.label}.log`);

    const rows = await queuedRows(reader);
    const outboxAtEnd = await reader.outboxCounts();
    const sink = readSink(sinkPath);
    const cmp = compareWithTruth(sandbox, rows, sink);
    if (deliveriesDuringChaos === 0) {
      problems.push(
        'no message was delivered while hosts were being killed: no host life got through a cycle and a delivery, so the kills tested nothing (see the host logs)',
      );
    }
    const events = options.events ? sandbox.events.counts() : undefined;
    if (events && events.delivered === 0) problems.push('no push event reached a host: the events path was not exercised (see the host logs)');
    if (cmp.brokenSinkLines) problems.push(`${cmp.brokenSinkLines} sink line(s) do not parse`);
    const calls = sandbox.calls();
    const faultsByStatus = Object.fromEntries(Object.entries(calls.byStatus).filter(([s]) => !/^2/.test(s)));
    const deliveriesByAction: Record<string, number> = {};
    for (const l of sink.lines) deliveriesByAction[l.action] = (deliveriesByAction[l.action] ?? 0) + 1;
    const result: SoakResult = {
      ok: cmp.missing + cmp.stale + cmp.duplicates + cmp.lost === 0 && problems.length === 0,
      missing: cmp.missing,
      stale: cmp.stale,
      duplicates: cmp.duplicates,
      lost: cmp.lost,
      totals: {
        seconds: Math.round((Date.now() - started) / 1000),
        reportsTouched: driver.history.size,
        actions: driver.actions,
        actionsByKind: { ...driver.counts },
        deliveries: cmp.deliveries,
        deliveriesDuringChaos,
        deliveriesByAction,
        kills,
        hostStarts: hosts.length,
        unexpectedExits: hosts.filter((h) => h.exited && !h.killedBy).length,
        sandboxCalls: calls.total,
        faultsByStatus,
        malformedPagesSeen: malformed,
        refreshTokensRefused: refused,
        pendingInSource: cmp.pendingInSource,
        queued: cmp.queued,
        outboxAtEnd,
        settleMs: settle.waitedMs,
        warmUpMs,
        events,
      },
      findings: cmp.findings,
      evidence: evidence(cmp.findings, sandbox, rows, sink.lines, driver),
      problems,
      dir,
    };
    writeFileSync(join(dir, 'result.json'), JSON.stringify({ ...result, history: Object.fromEntries(driver.history) }, null, 2));
    for (const line of summary(result)) say(line);
    return result;
  } finally {
    await driver?.stop().catch(() => undefined);
    for (const h of hosts) if (h.alive) await h.stop('SIGKILL').catch(() => undefined);
    await reader?.close().catch(() => undefined);
    await sandbox?.close().catch(() => undefined);
    if (queueSpec.kind === 'postgres')
      await dropSchema(queueSpec.connectionString, queueSpec.schema).catch((e: Error) =>
        print(`[soak] could not drop schema ${queueSpec.schema}: ${e.message}`),
      );
    // A passing run leaves nothing behind unless asked to; a failing one keeps its evidence.
    if (!options.keepDir && existsSync(join(dir, 'result.json'))) {
      const saved = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as { ok: boolean };
      if (saved.ok) rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** The summary lines: the four counts, then the totals, then evidence and problems. */
export function summary(r: SoakResult): string[] {
  const t = r.totals;
  const lines = [
    `[soak] missing ${r.missing}, stale ${r.stale}, duplicate deliveries ${r.duplicates}, lost deliveries ${r.lost}  → ${r.ok ? 'PASS' : 'FAIL'}`,
    `[soak] ${t.seconds}s: ${t.reportsTouched} reports touched by ${t.actions} actions ${JSON.stringify(t.actionsByKind)}`,
    `[soak] ${t.deliveries} deliveries ${JSON.stringify(t.deliveriesByAction)}, ${t.deliveriesDuringChaos} of them while hosts were being killed; ${t.kills} kills, ${t.hostStarts} host starts, ${t.unexpectedExits} unexpected exits`,
    `[soak] ${t.sandboxCalls} Concur calls; faults by status ${JSON.stringify(t.faultsByStatus)}; malformed pages seen ${t.malformedPagesSeen}; refresh tokens refused ${t.refreshTokensRefused}`,
    `[soak] warm-up (first sync, untouched host) ${(t.warmUpMs / 1000).toFixed(1)}s; at the end: ${t.pendingInSource} pending in the sandbox, ${t.queued} queued, outbox ${JSON.stringify(t.outboxAtEnd)}, settled in ${t.settleMs} ms`,
  ];
  const e = t.events;
  if (e)
    lines.push(
      `[soak] push events: ${e.published} published, ${e.delivered} of ${e.sent} deliveries acknowledged, ${e.duplicated} duplicated, ${e.dropped} attempts dropped, ` +
        `${e.failed} failed (host down), ${e.retried} retried, ${e.rejected} rejected, ${e.expired} expired`,
    );
  for (const p of r.problems) lines.push(`[soak] problem: ${p}`);
  for (const e of r.evidence) lines.push(`[soak] ${e}`);
  if (!r.ok) lines.push(`[soak] run folder kept: ${r.dir}`);
  return lines;
}
