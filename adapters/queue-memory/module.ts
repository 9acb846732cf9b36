import { ApprovalQueue, ContainerModule, type PluginModuleFactory } from '../../core/index.js';
import { MemoryApprovalQueue } from './memory-approval-queue.js';

const memoryQueueModule: PluginModuleFactory = () =>
  new ContainerModule(({ bind }) => {
    bind(MemoryApprovalQueue).toSelf().inSingletonScope();
    bind(ApprovalQueue).toService(MemoryApprovalQueue);
  });

export default memoryQueueModule;
