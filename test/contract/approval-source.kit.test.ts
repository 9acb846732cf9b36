import assert from 'node:assert/strict';
import { Host } from '../../core/host/host.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { createLogger } from '../../core/host/logging.js';
import type { Approval, ApprovalSource, SourceBatch } from '../../core/index.js';
import { ManualClock, ScriptedSource, checkApprovalSource, describeApprovalSource, type SourceDriver } from '../../core/testing/index.js';
import { startConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { startServiceNowSandbox } from '../../plugins/servicenow/sandbox/index.js';
import { SMALL_COMPANY, sandboxSource } from '../support/sandbox-deployment.js';
import { EMPTY_INSTANCE, serviceNowSource } from '../support/servicenow-harness.js';

const PAGE = 2;

/**
 * The real Concur plugin, built by a host from a deployment like an operator's, reading a Concur
 * sandbox on loopback; the driver is the sandbox's admin API (what a tester does in the Concur UI).
 */
describeApprovalSource(
  'concur (sandbox on loopback)',
  async () => {
    const sandbox = await startConcurSandbox({ ...SMALL_COMPANY });
    const concur = sandboxSource(sandbox, { id: 'acme', config: { pageSize: PAGE, maxAttempts: 1, timeoutSeconds: 2 } });
    const host = await Host.create(
      loadDeployment(undefined, { raw: { queue: { adapter: 'memory', config: {} }, sources: [concur.source], notifiers: [] }, env: concur.env }),
      { clock: { now: () => new Date(sandbox.admin.now()) }, logger: createLogger({ level: 'silent' }) },
    );
    const admin = sandbox.admin;
    let edits = 0;
    const driver: SourceDriver = {
      submit: async () => admin.submit({ entries: 1 }).ID,
      change: async (id) => void admin.edit(id, { name: `Edited ${++edits}` }),
      complete: async (id) => void admin.approve(id, { status: 'A_APPR' }),
      reassign: async (id) => {
        const current = admin.report(id)?.ApproverLoginID;
        const other = admin.users().find((u) => u.isApprover && u.loginId !== current);
        if (!other) throw new Error('the sandbox company has a single approver');
        admin.reassign(id, other.loginId);
      },
      fail: async () => admin.setFaults({ rate503: 1 }),
      recover: async () => admin.setFaults('none'),
      tick: async () => void admin.advanceClock(60),
    };
    return {
      source: host.sources.get('acme')!,
      driver,
      close: async () => {
        await host.stop();
        await sandbox.close();
      },
    };
  },
  { batchSize: PAGE, kinds: ['expense-report'] },
);

/**
 * The real ServiceNow plugin, built by a host from a deployment, reading a ServiceNow sandbox on
 * loopback with the client-credentials grant; the driver is the sandbox's admin API (what a
 * requester and an approver do in the ServiceNow UI). Ties come in an unstable order.
 */
describeApprovalSource(
  'servicenow (sandbox on loopback)',
  async () => {
    const sandbox = await startServiceNowSandbox({ ...EMPTY_INSTANCE });
    const snow = serviceNowSource(sandbox, { id: 'snow', config: { pageSize: PAGE, maxAttempts: 1, timeoutSeconds: 2 } });
    const host = await Host.create(
      loadDeployment(undefined, { raw: { queue: { adapter: 'memory', config: {} }, sources: [snow.source], notifiers: [] }, env: snow.env }),
      { clock: { now: () => new Date(`${sandbox.admin.now().replace(' ', 'T')}Z`) }, logger: createLogger({ level: 'silent' }) },
    );
    const admin = sandbox.admin;
    const people = admin.users().slice(1);
    let edits = 0;
    const driver: SourceDriver = {
      submit: async () => admin.createApprovals({ count: 1, approvers: [people[0]!.sysId] }).approvals[0]!,
      change: async (id) => {
        const task = admin.record('sysapproval_approver', id)!.sysapproval!;
        admin.touch([task], { short_description: `Edited ${++edits}` }, 'sc_req_item');
        admin.touch([id], { due_date: admin.now() });
      },
      complete: async (id) => void admin.approve(id, 'fine'),
      reassign: async (id) => {
        const current = admin.record('sysapproval_approver', id)!.approver;
        admin.reassign(id, people.find((u) => u.sysId !== current)!.sysId);
      },
      fail: async () => admin.setFaults({ rate503: 1 }),
      recover: async () => admin.setFaults('none'),
      tick: async () => void admin.advanceClock(60),
    };
    return {
      source: host.sources.get('snow')!,
      driver,
      close: async () => {
        await host.stop();
        await sandbox.close();
      },
    };
  },
  { batchSize: PAGE, kinds: ['requested-item', 'change-request', 'approval'] },
);

/** The core's own fake, so what tests of the pipeline assume of a source is what the kit checks. */
function scripted(pageSize = 1): { source: ScriptedSource; driver: SourceDriver } {
  const clock = new ManualClock(new Date('2026-03-02T09:00:00.000Z'));
  const source = new ScriptedSource('scripted', clock, pageSize);
  let n = 0;
  const driver: SourceDriver = {
    submit: async () => source.submit(`R${++n}`, { approvers: [{ sourceUserId: 'grace' }] }).externalId,
    change: async (id) => source.modify(id, `Edited ${id}`),
    complete: async (id) => source.complete(id, 'approved'),
    reassign: async (id) => source.reassign(id, [{ sourceUserId: 'alan' }]),
    fail: async () => void (source.failWith = new Error('scripted outage')),
    recover: async () => void (source.failWith = undefined),
    tick: async () => clock.advance(60_000),
  };
  return { source, driver };
}

describeApprovalSource('ScriptedSource (core/testing fake)', async () => scripted(), { kinds: ['expense-report'] });

/**
 * A source written the way the outside plugin was: keys without the instance id, times as
 * Concur prints them (no zone), and the cursor on every batch. It wraps a ScriptedSource so the
 * driver still works.
 */
class BrokenSource implements ApprovalSource {
  readonly capabilities = { actions: [] };
  constructor(private readonly inner: ScriptedSource) {}
  get id(): string {
    return this.inner.id;
  }
  private mangle(a: Approval): Approval {
    return { ...a, key: `expense-report:${a.externalId}`, sourceUpdatedAt: a.sourceUpdatedAt.replace('T', ' ').replace(/\.\d+Z$/, '') };
  }
  async *changes(cursor: string | undefined, ctx: Parameters<ApprovalSource['changes']>[1]): AsyncIterable<SourceBatch> {
    let last: string | undefined;
    for await (const batch of this.inner.changes(cursor, ctx)) {
      last = batch.cursor ?? last ?? cursor ?? '0';
      yield { approvals: batch.approvals.map((a) => this.mangle(a)), cursor: String(Number(last) + 0) };
    }
  }
  async *listPending(ctx: Parameters<ApprovalSource['listPending']>[0]): AsyncIterable<readonly Approval[]> {
    for await (const batch of this.inner.listPending()) yield batch.map((a) => this.mangle(a));
  }
  async verify(...args: Parameters<ApprovalSource['verify']>): ReturnType<ApprovalSource['verify']> {
    return this.inner.verify(args[0]);
  }
}

describe('ApprovalSource contract kit, run on a broken source', () => {
  it('reports a key without the <sourceId>:<kind>: prefix, a non-ISO sourceUpdatedAt and a cursor on a middle batch', async () => {
    const results = await checkApprovalSource(
      async () => {
        const { source, driver } = scripted(1);
        return { source: new BrokenSource(source), driver };
      },
      {},
      ['first sync'],
    );
    const problems = results.flatMap((r) => r.problems).join('\n');

    assert.match(problems, /key does not start with "scripted:expense-report:"/);
    assert.match(problems, /sourceUpdatedAt "2026-03-02 09:00:00" is not an ISO-8601 UTC time/);
    assert.match(problems, /batch 0 of 2 carries a cursor; only the batch that completes a result set/);
  });

  it('passes the same source unbroken, so the problems above are the breakage and nothing else', async () => {
    const results = await checkApprovalSource(async () => scripted(1), {}, ['first sync']);
    assert.deepEqual(results, [{ case: 'first sync', problems: [] }]);
  });
});
