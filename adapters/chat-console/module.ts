import type { FromSchema } from 'json-schema-to-ts';
import { ContainerModule, Notifier, type PluginContext } from '../../core/index.js';
import type { configSchema } from './config-schema.js';
import { ConsoleNotifier } from './console-notifier.js';

/** The config from plugin.json; `stream` may be missing when a caller builds the module without the host's defaults. */
type ConsoleConfig = Readonly<FromSchema<typeof configSchema, { keepDefaultedPropertiesOptional: true }>>;

export default function consoleModule(context: PluginContext<ConsoleConfig>): ContainerModule {
  const stream = context.config.stream === 'stderr' ? process.stderr : process.stdout;
  return new ContainerModule(({ bind }) => {
    bind(ConsoleNotifier).toConstantValue(new ConsoleNotifier(context.instanceId, (text) => stream.write(`${text}\n`)));
    bind(Notifier).toService(ConsoleNotifier);
  });
}
