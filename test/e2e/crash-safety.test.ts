import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, startCli } from '../support/cli.js';
import { prng } from '../soak/soak.js';

interface TruthRow {
  externalId: string;
  title: string;
  status: string;
  approvers: { sourceUserId: string; email: string }[];
  seq: number;
  updatedAt: string;
}

interface SinkLine {
  key: string;
  action: string;
  to: string;
  approval: string;
  revision: number;
  outcome: string | null;
}

describe('crash safety on SQLite (a real host process killed with SIGKILL)', function () {
  this.timeout(240_000);
  const random = prng(Number(process.env.CRASH_SEED ?? 20261128));
  let dir: string;
  let truth: TruthRow[];
  let seq = 0;
  const now = () => new Date().toISOString();

  const writeTruth = () => writeFileSync(join(dir, 'truth.json'), JSON.stringify({ approvals: truth }));
  const sink = (): SinkLine[] =>
    existsSync(join(dir, 'sink.jsonl'))
      ? readFileSync(join(dir, 'sink.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as SinkLine)
      : [];

  /** Starts the host, lets it work for a random while, then kills it without warning. */
  async function killMidCycle(times: number): Promise<number[]> {
    const progress: number[] = [];
    for (let i = 0; i < times; i++) {
      const child = startCli(['run', '--config', join(dir, 'approvals.config.json')], { cwd: dir });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      await sleep(500 + random() * 1500);
      expect(child.exitCode, `host exited early: ${stderr}`).to.equal(null);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('close', r));
      progress.push(sink().length);
    }
    return progress;
  }

  /** A clean run to completion: one cycle and a full delivery pass. */
  async function settle(): Promise<void> {
    const r = await runCli(['run', '--once', '--config', join(dir, 'approvals.config.json')], { cwd: dir });
    expect(r.code, r.stderr).to.equal(0);
  }

  async function queuedKeys(): Promise<string[]> {
    const r = await runCli(['queue', 'list', '--json', '--config', join(dir, 'approvals.config.json')], { cwd: dir });
    expect(r.code, r.stderr).to.equal(0);
    return (JSON.parse(r.stdout) as { key: string }[]).map((a) => a.key).sort();
  }

  /** Every (approval, approver, revision, action) delivered exactly once. */
  function expectExactlyOnce(lines: SinkLine[]): void {
    const counts = new Map<string, number>();
    for (const l of lines) counts.set(l.key, (counts.get(l.key) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1);
    expect(twice, 'duplicate deliveries').to.deep.equal([]);
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ah-crash-'));
    truth = Array.from({ length: 400 }, (_, i) => ({
      externalId: `R${String(i).padStart(4, '0')}`,
      title: `Report ${i}`,
      status: 'pending',
      approvers:
        i % 3 === 0
          ? [
              { sourceUserId: `m${i % 7}`, email: `m${i % 7}@example.test` },
              { sourceUserId: `c${i % 5}`, email: `c${i % 5}@example.test` },
            ]
          : [{ sourceUserId: `m${i % 7}`, email: `m${i % 7}@example.test` }],
      seq: ++seq,
      updatedAt: now(),
    }));
    writeTruth();
    writeFileSync(
      join(dir, 'approvals.config.json'),
      JSON.stringify({
        plugins: [resolve(process.cwd(), 'test/fixtures/file-source-plugin'), resolve(process.cwd(), 'test/fixtures/file-notifier-plugin')],
        queue: { adapter: 'sqlite', config: { path: 'queue.db' } },
        sources: [{ id: 'files', plugin: 'file-source', pollIntervalSeconds: 1, sweepIntervalSeconds: 0, config: { path: 'truth.json', pageSize: 10 } }],
        notifiers: [{ id: 'sink', plugin: 'file-notifier', config: { path: 'sink.jsonl', delayMs: 3 } }],
      }),
    );
  });

  it('queues every approval and notifies each approver exactly once across kills', async () => {
    const progress = await killMidCycle(4);
    await settle();
    const lines = sink();
    const expected = truth.reduce((n, t) => n + t.approvers.length, 0);
    expect(lines.filter((l) => l.action === 'notify')).to.have.length(expected);
    expectExactlyOnce(lines);
    expect(await queuedKeys()).to.deep.equal(truth.map((t) => `files:request:${t.externalId}`).sort());
    // Shown so a reader can see the kills landed mid-delivery, not before or after it.
    console.log(`      deliveries seen at each kill: ${progress.join(', ')} of ${expected}`);
  });

  it('delivers each update and completion exactly once across kills', async () => {
    const before = sink().length;
    for (const t of truth.slice(0, 60)) Object.assign(t, { title: `${t.title} (edited)`, seq: ++seq, updatedAt: now() });
    for (const t of truth.slice(60, 120)) Object.assign(t, { status: 'approved', seq: ++seq, updatedAt: now() });
    writeTruth();
    await killMidCycle(3);
    await settle();
    const lines = sink().slice(before);
    expectExactlyOnce(sink());
    const approversOf = (rows: TruthRow[]) => rows.reduce((n, t) => n + t.approvers.length, 0);
    expect(lines.filter((l) => l.action === 'update' && l.revision === 2)).to.have.length(approversOf(truth.slice(0, 60)));
    expect(lines.filter((l) => l.action === 'close' && l.outcome === 'approved')).to.have.length(approversOf(truth.slice(60, 120)));
    expect(lines.filter((l) => l.action === 'notify')).to.have.length(0);
    const pending = truth
      .filter((t) => t.status === 'pending')
      .map((t) => `files:request:${t.externalId}`)
      .sort();
    expect(await queuedKeys()).to.deep.equal(pending);
  });
});
