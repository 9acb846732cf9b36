import { expect } from 'chai';
import type { ReminderCandidate } from '../../core/model/queue-types.js';
import { inQuietHours, localTime, planReminders, type ReminderSettings } from '../../core/pipeline/reminder-scheduler.js';
import { approval, approver, renderCard } from '../support/queue-fixtures.js';

const at = (iso: string) => new Date(iso);
const QUIET = { start: '19:00', end: '08:00' };
const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));

describe('reminder time math', () => {
  it('reads the local date and time in Asia/Tokyo, nine hours ahead of UTC all year', () => {
    expect(localTime(at('2026-01-05T14:30:00Z'), 'Asia/Tokyo', 'UTC')).to.deep.equal({ timeZone: 'Asia/Tokyo', date: '2026-01-05', minutes: minutes('23:30') });
    expect(localTime(at('2026-07-06T14:30:00Z'), 'Asia/Tokyo', 'UTC')).to.deep.equal({ timeZone: 'Asia/Tokyo', date: '2026-07-06', minutes: minutes('23:30') });
  });

  it('reads America/New_York five hours behind UTC in winter and four in summer', () => {
    expect(localTime(at('2026-01-05T14:30:00Z'), 'America/New_York', 'UTC')).to.include({ date: '2026-01-05', minutes: minutes('09:30') });
    expect(localTime(at('2026-07-06T14:30:00Z'), 'America/New_York', 'UTC')).to.include({ date: '2026-07-06', minutes: minutes('10:30') });
  });

  it('moves to the next local date once local midnight has passed', () => {
    expect(localTime(at('2026-01-05T15:30:00Z'), 'Asia/Tokyo', 'UTC')).to.include({ date: '2026-01-06', minutes: minutes('00:30') });
    expect(localTime(at('2026-01-06T03:30:00Z'), 'America/New_York', 'UTC')).to.include({ date: '2026-01-05', minutes: minutes('22:30') });
  });

  it('falls back to the default zone for an unknown, blank or absent zone, and to UTC for a bad default, without throwing', () => {
    const instant = at('2026-01-05T14:30:00Z');
    expect(localTime(instant, 'Mars/Olympus_Mons', 'Asia/Tokyo')).to.include({ timeZone: 'Asia/Tokyo', minutes: minutes('23:30') });
    expect(localTime(instant, '  ', 'America/New_York')).to.include({ timeZone: 'America/New_York', minutes: minutes('09:30') });
    expect(localTime(instant, undefined, 'Asia/Tokyo')).to.include({ timeZone: 'Asia/Tokyo' });
    expect(localTime(instant, 'not a zone', 'not one either')).to.deep.equal({ timeZone: 'UTC', date: '2026-01-05', minutes: minutes('14:30') });
  });

  it('treats a window that spans midnight as quiet on both sides of it, from its start up to its end', () => {
    expect(['19:00', '23:59', '00:00', '07:59'].map((t) => inQuietHours(minutes(t), QUIET))).to.deep.equal([true, true, true, true]);
    expect(['08:00', '12:00', '18:59'].map((t) => inQuietHours(minutes(t), QUIET))).to.deep.equal([false, false, false]);
  });

  it('treats a window within one day as quiet only inside it', () => {
    const lunch = { start: '12:00', end: '13:00' };
    expect(['11:59', '12:00', '12:59', '13:00'].map((t) => inQuietHours(minutes(t), lunch))).to.deep.equal([false, true, true, false]);
  });

  it('has no quiet hours when start equals end', () => {
    expect(inQuietHours(minutes('03:00'), { start: '00:00', end: '00:00' })).to.equal(false);
  });

  it('finds a Tokyo approver in quiet hours and a New York approver not, at the same instant', () => {
    const instant = at('2026-01-06T14:00:00Z');
    expect(inQuietHours(localTime(instant, 'Asia/Tokyo', 'UTC').minutes, QUIET)).to.equal(true);
    expect(inQuietHours(localTime(instant, 'America/New_York', 'UTC').minutes, QUIET)).to.equal(false);
  });
});

describe('planReminders', () => {
  const settings: ReminderSettings = { afterHours: 24, maxReminders: 3, quietHours: QUIET, defaultTimeZone: 'UTC' };
  const candidate = (externalId: string, who = approver('grace'), sent = 0): ReminderCandidate => {
    const a = approval(externalId, { approvers: [who] });
    return { approval: { ...a, revision: 2, fingerprint: 'f', queuedAt: a.sourceUpdatedAt, generation: 'g1' }, approver: who, sent, lastAt: a.sourceUpdatedAt };
  };
  const noon = at('2026-01-06T12:00:00Z');

  it('owes the n-th reminder as remind-<n> on every channel, spending one reminder', () => {
    const [draft, ...rest] = planReminders([candidate('R1', approver('grace'), 1)], settings, noon, { channels: ['console', 'slack'], render: renderCard });

    expect(rest).to.deep.equal([]);
    expect(draft!.outbox.map((o) => [o.action, o.channel, o.idempotencyKey])).to.deep.equal([
      ['remind', 'console', 'concur-acme:expense-report:R1#g1.2:grace:console:remind-2'],
      ['remind', 'slack', 'concur-acme:expense-report:R1#g1.2:grace:slack:remind-2'],
    ]);
    expect(draft!.spends).to.deep.equal([{ approvalKey: 'concur-acme:expense-report:R1', approverId: 'grace', generation: 'g1', sent: 1 }]);
  });

  it('leaves a candidate in their quiet hours for later', () => {
    const tokyo = { ...approver('kenji'), timeZone: 'Asia/Tokyo' };
    const drafts = planReminders([candidate('R1', tokyo), candidate('R2')], settings, noon, { channels: ['console'], render: renderCard });

    expect(drafts.map((d) => d.spends[0]!.approverId)).to.deep.equal(['grace']);
  });

  it('owes no digest before digest.at local time, then one per person listing all their candidates, oldest first', () => {
    const digest = { ...settings, digest: { at: '09:00' } };
    const ny = { ...approver('ann'), timeZone: 'America/New_York' };
    const list = [candidate('R2'), candidate('R1'), candidate('R3', ny)];
    list[1] = { ...list[1]!, approval: { ...list[1]!.approval, queuedAt: '2020-01-01T00:00:00.000Z' } };
    // 12:00 UTC is 07:00 in New York: only grace's digest is due.
    const drafts = planReminders(list, digest, noon, { channels: ['console'], render: renderCard });

    expect(drafts).to.have.length(1);
    expect(drafts[0]!.outbox[0]).to.include({ action: 'digest', idempotencyKey: 'digest:grace@acme.test:console:2026-01-06' });
    expect(drafts[0]!.outbox[0]!.digest!.map((c) => c.approvalKey)).to.deep.equal(['concur-acme:expense-report:R1', 'concur-acme:expense-report:R2']);
    expect(drafts[0]!.spends.map((s) => s.approvalKey)).to.deep.equal(['concur-acme:expense-report:R1', 'concur-acme:expense-report:R2']);
  });
});
