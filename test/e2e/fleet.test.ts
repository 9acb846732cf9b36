import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { ApprovalQueue } from '../../core/contracts/approval-queue.js';
import { startConcurSandbox, type ConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import {
  DATABASE_URL,
  Driver,
  HostProcess,
  compareWithTruth,
  dropSchema,
  evidence,
  freshSchema,
  openQueue,
  prng,
  queuedRows,
  readSink,
  waitUntilSettled,
  writeDeployment,
  type LogLine,
  type QueueSpec,
} from '../soak/soak.js';

const POLL_SECONDS = 1;
const SWEEP_SECONDS = 5;
/**
 * Takeover bound. A follower tries the lease once per poll interval (its cycle is one
 * pg_try_advisory_lock round trip, then it sleeps one interval), and the killed leader's session
 * lock is freed as soon as PostgreSQL sees its socket close, which for SIGKILL on the same machine
 * is immediate (the kernel closes it). So a follower takes over within one interval of the kill;
 * the bound is the two lease periods, plus 500 ms for scheduling on a busy 2-core runner
 * (three hosts, the sandbox and PostgreSQL share it) and for the log line to be written.
 */
const TAKEOVER_BOUND_MS = 2 * POLL_SECONDS * 1000 + 500;

interface Seen {
  readonly host: string;
  readonly time: number;
}

/** Polls `check` every 100 ms until it is true or `timeoutMs` passes. */
async function until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(100);
  }
}

