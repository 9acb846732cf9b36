import { expect } from 'chai';
import { loadDeployment } from '../../core/host/deployment.js';
import { Host } from '../../core/host/host.js';
import { createLogger } from '../../core/host/logging.js';
import { onceSummary } from '../../core/host/once-summary.js';
import { EventsHealth } from '../../core/pipeline/events-health.js';
import type { SourceEventsPolicy, SourceTriggers } from '../../core/index.js';
import { ManualClock, RecordingNotifier, ScriptedSource } from '../../core/testing/index.js';
import { MemoryApprovalQueue } from '../../adapters/queue-memory/memory-approval-queue.js';

const ANN = { sourceUserId: 'ann', email: 'ann@example.test' };
const POLICY: SourceEventsPolicy = { pollIntervalMs: 900_000, silenceMs: 3_600_000, maxRefused: 3 };

describe('push triggers: a push re-reads the record at once, and the poll becomes the safety net (scripted source, memory queue)', function () {
  this.timeout(30_000);
  let clock: ManualClock;
  let host: Host | undefined;
  let source: ScriptedSource;
  let notifier: RecordingNotifier;
  let triggers: SourceTriggers;
  let logs: { level: number; msg: string }[];

  beforeEach(async () => {
    clock = new ManualClock('2026-01-05T09:00:00.000Z');
    logs = [];
    source = new ScriptedSource('src', clock, 100, 'expense-report', [], POLICY);
    notifier = new RecordingNotifier('chat');
    const deployment = loadDeployment(undefined, { raw: { queue: { adapter: 'memory' }, notifiers: [] }, env: {} });
    host = await Host.create(deployment, {
      clock,
      sources: [source],
      notifiers: [notifier],
      logger: createLogger({
        level: 'info',
        destination: { write: (line: string) => void logs.push(JSON.parse(line) as { level: number; msg: string }) } as never,
      }),
    });
    triggers = host.sourceTriggers('src');
  });
  afterEach(async () => {
    await host?.stop();
    host = undefined;
  });

  const runner = () => host!.runners[0]!;
  const queued = async () => (await host!.queue.keys('src')).map((k) => k.externalId).sort();
  const minutes = (n: number) => clock.advance(n * 60_000);

  it('queues a pushed approval and delivers its card with no poll, and a duplicate push costs nothing', async () => {
    await host!.runOnce();
    const polls = source.calls.changes;
    source.submit('R1', { approvers: [ANN] });

    expect(await triggers.submit([{ id: 'evt-1', externalId: 'R1', data: { eventType: 'statusChanged' } }])).to.deep.equal({ added: 1, duplicates: 0 });
    await runner().wake();
    await waitFor(() => notifier.messages.length === 1);

    expect(await queued()).to.deep.equal(['R1']);
    expect(notifier.messages[0]!.card.title).to.equal('Report R1');
    expect(source.calls.changes, 'no poll ran').to.equal(polls);
    expect(source.calls.verify).to.equal(1);

    expect(await triggers.submit([{ id: 'evt-1', externalId: 'R1' }])).to.deep.equal({ added: 0, duplicates: 1 });
    await runner().wake();
    expect(source.calls.verify, 'a duplicate is not re-read').to.equal(1);
    expect(await host!.queue.pendingTriggers('src')).to.deep.equal({ count: 0, oldestReceivedAt: undefined });
    const metrics = (await host!.metrics.render()).split('\n').filter((l) => l.startsWith('approvals_hub_source_triggers_total{'));
    expect(metrics).to.include.members([
      'approvals_hub_source_triggers_total{source="src",outcome="added"} 1',
      'approvals_hub_source_triggers_total{source="src",outcome="duplicate"} 1',
      'approvals_hub_source_triggers_total{source="src",outcome="refreshed"} 1',
    ]);
  });

  it('a push for a record the source no longer has closes its card; one it reports decided closes it too', async () => {
    source.submit('R1', { approvers: [ANN] });
    source.submit('R2', { approvers: [ANN] });
    await host!.runOnce();
    source.delete('R1');
    source.complete('R2', 'approved');
    await triggers.submit([
      { id: 'evt-d', externalId: 'R1' },
      { id: 'evt-a', externalId: 'R2' },
    ]);
    await runner().wake();
    expect(await queued()).to.deep.equal([]);
  });

  it('refuses malformed triggers with an error naming the field, storing none of the push', async () => {
    let error: Error | undefined;
    try {
      await triggers.submit([
        { id: 'ok', externalId: 'R1' },
        { id: '', externalId: 'R2' },
      ]);
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).to.equal('source "src": trigger 1: id must be a non-empty string of at most 256 characters');
    expect((await host!.queue.pendingTriggers('src')).count).to.equal(0);
  });

  it('a refresh that fails gives the triggers back with a backoff, and they are taken again after it', async () => {
    source.submit('R1', { approvers: [ANN] });
    source.failWith = new Error('Concur is down');
    await triggers.submit([{ id: 'evt-1', externalId: 'R1' }]);
    await runner().wake();
    expect(await queued()).to.deep.equal([]);
    expect((await host!.queue.pendingTriggers('src')).count, 'kept for a retry').to.equal(1);
    source.failWith = undefined;
    await runner().wake();
    expect(await queued(), 'not before its backoff').to.deep.equal([]);
    clock.advance(2_000);
    await runner().wake();
    expect(await queued()).to.deep.equal(['R1']);
  });

  it('trusts pushes only once one arrived, counts what the safety poll finds that no push announced, and falls back', async () => {
    source.submit('R1', { approvers: [ANN] });
    await host!.runOnce();
    expect(runner().events!.status(clock.now())).to.include({ mode: 'polling', reason: 'no push received yet' });

    source.submit('R2', { approvers: [ANN] });
    await triggers.submit([{ id: 'evt-2', externalId: 'R2' }]);
    await runner().wake();
    minutes(1);
    let report = (await host!.runOnce()).cycles[0]!;
    expect(runner().events!.status(clock.now()).mode).to.equal('events');
    expect(report.eventDrift, 'the push had brought R2 already').to.deep.equal({ missed: 0, 'completion-missed': 0, reassigned: 0, changed: 0 });

    // A submit no push announced, and a completion no push announced.
    source.submit('R3', { approvers: [ANN] });
    source.complete('R1', 'approved');
    minutes(5);
    await triggers.submit([{ id: 'evt-x', externalId: 'R2' }]); // pushes still flow for other records
    report = (await host!.runOnce()).cycles[0]!;
    expect(report.eventDrift).to.deep.equal({ missed: 1, 'completion-missed': 1, reassigned: 0, changed: 0 });
    expect(onceSummary({ cycles: [report], failures: [], delivery: { delivered: 0, superseded: 0, retried: 0, dead: 0 } })[0]).to.match(
      /, found by the poll, not pushed: missed 1, completion-missed 1$/,
    );
    expect(await queued()).to.deep.equal(['R2', 'R3']);
    const status = runner().events!.status(clock.now());
    expect(status.mode).to.equal('polling');
    expect(status.reason).to.match(/^the safety poll found changes no push announced at .*; trusting pushes again 60 min after$/);
    const drift = (await host!.metrics.render()).split('\n').filter((l) => l.startsWith('approvals_hub_source_event_drift_total{'));
    expect(drift).to.have.members([
      'approvals_hub_source_event_drift_total{source="src",cause="missed"} 1',
      'approvals_hub_source_event_drift_total{source="src",cause="completion-missed"} 1',
    ]);
    expect(logs.some((l) => l.level === 40 && l.msg.startsWith('push events not trusted (the safety poll found changes no push announced'))).to.equal(true);

    // An hour on, with pushes still flowing, they are trusted again.
    minutes(61);
    await triggers.submit([{ id: 'evt-y', externalId: 'R2' }]);
    await host!.runOnce();
    expect(runner().events!.status(clock.now()).mode).to.equal('events');
  });
});

