import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { callsTo, startConcurSandbox, type ConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { runCli, startCli } from '../support/cli.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';

interface Row {
  externalId: string;
  title: string;
  status: string;
  approvers: { sourceUserId: string; email: string; name?: string }[];
  seq: number;
  updatedAt: string;
  amount?: string;
}

describe('operator CLI (queue, audit, audit-log) on a real host and SQLite file', function () {
  this.timeout(60_000);
  let dir: string;
  let rows: Row[];
  const config = () => join(dir, 'approvals.config.json');
  const cli = (...args: string[]) => runCli([...args, '--config', config()], { cwd: dir });
  const write = () => writeFileSync(join(dir, 'truth.json'), JSON.stringify({ approvals: rows }));
  const now = new Date().toISOString();

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ah-cli-'));
    rows = [
      {
        externalId: 'A1',
        title: 'Offsite',
        status: 'pending',
        approvers: [{ sourceUserId: 'ann', email: 'Ann@Example.test', name: 'Ann' }],
        seq: 1,
        updatedAt: now,
        amount: '120.50',
      },
      { externalId: 'A2', title: 'Laptop', status: 'pending', approvers: [{ sourceUserId: 'bob', email: 'bob@example.test' }], seq: 2, updatedAt: now },
      { externalId: 'A3', title: 'Travel', status: 'pending', approvers: [{ sourceUserId: 'ann', email: 'ann@example.test' }], seq: 3, updatedAt: now },
    ];
    write();
    writeFileSync(
      config(),
      JSON.stringify({
        plugins: [resolve(process.cwd(), 'test/fixtures/file-source-plugin')],
        queue: { adapter: 'sqlite', config: { path: 'queue.db' } },
        sources: [{ id: 'files', plugin: 'file-source', config: { path: 'truth.json' } }],
        notifiers: [{ id: 'console', plugin: 'console' }],
      }),
    );
    const r = await cli('run', '--once');
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('files: 3 new');
  });

  it('lists the queue as JSON in the documented, stable shape', async () => {
    const r = await cli('queue', 'list', '--json');
    expect(r.code, r.stderr).to.equal(0);
    const list = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(list).to.have.length(3);
    const a1 = list.find((a) => a.externalId === 'A1')!;
    expect(Object.keys(a1)).to.deep.equal([
      'key',
      'source',
      'kind',
      'externalId',
      'title',
      'status',
      'requester',
      'approvers',
      'amount',
      'submittedAt',
      'sourceUpdatedAt',
      'links',
      'fields',
      'lineItems',
      'flags',
    ]);
    expect(a1).to.deep.include({
      key: 'files:request:A1',
      source: 'files',
      kind: 'request',
      title: 'Offsite',
      status: 'pending',
      requester: { name: 'Requester', email: null },
      approvers: [{ sourceUserId: 'ann', name: 'Ann', email: 'ann@example.test' }],
      amount: { value: '120.50', currency: 'EUR' },
      links: { view: 'https://files.example.test/A1' },
      lineItems: null,
    });
  });

  it('lists only what waits on one approver, matching the e-mail case-insensitively', async () => {
    const r = await cli('queue', 'list', '--approver', 'ANN@example.test', '--json');
    expect((JSON.parse(r.stdout) as { externalId: string }[]).map((a) => a.externalId).sort()).to.deep.equal(['A1', 'A3']);
  });

  it('shows one approval, and fails clearly for a key that is not queued', async () => {
    const shown = await cli('queue', 'show', 'files:request:A2', '--json');
    expect(JSON.parse(shown.stdout)).to.include({ key: 'files:request:A2', title: 'Laptop' });
    const missing = await cli('queue', 'show', 'files:request:NOPE');
    expect(missing.code).to.equal(1);
    expect(missing.stderr.trim()).to.equal('files:request:NOPE is not queued');
  });

  it('removes an approval by hand and records who did it', async () => {
    const r = await cli('queue', 'remove', 'files:request:A2', '--actor', 'alice');
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('CLOSED for bob@example.test');
    const list = JSON.parse((await cli('queue', 'list', '--json')).stdout) as { externalId: string }[];
    expect(list.map((a) => a.externalId).sort()).to.deep.equal(['A1', 'A3']);
    const log = JSON.parse((await cli('audit-log', '--json')).stdout) as { actor: string; action: string; key: string; at: string }[];
    expect(log[0]).to.include({ actor: 'alice', action: 'queue.remove', key: 'files:request:A2' });
    expect(Date.parse(log[0]!.at)).to.be.a('number').and.not.be.NaN;
  });

  it('resyncs an approval from its source, removing it when no longer pending', async () => {
    rows[0]!.status = 'approved'; // changed in the source without the feed noticing (same seq)
    write();
    const r = await cli('queue', 'resync', 'files:request:A1', '--actor', 'alice');
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('files:request:A1: source says approved; not queued');
    const log = JSON.parse((await cli('audit-log', '--json')).stdout) as { action: string; detail: string }[];
    expect(log[0]).to.include({ action: 'queue.resync', detail: 'source says approved' });
  });

  it('audits the queue against the source and repairs every difference with --fix', async () => {
    rows[1]!.status = 'approved'; // stale in the queue
    rows.push({
      externalId: 'A4',
      title: 'Missed',
      status: 'pending',
      approvers: [{ sourceUserId: 'bob', email: 'bob@example.test' }],
      seq: 0,
      updatedAt: now,
    });
    write();
    const found = await cli('audit', '--json');
    expect(found.code, found.stderr).to.equal(0);
    const diffs = (JSON.parse(found.stdout) as { differences: { kind: string; key: string }[] }).differences;
    expect(diffs.map((d) => `${d.kind} ${d.key}`).sort()).to.deep.equal(['missing files:request:A4', 'stale files:request:A2']);
    const fixed = await cli('audit', '--fix', '--actor', 'ops-bot');
    expect(fixed.stdout).to.include('2 difference(s), fixed');
    const again = JSON.parse((await cli('audit', '--json')).stdout) as { differences: unknown[] };
    expect(again.differences).to.deep.equal([]);
    const log = JSON.parse((await cli('audit-log', '--json')).stdout) as { actor: string; action: string }[];
    expect(log.filter((l) => l.action === 'audit.fix' && l.actor === 'ops-bot')).to.have.length(2);
  });

  it('lists approvers who cannot be reached, with how many approvals wait on each', async () => {
    rows.push(
      {
        externalId: 'A5',
        title: 'Unknown approver',
        status: 'pending',
        approvers: [{ sourceUserId: 'carl' } as Row['approvers'][number]],
        seq: 4,
        updatedAt: now,
      },
      {
        externalId: 'A6',
        title: 'Unknown approver',
        status: 'pending',
        approvers: [{ sourceUserId: 'carl' } as Row['approvers'][number]],
        seq: 5,
        updatedAt: now,
      },
    );
    write();
    await cli('run', '--once');
    const r = await cli('diagnostics', '--json');
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal({
      unreachable: [{ source: 'files', approver: 'carl', reason: 'no e-mail: identity lookup failing or person unknown', waiting: 2 }],
      backfill: [],
      deprecations: [],
      events: [],
    });
  });

  it('stops gracefully on SIGTERM and exits 0', async () => {
    const child = startCli(['run', '--config', config()], { cwd: dir, env: { LOG_LEVEL: 'info' } });
    let stderr = '';
    // Signalled once it says it runs (its handlers are installed in the same tick), not after a
    // fixed wait that a loaded machine can outlast while the process is still loading.
    const running = new Promise<void>((resolve) =>
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('approvals-hub running')) resolve();
      }),
    );
    await running;
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    expect(code, stderr).to.equal(0);
  });
});

