import { ConfigurationBotFrameworkAuthentication, ConfigurationServiceClientCredentialFactory, type Activity } from 'botbuilder';
import type { FastifyInstance } from 'fastify';
import {
  actionStatus,
  cardFor,
  createCardRenderer,
  emailKey,
  type ActionResult,
  type ApprovalActions,
  type ApprovalLookup,
  type Card,
  type CardOutcome,
  type HttpRoutes,
  type Logger,
  type QueuedApproval,
} from '../../core/index.js';
import {
  ACT_VERB,
  ADAPTIVE_CARD_CONTENT_TYPE,
  COMMENT_INPUT,
  COMMENT_MAX,
  OPTIONAL_COMMENT_INPUT,
  REFRESH_VERB,
  UNIVERSAL_ACTIONS_VERSION,
  approvalCard,
  approvalListCard,
  attachment,
  consentCard,
  escapeMarkdown,
  listSummary,
  type AdaptiveCard,
} from './adaptive-card.js';
import type { BotConnector, OutgoingActivity, PersonalConversations, TeamsConfig, TeamsDirectory } from './teams-notifier.js';

/** Approvals a reply lists before "and N more". */
const LISTED = 20;

const HELP = 'Ask me "approvals" (or "what\'s waiting on me?") to see the approvals waiting on you.';
const NO_EMAIL = 'I cannot match your Teams account to a work e-mail address, so I cannot show you any approvals.';
const UNAVAILABLE = 'I could not look up your approvals just now. Please try again in a minute.';
const PERSONAL_ONLY = 'I list approvals only in a 1:1 chat with me, so nobody else sees them. Send me "approvals" there.';
const UNAVAILABLE_ACTION = 'I could not act on this just now; nothing was changed. Please try again in a minute.';
const NOT_OWN_CHAT = 'Act on an approval from its card in your own chat with me.';
const STILL_WORKING = 'Still working on it: the card will show the outcome in a moment.';
const GONE = 'This approval no longer waits on you; its card is being updated.';

/**
 * How long a click waits for the action before it answers "still working" and lets the action end
 * in the background (its card is then updated through the outbox). Teams shows an error when an
 * invoke is not answered within a few seconds; the exact limit is not documented.
 */
const INVOKE_DEADLINE_MS = 4_000;

/** Act buttons a redrawn card may have. */
const MAX_ACTIONS = 5;

/**
 * The body of the HTTP 200 that answers an `adaptiveCard/action` invoke: a card that replaces the
 * clicked one, a message the client shows, or an error (learn.microsoft.com/adaptive-cards/authoring-cards/universal-action-model#response-format).
 */
export type CardActionResponse =
  | { readonly statusCode: 200; readonly type: typeof ADAPTIVE_CARD_CONTENT_TYPE; readonly value: AdaptiveCard }
  | { readonly statusCode: 200; readonly type: 'application/vnd.microsoft.activity.message'; readonly value: string }
  | { readonly statusCode: 400; readonly type: 'application/vnd.microsoft.error'; readonly value: { readonly code: string; readonly message: string } };

