import { expect } from 'chai';
import { concurHarness, SOURCE, type ConcurHarness } from '../support/concur-harness.js';

const NO_DRIFT = { missed: 0, 'completion-missed': 0, reassigned: 0, changed: 0 };

describe('sweep drift with the Concur plugin against the sandbox (real HTTP on loopback, real SQLite)', function () {
  this.timeout(60_000);
  let h: ConcurHarness;
  afterEach(async () => h?.close());

  const approverOf = (id: string) => h.sandbox.admin.state().reports.find((r) => r.id === id)!.approverLoginID!;
  const otherApprover = (login: string) => h.sandbox.admin.users().find((u) => u.isApprover && u.loginId !== login)!.loginId;
  const seriesOf = async (name: string) => (await h.host.metrics.render()).split('\n').filter((l) => l.startsWith(`${name}{`));
  const warnings = () => h.logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 40);

  it('counts no drift and refuses nothing over cycles that sweep every time, in normal operation', async () => {
    h = await concurHarness({ sweepIntervalSeconds: 0 });
    const [a, b, c, d] = [0, 1, 2, 3].map(() => h.sandbox.admin.submit({ entries: 2 }));
    const reports = [await h.cycle()];
    h.advance(120);
    h.sandbox.admin.approve(a!.ID);
    h.sandbox.admin.edit(b!.ID, { name: 'Q3 offsite (corrected)' });
    h.sandbox.admin.reassign(c!.ID, otherApprover(approverOf(c!.ID)));
    const e = h.sandbox.admin.submit({});
    h.advance(120);
    reports.push(await h.cycle());
    h.sandbox.admin.sendBack(d!.ID, 'missing receipt');
    reports.push(await h.cycle()); // changed just before the cycle
    h.advance(900);
    h.sandbox.admin.recall(e.ID);
    h.advance(120);
    reports.push(await h.cycle());
    h.advance(900);
    reports.push(await h.cycle());

    const cycles = reports.map((r) => r.cycles[0]!);
    expect(cycles.map((x) => x.swept)).to.deep.equal([true, true, true, true, true]);
    expect(cycles.map((x) => x.driftByCause)).to.deep.equal(Array(5).fill(NO_DRIFT));
    expect(cycles.map((x) => x.rejected)).to.deep.equal([0, 0, 0, 0, 0]);
    expect((await h.host.queue.keys(SOURCE)).map((k) => k.externalId).sort()).to.deep.equal([b!.ID, c!.ID].sort());
    expect(await seriesOf('approvals_hub_sweep_drift_total')).to.deep.equal([]);
    expect(await seriesOf('approvals_hub_source_rejected_total')).to.deep.equal([]);
    expect(warnings().filter((w) => /sweep repaired|refused/.test(w.msg))).to.deep.equal([]);
  });

  it('counts an approval the feed never showed (a workflow step that does not bump LastModifiedDate) as completion-missed', async () => {
    h = await concurHarness({ sandbox: { workflowBumpsLastModified: false } });
    const report = h.sandbox.admin.submit({});
    await h.cycle();
    h.advance(600);
    h.sandbox.admin.submit({}); // moves the cursor past the overlap window that would re-read the report
    await h.cycle();
    h.sandbox.admin.approve(report.ID);
    h.advance(15 * 60);
    const { cycles } = await h.cycle();

    expect(cycles[0]!.swept).to.equal(true);
    expect(cycles[0]!.driftByCause).to.deep.equal({ ...NO_DRIFT, 'completion-missed': 1 });
    expect(await seriesOf('approvals_hub_sweep_drift_total')).to.deep.equal([
      `approvals_hub_sweep_drift_total{source="${SOURCE}",cause="completion-missed"} 1`,
    ]);
  });
});
