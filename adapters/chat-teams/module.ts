import { ApprovalActions, ApprovalLookup, Clock, ContainerModule, HttpRoutes, Logger, Notifier, type PluginContext } from '../../core/index.js';
import {
  BotConnector,
  PersonalConversations,
  TEAMS_DEFAULTS,
  TeamsDirectory,
  TeamsNotifier,
  botFrameworkTokenSource,
  type TeamsConfig,
} from './teams-notifier.js';
import { TeamsRoutes, botFrameworkAuthenticator } from './teams-routes.js';

const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

/**
 * One Teams bot: the notifier that sends cards to approvers' 1:1 chats, and the messaging endpoint
 * that answers "what's waiting on me?" from the queue. Both share one Bot Connector client and one
 * e-mail ↔ Teams user directory in this instance's child container. Without `appId` nothing is
 * signed or verified, which is only allowed against a connector on loopback (emulator, fake).
 */
export default function teamsModule(context: PluginContext<Partial<TeamsConfig>>): ContainerModule {
  const config: TeamsConfig = { ...TEAMS_DEFAULTS, ...context.config, tenantId: context.config.tenantId ?? '' };
  if (!config.tenantId) throw new Error(`teams notifier "${context.instanceId}": tenantId is required`);
  if (!config.appId && !LOOPBACK.includes(new URL(config.serviceUrl).hostname)) {
    throw new Error(`teams notifier "${context.instanceId}": appId and appPassword are required unless serviceUrl is on loopback`);
  }
  const log = (logger: Logger) => logger.child({ notifier: context.instanceId });

  return new ContainerModule(({ bind }) => {
    bind(BotConnector).toConstantValue(new BotConnector(config.serviceUrl, botFrameworkTokenSource(config)));
    bind(TeamsDirectory)
      .toResolvedValue(
        (connector: BotConnector, clock: Clock) => new TeamsDirectory(connector, config.users, config.rosterConversationId, clock),
        [BotConnector, Clock],
      )
      .inSingletonScope();
    bind(PersonalConversations)
      .toResolvedValue((connector: BotConnector) => new PersonalConversations(connector, config), [BotConnector])
      .inSingletonScope();
    bind(TeamsNotifier)
      .toResolvedValue(
        (connector: BotConnector, directory: TeamsDirectory, conversations: PersonalConversations, logger: Logger) =>
          new TeamsNotifier(context.instanceId, config, connector, directory, log(logger), conversations),
        [BotConnector, TeamsDirectory, PersonalConversations, Logger],
      )
      .inSingletonScope();
    bind(Notifier).toService(TeamsNotifier);
    bind(TeamsRoutes)
      .toResolvedValue(
        (
          connector: BotConnector,
          directory: TeamsDirectory,
          conversations: PersonalConversations,
          lookup: ApprovalLookup,
          actions: ApprovalActions,
          logger: Logger,
        ) =>
          new TeamsRoutes(
            context.instanceId,
            config,
            config.appId ? botFrameworkAuthenticator(config) : undefined,
            directory,
            conversations,
            connector,
            lookup,
            actions,
            log(logger),
          ),
        [BotConnector, TeamsDirectory, PersonalConversations, ApprovalLookup, ApprovalActions, Logger],
      )
      .inSingletonScope();
    bind(HttpRoutes).toService(TeamsRoutes);
  });
}
