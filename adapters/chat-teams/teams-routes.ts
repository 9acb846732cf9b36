import { ConfigurationBotFrameworkAuthentication, ConfigurationServiceClientCredentialFactory, type Activity } from 'botbuilder';
import type { FastifyInstance } from 'fastify';
import type { ApprovalLookup, HttpRoutes, Logger } from '../../core/index.js';
import { approvalListCard, attachment, listSummary } from './adaptive-card.js';
import type { BotConnector, OutgoingActivity, TeamsConfig, TeamsDirectory } from './teams-notifier.js';

/** Approvals a reply lists before "and N more". */
const LISTED = 20;

const HELP = 'Ask me "approvals" (or "what\'s waiting on me?") to see the approvals waiting on you.';
const NO_EMAIL = 'I cannot match your Teams account to a work e-mail address, so I cannot show you any approvals.';
const UNAVAILABLE = 'I could not look up your approvals just now. Please try again in a minute.';
const PERSONAL_ONLY = 'I list approvals only in a 1:1 chat with me, so nobody else sees them. Send me "approvals" there.';

/**
 * Checks the `Authorization` header of a request from the Bot Framework channel; throws when it
 * is missing or invalid. `statusCode` on the error, when botbuilder sets one, is the HTTP status.
 */
export type ChannelAuthenticator = (activity: Record<string, unknown>, authHeader: string) => Promise<void>;

/**
 * botbuilder's own verification of the channel's JWT (ConfigurationBotFrameworkAuthentication →
 * ChannelValidation): signature against the keys in the OpenID metadata, issuer
 * `https://api.botframework.com`, audience = our app id, not expired, the key endorsed for the
 * activity's `channelId`, and the token's `serviceurl` claim equal to the activity's `serviceUrl`
 * (learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication).
 * `openIdMetadataUrl` is Microsoft's unless a test points it at a fake publishing its own key:
 * the same code then verifies real signatures offline, nothing is switched off.
 */
