import { ApprovalQueue, ContainerModule, type PluginModuleFactory } from '../../core/index.js';
import { DEFAULT_POOL_SIZE, DEFAULT_SCHEMA, PostgresApprovalQueue } from './postgres-approval-queue.js';

/** The manifest's default, for a caller that builds the module without the host's schema defaults. */
const DEFAULT_CONNECTION_STRING = 'postgres://postgres@127.0.0.1:5432/test';

const postgresQueueModule: PluginModuleFactory<{ connectionString?: string; schema?: string; poolSize?: number }> = (context) =>
  new ContainerModule(({ bind }) => {
    bind(PostgresApprovalQueue)
      .toDynamicValue(
        () =>
          new PostgresApprovalQueue({
            connectionString: context.config.connectionString ?? DEFAULT_CONNECTION_STRING,
            schema: context.config.schema ?? DEFAULT_SCHEMA,
            poolSize: context.config.poolSize ?? DEFAULT_POOL_SIZE,
          }),
      )
      .inSingletonScope();
    bind(ApprovalQueue).toService(PostgresApprovalQueue);
  });

export default postgresQueueModule;
