import { Clock, ContainerModule, Notifier, type PluginContext } from '../../core/index.js';
import { WebhookNotifier } from './webhook-notifier.js';

interface WebhookConfig {
  url: string;
  signingSecret: string;
  timeoutSeconds: number;
}

export default function webhookModule(context: PluginContext<WebhookConfig>): ContainerModule {
  const { url, signingSecret, timeoutSeconds } = context.config;
  return new ContainerModule(({ bind }) => {
    bind(WebhookNotifier)
      .toResolvedValue((clock: Clock) => new WebhookNotifier(context.instanceId, url, signingSecret, timeoutSeconds * 1000, () => clock.now()), [Clock])
      .inSingletonScope();
    bind(Notifier).toService(WebhookNotifier);
  });
}
