import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { startConcurSandbox, type ConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { runCli, type CliResult } from '../support/cli.js';
import { sandboxSource } from '../support/sandbox-deployment.js';
import { DATABASE_URL, HostProcess, dropSchema, freshSchema, queueConfig, type LogLine, type QueueSpec } from '../soak/soak.js';

/**
 * Concur rotates the company refresh token on every refresh and refuses a used one (code 108); the
 * sandbox here does the same (`invalidateUsedRefreshTokens`) and counts every redemption. Its access
 * tokens are issued for 60 s, which this client (refreshing 60 s before expiry) never holds: every
 * process refreshes for every call, the running host on each poll and each CLI process (`audit`,
 * `queue resync`) beside it, so every call contends for the one chain of refresh tokens.
 * (Using an access token another process stored is tested in concur-token-sharing.test.ts.)
 */
const ACCESS_TOKEN_SECONDS = 60;
const CLI_PROCESSES = 20;
const WAVE = 5;

interface Run {
  readonly dir: string;
  readonly sandbox: ConcurSandbox;
  readonly hosts: HostProcess[];
  readonly cli: CliResult[];
  readonly configPath: string;
  readonly env: Record<string, string>;
}

/** Polls `check` every 100 ms until it is true or `timeoutMs` passes. */
async function until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(100);
  }
}

const mentions108 = (text: string): boolean => /code"?[:\s]*"?108|\(code 108\)/.test(text);