export function botFrameworkAuthenticator(config: Pick<TeamsConfig, 'appId' | 'appPassword' | 'appType' | 'tenantId' | 'openIdMetadataUrl'>): ChannelAuthenticator {
  if (!config.appId) throw new Error('verifying channel requests needs an app id');
  const credentials = new ConfigurationServiceClientCredentialFactory({
    MicrosoftAppId: config.appId,
    MicrosoftAppPassword: config.appPassword,
    MicrosoftAppType: config.appType,
    MicrosoftAppTenantId: config.appType === 'SingleTenant' ? config.tenantId : undefined,
  });
  // Setting any one endpoint switches botbuilder to "parameterized" mode, where every endpoint must
  // be given (BotFrameworkAuthenticationFactory.create): these are its public-cloud defaults
  // (AuthenticationConstants, CallerIdConstants.PublicAzureChannel) with only the metadata URL ours.
  const auth = new ConfigurationBotFrameworkAuthentication(
    {
      MicrosoftAppId: config.appId,
      ValidateAuthority: true,
      ToChannelFromBotLoginUrl: 'https://login.microsoftonline.com/botframework.com',
      ToChannelFromBotOAuthScope: 'https://api.botframework.com',
      ToBotFromChannelTokenIssuer: 'https://api.botframework.com',
      OAuthUrl: 'https://api.botframework.com',
      ToBotFromChannelOpenIdMetadataUrl: config.openIdMetadataUrl,
      ToBotFromEmulatorOpenIdMetadataUrl: 'https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration',
      CallerId: 'urn:botframework:azure',
    },
    credentials,
  );
  return async (activity, authHeader) => {
    await auth.authenticateRequest(activity as Partial<Activity> as Activity, authHeader);
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** A service URL replies may go to: https, or http on loopback (the emulator, a fake). */
function replyUrl(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol === 'https:') return value;
    return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Message text without mentions (`<at>Bot</at>`), punctuation or case: "What's waiting on me?" → `what's waiting on me`. */
export function normaliseQuestion(text: string): string {
  return text
    .replace(/<at>[^<]*<\/at>/gi, ' ')
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[?!.\s]+/g, ' ')
    .trim()
    .toLowerCase();
}

const QUESTIONS = new Set(['approvals', 'my approvals', 'list', 'waiting', "what's waiting", "what's waiting on me", 'whats waiting on me', 'what is waiting on me']);

/**
 * The Bot Framework messaging endpoint of one Teams notifier instance: `POST ${callbackPath}/messages`.
 * A personal message "approvals" / "what's waiting on me?" is answered, as a reply in the same
 * chat, with the approvals waiting on the sender, read from the queue. A person only ever sees
 * approvals where they are an approver (invariant 4): the request's JWT is verified first (when an
 * app id is configured), the sender (`from.id` / `from.aadObjectId`, which the channel asserts) is
 * mapped to an e-mail through the same `users` map or roster the notifier uses, the list comes from
 * `ApprovalLookup.waitingOn(thatEmail)`, and only 1:1 chats get a list, so nobody else in a group
 * chat or channel reads it. Other activities (installation, conversation updates) are acknowledged.
 * Without an app id (local emulator only, see the module) nothing is verified, so replies go to
 * the configured service URL, never to one named in the request.
 */
export class TeamsRoutes implements HttpRoutes {
  readonly id: string;

  constructor(
    instanceId: string,
    private readonly config: Pick<TeamsConfig, 'callbackPath' | 'tenantId' | 'serviceUrl'>,
    private readonly authenticate: ChannelAuthenticator | undefined,
    private readonly directory: TeamsDirectory,
    private readonly connector: BotConnector,
    private readonly lookup: ApprovalLookup,
    private readonly logger: Logger,
  ) {
    this.id = `teams:${instanceId}`;
  }

  async register(app: FastifyInstance): Promise<void> {
    await app.register(
      async (scope) => {
        scope.post('/messages', async (request, reply) => {
          const activity = request.body;
          if (!isRecord(activity)) return reply.code(400).send({ error: 'expected a Bot Framework activity' });
          // Only Teams (and, unauthenticated, the Bot Framework Emulator) speak to this endpoint;
          // checking before the token also keeps other channels' validation paths out of reach.
          const channel = str(activity.channelId);
          if (channel !== 'msteams' && !(channel === 'emulator' && !this.authenticate)) {
            return reply.code(403).send({ error: 'unsupported channel' });
          }
          if (this.authenticate) {
            const header = request.headers.authorization;
            try {
              await this.authenticate(activity, typeof header === 'string' ? header : '');
            } catch (error) {
              const status = isRecord(error) && typeof error.statusCode === 'number' && error.statusCode >= 500 ? 503 : 401;
              this.logger.warn({ status, err: error instanceof Error ? error.message : String(error) }, 'refused a Teams request that failed authentication');
              return reply.code(status).send({ error: status === 401 ? 'unauthorized' : 'cannot verify the request now' });
            }
          }
          if (activity.type === 'message') await this.answer(activity);
          return reply.code(200).send();
        });
      },
      { prefix: this.config.callbackPath },
    );
  }

  private async answer(activity: Record<string, unknown>): Promise<void> {
    const conversation = isRecord(activity.conversation) ? activity.conversation : {};
    const channelData = isRecord(activity.channelData) ? activity.channelData : {};
    const tenant = str(conversation.tenantId) ?? (isRecord(channelData.tenant) ? str(channelData.tenant.id) : undefined);
    if (tenant !== this.config.tenantId) {
      this.logger.warn({ tenant }, 'ignored a Teams message from another tenant');
      return;
    }
    const from = isRecord(activity.from) ? activity.from : {};
    const conversationId = str(conversation.id);
    if (!conversationId || !str(from.id)) return;

    let answer: OutgoingActivity;
    const question = QUESTIONS.has(normaliseQuestion(str(activity.text) ?? ''));
    if (!question) answer = { type: 'message', text: HELP, textFormat: 'plain' };
    else if (conversation.conversationType !== 'personal') answer = { type: 'message', text: PERSONAL_ONLY, textFormat: 'plain' };
    else answer = await this.waitingOn({ id: str(from.id), aadObjectId: str(from.aadObjectId) });

    await this.reply(activity, conversationId, answer);
  }

  /** The list reply for one verified sender, or what to tell them instead. */
  private async waitingOn(sender: { id: string | undefined; aadObjectId: string | undefined }): Promise<OutgoingActivity> {
    try {
      const email = await this.directory.emailOf(sender);
      if (!email) return { type: 'message', text: NO_EMAIL, textFormat: 'plain' };
      const all = await this.lookup.waitingOn(email);
      const shown = all.slice(0, LISTED);
      const more = all.length - shown.length;
      const heading = all.length === 0 ? 'Nothing is waiting on you.' : `Waiting on you (${all.length}):`;
      return { type: 'message', summary: listSummary(all.length), attachments: [attachment(approvalListCard(heading, shown, more))] };
    } catch (error) {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'approval lookup for a Teams message failed');
      return { type: 'message', text: UNAVAILABLE, textFormat: 'plain' };
    }
  }

  /**
   * "Reply to activity" (Bot Connector REST API). The channel verified the `serviceUrl` claim, so a
   * verified request's `serviceUrl` is where Teams wants replies for that conversation.
   */
  private async reply(activity: Record<string, unknown>, conversationId: string, answer: OutgoingActivity): Promise<void> {
    const serviceUrl = this.authenticate ? replyUrl(str(activity.serviceUrl)) : this.config.serviceUrl;
    if (!serviceUrl) {
      this.logger.warn({ serviceUrl: activity.serviceUrl }, 'ignored a Teams message with an unusable serviceUrl');
      return;
    }
    const from = isRecord(activity.from) ? activity.from : {};
    const recipient = isRecord(activity.recipient) ? activity.recipient : {};
    const replyToId = str(activity.id);
    const message: OutgoingActivity = {
      ...answer,
      conversation: { id: conversationId },
      ...(str(recipient.id) ? { from: { id: str(recipient.id)!, name: str(recipient.name) } } : {}),
      recipient: { id: str(from.id)!, name: str(from.name) },
      ...(replyToId ? { replyToId } : {}),
    };
    const connector = this.connector.at(serviceUrl);
    try {
      if (replyToId) await connector.replyToActivity(conversationId, replyToId, message);
      else await connector.sendToConversation(conversationId, message);
    } catch (error) {
      this.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'replying to a Teams message failed');
    }
  }
}