describe('diagnostics and queue show of a Concur backlog, each command a fresh process', function () {
  this.timeout(120_000);
  let sandbox: ConcurSandbox;
  afterEach(async () => sandbox?.close());

  it('reports the backfill left, which each cycle brings down, and queue show --json carries the line items read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ah-cli-backfill-'));
    // The CLI runs on the system clock, so the sandbox's clock follows real time too.
    sandbox = await startConcurSandbox({ ...SMALL_COMPANY, clock: new Date(), freezeClock: false });
    const reports = Array.from({ length: 150 }, () => sandbox.admin.submit({ entries: 2 }));
    const { source, env } = sandboxSource(sandbox);
    writeFileSync(join(dir, 'approvals.config.json'), JSON.stringify({ queue: { adapter: 'sqlite', config: { path: 'queue.db' } }, sources: [source] }));
    const cli = async (...args: string[]) => {
      const r = await runCli([...args, '--config', join(dir, 'approvals.config.json')], { cwd: dir, env });
      expect(r.code, `${args.join(' ')}: ${r.signal ?? ''} ${r.stderr}`).to.equal(0);
      return r.stdout;
    };
    const backfill = async () => (JSON.parse(await cli('diagnostics', '--json')) as { backfill: unknown[] }).backfill;

    await cli('run', '--once');
    expect(callsTo(sandbox.calls(), 'GET /api/v3.0/expense/entries'), 'go-live lists only').to.equal(0);
    expect(await backfill()).to.deep.equal([{ source: 'acme', pending: 150 }]);
    expect(await cli('diagnostics')).to.include('acme  backfill: 150 ');
    sandbox.resetCalls();
    await cli('run', '--once');
    expect(callsTo(sandbox.calls(), 'GET /api/v3.0/expense/entries'), 'the default budget, nothing for the overlap re-read').to.equal(20);
    expect(await backfill()).to.deep.equal([{ source: 'acme', pending: 130 }]);
    const listed = JSON.parse(await cli('queue', 'list', '--json')) as { externalId: string; lineItems: unknown[] | null }[];
    expect(listed.filter((a) => a.lineItems?.length === 2)).to.have.length(20);
    expect(listed.filter((a) => a.lineItems === null)).to.have.length(130);
    const read = listed.find((a) => a.lineItems !== null)!;
    expect(reports.map((r) => r.ID)).to.include(read.externalId);
    const shown = JSON.parse(await cli('queue', 'show', `acme:expense-report:${read.externalId}`, '--json')) as { lineItems: unknown[] };
    expect(shown.lineItems).to.have.length(2);
  });
});

describe('npm start on embedded defaults', function () {
  this.timeout(60_000);

  it('runs a cycle against the in-process Concur sandbox and prints cards, with no config file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ah-start-'));
    const r = await runCli(['run', '--once'], { cwd: dir });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/concur-sandbox: \d+ new/);
    expect(r.stdout).to.include('[View Expense Report] https://www.concursolutions.com/goto/expense-report/');
    const listed = await runCli(['queue', 'list', '--json'], { cwd: dir });
    expect((JSON.parse(listed.stdout) as unknown[]).length).to.be.greaterThan(0);
  });
});