const cardResponse = (value: AdaptiveCard): CardActionResponse => ({ statusCode: 200, type: ADAPTIVE_CARD_CONTENT_TYPE, value });
const messageResponse = (value: string): CardActionResponse => ({ statusCode: 200, type: 'application/vnd.microsoft.activity.message', value });
const badRequest = (message: string): CardActionResponse => ({
  statusCode: 400,
  type: 'application/vnd.microsoft.error',
  value: { code: 'BadRequest', message },
});

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
export function botFrameworkAuthenticator(
  config: Pick<TeamsConfig, 'appId' | 'appPassword' | 'appType' | 'tenantId' | 'openIdMetadataUrl'>,
): ChannelAuthenticator {
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

/** The channel-neutral card of a queued approval with the act buttons the clicked card had (the token decides what may be done). */
function render(approval: QueuedApproval, actions: readonly string[], outcome?: CardOutcome): Card {
  return createCardRenderer(new Map([[approval.source, { actions }]]))(approval, outcome);
}

/** Resolves undefined after `ms`; the timer does not keep the process alive. */
function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
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

const QUESTIONS = new Set([
  'approvals',
  'my approvals',
  'list',
  'waiting',
  "what's waiting",
  "what's waiting on me",
  'whats waiting on me',
  'what is waiting on me',
]);

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
 *
 * What the channel's JWT vouches for is only the request's `serviceUrl` (its `serviceurl` claim),
 * not the body: a token captured once can be replayed, until it expires, with any `from`,
 * `conversation` or text. So no body field alone chooses where an answer goes. The list goes only
 * into the sender's own 1:1 chat as our {@link PersonalConversations} record gives it for the
 * Teams user that `from` maps to (through the same `users` map or roster), and only when that is
 * the activity's `conversation.id`; a text answer (help, "only in a 1:1 chat", "cannot match
 * you") goes only into a conversation the connector confirms `from.id` is a member of. Anything
 * else is logged and not answered: an edited `from` can at most show a person their own list in
 * their own chat.
 *
 * A click on a card's act button arrives as the `adaptiveCard/action` invoke and is answered in the
 * HTTP response (Universal Actions): the button's opaque token, the clicker as `from` maps to an
 * e-mail (never one stated in the card's data), and the typed comment go to
 * {@link ApprovalActions.act}, which checks that the token is this person's, for this card. The
 * answer replaces the clicked card (the outcome, or a consent link) or shows the result's message;
 * every other copy of the card is updated through the outbox. The card's `refresh` invoke is answered
 * with the card as the queue has it now, with fresh buttons for that person.
 */
export class TeamsRoutes implements HttpRoutes {
  readonly id: string;

  constructor(
    /** The notifier instance's id: the `channel` of an action taken through this bot. */
    private readonly notifierId: string,
    private readonly config: Pick<TeamsConfig, 'callbackPath' | 'tenantId' | 'serviceUrl'>,
    private readonly authenticate: ChannelAuthenticator | undefined,
    private readonly directory: TeamsDirectory,
    private readonly conversations: PersonalConversations,
    private readonly connector: BotConnector,
    private readonly lookup: ApprovalLookup,
    private readonly actions: ApprovalActions,
    private readonly logger: Logger,
  ) {
    this.id = `teams:${notifierId}`;
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
          if (activity.type === 'invoke' && activity.name === 'adaptiveCard/action') {
            // Universal Actions: HTTP 200 whenever the bot handled the invoke; the outcome is in the body.
            return reply.code(200).send(
              await this.cardAction(activity).catch((error: unknown): CardActionResponse => {
                this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'a Teams card action failed');
                return messageResponse(UNAVAILABLE_ACTION);
              }),
            );
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
    const senderId = str(from.id);
    if (!conversationId || !senderId) return;

    const question = QUESTIONS.has(normaliseQuestion(str(activity.text) ?? ''));
    let text = !question ? HELP : PERSONAL_ONLY;
    if (question && conversation.conversationType === 'personal') {
      const instead = await this.answerList(activity, conversationId, { id: senderId, aadObjectId: str(from.aadObjectId) });
      if (instead === undefined) return;
      text = instead;
    }
    if (!(await this.isMember(conversationId, senderId))) return;
    await this.reply(activity, conversationId, { type: 'message', text, textFormat: 'plain' });
  }

  /**
   * The sender's list, into their own 1:1 chat. Undefined when that is done, or deliberately not
   * done (the conversation is not the sender's own); else the text to answer instead (the sender
   * cannot be matched to an e-mail, or cannot be resolved now).
   */
  private async answerList(
    activity: Record<string, unknown>,
    conversationId: string,
    sender: { id: string; aadObjectId: string | undefined },
  ): Promise<string | undefined> {
    let email: string | undefined;
    let own: string;
    try {
      email = await this.directory.emailOf(sender);
      if (!email) return NO_EMAIL;
      own = await this.conversations.with(await this.directory.userIdFor(email));
    } catch (error) {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'resolving the sender of a Teams message failed');
      return UNAVAILABLE;
    }
    if (own !== conversationId) {
      this.logger.warn({ sender: sender.id }, "ignored a Teams message naming a conversation that is not the sender's own 1:1 chat");
      return undefined;
    }
    let answer: OutgoingActivity;
    try {
      const all = await this.lookup.waitingOn(email);
      const shown = all.slice(0, LISTED);
      const more = all.length - shown.length;
      const heading = all.length === 0 ? 'Nothing is waiting on you.' : `Waiting on you (${all.length}):`;
      answer = { type: 'message', summary: listSummary(all.length), attachments: [attachment(approvalListCard(heading, shown, more))] };
    } catch (error) {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'approval lookup for a Teams message failed');
      answer = { type: 'message', text: UNAVAILABLE, textFormat: 'plain' };
    }
    await this.reply(activity, own, answer);
    return undefined;
  }

  /**
   * A click on a card (`Action.Execute`) or the card's refresh. The clicker is who the verified
   * activity's `from` maps to through the `users` map or roster, never an e-mail in the card's
   * data, and only in their own 1:1 chat with the bot (where their cards are): the channel's token
   * does not vouch for the body, so a replay with an edited `from` must also name that person's
   * own chat, and still needs that person's button token.
   */
  private async cardAction(activity: Record<string, unknown>): Promise<CardActionResponse> {
    const value = isRecord(activity.value) ? activity.value : {};
    const action = isRecord(value.action) ? value.action : {};
    const data = isRecord(action.data) ? action.data : {};
    const verb = str(action.verb);
    if (verb !== ACT_VERB && verb !== REFRESH_VERB) return badRequest('unknown card action');

    const conversation = isRecord(activity.conversation) ? activity.conversation : {};
    const channelData = isRecord(activity.channelData) ? activity.channelData : {};
    const tenant = str(conversation.tenantId) ?? (isRecord(channelData.tenant) ? str(channelData.tenant.id) : undefined);
    if (tenant !== this.config.tenantId) {
      this.logger.warn({ tenant }, 'ignored a Teams card action from another tenant');
      return badRequest('wrong tenant');
    }
    const from = isRecord(activity.from) ? activity.from : {};
    const senderId = str(from.id);
    let email: string | undefined;
    try {
      email = senderId ? await this.directory.emailOf({ id: senderId, aadObjectId: str(from.aadObjectId) }) : undefined;
      if (!email) return messageResponse(NO_EMAIL);
      const own = await this.conversations.with(await this.directory.userIdFor(email));
      if (own !== str(conversation.id)) {
        this.logger.warn({ sender: senderId }, "refused a Teams card action outside the sender's own 1:1 chat");
        return messageResponse(NOT_OWN_CHAT);
      }
    } catch (error) {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'resolving the sender of a Teams card action failed');
      return messageResponse(UNAVAILABLE);
    }
    // Which buttons to draw again. Not trusted for more: a name the source does not support draws a
    // button whose click the core refuses; bounded so an edited request cannot draw a wall of them.
    const names = Array.isArray(data.actions) ? data.actions.filter((a): a is string => typeof a === 'string' && a.length <= 40).slice(0, MAX_ACTIONS) : [];
    if (verb === REFRESH_VERB) return this.refreshed(str(data.key), email, names, senderId);

    const token = str(data.token);
    if (!token) return badRequest('a card action without a token');
    // The required box (Send back) or the optional one (Approve with comment); an empty box is no comment.
    const typed = [data[COMMENT_INPUT], data[OPTIONAL_COMMENT_INPUT]].find((v): v is string => typeof v === 'string' && v.trim().length > 0);
    const comment = typed?.trim();
    // The client enforces the box's maxLength; an edited request is refused rather than cut.
    if (comment && comment.length > COMMENT_MAX) return messageResponse(`A comment may have at most ${COMMENT_MAX} characters; nothing was changed.`);
    // What the card showed, read before acting: after `done` the approval no longer waits on anyone.
    const target = await this.actions.peek(token);
    const before = target && emailKey(target.approverEmail) === email ? await this.lookup.forApprover(target.approvalKey, email) : undefined;
    const acting = this.actions.act(token, { email, channel: this.notifierId, channelName: 'Teams' }, { comment });
    const result = await Promise.race([acting, delay(INVOKE_DEADLINE_MS)]);
    if (!result) {
      acting.then(
        (late) => this.logger.info({ outcome: late.outcome }, 'a Teams card action ended after its click was answered'),
        (error: unknown) => this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'a Teams card action failed'),
      );
      return messageResponse(STILL_WORKING);
    }
    return this.answerAction(result, before, email, names, comment, senderId);
  }

  /** The answer to a click: the closed card, the card under a consent link, or the result's message. */
  private async answerAction(
    result: ActionResult,
    before: QueuedApproval | undefined,
    email: string,
    names: readonly string[],
    comment: string | undefined,
    senderId: string | undefined,
  ): Promise<CardActionResponse> {
    if (result.outcome === 'done' && before) {
      const at = result.at.slice(0, 16).replace('T', ' ');
      const card = render(before, names, actionStatus(result.action) ?? 'no_longer_required');
      return cardResponse(approvalCard({ ...card, outcomeNote: `By you in Teams at ${at} UTC${comment ? `: “${comment}”` : ''}` }));
    }
    if (result.outcome === 'consent_needed') {
      const current = before ? await this.actions.withTokens(render(before, names), before.generation, email) : undefined;
      const base: AdaptiveCard = current
        ? approvalCard(current, { refreshUserId: senderId })
        : { type: 'AdaptiveCard', $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', version: UNIVERSAL_ACTIONS_VERSION, body: [] };
      return cardResponse(consentCard(base, result.message, result.url, result.label));
    }
    return messageResponse(result.message);
  }

  /** The card as the queue has it now, with fresh buttons for this approver; a short closed note once it no longer waits on them. */
  private async refreshed(key: string | undefined, email: string, names: readonly string[], senderId: string | undefined): Promise<CardActionResponse> {
    const approval = key ? await this.lookup.forApprover(key, email) : undefined;
    if (!approval) {
      return cardResponse({
        type: 'AdaptiveCard',
        $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
        version: UNIVERSAL_ACTIONS_VERSION,
        body: [{ type: 'TextBlock', text: escapeMarkdown(GONE), wrap: true, isSubtle: true }],
      });
    }
    // A delegate's copy keeps its "As delegate of …" line.
    const mine = approval.approvers.find((a) => emailKey(a.email) === emailKey(email)) ?? {};
    const card = await this.actions.withTokens(cardFor(render(approval, names), mine), approval.generation, email);
    return cardResponse(approvalCard(card, { refreshUserId: senderId }));
  }

  /** Whether the connector names `userId` a member of the conversation; a text answer goes nowhere else. */
  private async isMember(conversationId: string, userId: string): Promise<boolean> {
    try {
      const member = await this.connector.getConversationMember(conversationId, userId);
      if (member?.id === userId) return true;
      this.logger.warn({ sender: userId }, 'ignored a Teams message from someone who is not a member of the conversation it names');
    } catch (error) {
      this.logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'could not confirm the sender of a Teams message is in its conversation; not answered',
      );
    }
    return false;
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
