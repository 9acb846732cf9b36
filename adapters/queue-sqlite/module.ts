import { resolve } from 'node:path';
import type { FromSchema } from 'json-schema-to-ts';
import { ApprovalQueue, ContainerModule, type PluginModuleFactory } from '../../core/index.js';
import type { configSchema } from './config-schema.js';
import { SqliteApprovalQueue } from './sqlite-approval-queue.js';

/** The config from plugin.json; defaulted fields may be missing when a caller builds the module without the host's defaults. */
type SqliteQueueConfig = Readonly<FromSchema<typeof configSchema, { keepDefaultedPropertiesOptional: true }>>;

const sqliteQueueModule: PluginModuleFactory<SqliteQueueConfig> = (context) =>
  new ContainerModule(({ bind }) => {
    bind(SqliteApprovalQueue)
      .toDynamicValue(
        () =>
          new SqliteApprovalQueue(resolve(context.baseDir, context.config.path ?? 'approvals.db'), {
            cacheSizeMB: context.config.cacheSizeMB,
            mmapSizeMB: context.config.mmapSizeMB,
          }),
      )
      .inSingletonScope();
    bind(ApprovalQueue).toService(SqliteApprovalQueue);
  });

export default sqliteQueueModule;
