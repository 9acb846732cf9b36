import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { createLogger } from '../../core/host/logging.js';
import { checkApproval, checkCompletion, checkCursor, checkVerifyResult, problemLabel } from '../../core/pipeline/source-output-check.js';
import type { Approval } from '../../core/index.js';

const MISBEHAVING = resolve(process.cwd(), 'test/fixtures/misbehaving-source-plugin');
const SOURCE = 'files';
const ORIGIN = `source "${SOURCE}" (plugin "misbehaving-source")`;

/** A well-formed approval of source `files`, updated `minutesAgo` before now. */
function approval(id: string, minutesAgo = 10, patch: Record<string, unknown> = {}): Approval {
  const at = new Date(Date.now() - minutesAgo * 60_000).toISOString();
  return {
    key: `${SOURCE}:request:${id}`,
    source: SOURCE,
    kind: 'request',
    externalId: id,
    title: `Request ${id}`,
    status: 'pending',
    requester: { name: 'Requester' },
    approvers: [{ sourceUserId: 'ann', email: 'ann@example.test' }],
    amount: { value: '12.50', currency: 'EUR' },
    submittedAt: at,
    sourceUpdatedAt: at,
    links: { view: `https://files.example.test/${id}` },
    ...patch,
  } as Approval;
}

describe('what a source yields is checked at the boundary', () => {
  describe('checkApproval', () => {
    it('accepts a well-formed approval, with or without amount, submittedAt, content and sourceData', () => {
      expect(checkApproval(SOURCE, approval('1'))).to.equal(undefined);
      expect(checkApproval(SOURCE, approval('1', 10, { amount: null, submittedAt: null, content: { lineItems: [] }, sourceData: { owner: 'x' } }))).to.equal(
        undefined,
      );
      expect(checkApproval(SOURCE, approval('a:b', 10, { key: `${SOURCE}:request:a:b` })), 'an external id may hold colons').to.equal(undefined);
    });

    it('refuses card content of the wrong shape, naming the field', () => {
      const amount = checkApproval(SOURCE, approval('1', 10, { content: { lineItems: [{ label: 'Hotel', amount: '120.00' }] } }));
      expect(amount).to.deep.include({ field: 'content.lineItems[0].amount', record: 'files:request:1' });
      expect(amount!.message).to.include('"120.00"');
      expect(checkApproval(SOURCE, approval('1', 10, { content: { fields: [{ label: 'Policy' }] } }))).to.deep.include({ field: 'content.fields[0].value' });
      expect(checkApproval(SOURCE, approval('1', 10, { content: { flags: 'exceptions' } }))).to.deep.include({ field: 'content.flags' });
      const extra = checkApproval(SOURCE, approval('1', 10, { content: { ownerLoginId: 'ann' } }));
      expect(extra).to.deep.include({ field: 'content' });
      expect(extra!.message).to.include('"ownerLoginId"').and.include('sourceData');
      expect(checkApproval(SOURCE, approval('1', 10, { sourceData: 'ann' }))).to.deep.include({ field: 'sourceData' });
    });

    it('refuses the old single "details" bag, saying where its parts go now', () => {
      const p = checkApproval(SOURCE, approval('1', 10, { details: { lineItems: [] } }));
      expect(p).to.deep.include({ field: 'details', record: 'files:request:1' });
      expect(p!.message).to.include('"content"').and.include('"sourceData"');
    });

    it("refuses a key with another source's prefix, naming the key expected", () => {
      const p = checkApproval(SOURCE, approval('1', 10, { key: 'other:request:1' }));
      expect(p).to.deep.include({ field: 'key', record: 'other:request:1' });
      expect(p!.message).to.include('must be "files:request:1"');
    });

    it('refuses a source field that is not this source', () => {
      expect(checkApproval(SOURCE, approval('1', 10, { source: 'other' }))).to.deep.include({ field: 'source', record: 'files:request:1' });
    });

    for (const bad of ['30/11/2026 10:00', '2026-11-30T10:00:00+02:00', '2026-11-30 10:00:00Z', '2026-02-30T10:00:00Z', 'Mon, 30 Nov 2026 10:00:00 GMT']) {
      it(`refuses sourceUpdatedAt "${bad}" (not ISO-8601 UTC)`, () => {
        const p = checkApproval(SOURCE, approval('1', 10, { sourceUpdatedAt: bad }));
        expect(p).to.deep.include({ field: 'sourceUpdatedAt', record: 'files:request:1' });
        expect(p!.message).to.include('ISO-8601 UTC').and.include(JSON.stringify(bad));
      });
    }

    it('refuses a non-ISO submittedAt', () => {
      expect(checkApproval(SOURCE, approval('1', 10, { submittedAt: '11/30/2026' }))).to.deep.include({ field: 'submittedAt' });
    });

    it('refuses an approver without a sourceUserId, naming the approver by index', () => {
      const p = checkApproval(SOURCE, approval('1', 10, { approvers: [{ sourceUserId: 'ann' }, { email: 'bob@example.test' }] }));
      expect(p).to.deep.include({ field: 'approvers[1].sourceUserId', message: 'is missing', record: 'files:request:1' });
      expect(problemLabel(p!)).to.equal('approvers.sourceUserId');
    });

    it('refuses a status outside the model, a float amount and a lower-case currency', () => {
      expect(checkApproval(SOURCE, approval('1', 10, { status: 'PENDING' }))).to.deep.include({ field: 'status' });
      expect(checkApproval(SOURCE, approval('1', 10, { amount: { value: 12.5, currency: 'EUR' } }))).to.deep.include({ field: 'amount.value' });
      expect(checkApproval(SOURCE, approval('1', 10, { amount: { value: '1,234.50', currency: 'EUR' } }))!.message).to.include('decimal string');
      expect(checkApproval(SOURCE, approval('1', 10, { amount: { value: '12.50', currency: 'eur' } }))).to.deep.include({ field: 'amount.currency' });
    });

    it('names the external id of a record without a key', () => {
      const { key: _key, ...rest } = approval('7');
      expect(checkApproval(SOURCE, rest)).to.deep.include({ field: 'key', message: 'is missing', record: '7' });
    });
  });

  it('checks completions, cursors and verify results', () => {
    expect(checkCompletion(SOURCE, { key: 'files:request:1', status: 'approved' })).to.equal(undefined);
    expect(checkCompletion(SOURCE, { key: 'other:request:1', status: 'approved' })).to.deep.include({ field: 'key', record: 'other:request:1' });
    expect(checkCompletion(SOURCE, { key: 'files:request:1', status: 'pending' })).to.deep.include({ field: 'status' });
    expect(checkCursor('42')).to.equal(undefined);
    expect(checkCursor(undefined)).to.equal(undefined);
    expect(checkCursor(42)).to.deep.include({ field: 'cursor' });
    expect(checkVerifyResult(SOURCE, { found: false, externalId: '1' })).to.equal(undefined);
    expect(checkVerifyResult(SOURCE, { found: true, approval: approval('1', 10, { sourceUpdatedAt: 'yesterday' }) })).to.deep.include({
      field: 'approval.sourceUpdatedAt',
    });
    expect(checkVerifyResult(SOURCE, { approval: approval('1') })).to.deep.include({ field: 'found' });
  });

  describe('through a host (misbehaving-source plugin, SQLite)', function () {
    this.timeout(30_000);
    let dir: string;
    let host: Host | undefined;
    let logs: string[];

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'ah-check-'));
      logs = [];
    });
    afterEach(async () => {
      await host?.stop();
      host = undefined;
      rmSync(dir, { recursive: true, force: true });
    });

    async function start(records: { seq: number; approval: unknown }[], faults: string[] = []): Promise<Host> {
      writeFileSync(join(dir, 'truth.json'), JSON.stringify({ records }));
      const raw = {
        plugins: [MISBEHAVING],
        queue: { adapter: 'sqlite', config: { path: join(dir, 'queue.db') } },
        sources: [{ id: SOURCE, plugin: 'misbehaving-source', config: { path: join(dir, 'truth.json'), faults }, sweepIntervalSeconds: 900 }],
        notifiers: [],
      };
      host = await Host.create(loadDeployment(join(dir, 'approvals.config.json'), { raw, env: {} }), {
        logger: createLogger({ level: 'info', destination: { write: (line: string) => void logs.push(line) } as never }),
      });
      return host;
    }

    const errors = () =>
      logs.map((l) => JSON.parse(l) as { level: number; msg: string; field?: string; record?: string; plugin?: string }).filter((l) => l.level === 50);

    it('refuses a wrong key prefix, a non-ISO sourceUpdatedAt and a missing approver id, and commits the good records of the same batch', async () => {
      const h = await start([
        { seq: 1, approval: approval('good-1') },
        { seq: 2, approval: approval('wrong-prefix', 10, { key: 'other:request:wrong-prefix' }) },
        { seq: 3, approval: approval('bad-time', 10, { sourceUpdatedAt: 'Nov 30 2026 10:00' }) },
        { seq: 4, approval: approval('no-approver-id', 10, { approvers: [{ name: 'Ann', email: 'ann@example.test' }] }) },
        { seq: 5, approval: approval('good-2') },
      ]);
      const report = await h.runOnce();

      expect(report.failures).to.deep.equal([]);
      expect((await h.queue.keys(SOURCE)).map((k) => k.externalId)).to.deep.equal(['good-1', 'good-2']);
      expect(await h.queue.get('other:request:wrong-prefix')).to.equal(undefined);
      expect(report.cycles[0]!.rejected).to.equal(3);
      expect(await h.queue.getCursor(SOURCE), 'the batch, its good records and its cursor are committed').to.equal('5');

      expect(errors().map((e) => [e.field, e.record, e.plugin])).to.deep.equal([
        ['key', 'other:request:wrong-prefix', 'misbehaving-source'],
        ['sourceUpdatedAt', 'files:request:bad-time', 'misbehaving-source'],
        ['approvers[0].sourceUserId', 'files:request:no-approver-id', 'misbehaving-source'],
      ]);
      const [prefix, time, approver] = errors().map((e) => e.msg);
      expect(prefix).to.equal(
        `${ORIGIN} changes(): refused record "other:request:wrong-prefix": key must be "files:request:wrong-prefix" (<source>:<kind>:<externalId> of source "files"), got "other:request:wrong-prefix"`,
      );
      expect(time).to.equal(
        `${ORIGIN} changes(): refused record "files:request:bad-time": sourceUpdatedAt must be ISO-8601 UTC (2026-11-30T09:15:00.000Z), got "Nov 30 2026 10:00"`,
      );
      expect(approver).to.equal(`${ORIGIN} changes(): refused record "files:request:no-approver-id": approvers[0].sourceUserId is missing`);

      const metrics = await h.metrics.render();
      for (const field of ['key', 'sourceUpdatedAt', 'approvers.sourceUserId']) {
        expect(metrics).to.include(`approvals_hub_source_rejected_total{source="files",field="${field}"} 1`);
      }
    });

    it('audit lists a refused key as missing (not "0 difference(s)"), and audit --fix refuses it too', async () => {
      const h = await start([{ seq: 1, approval: approval('good-1') }]);
      await h.runOnce();
      writeFileSync(
        join(dir, 'truth.json'),
        JSON.stringify({
          records: [
            { seq: 1, approval: approval('good-1') },
            { seq: 2, approval: approval('x', 10, { key: 'other:request:x' }) },
          ],
        }),
      );
      const { Operations } = await import('../../core/host/operations.js');
      const found = await new Operations(h).audit({ fix: true, actor: 'ops' });
      expect(found.map((d) => `${d.kind} ${d.key}`)).to.deep.equal(['missing other:request:x']);
      expect(await h.queue.get('other:request:x'), 'audit --fix goes through the same checks').to.equal(undefined);
      expect(errors().map((e) => e.msg)).to.deep.equal([
        `${ORIGIN} repair: refused record "other:request:x": key must be "files:request:x" (<source>:<kind>:<externalId> of source "files"), got "other:request:x"`,
      ]);
    });

    it('fails the cycle on a cursor that is not a string, naming the plugin, and commits the good records without it', async () => {
      const h = await start([{ seq: 1, approval: approval('good-1') }], ['numeric-cursor']);
      const report = await h.runOnce();

      expect(report.failures).to.deep.equal([{ source: SOURCE, error: `${ORIGIN} changes(): refused cursor: cursor must be a string or absent, got 1` }]);
      expect((await h.queue.keys(SOURCE)).map((k) => k.externalId)).to.deep.equal(['good-1']);
      expect(await h.queue.getCursor(SOURCE)).to.equal(undefined);
      expect(await h.metrics.render()).to.include('approvals_hub_source_rejected_total{source="files",field="cursor"} 1');
    });
  });
});
