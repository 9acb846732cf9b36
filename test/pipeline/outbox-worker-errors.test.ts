import { expect } from 'chai';
import { pino } from 'pino';
import { ApproverResolver } from '../../core/pipeline/approver-resolver.js';
import { createCardRenderer } from '../../core/pipeline/card-renderer.js';
import { OutboxWorker, defaultOutboxWorkerOptions } from '../../core/pipeline/outbox-worker.js';
import { SourceRunner } from '../../core/pipeline/source-runner.js';
import { ManualClock, RecordingNotifier, ScriptedSource } from '../../core/testing/index.js';
import { MemoryApprovalQueue } from '../../adapters/queue-memory/memory-approval-queue.js';
import * as core from '../../core/index.js';

/**
 * A second copy of the error classes, as a plugin that bundles its own approvals-hub in its
 * node_modules has: the same file under another URL is another module, with classes of its own.
 */
type ErrorClasses = Pick<typeof core, 'PermanentDeliveryError' | 'RetryLaterError'>;
const pluginCopy = async (): Promise<ErrorClasses> =>
  (await import(`${new URL('../../core/contracts/notifier.js', import.meta.url).href}?plugin-copy`)) as ErrorClasses;

const HOUR = 3_600_000;
const ANN = { sourceUserId: 'ann', email: 'ann@example.test' };

describe('outbox worker: delivery errors thrown by a plugin with its own copy of approvals-hub', () => {
  let clock: ManualClock;
  let queue: MemoryApprovalQueue;
  let chat: RecordingNotifier;
  let worker: OutboxWorker;
  let copy: ErrorClasses;

  beforeEach(async () => {
    copy = await pluginCopy();
    clock = new ManualClock();
    queue = new MemoryApprovalQueue();
    await queue.init();
    const source = new ScriptedSource('src', clock);
    chat = new RecordingNotifier('chat');
    const logger = pino({ level: 'silent' });
    const runner = new SourceRunner(source, queue, new ApproverResolver(undefined, logger), clock, logger, {
      pollIntervalMs: 60_000,
      sweepIntervalMs: 0,
      retentionDays: 30,
      channels: ['chat'],
      render: createCardRenderer(new Map([['src', source.capabilities]])),
    });
    worker = new OutboxWorker(queue, [chat], clock, logger, { ...defaultOutboxWorkerOptions, backoffBaseMs: 1_000, backoffMaxMs: 60_000 });
    source.submit('R1', { approvers: [ANN] });
    await runner.runOnce();
  });

  it('really is another class (the test is not vacuous)', () => {
    expect(new copy.PermanentDeliveryError('x')).not.to.be.instanceOf(core.PermanentDeliveryError);
    expect(new copy.RetryLaterError('x', 1)).not.to.be.instanceOf(core.RetryLaterError);
  });

  it('recognises both copies with isPermanentDeliveryError / isRetryLaterError, and nothing else', () => {
    expect(core.isPermanentDeliveryError(new copy.PermanentDeliveryError('x'))).to.equal(true);
    expect(core.isRetryLaterError(new copy.RetryLaterError('x', 5))).to.equal(true);
    expect(core.isPermanentDeliveryError(new copy.RetryLaterError('x', 5))).to.equal(false);
    expect(core.isRetryLaterError(new Error('x'))).to.equal(false);
    expect(core.isPermanentDeliveryError(undefined)).to.equal(false);
  });

  it("dead-letters at once a PermanentDeliveryError from the plugin's copy", async () => {
    chat.failing = new copy.PermanentDeliveryError('unknown user');
    const report = await worker.drain();
    expect(report).to.include({ dead: 1, retried: 0 });
    const [dead] = await queue.listOutbox('dead');
    expect(dead).to.include({ attempts: 1, lastError: 'unknown user' });
  });

  it('dead-letters at once a plain Error carrying the permanent code', async () => {
    chat.failing = Object.assign(new Error('bad request'), { code: core.PERMANENT_DELIVERY_ERROR_CODE });
    expect(await worker.drain()).to.include({ dead: 1, retried: 0 });
  });

  it("waits out the Retry-After of a RetryLaterError from the plugin's copy", async () => {
    chat.failing = new copy.RetryLaterError('rate limited', HOUR);
    expect(await worker.drain()).to.include({ retried: 1, delivered: 0 });
    chat.failing = undefined;
    // The backoff alone (at most 1 s after one attempt) would retry long before the hour is up.
    clock.advance(HOUR - 60_000);
    expect(await worker.drain()).to.include({ delivered: 0 });
    expect(chat.messages).to.have.length(0);
    clock.advance(60_000);
    expect(await worker.drain()).to.include({ delivered: 1 });
    expect(chat.messages).to.have.length(1);
  });

  it('retries with backoff when a retry-later error carries no usable retryAfterMs', async () => {
    chat.failing = Object.assign(new Error('busy'), { code: core.RETRY_LATER_ERROR_CODE, retryAfterMs: 'soon' });
    expect(await worker.drain()).to.include({ retried: 1 });
    chat.failing = undefined;
    clock.advance(1_000);
    expect(await worker.drain()).to.include({ delivered: 1 });
  });
});