describe('Concur refresh-token rotation across processes (real run hosts and CLI processes)', function () {
  this.timeout(120_000);
  let run: Run | undefined;
  let schema: string | undefined;
  let passed = false;

  afterEach(async () => {
    for (const h of run?.hosts ?? []) if (h.alive) await h.stop('SIGKILL').catch(() => undefined);
    await run?.sandbox.close().catch(() => undefined);
    if (schema) await dropSchema(DATABASE_URL, schema).catch(() => undefined);
    if (run && passed) rmSync(run.dir, { recursive: true, force: true });
    else if (run) console.log(`      token rotation run folder kept: ${run.dir}`);
    run = undefined;
    schema = undefined;
    passed = false;
  });

  async function start(queue: (dir: string) => QueueSpec, hostCount: number): Promise<Run> {
    const dir = mkdtempSync(join(tmpdir(), 'ah-rotation-'));
    const sandbox = await startConcurSandbox({
      seed: 11,
      reports: 4,
      otherReports: 0,
      approvers: 3,
      employees: 12,
      clock: Date.now(),
      accessTokenLifetimeSeconds: ACCESS_TOKEN_SECONDS,
    });
    // No request token: a refused refresh token would fail the cycle instead of being papered over.
    const concur = sandboxSource(sandbox, { pollIntervalSeconds: 1, sweepIntervalSeconds: 3600 });
    const spec = queue(dir);
    const deployment = {
      queue: queueConfig(spec),
      sources: [concur.source],
      notifiers: [],
      // SQLite: no key configured, the host generates one beside the file (the `npm start` path).
      ...(spec.kind === 'postgres' ? { credentials: concur.credentials } : {}),
    };
    const configPath = join(dir, 'approvals.config.json');
    writeFileSync(configPath, JSON.stringify(deployment, null, 2));
    const env = { ...concur.env, LOG_LEVEL: 'info' };
    const hosts = Array.from({ length: hostCount }, (_, i) => new HostProcess(`host-${i + 1}`, configPath, env, join(dir, `host-${i + 1}.log`), undefined, 30));
    run = { dir, sandbox, hosts, cli: [], configPath, env };
    return run;
  }

  const committed = (h: HostProcess) => h.lines.filter((l) => l.msg === 'cycle committed changes').length;
  const obtained = (h: HostProcess) => h.lines.filter((l) => l.msg === 'Concur access token obtained').length;

  /** Starts the CLI processes in waves of five, a new report submitted before each wave, while the hosts poll. */
  async function storm(r: Run): Promise<void> {
    const polling = () => r.hosts.filter((h) => h.alive);
    await until(() => polling().some((h) => committed(h) > 0), 'a live host commits its first cycle', 30_000);
    for (let started = 0; started < CLI_PROCESSES; started += WAVE) {
      const report = r.sandbox.admin.submit({});
      const wave = Array.from({ length: WAVE }, (_, i) =>
        (started + i) % 2 === 0
          ? runCli(['audit', '--config', r.configPath], { cwd: r.dir, env: r.env })
          : runCli(['queue', 'resync', `acme:expense-report:${report.ID}`, '--config', r.configPath], { cwd: r.dir, env: r.env }),
      );
      r.cli.push(...(await Promise.all(wave)));
    }
    // One more change after the last wave: the hosts' cycles still work.
    const before = r.hosts.reduce((n, h) => n + committed(h), 0);
    r.sandbox.admin.submit({});
    await until(() => r.hosts.reduce((n, h) => n + committed(h), 0) > before, 'a host commits the report submitted after the last CLI process', 30_000);
  }

  function verify(r: Run): void {
    r.cli.forEach((c, i) => expect(c.code, `CLI process ${i + 1} exited ${c.code}: ${c.stderr}`).to.equal(0));
    expect(r.cli).to.have.length(CLI_PROCESSES);
    for (const h of r.hosts) {
      const failed = h.lines.filter((l: LogLine) => l.msg.startsWith('cycle failed'));
      expect(
        failed.map((l) => l.err),
        `${h.label}: failed cycles`,
      ).to.deep.equal([]);
      expect(
        h.lines.filter((l) => mentions108(JSON.stringify(l))),
        `${h.label}: code-108 log lines`,
      ).to.deep.equal([]);
    }
    expect(
      r.cli.filter((c) => mentions108(c.stderr)).map((c) => c.stderr),
      'CLI processes that met code 108',
    ).to.deep.equal([]);
    const usage = r.sandbox.refreshTokenUsage();
    expect(usage.refused, 'refresh tokens Concur refused (code 108)').to.equal(0);
    // One chain: every token issued was redeemed exactly once, except the newest, still live.
    expect(
      usage.attempts.slice(0, -1).every((n) => n === 1),
      `redemptions per refresh token: ${usage.attempts.join(', ')}`,
    ).to.equal(true);
    expect(usage.attempts.at(-1)).to.equal(0);
    // The run really rotated: the hosts refreshed during it, and so did CLI processes.
    expect(usage.attempts.length, 'refresh tokens issued').to.be.greaterThan(5);
    const byHosts = r.hosts.reduce((n, h) => n + obtained(h), 0);
    expect(byHosts, 'tokens the hosts obtained').to.be.greaterThan(1);
    expect(usage.attempts.length - 1 - byHosts, 'refreshes by CLI processes').to.be.greaterThan(1);
    console.log(
      `      ${usage.attempts.length - 1} refreshes (each token redeemed once, none refused): ${byHosts} by the run host(s), ${usage.attempts.length - 1 - byHosts} by the ${r.cli.length} CLI processes`,
    );
  }

  it('one run host and 20 audit / queue resync processes on SQLite: zero failed cycles, zero code 108, one unbroken chain of refresh tokens', async () => {
    const r = await start((dir) => ({ kind: 'sqlite', path: join(dir, 'approvals.db') }), 1);
    await storm(r);
    verify(r);
    for (const h of r.hosts) expect((await h.stop('SIGTERM')).code, `${h.label} exit code`).to.equal(0);
    passed = true;
  });

  it('one run host and 20 audit / queue resync processes on PostgreSQL: zero failed cycles, zero code 108, one unbroken chain of refresh tokens', async () => {
    schema = freshSchema('ah_rotation');
    const r = await start(() => ({ kind: 'postgres', connectionString: DATABASE_URL, schema: schema! }), 1);
    await storm(r);
    verify(r);
    for (const h of r.hosts) expect((await h.stop('SIGTERM')).code, `${h.label} exit code`).to.equal(0);
    passed = true;
  });

  it('three run hosts on one PostgreSQL schema, the polling host stopped and taken over midway, with 20 CLI processes beside them: one unbroken chain', async () => {
    schema = freshSchema('ah_rotation');
    const r = await start(() => ({ kind: 'postgres', connectionString: DATABASE_URL, schema: schema! }), 3);
    await until(() => r.hosts.some((h) => committed(h) > 0), 'a host commits its first cycle', 30_000);
    // The first poller leaves; another host takes the lease and continues the stored chain.
    const first = r.hosts.find((h) => committed(h) > 0)!;
    expect((await first.stop('SIGTERM')).code, `${first.label} exit code`).to.equal(0);
    r.sandbox.admin.submit({});
    await until(() => r.hosts.some((h) => h.alive && committed(h) > 0), 'another host takes over and commits', 30_000);
    await storm(r);
    verify(r);
    const pollers = r.hosts.filter((h) => obtained(h) > 0);
    expect(pollers.length, 'hosts that refreshed tokens').to.be.greaterThan(1);
    for (const h of r.hosts) if (h.alive) expect((await h.stop('SIGTERM')).code, `${h.label} exit code`).to.equal(0);
    passed = true;
  });
});
