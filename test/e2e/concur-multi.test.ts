import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Host } from '../../core/host/host.js';
import { loadDeployment } from '../../core/host/deployment.js';
import { RecordingNotifier } from '../../core/testing/index.js';
import { callsTo, startConcurSandbox, type ConcurSandbox } from '../../plugins/concur/sandbox/index.js';
import { concurHarness, type ConcurHarness } from '../support/concur-harness.js';
import { sandboxSource } from '../support/sandbox-deployment.js';

describe('Concur identity at scale and several companies side by side', function () {
  this.timeout(60_000);

  describe('first sync with many unknown approvers', () => {
    let h: ConcurHarness;
    afterEach(async () => h?.close());

    it('loads approvers from the company user listing, 100 a page, not one call each', async () => {
      h = await concurHarness({ sandbox: { approvers: 40, employees: 120 } });
      const approvers = h.sandbox.admin.users().filter((u) => u.isApprover);
      expect(approvers.length).to.equal(40);
      for (const a of approvers) h.sandbox.admin.submit({ approver: a.loginId });
      await h.cycle();
      const users = h.sandbox.admin.users().length;
      expect(callsTo(h.sandbox.calls(), 'GET /profile/identity/v4/Users')).to.equal(Math.ceil(users / 100));
      const notified = new Set(h.notifier.messages.filter((m) => m.action === 'notify').map((m) => m.recipient.email));
      expect(notified).to.deep.equal(new Set(approvers.map((a) => a.email.toLowerCase())));
    });
  });

  describe('two companies', () => {
    const sandboxes: ConcurSandbox[] = [];
    let host: Host | undefined;
    afterEach(async () => {
      await host?.stop();
      await Promise.all(sandboxes.splice(0).map((s) => s.close()));
    });

    it('keeps each company in its own source instance, keys and cursor', async () => {
      for (const seed of [11, 12])
        sandboxes.push(
          await startConcurSandbox({ seed, reports: 0, otherReports: 0, approvers: 2, employees: 6, clock: '2026-03-02T09:00:00.000Z', freezeClock: true }),
        );
      const [acme, globex] = sandboxes as [ConcurSandbox, ConcurSandbox];
      // Distinct env names: under shared ones, globex's secrets would overwrite acme's.
      const acmeSource = sandboxSource(acme, { id: 'acme', envPrefix: 'ACME' });
      const globexSource = sandboxSource(globex, { id: 'globex', envPrefix: 'GLOBEX' });
      const deployment = loadDeployment(undefined, {
        env: { ...acmeSource.env, ...globexSource.env },
        raw: {
          queue: { adapter: 'sqlite', config: { path: join(mkdtempSync(join(tmpdir(), 'ah-multi-')), 'q.db') } },
          sources: [acmeSource.source, globexSource.source],
          notifiers: [],
        },
      });
      const notifier = new RecordingNotifier('chat');
      host = await Host.create(deployment, { logger: pino({ level: 'silent' }), notifiers: [notifier], clock: { now: () => new Date(acme.admin.now()) } });
      const a = acme.admin.submit({});
      const g = [globex.admin.submit({}), globex.admin.submit({})];
      const report = await host.runOnce();
      expect(report.failures).to.deep.equal([]);
      const notBefore = host.commitContext().notBefore;
      expect((await host.queue.list({ notBefore, source: 'acme' })).map((x) => x.key)).to.deep.equal([`acme:expense-report:${a.ID}`]);
      expect((await host.queue.list({ notBefore, source: 'globex' })).map((x) => x.key).sort()).to.deep.equal(
        g.map((r) => `globex:expense-report:${r.ID}`).sort(),
      );
      expect(await host.queue.getCursor('acme')).to.be.a('string');
      expect(await host.queue.getCursor('globex')).to.be.a('string');
      const links = notifier.messages.map((m) => m.card.actions.find((x) => x.type === 'link'));
      expect(links.filter((l) => l?.type === 'link' && l.url.includes(`companyUUID=${globex.companyId}`))).to.have.length(2);
      expect(links.filter((l) => l?.type === 'link' && l.url.includes(`companyUUID=${acme.companyId}`))).to.have.length(1);
    });
  });
});
