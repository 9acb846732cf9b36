import { resolve } from 'node:path';
import { ApprovalQueue, ContainerModule, type PluginModuleFactory } from '../../core/index.js';
import { SqliteApprovalQueue } from './sqlite-approval-queue.js';

const sqliteQueueModule: PluginModuleFactory<{ path?: string; cacheSizeMB?: number; mmapSizeMB?: number }> = (context) =>
  new ContainerModule(({ bind }) => {
    bind(SqliteApprovalQueue)
      .toDynamicValue(() => new SqliteApprovalQueue(resolve(context.baseDir, context.config.path ?? 'approvals.db'), {
          cacheSizeMB: context.config.cacheSizeMB,
          mmapSizeMB: context.config.mmapSizeMB,
        }),)
      .inSingletonScope();
    bind(ApprovalQueue).toService(SqliteApprovalQueue);
  });

export default sqliteQueueModule;