describe('fleet: three host processes on one PostgreSQL schema', function () {
  this.timeout(180_000);
  const seed = Number(process.env.FLEET_SEED ?? 20261202);
  let dir: string;
  let sandbox: ConcurSandbox | undefined;
  let reader: ApprovalQueue | undefined;
  let driver: Driver | undefined;
  let queue: QueueSpec & { kind: 'postgres' };
  let passed = false;
  const hosts: HostProcess[] = [];
  const leases: Seen[] = [];
  const commits: Seen[] = [];
  const tokens: Seen[] = [];

  before(async function () {
    const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5_000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
    } catch (error) {
      throw new Error(
        `PostgreSQL is not reachable at ${DATABASE_URL.replace(/:[^:@/]*@/, ':***@')}: ${(error as Error).message}. Start one (CI does) or set APPROVALS_HUB_TEST_PG.`,
      );
    } finally {
      await client.end().catch(() => undefined);
    }
    dir = mkdtempSync(join(tmpdir(), 'ah-fleet-'));
    queue = { kind: 'postgres', connectionString: DATABASE_URL, schema: freshSchema('ah_fleet') };
  });

  after(async () => {
    await driver?.stop().catch(() => undefined);
    for (const h of hosts) if (h.alive) await h.stop('SIGKILL').catch(() => undefined);
    await reader?.close().catch(() => undefined);
    await sandbox?.close().catch(() => undefined);
    if (queue) await dropSchema(queue.connectionString, queue.schema).catch(() => undefined);
    if (passed) rmSync(dir, { recursive: true, force: true });
    else if (dir) console.log(`      fleet run folder kept: ${dir}`);
  });

  it('one host polls at a time, another takes over within two poll intervals of a SIGKILL, and the queue and deliveries match the source', async () => {
    sandbox = await startConcurSandbox({ seed, reports: 15, approvers: 6, employees: 40, approvalLevels: 2, faults: 'flaky', clock: Date.now() });
    const sinkPath = join(dir, 'sink.jsonl');
    // A claim older than 5 s is re-claimed by another host: the killed leader's claimed deliveries come back quickly.
    const { configPath, env } = writeDeployment({
      dir,
      sandbox,
      queue,
      sinkPath,
      pollIntervalSeconds: POLL_SECONDS,
      sweepIntervalSeconds: SWEEP_SECONDS,
      leaseSeconds: 5,
    });
    const onLine = (line: LogLine, host: HostProcess) => {
      if (line.msg === 'took the polling lease') leases.push({ host: host.label, time: line.time });
      else if (line.msg === 'cycle committed changes') commits.push({ host: host.label, time: line.time });
      else if (line.msg === 'Concur access token obtained') tokens.push({ host: host.label, time: line.time });
    };
    const start = (label: string) => {
      const h = new HostProcess(label, configPath, { ...env, LOG_LEVEL: 'info' }, join(dir, `${label}.log`), onLine, 40);
      hosts.push(h);
      return h;
    };
    for (const label of ['host-a', 'host-b', 'host-c']) start(label);

    driver = new Driver(sandbox, prng(seed), { actionsPerSecond: 3, targetPending: 15 });
    driver.start(Date.now() + 60_000);

    // One leader, and it stays the only one while it commits and several poll intervals pass for the others.
    await until(() => leases.length > 0, 'a host takes the polling lease', 30_000);
    await until(() => commits.length > 0, 'the leader commits its first changes', 60_000);
    await sleep(4 * POLL_SECONDS * 1000);
    for (const h of hosts) expect(h.alive, `${h.label} exited: see ${dir}/${h.label}.log`).to.equal(true);
    expect(leases, 'hosts that took the polling lease before the kill').to.have.length(1);
    const leader = hosts.find((h) => h.label === leases[0]!.host)!;
    expect(commits.length, 'the leader committed changes').to.be.greaterThan(0);
    expect(new Set(commits.map((c) => c.host)), 'hosts that committed polled changes').to.deep.equal(new Set([leader.label]));
    expect(new Set(tokens.map((t) => t.host)), 'hosts that called Concur (obtained a token)').to.deep.equal(new Set([leader.label]));

    // Kill the leader; another takes the lease over.
    const killedAt = Date.now();
    await leader.stop('SIGKILL');
    await until(() => leases.length > 1, 'another host takes the polling lease', 15_000);
    const takeover = leases[1]!;
    const takeoverMs = takeover.time - killedAt;
    console.log(`      ${leader.label} killed; ${takeover.host} took the polling lease ${takeoverMs} ms later (bound ${TAKEOVER_BOUND_MS} ms)`);
    expect(takeover.host).to.not.equal(leader.label);
    expect(takeoverMs).to.be.at.most(TAKEOVER_BOUND_MS);

    // The killed host comes back as a follower: the lease stays where it is.
    start(`${leader.label}-restarted`);
    await sleep(6_000);
    expect(leases, 'lease takers after the restart').to.have.length(2);
    const afterTakeover = commits.filter((c) => c.time > killedAt + TAKEOVER_BOUND_MS);
    expect(new Set(afterTakeover.map((c) => c.host)), 'hosts that committed polled changes after the takeover').to.deep.equal(new Set([takeover.host]));

    // The driver stops; once a sweep that started after the last change has completed and every
    // host's deliveries are done, the queue and the sink must match the sandbox exactly.
    await driver.stop();
    const lastChange = Math.max(driver.lastChangeAt, Date.now());
    reader = await openQueue(queue);
    const settle = await waitUntilSettled(reader, lastChange, 60_000);
    expect(settle.settled, `settled: last sweep ${settle.sweptAt}, outbox ${JSON.stringify(settle.outbox)}`).to.equal(true);
    for (const h of hosts) {
      if (!h.alive) continue;
      const stopped = await h.stop('SIGTERM');
      expect(stopped.forced, `${h.label} stopped on SIGTERM`).to.equal(false);
      expect(stopped.code, `${h.label} exit code`).to.equal(0);
    }
    const rows = await queuedRows(reader);
    const sink = readSink(sinkPath);
    const cmp = compareWithTruth(sandbox, rows, sink);
    const shown = evidence(cmp.findings, sandbox, rows, sink.lines, driver).join('\n');
    console.log(
      `      ${driver.actions} driver actions on ${driver.history.size} reports; ${cmp.deliveries} deliveries; ${cmp.pendingInSource} pending, ${cmp.queued} queued`,
    );
    expect(sink.broken, 'unparseable sink lines').to.deep.equal([]);
    expect({ missing: cmp.missing, stale: cmp.stale, duplicates: cmp.duplicates, lost: cmp.lost }, shown).to.deep.equal({
      missing: 0,
      stale: 0,
      duplicates: 0,
      lost: 0,
    });
    expect(cmp.deliveries).to.be.greaterThan(0);
    passed = true;
  });
});