describe('events health: the mode and why, from what every host noted', () => {
  const now = new Date('2026-01-05T09:00:00.000Z');
  const at = (minutes: number) => new Date(now.getTime() + minutes * 60_000);

  it('falls back after the silence window, and when refusals reach the threshold; hosts share what they noted', async () => {
    const queue = new MemoryApprovalQueue();
    await queue.init();
    const receiving = new EventsHealth('src', POLICY, queue);
    const polling = new EventsHealth('src', POLICY, queue);
    receiving.event(now);
    await receiving.flush(now);
    await polling.flush(at(1));
    expect(polling.status(at(1))).to.include({ mode: 'events', reason: 'healthy', lastEventAt: now.toISOString() });
    await polling.flush(at(61));
    expect(polling.status(at(61))).to.include({ mode: 'polling', reason: 'no push for 61 min' });

    receiving.event(at(62));
    for (const m of [62, 63, 64]) receiving.refused(at(m));
    await receiving.flush(at(64));
    await polling.flush(at(65));
    expect(polling.status(at(65))).to.include({ mode: 'polling', refused: 3, reason: '3 pushes refused as not authentic in the last 60 min' });
    // Refusals older than the window no longer count.
    await polling.flush(at(125));
    receiving.event(at(125));
    await receiving.flush(at(125));
    await polling.flush(at(125));
    expect(polling.status(at(125))).to.include({ mode: 'events', refused: 0 });
  });
});

async function waitFor(check: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
