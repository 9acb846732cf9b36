import type { FromSchema } from 'json-schema-to-ts';
import { ContainerModule, HttpRoutes, Notifier, type PluginContext } from '../../core/index.js';
import type { configSchema } from './config-schema.js';
import { InboxRoutes } from './inbox-routes.js';
import { InboxSessions } from './inbox-sessions.js';
import { WebInboxNotifier } from './web-inbox-notifier.js';
import { WebInboxSettings } from './web-inbox-settings.js';

/** The config as the host hands it over: validated against plugin.json, defaults filled, the key resolved. */
export type WebInboxConfig = Readonly<FromSchema<typeof configSchema>>;

/** An HMAC key shorter than this can be guessed offline from one link; refuse to start with it. */
const MIN_KEY_LENGTH = 32;
const MINUTE_MS = 60_000;

/** One web inbox: the notifier (pushes to open pages) and the routes that serve the page. */
export default function webInboxModule(context: PluginContext<WebInboxConfig>): ContainerModule {
  const { signingKey, linkTtlMinutes, linkRequestIntervalMinutes, sessionTtlMinutes, publicUrl } = context.config;
  if (signingKey.length < MIN_KEY_LENGTH) {
    throw new Error(`notifier "${context.instanceId}": signingKey must be at least ${MIN_KEY_LENGTH} characters (e.g. openssl rand -base64 48)`);
  }
  const settings: WebInboxSettings = {
    instanceId: context.instanceId,
    signingKey,
    linkTtlMs: linkTtlMinutes * MINUTE_MS,
    linkRequestIntervalMs: linkRequestIntervalMinutes * MINUTE_MS,
    sessionTtlMs: sessionTtlMinutes * MINUTE_MS,
    publicUrl: publicUrl.replace(/\/+$/, ''),
  };
  return new ContainerModule(({ bind, onDeactivation }) => {
    bind(WebInboxSettings).toConstantValue(settings);
    bind(InboxSessions).toSelf().inSingletonScope();
    bind(WebInboxNotifier).toSelf().inSingletonScope();
    bind(Notifier).toService(WebInboxNotifier);
    bind(InboxRoutes).toSelf().inSingletonScope();
    bind(HttpRoutes).toService(InboxRoutes);
    onDeactivation(WebInboxNotifier, (notifier) => notifier.endStreams());
  });
}
