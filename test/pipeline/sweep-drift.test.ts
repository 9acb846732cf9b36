import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { createLogger } from '../../core/host/logging.js';
import { onceSummary } from '../../core/host/once-summary.js';
import type { SourceBatch, SyncContext } from '../../core/index.js';
import { ManualClock, ScriptedSource } from '../../core/testing/index.js';

const ANN = { sourceUserId: 'ann', email: 'ann@example.test' };
const BOB = { sourceUserId: 'bob', email: 'bob@example.test' };

/** A broken plugin: its incremental feed never reports an approval that left pending. */
class NoCompletionsSource extends ScriptedSource {
  override async *changes(cursor: string | undefined, ctx: SyncContext): AsyncIterable<SourceBatch> {
    for await (const batch of super.changes(cursor, ctx)) yield { ...batch, approvals: batch.approvals.filter((a) => a.status === 'pending') };
  }
}

/** A broken plugin: it yields the first change since the cursor and moves the cursor past all of them. */
class CursorSkippingSource extends ScriptedSource {
  override async *changes(cursor: string | undefined, ctx: SyncContext): AsyncIterable<SourceBatch> {
    for await (const batch of super.changes(cursor, ctx)) yield { ...batch, approvals: batch.approvals.slice(0, 1) };
  }
}

describe('drift the sweep repairs is counted per source and cause (scripted sources, SQLite, sweep every cycle)', function () {
  this.timeout(30_000);
  let dir: string;
  let clock: ManualClock;
  let host: Host | undefined;
  let logs: string[];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ah-drift-'));
    clock = new ManualClock('2026-01-05T09:00:00.000Z');
    logs = [];
  });
  afterEach(async () => {
    await host?.stop();
    host = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(source: ScriptedSource): Promise<Host> {
    const deployment = loadDeployment(undefined, { raw: { queue: { adapter: 'sqlite', config: { path: join(dir, 'queue.db') } }, notifiers: [] }, env: {} });
    host = await Host.create(deployment, {
      clock,
      sources: [source],
      logger: createLogger({ level: 'info', destination: { write: (line: string) => void logs.push(line) } as never }),
    });
    return host;
  }

  const minutes = (n: number) => clock.advance(n * 60_000);
  const warnings = () => logs.map((l) => JSON.parse(l) as { level: number; msg: string; drift?: Record<string, number> }).filter((l) => l.level === 40);
  const driftMetrics = async () => (await host!.metrics.render()).split('\n').filter((l) => l.startsWith('approvals_hub_sweep_drift_total{'));
  const queued = async () => (await host!.queue.keys('src')).map((k) => k.externalId);

  it('counts a completion only the sweep saw as completion-missed, warns, and shows it in the run --once summary', async () => {
    const source = new NoCompletionsSource('src', clock);
    const h = await start(source);
    source.submit('R1', { approvers: [ANN] });
    source.submit('R2', { approvers: [ANN] });
    await h.runOnce();
    minutes(5);
    source.complete('R1', 'approved');
    minutes(5);
    const report = await h.runOnce();

    expect(await queued(), 'the sweep still repairs it').to.deep.equal(['R2']);
    const [cycle] = report.cycles;
    expect(cycle!.driftByCause).to.deep.equal({ missed: 0, 'completion-missed': 1, reassigned: 0, changed: 0 });
    expect(cycle!.drift).to.equal(1);
    expect(await driftMetrics()).to.deep.equal(['approvals_hub_sweep_drift_total{source="src",cause="completion-missed"} 1']);
    expect(warnings().map((w) => [w.msg, w.drift])).to.deep.equal([
      [
        'the sweep repaired what the incremental feed of source "src" missed: missed 0, completion-missed 1, reassigned 0, changed 0',
        { missed: 0, 'completion-missed': 1, reassigned: 0, changed: 0 },
      ],
    ]);
    expect(onceSummary(report)[0]).to.equal('src: 0 new, 0 updated, 1 completed, 0 expired, swept, drift 1 (completion-missed 1)');
  });

  it('counts approvals a cursor skipped past as missed, but nothing the first sync lists', async () => {
    const source = new CursorSkippingSource('src', clock);
    const h = await start(source);
    for (const id of ['R1', 'R2', 'R3']) source.submit(id, { approvers: [ANN] });
    minutes(5);
    const first = await h.runOnce();
    expect(await queued()).to.deep.equal(['R1', 'R2', 'R3']);
    expect(first.cycles[0]!.drift, 'a first sync is a sweep, not drift').to.equal(0);

    minutes(5);
    source.submit('R4', { approvers: [ANN] });
    source.submit('R5', { approvers: [BOB] });
    minutes(5);
    const report = await h.runOnce();

    expect(await queued()).to.deep.equal(['R1', 'R2', 'R3', 'R4', 'R5']);
    expect(report.cycles[0]!.driftByCause).to.deep.include({ missed: 1 });
    expect(await driftMetrics()).to.deep.equal(['approvals_hub_sweep_drift_total{source="src",cause="missed"} 1']);
    expect(onceSummary(report)[0]).to.match(/, swept, drift 1 \(missed 1\)$/);
  });

  it('counts a reassignment only the sweep saw as reassigned', async () => {
    const source = new ScriptedSource('src', clock);
    const h = await start(source);
    source.submit('R1', { approvers: [ANN] });
    await h.runOnce();
    minutes(5);
    source.reassign('R1', [BOB], { silent: true });
    const report = await h.runOnce();

    expect((await h.queue.get('src:expense-report:R1'))!.approvers.map((a) => a.sourceUserId)).to.deep.equal(['bob']);
    expect(report.cycles[0]!.driftByCause).to.deep.equal({ missed: 0, 'completion-missed': 0, reassigned: 1, changed: 0 });
  });

  it('counts nothing when the feed delivers every change, made long before a cycle or just before it', async () => {
    const source = new ScriptedSource('src', clock);
    const h = await start(source);
    const cycles = [];
    source.submit('R1', { approvers: [ANN] });
    source.submit('R2', { approvers: [ANN] });
    cycles.push(await h.runOnce());
    minutes(10);
    source.modify('R1', 'Offsite (corrected)');
    source.reassign('R2', [BOB]);
    source.submit('R3', { approvers: [BOB] });
    minutes(10);
    cycles.push(await h.runOnce());
    source.complete('R1', 'approved');
    source.complete('R2', 'rejected');
    cycles.push(await h.runOnce());
    minutes(30);
    cycles.push(await h.runOnce());

    expect(await queued()).to.deep.equal(['R3']);
    expect(cycles.map((c) => c.cycles[0]!.swept)).to.deep.equal([true, true, true, true]);
    expect(cycles.map((c) => c.cycles[0]!.driftByCause)).to.deep.equal(Array(4).fill({ missed: 0, 'completion-missed': 0, reassigned: 0, changed: 0 }));
    expect(await driftMetrics()).to.deep.equal([]);
    expect(warnings()).to.deep.equal([]);
  });
});
