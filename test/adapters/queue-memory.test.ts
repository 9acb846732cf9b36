import { expect } from 'chai';
import { Container } from '../../core/di.js';
import { ApprovalQueue } from '../../core/contracts/approval-queue.js';
import { MemoryApprovalQueue } from '../../adapters/queue-memory/memory-approval-queue.js';
import memoryQueueModule from '../../adapters/queue-memory/module.js';
import { describeApprovalQueueContract } from '../../core/testing/index.js';

describeApprovalQueueContract('memory', async () => {
  const queue = new MemoryApprovalQueue();
  await queue.init();
  return { queue, cleanup: () => queue.close() };
});

describe('memory queue plugin module', () => {
  it('binds ApprovalQueue to a single MemoryApprovalQueue', async () => {
    const container = new Container();
    await container.loadAsync(memoryQueueModule({ instanceId: 'memory', config: {}, baseDir: '.' }));

    const queue = container.get(ApprovalQueue);
    expect(queue).to.be.instanceOf(MemoryApprovalQueue);
    expect(container.get(ApprovalQueue)).to.equal(queue);
    expect(container.get(MemoryApprovalQueue)).to.equal(queue);
  });
});
