import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCli } from '../support/cli.js';

const MISBEHAVING = resolve(process.cwd(), 'test/fixtures/misbehaving-source-plugin');

/** A well-formed approval of source `files`, last updated `minutesAgo` before now (the CLI runs on the real clock). */
function approval(id: string, minutesAgo: number, status = 'pending', patch: Record<string, unknown> = {}) {
  const at = new Date(Date.now() - minutesAgo * 60_000).toISOString();
  return {
    key: `files:request:${id}`,
    source: 'files',
    kind: 'request',
    externalId: id,
    title: `Request ${id}`,
    status,
    requester: { name: 'Requester' },
    approvers: [{ sourceUserId: 'ann', email: 'ann@example.test' }],
    amount: { value: '12.50', currency: 'EUR' },
    submittedAt: at,
    sourceUpdatedAt: at,
    links: {},
    ...patch,
  };
}

describe('run --once shows drift and refused records; --strict exits 3 on them (CLI, child process, plugin from test/fixtures)', function () {
  this.timeout(60_000);
  let dir: string;
  let config: string;

  const truth = (records: unknown[]) => writeFileSync(join(dir, 'truth.json'), JSON.stringify({ records }));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ah-strict-'));
    config = join(dir, 'approvals.config.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function deploy(faults: string[]): void {
    writeFileSync(
      config,
      JSON.stringify({
        plugins: [MISBEHAVING],
        queue: { adapter: 'sqlite', config: { path: 'queue.db' } },
        sources: [{ id: 'files', plugin: 'misbehaving-source', config: { path: 'truth.json', faults }, sweepIntervalSeconds: 0 }],
        notifiers: [],
      }),
    );
  }

  it('a source that never reports completions: the sweep repair is printed, warned, and --strict exits 3', async () => {
    deploy(['drop-completions']);
    const r2 = approval('R2', 10);
    truth([
      { seq: 1, approval: approval('R1', 10) },
      { seq: 2, approval: r2 },
    ]);
    const first = await runCli(['run', '--once', '--strict', '--config', config], { cwd: dir });
    expect(first.code, `a first sync is no drift; stderr: ${first.stderr}`).to.equal(0);
    expect(first.stdout).to.include('files: 2 new, 0 updated, 0 completed, 0 expired, swept\n');

    truth([
      { seq: 3, approval: approval('R1', 5, 'approved') },
      { seq: 2, approval: r2 },
    ]);
    const second = await runCli(['run', '--once', '--strict', '--config', config], { cwd: dir });

    expect(second.code, second.stderr).to.equal(3);
    expect(second.stdout).to.include('files: 0 new, 0 updated, 1 completed, 0 expired, swept, drift 1 (completion-missed 1)\n');
    expect(second.stderr).to.include(
      'the sweep repaired what the incremental feed of source \\"files\\" (plugin \\"misbehaving-source\\") missed: missed 0, completion-missed 1, reassigned 0, changed 0',
    );
    expect(second.stderr).to.include('drift or refused records (--strict)');
  });

  it('without --strict the same drift exits 0', async () => {
    deploy(['drop-completions']);
    truth([{ seq: 1, approval: approval('R1', 10) }]);
    expect((await runCli(['run', '--once', '--config', config], { cwd: dir })).code).to.equal(0);
    truth([{ seq: 2, approval: approval('R1', 5, 'approved') }]);
    const r = await runCli(['run', '--once', '--config', config], { cwd: dir });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('drift 1 (completion-missed 1)');
  });

  it('a refused record is printed as rejected, logged naming plugin, approval and field, and --strict exits 3', async () => {
    deploy([]);
    truth([
      { seq: 1, approval: approval('R1', 10) },
      { seq: 2, approval: approval('R2', 10, 'pending', { sourceUpdatedAt: '30.11.2026 10:00' }) },
    ]);
    const r = await runCli(['run', '--once', '--strict', '--config', config], { cwd: dir });

    expect(r.code, r.stderr).to.equal(3);
    expect(r.stdout).to.match(/^files: 1 new, .*, 2 rejected$/m); // once by changes(), once by the sweep's listPending()
    expect(r.stderr).to.include(
      'source \\"files\\" (plugin \\"misbehaving-source\\") changes(): refused record \\"files:request:R2\\": sourceUpdatedAt must be ISO-8601 UTC',
    );
  });

  it('--strict without --once is a usage error (exit 2)', async () => {
    deploy([]);
    truth([]);
    const r = await runCli(['run', '--strict', '--config', config], { cwd: dir });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('--strict applies to run --once only');
  });
});
