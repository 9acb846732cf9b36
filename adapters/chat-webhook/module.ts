import type { FromSchema } from 'json-schema-to-ts';
import { Clock, ContainerModule, Notifier, type PluginContext } from '../../core/index.js';
import type { configSchema } from './config-schema.js';
import { WebhookNotifier } from './webhook-notifier.js';

/** The config as the host hands it over: validated against plugin.json, defaults filled, the secret resolved. */
type WebhookConfig = Readonly<FromSchema<typeof configSchema>>;

export default function webhookModule(context: PluginContext<WebhookConfig>): ContainerModule {
  const { url, signingSecret, timeoutSeconds } = context.config;
  return new ContainerModule(({ bind }) => {
    bind(WebhookNotifier)
      .toResolvedValue((clock: Clock) => new WebhookNotifier(context.instanceId, url, signingSecret, timeoutSeconds * 1000, () => clock.now()), [Clock])
      .inSingletonScope();
    bind(Notifier).toService(WebhookNotifier);
  });
}
