import { ContainerModule } from '../../core/di.js';
import { ApprovalQueue } from '../../core/contracts/approval-queue.js';
import type { PluginModuleFactory } from '../../core/host/plugin-api.js';
import { MemoryApprovalQueue } from './memory-approval-queue.js';

const memoryQueueModule: PluginModuleFactory = () =>
  new ContainerModule(({ bind }) => {
    bind(MemoryApprovalQueue).toSelf().inSingletonScope();
    bind(ApprovalQueue).toService(MemoryApprovalQueue);
  });

export default memoryQueueModule;
