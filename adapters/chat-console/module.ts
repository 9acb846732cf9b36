import { ContainerModule, Notifier, type PluginContext } from '../../core/index.js';
import { ConsoleNotifier } from './console-notifier.js';

export default function consoleModule(context: PluginContext<{ stream?: 'stdout' | 'stderr' }>): ContainerModule {
  const stream = context.config.stream === 'stderr' ? process.stderr : process.stdout;
  return new ContainerModule(({ bind }) => {
    bind(ConsoleNotifier).toConstantValue(new ConsoleNotifier(context.instanceId, (text) => stream.write(`${text}\n`)));
    bind(Notifier).toService(ConsoleNotifier);
  });
}
