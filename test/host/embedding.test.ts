import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ConfigError, createHost, type ApprovalsHost, type LoggerLike } from '../../core/host/index.js';
import { RecordingNotifier } from '../../core/testing/recording-notifier.js';
import { ScriptedSource } from '../../core/testing/scripted-source.js';
import { runCli } from '../support/cli.js';

const FILE_SOURCE = resolve(process.cwd(), 'test/fixtures/file-source-plugin');
const FAILING_SOURCE = resolve(process.cwd(), 'test/fixtures/failing-source-plugin');

/** A pino-compatible logger that keeps what it is given. */
class KeepingLogger implements LoggerLike {
  readonly lines: { level: string; fields: object; message: string | undefined }[] = [];
  constructor(readonly level = 'info') {}
  info(fields: object, message?: string): void {
    this.lines.push({ level: 'info', fields, message });
  }
  warn(fields: object, message?: string): void {
    this.lines.push({ level: 'warn', fields, message });
  }
  error(fields: object, message?: string): void {
    this.lines.push({ level: 'error', fields, message });
  }
}

describe('approvals-hub/host: embedding the host', function () {
  this.timeout(60_000);
  let dir: string;
  const hosts: ApprovalsHost[] = [];
  const track = (h: ApprovalsHost): ApprovalsHost => (hosts.push(h), h);

  /** A file source with two pending approvals for ada@example.test. */
  const fileDeployment = () => {
    writeFileSync(
      join(dir, 'truth.json'),
      JSON.stringify({
        approvals: ['A-1', 'A-2'].map((externalId, i) => ({
          externalId,
          title: `Request ${externalId}`,
          status: 'pending',
          approvers: [{ sourceUserId: 'u1', email: 'ada@example.test' }],
          seq: i + 1,
          updatedAt: new Date().toISOString(),
        })),
      }),
    );
    return {
      plugins: [FILE_SOURCE],
      queue: { adapter: 'sqlite', config: { path: 'queue.db' } },
      sources: [{ id: 'files', plugin: 'file-source', config: { path: 'truth.json' } }],
      notifiers: [],
    };
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ah-embed-'));
  });

  afterEach(async () => {
    for (const h of hosts.splice(0)) await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a bad deployment file with the same problem lines the CLI prints', async () => {
    const file = join(dir, 'approvals.config.json');
    writeFileSync(file, JSON.stringify({ queue: { adapter: 'nosuch' }, sources: [{ id: 'Bad Id', plugin: 'concur' }], retentionDays: 0 }));
    const cli = await runCli(['config', 'validate', file], { cwd: dir });
    expect(cli.code).to.equal(2);
    const error = await createHost({ deployment: file }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems.length).to.be.greaterThan(0);
    expect(problems.join('\n')).to.equal(cli.stderr.trim());
  });

  it('refuses a bad deployment object with the same problem lines as the same file', async () => {
    const bad = { queue: { adapter: 'memory' }, sources: [{ id: 'files', plugin: 'file-source', config: {} }], plugins: [FILE_SOURCE], colour: 'red' };
    const file = join(dir, 'approvals.config.json');
    writeFileSync(file, JSON.stringify(bad));
    const fromFile = await createHost({ deployment: file }).catch((e: ConfigError) => e.problems);
    const fromObject = await createHost({ deployment: bad }).catch((e: ConfigError) => e.problems);
    expect(fromObject).to.deep.equal(fromFile);
    expect(fromObject).to.include('colour: is not a known setting');
    expect(bad).not.to.have.property('retentionDays'); // the caller's object is not filled with defaults
  });

  it('runs one cycle and answers what waits on an approver, with relative paths under baseDir', async () => {
    const notifier = new RecordingNotifier('app');
    const host = track(await createHost({ deployment: fileDeployment(), baseDir: dir, notifiers: [notifier], logLevel: 'warn' }));
    const report = await host.runOnce();
    expect(report.summary).to.deep.equal(['files: 2 new, 0 updated, 0 completed, 0 expired', 'delivered 2, retrying 0, dead 0']);
    expect(notifier.messages.map((m) => m.card.approvalKey).sort()).to.deep.equal(['files:request:A-1', 'files:request:A-2']);
    expect((await host.waitingOn('Ada@Example.test')).map((a) => a.key).sort()).to.deep.equal(['files:request:A-1', 'files:request:A-2']);
    expect(host.deployment.baseDir).to.equal(resolve(dir));
  });

  it('removes an approval as an operator: audit-logged, and its card closed', async () => {
    const notifier = new RecordingNotifier('app');
    const host = track(await createHost({ deployment: fileDeployment(), baseDir: dir, notifiers: [notifier], logLevel: 'warn' }));
    await host.runOnce();
    await host.remove('files:request:A-1', { actor: 'grace' });
    expect(notifier.for('ada@example.test', 'files:request:A-1').map((m) => m.action)).to.deep.equal(['notify', 'close']);
    expect((await host.waitingOn('ada@example.test')).map((a) => a.key)).to.deep.equal(['files:request:A-2']);
    const [entry] = await host.auditLog();
    expect(entry).to.include({ actor: 'grace', action: 'queue.remove', key: 'files:request:A-1' });
    // audit --fix puts it back: the source still has it pending.
    const differences = await host.audit({ actor: 'grace', fix: true });
    expect(differences.map((d) => [d.kind, d.key])).to.deep.equal([['missing', 'files:request:A-1']]);
    expect(await host.waitingOn('ada@example.test')).to.have.length(2);
  });

  it('resyncs an approval the source no longer has pending: removed, and its card closed', async () => {
    const notifier = new RecordingNotifier('app');
    const host = track(await createHost({ deployment: fileDeployment(), baseDir: dir, notifiers: [notifier], logLevel: 'warn' }));
    await host.runOnce();
    const truth = JSON.parse(readFileSync(join(dir, 'truth.json'), 'utf8')) as { approvals: { externalId: string; status: string; seq: number }[] };
    truth.approvals[0]!.status = 'approved';
    writeFileSync(join(dir, 'truth.json'), JSON.stringify(truth));
    expect(await host.resync('files:request:A-1', { actor: 'grace' })).to.deep.equal({ status: 'approved', queued: false });
    expect(notifier.for('ada@example.test', 'files:request:A-1').map((m) => m.action)).to.deep.equal(['notify', 'close']);
    expect((await host.auditLog())[0]).to.include({ actor: 'grace', action: 'queue.resync', key: 'files:request:A-1' });
  });

  it('starts the loops and the HTTP server, and stops them', async () => {
    const notifier = new RecordingNotifier('app');
    const host = track(
      await createHost({ deployment: { ...fileDeployment(), http: { host: '127.0.0.1', port: 0 } }, baseDir: dir, notifiers: [notifier], logLevel: 'warn' }),
    );
    expect(host.url).to.equal(undefined);
    await host.start();
    expect((await fetch(`${host.url!}/healthz`)).status).to.equal(200);
    // A cycle joined while the loops run sees the same queue.
    await host.runOnce();
    expect(await host.waitingOn('ada@example.test')).to.have.length(2);
    const url = host.url!;
    await host.stop();
    const refused = await fetch(`${url}/healthz`).then(
      () => 'answered',
      () => 'refused',
    );
    expect(refused).to.equal('refused');
  });

  it('writes through a pino logger given as is', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const host = track(
      await createHost({
        deployment: {
          plugins: [FAILING_SOURCE],
          queue: { adapter: 'memory' },
          sources: [{ id: 'leaky', plugin: 'failing-source', config: { token: { env: 'AH_TEST_PINO_TOKEN' }, failAt: 'cycle' } }],
          notifiers: [],
        },
        env: { AH_TEST_PINO_TOKEN: 'tok-0a9b8c7d6e-pino-secret' },
        logger,
      }),
    );
    await host.runOnce();
    const failed = lines
      .map((l) => JSON.parse(l) as { level: number; msg: string; source?: string; time: number })
      .find((l) => l.msg.startsWith('cycle failed'));
    expect(failed).to.include({ level: 50, source: 'leaky' });
    expect(failed?.time).to.be.a('number');
    expect(JSON.stringify(failed)).to.include('Bearer [REDACTED]');
    expect(lines.join('\n')).not.to.include('tok-0a9b8c7d6e-pino-secret');
  });

  it("hands log lines to the application's logger with secrets scrubbed", async () => {
    const token = 'tok-81c3d5e7a9-embedded-secret';
    const logger = new KeepingLogger();
    const host = track(
      await createHost({
        deployment: {
          plugins: [FAILING_SOURCE],
          queue: { adapter: 'memory' },
          sources: [{ id: 'leaky', plugin: 'failing-source', config: { token: { env: 'AH_TEST_EMBED_TOKEN' }, failAt: 'cycle' } }],
          notifiers: [],
        },
        env: { AH_TEST_EMBED_TOKEN: token },
        logger,
      }),
    );
    const report = await host.runOnce();
    expect(report.failures.map((f) => f.source)).to.deep.equal(['leaky']);
    const failed = logger.lines.find((l) => l.message?.startsWith('cycle failed'));
    expect(failed?.level).to.equal('error');
    expect(failed?.fields).to.include({ source: 'leaky' });
    expect(JSON.stringify(failed?.fields)).to.include('Bearer [REDACTED]');
    expect(JSON.stringify(logger.lines)).not.to.include(token);
  });

  it("registers its metrics on the application's registry, and removes them when stopped", async () => {
    const registry = new Registry();
    const first = track(await createHost({ deployment: fileDeployment(), baseDir: dir, registry, logLevel: 'warn' }));
    await first.runOnce();
    expect(first.registry).to.equal(registry);
    expect(await registry.getSingleMetricAsString('approvals_hub_queue_size')).to.match(/^approvals_hub_queue_size 2$/m);
    expect(registry.getSingleMetric('approvals_hub_process_cpu_seconds_total')).to.equal(undefined);
    await first.stop();
    expect(registry.getMetricsAsArray()).to.deep.equal([]);
    // The same registry serves the next host.
    const second = track(
      await createHost({
        deployment: { queue: { adapter: 'memory' }, notifiers: [] },
        registry,
        sources: [new ScriptedSource('scripted', { now: () => new Date() })],
        logLevel: 'warn',
      }),
    );
    await second.runOnce();
    expect(registry.getSingleMetric('approvals_hub_poll_duration_seconds')).not.to.equal(undefined);
  });

  it('stops once, and refuses work after it stopped', async () => {
    const host = track(await createHost({ deployment: { queue: { adapter: 'memory' }, notifiers: [] }, logLevel: 'warn' }));
    await Promise.all([host.stop(), host.stop()]);
    await host.stop();
    let refused: unknown;
    try {
      await host.runOnce();
    } catch (error) {
      refused = error;
    }
    expect((refused as Error).message).to.match(/host is stopped/);
  });
});
