import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { createLogger } from '../../core/host/logging.js';
import { fingerprint, fromStoredBody, stableStringify, type Approval } from '../../core/model/approval.js';
import { toPublicJson } from '../../core/model/public-json.js';
import type { QueuedApproval } from '../../core/model/queue-types.js';
import { createCardRenderer } from '../../core/pipeline/card-renderer.js';
import { approvalProblems, ManualClock, ScriptedSource } from '../../core/testing/index.js';
import { legacyBody, withContent } from '../support/legacy-body.js';

const queued = (a: Approval): QueuedApproval => ({ ...a, revision: 1, fingerprint: fingerprint(a), queuedAt: a.sourceUpdatedAt, generation: 'g1' });

describe("card content and a source's own data are kept apart", () => {
  it('renders content and never sourceData', () => {
    const card = createCardRenderer(new Map())(queued({ ...withContent, sourceData: { secretNote: 'NOT-ON-A-CARD' } }), undefined);
    expect(card.fields).to.deep.equal(withContent.content!.fields);
    expect(card.lineItems).to.deep.equal(withContent.content!.lineItems);
    expect(card.flags).to.deep.equal(['exceptions']);
    expect(JSON.stringify(card)).to.not.include('NOT-ON-A-CARD');
  });

  it('fingerprints content, not sourceData, exactly as the single "details" bag was fingerprinted', () => {
    expect(fingerprint({ ...withContent, sourceData: { lastModifiedDate: 'later' } })).to.equal(fingerprint(withContent));
    expect(fingerprint({ ...withContent, content: { ...withContent.content, flags: [] } })).to.not.equal(fingerprint(withContent));
    // The formula of the versions before the split, so fingerprints stored by them still match.
    const details = { ...withContent.sourceData, ...withContent.content } as Record<string, unknown>;
    const a = withContent;
    const old = createHash('sha256')
      .update(
        stableStringify({
          title: a.title,
          status: a.status,
          requester: a.requester,
          approvers: a.approvers.map((p) => [p.sourceUserId, p.name ?? null]),
          amount: a.amount ?? null,
          submittedAt: a.submittedAt ?? null,
          links: a.links,
          details: ['fields', 'lineItems', 'flags'].map((k) => details[k] ?? null),
        }),
      )
      .digest('hex')
      .slice(0, 32);
    expect(fingerprint(withContent)).to.equal(old);
  });

  it('reads a stored body of an older version: shown keys become content, the rest sourceData', () => {
    const stored = queued(withContent);
    const old = legacyBody(stored as unknown as Record<string, unknown>) as unknown as QueuedApproval;
    expect(old).to.have.property('details');
    const read = fromStoredBody(old);
    expect(read).to.deep.equal(stored);
    expect(fingerprint(read)).to.equal(stored.fingerprint);
    expect(fromStoredBody(stored), 'a current body is returned as is').to.equal(stored);
    const onlyData = fromStoredBody({ ...withContent, content: undefined, sourceData: undefined, details: { reportId: 'R1' } } as Approval);
    expect(onlyData).to.deep.include({ content: {}, sourceData: { reportId: 'R1' } });
    expect(fingerprint(onlyData), 'no shown keys hashed as before: [null, null, null]').to.equal(fingerprint({ ...withContent, content: {} }));
  });

  it('keeps the documented --json keys fields, lineItems and flags, and leaves sourceData out', () => {
    const json = toPublicJson(withContent) as unknown as Record<string, unknown>;
    expect(json).to.deep.include({ fields: [{ label: 'Policy', value: 'Travel' }], flags: ['exceptions'] });
    expect(json.lineItems).to.deep.equal([{ label: 'Hotel', amount: { value: '120.00', currency: 'EUR' }, flags: ['missing receipt'] }]);
    expect(json).to.not.have.any.keys('content', 'sourceData', 'details');
    expect(toPublicJson({ ...withContent, content: undefined })).to.deep.include({ fields: null, lineItems: null, flags: null });
  });

  it('has the source kit name a leftover "details" bag, malformed content and sourceData that is not JSON', () => {
    const legacy = { ...withContent, details: { flags: [] } } as Approval;
    expect(approvalProblems(legacy, withContent.source).join('\n')).to.include('"details"');
    const bad = { ...withContent, content: { lineItems: [{ amount: '1' }] } } as unknown as Approval;
    expect(approvalProblems(bad, withContent.source).join('\n')).to.include('content.lineItems');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(approvalProblems({ ...withContent, sourceData: cyclic }, withContent.source).join('\n')).to.include('sourceData is not a JSON-serialisable object');
    expect(approvalProblems(withContent, withContent.source)).to.deep.equal([]);
  });

  describe('with a host (scripted source, SQLite)', function () {
    this.timeout(30_000);
    let dir: string;
    let host: Host | undefined;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ah-content-'))));
    afterEach(async () => {
      await host?.stop();
      host = undefined;
      rmSync(dir, { recursive: true, force: true });
    });

    it("hands the queued sourceData back to the source in the sweep's verify", async () => {
      const clock = new ManualClock('2026-01-05T09:00:00.000Z');
      const source = new ScriptedSource('src', clock);
      const deployment = loadDeployment(undefined, { raw: { queue: { adapter: 'sqlite', config: { path: join(dir, 'queue.db') } }, notifiers: [] }, env: {} });
      host = await Host.create(deployment, { clock, sources: [source], logger: createLogger({ level: 'fatal' }) });
      source.submit('R1', { approvers: [{ sourceUserId: 'ann', email: 'ann@example.test' }], content: { fields: [{ label: 'Policy', value: 'Travel' }] } });
      await host.runOnce();
      expect(await host.queue.get('src:expense-report:R1')).to.deep.include({
        content: { fields: [{ label: 'Policy', value: 'Travel' }] },
        sourceData: { scriptedId: 'R1' },
      });
      clock.advance(10 * 60_000);
      source.complete('R1', 'approved', { silent: true });
      await host.runOnce();

      expect(source.lastVerifyRefs).to.deep.equal([{ externalId: 'R1', sourceData: { scriptedId: 'R1' } }]);
      expect(await host.queue.get('src:expense-report:R1')).to.equal(undefined);
    });
  });
});
