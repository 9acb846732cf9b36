import type { FromSchema } from 'json-schema-to-ts';
import { ApprovalQueue, ContainerModule, type PluginModuleFactory } from '../../core/index.js';
import type { configSchema } from './config-schema.js';
import { DEFAULT_POOL_SIZE, DEFAULT_SCHEMA, PostgresApprovalQueue } from './postgres-approval-queue.js';

/** The manifest's default, for a caller that builds the module without the host's schema defaults. */
const DEFAULT_CONNECTION_STRING = 'postgres://postgres@127.0.0.1:5432/test';

/** The config from plugin.json; defaulted fields may be missing when a caller builds the module without the host's defaults. */
type PostgresQueueConfig = Readonly<FromSchema<typeof configSchema, { keepDefaultedPropertiesOptional: true }>>;

const postgresQueueModule: PluginModuleFactory<PostgresQueueConfig> = (context) =>
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
