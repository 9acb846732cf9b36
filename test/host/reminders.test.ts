import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { PermanentDeliveryError, type Approver } from '../../core/index.js';
import { ManualClock, RecordingNotifier, ScriptedSource } from '../../core/testing/index.js';

const person = (id: string, timeZone?: string): Approver => ({ sourceUserId: id, name: id, email: `${id}@example.test`, ...(timeZone ? { timeZone } : {}) });
const UTC_GRACE = person('grace');
const ALAN = person('alan');
const TOKYO = person('kenji', 'Asia/Tokyo');
const NEW_YORK = person('ann', 'America/New_York');

for (const kind of ['memory', 'sqlite'] as const) {
  describe(`reminders through a host (${kind} queue, scripted source, manual clock)`, function () {
    this.timeout(30_000);
    let dir: string;
    let clock: ManualClock;
    let source: ScriptedSource;
    let chat: RecordingNotifier;
    let host: Host | undefined;

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'ah-remind-'));
      clock = new ManualClock('2026-01-05T09:00:00.000Z');
      source = new ScriptedSource('src', clock);
      chat = new RecordingNotifier('chat');
    });
    afterEach(async () => {
      await host?.stop();
      host = undefined;
      rmSync(dir, { recursive: true, force: true });
    });

    /** A host with the given `reminders` block (quiet hours 19:00 to 08:00 and three reminders a day apart by default). */
    async function start(reminders: Record<string, unknown> = {}): Promise<Host> {
      const queue = kind === 'memory' ? { adapter: 'memory' } : { adapter: 'sqlite', config: { path: join(dir, 'queue.db') } };
      const deployment = loadDeployment(undefined, { raw: { queue, notifiers: [], reminders }, env: {} });
      host = await Host.create(deployment, { logger: pino({ level: 'silent' }), clock, notifiers: [chat], sources: [source] });
      return host;
    }

    /** Moves the clock to `iso` and runs one host cycle (detection, reminders, delivery). */
    async function cycleAt(iso: string): Promise<void> {
      clock.set(iso);
      await host!.runOnce();
    }

    const sent = (who: Approver, action: string) => chat.for(who.email!).filter((m) => m.action === action);

    it('reminds an approval pending 25 hours once per window, three times at most', async () => {
      await start();
      source.submit('R1', { approvers: [UTC_GRACE] });
      await cycleAt('2026-01-05T09:00:00Z');
      const [card] = sent(UTC_GRACE, 'notify');

      for (const iso of [
        '2026-01-06T10:00:00Z',
        '2026-01-06T11:00:00Z',
        '2026-01-07T10:00:00Z',
        '2026-01-08T10:00:00Z',
        '2026-01-09T10:00:00Z',
        '2026-01-10T10:00:00Z',
      ]) {
        await cycleAt(iso);
      }

      const reminders = sent(UTC_GRACE, 'remind');
      expect(reminders.map((m) => m.idempotencyKey.split(':').at(-1))).to.deep.equal(['remind-1', 'remind-2', 'remind-3']);
      expect(reminders.every((m) => m.previous?.ref === 'chat-1' && m.card.approvalKey === card!.card.approvalKey)).to.equal(true);
      expect(sent(UTC_GRACE, 'notify')).to.have.length(1);
    });

    it("keeps reminders out of each approver's quiet hours in their own time zone", async () => {
      await start();
      source.submit('T1', { approvers: [TOKYO] });
      source.submit('N1', { approvers: [NEW_YORK] });
      await cycleAt('2026-01-05T13:00:00Z');

      // 25 h later it is 09:00 in New York and 23:00 in Tokyo.
      await cycleAt('2026-01-06T14:00:00Z');
      expect(sent(NEW_YORK, 'remind')).to.have.length(1);
      expect(sent(TOKYO, 'remind')).to.have.length(0);
      // 07:59 in Tokyo: still quiet; 08:00: reminded.
      await cycleAt('2026-01-06T22:59:00Z');
      expect(sent(TOKYO, 'remind')).to.have.length(0);
      await cycleAt('2026-01-06T23:00:00Z');
      expect(sent(TOKYO, 'remind')).to.have.length(1);
      expect(sent(NEW_YORK, 'remind')).to.have.length(1);
    });

    it('sends no reminder once the approval is approved', async () => {
      await start();
      source.submit('R1', { approvers: [UTC_GRACE] });
      await cycleAt('2026-01-05T09:00:00Z');
      clock.set('2026-01-06T05:00:00Z');
      source.complete('R1', 'approved');
      await cycleAt('2026-01-06T05:00:00Z');

      for (const iso of ['2026-01-06T10:00:00Z', '2026-01-07T10:00:00Z']) await cycleAt(iso);

      expect(chat.for(UTC_GRACE.email!).map((m) => m.action)).to.deep.equal(['notify', 'close']);
    });

    it('never delivers a reminder whose approval was approved after it was owed', async () => {
      await start();
      source.submit('R1', { approvers: [UTC_GRACE] });
      await cycleAt('2026-01-05T09:00:00Z');
      chat.failing = new Error('chat is down');
      await cycleAt('2026-01-06T10:00:00Z'); // the reminder is owed, and its delivery fails
      chat.failing = undefined;
      source.complete('R1', 'approved');
      await cycleAt('2026-01-06T10:10:00Z');

      expect(chat.for(UTC_GRACE.email!).map((m) => m.action)).to.deep.equal(['notify', 'close']);
      const [superseded] = await host!.queue.listOutbox('superseded');
      expect(superseded).to.include({ action: 'remind' });
    });

    it('posts the card instead when the approver never received it', async () => {
      await start();
      source.submit('R1', { approvers: [UTC_GRACE] });
      chat.failing = new PermanentDeliveryError('user not found yet');
      await cycleAt('2026-01-05T09:00:00Z');
      chat.failing = undefined;
      await cycleAt('2026-01-06T10:00:00Z');

      const messages = chat.for(UTC_GRACE.email!);
      expect(messages.map((m) => [m.action, m.idempotencyKey.split(':').at(-1), m.previous])).to.deep.equal([['notify', 'remind-1', undefined]]);
      // The card posted that way is the one later changes edit.
      source.modify('R1', 'Report R1 (amended)');
      await cycleAt('2026-01-06T11:00:00Z');
      expect(chat.for(UTC_GRACE.email!).at(-1)).to.deep.include({ action: 'update', previous: { ref: 'chat-1' } });
    });

    it("sends one digest per local day listing exactly the approver's still-pending approvals", async () => {
      await start({ digest: { at: '09:00' } });
      source.submit('R1', { approvers: [UTC_GRACE] });
      source.submit('R2', { approvers: [UTC_GRACE] });
      source.submit('R3', { approvers: [ALAN] });
      await cycleAt('2026-01-05T08:00:00Z');
      clock.set('2026-01-05T18:00:00Z');
      source.complete('R2', 'approved');

      await cycleAt('2026-01-06T08:30:00Z'); // due, but before 09:00
      expect(sent(UTC_GRACE, 'digest')).to.have.length(0);
      await cycleAt('2026-01-06T09:00:00Z');
      await cycleAt('2026-01-06T15:00:00Z');
      await cycleAt('2026-01-07T09:05:00Z');

      const digests = sent(UTC_GRACE, 'digest');
      expect(digests.map((m) => m.idempotencyKey)).to.deep.equal(['digest:grace@example.test:chat:2026-01-06', 'digest:grace@example.test:chat:2026-01-07']);
      for (const d of digests) expect(d.digest!.map((c) => c.approvalKey)).to.deep.equal(['src:expense-report:R1']);
      expect(sent(ALAN, 'digest').map((m) => m.digest!.map((c) => c.approvalKey))).to.deep.equal([['src:expense-report:R3'], ['src:expense-report:R3']]);
      expect(chat.messages.filter((m) => m.action === 'remind')).to.deep.equal([]);
    });
  });
}
