import { WebClient } from '@slack/web-api';
import { ApprovalActions, ApprovalLookup, Clock, ContainerModule, HttpRoutes, Logger, Notifier, type PluginContext } from '../../core/index.js';
import { SLACK_DEFAULTS, SlackDirectory, SlackNotifier, createSlackClient, type SlackConfig } from './slack-notifier.js';
import { SlackRoutes } from './slack-routes.js';
import { SlackSignatureVerifier } from './slack-signature.js';

/**
 * One Slack workspace: the notifier that DMs cards, and the callback routes (slash command,
 * interactivity, events) that answer from the queue. Both share one Web API client and one
 * e-mail ↔ user directory in this instance's child container.
 */
export default function slackModule(context: PluginContext<Partial<SlackConfig>>): ContainerModule {
  const { botToken, signingSecret } = context.config;
  if (!botToken || !signingSecret) throw new Error(`slack notifier "${context.instanceId}": botToken and signingSecret are required`);
  const config: SlackConfig = { ...SLACK_DEFAULTS, ...context.config, botToken, signingSecret };
  const log = (logger: Logger) => logger.child({ notifier: context.instanceId });

  return new ContainerModule(({ bind }) => {
    bind(WebClient)
      .toResolvedValue((logger: Logger) => createSlackClient(config, log(logger)), [Logger])
      .inSingletonScope();
    bind(SlackDirectory)
      .toResolvedValue((client: WebClient, clock: Clock) => new SlackDirectory(client, clock), [WebClient, Clock])
      .inSingletonScope();
    bind(SlackNotifier)
      .toResolvedValue(
        (client: WebClient, directory: SlackDirectory, logger: Logger) => new SlackNotifier(context.instanceId, client, directory, log(logger)),
        [WebClient, SlackDirectory, Logger],
      )
      .inSingletonScope();
    bind(Notifier).toService(SlackNotifier);
    bind(SlackSignatureVerifier)
      .toResolvedValue((clock: Clock) => new SlackSignatureVerifier(config.signingSecret, clock), [Clock])
      .inSingletonScope();
    bind(SlackRoutes)
      .toResolvedValue(
        (verifier: SlackSignatureVerifier, directory: SlackDirectory, client: WebClient, lookup: ApprovalLookup, actions: ApprovalActions, logger: Logger) =>
          new SlackRoutes(context.instanceId, config, verifier, directory, client, lookup, actions, log(logger)),
        [SlackSignatureVerifier, SlackDirectory, WebClient, ApprovalLookup, ApprovalActions, Logger],
      )
      .inSingletonScope();
    bind(HttpRoutes).toService(SlackRoutes);
  });
}
