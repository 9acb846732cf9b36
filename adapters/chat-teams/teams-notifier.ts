import { ConfigurationServiceClientCredentialFactory } from 'botbuilder';
import type { FromSchema } from 'json-schema-to-ts';
import { LRUCache } from 'lru-cache';
import {
  PermanentDeliveryError,
  RetryLaterError,
  emailKey,
  retryAfterMs,
  type Clock,
  type DeliveryReceipt,
  type Logger,
  type Notifier,
  type OutboundMessage,
  type MessageAction,
} from '../../core/index.js';
import { approvalCard, attachment, cardSummary, digestCard, linkCard, reminderText, type AdaptiveCardAttachment } from './adaptive-card.js';
import { configSchema } from './config-schema.js';

/**
 * One Teams notifier instance's config, as plugin.json validates it (appPassword resolved by the
 * host), derived from config-schema.ts so the two cannot drift. `appId` is absent only against a
 * local emulator or fake (no auth); `users` maps e-mail → Teams user id (`29:…`) or Entra object id.
 */
export type TeamsConfig = Readonly<FromSchema<typeof configSchema>>;

const { appType, serviceUrl, callbackPath, users, openIdMetadataUrl } = configSchema.properties;
/** The schema's defaults, for a caller that builds the module without the host's validation. */
export const TEAMS_DEFAULTS = {
  appType: appType.default,
  serviceUrl: serviceUrl.default,
  callbackPath: callbackPath.default,
  users: users.default,
  openIdMetadataUrl: openIdMetadataUrl.default,
} as const;

/** Bot Framework's OAuth scope for bot → channel calls (AuthenticationConstants.ToChannelFromBotOAuthScope). */
const BOT_FRAMEWORK_SCOPE = 'https://api.botframework.com';
/** Public-cloud login endpoint; the factory reads it only to pick public vs. government vs. private cloud. */
const LOGIN_ENDPOINT = 'https://login.microsoftonline.com/botframework.com';

/**
 * A Bot Connector call that may succeed later: 429, 5xx, 408, 412, 401, network, timeout.
 * `retryAfterMs` is the connector's `Retry-After` (0 when it sent none), which the outbox worker
 * waits at least; the message says it too, for the outbox's last-error column.
 */
export class TeamsRetryableError extends RetryLaterError {
  override readonly name: string = 'TeamsRetryableError';
  constructor(message: string, retryAfterMs = 0) {
    super(message, retryAfterMs);
  }
}

function errorCode(body: unknown): string | undefined {
  // Bot Connector ErrorResponse: {"error": {"code", "message"}}.
  if (typeof body !== 'object' || body === null || !('error' in body)) return undefined;
  const error = body.error;
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/**
 * What a failed call means for the outbox. Teams asks bots to retry 429 with backoff, and also 412,
 * 502 and 504 (learn.microsoft.com/microsoftteams/platform/bots/how-to/rate-limit); 401 is retried
 * too, as a credential problem an operator fixes without every queued card being dead-lettered.
 * Any other 4xx is permanent: an unknown user, a blocked or uninstalled app (403 MessageWritesBlocked,
 * see …/bots/how-to/conversations/send-proactive-messages), a deleted message, a bad request.
 */
export function connectorFailure(operation: string, status: number, retryAfter: string | null, body: unknown, raw: string): Error {
  const wait = retryAfterMs(retryAfter);
  const code = errorCode(body);
  const detail = `Bot Connector ${operation}: HTTP ${status}${code ? ` ${code}` : ''}`;
  if (status === 429 || status === 408 || status === 412 || status === 401 || status >= 500) {
    return new TeamsRetryableError(`${detail}${wait !== undefined ? `, Retry-After ${Math.ceil(wait / 1000)}s` : ''}`, wait);
  }
  return new PermanentDeliveryError(`${detail}${code ? '' : `: ${raw.replace(/\s+/g, ' ').slice(0, 200)}`}`);
}

/** Supplies the bot's bearer token for Bot Connector calls; `undefined` sends none (local emulator). */
export type TokenSource = () => Promise<string | undefined>;

/**
 * The bot's token from Entra ID (client credentials, scope api.botframework.com), through
 * botbuilder's own credential factory, which caches and refreshes it with MSAL.
 */
export function botFrameworkTokenSource(config: Pick<TeamsConfig, 'appId' | 'appPassword' | 'appType' | 'tenantId'>): TokenSource {
  const { appId, appPassword } = config;
  if (!appId) return async () => undefined;
  const factory = new ConfigurationServiceClientCredentialFactory({
    MicrosoftAppId: appId,
    MicrosoftAppPassword: appPassword,
    MicrosoftAppType: config.appType,
    MicrosoftAppTenantId: config.appType === 'SingleTenant' ? config.tenantId : undefined,
  });
  let credentials: Promise<unknown> | undefined;
  return async () => {
    credentials ??= factory.createCredentials(appId, BOT_FRAMEWORK_SCOPE, LOGIN_ENDPOINT, true);
    try {
      const c = await credentials;
      if (typeof c !== 'object' || c === null || !('getToken' in c) || typeof c.getToken !== 'function') throw new Error('credentials without getToken');
      return (await (c.getToken as () => Promise<string>).call(c)) || undefined;
    } catch (error) {
      credentials = undefined;
      throw new TeamsRetryableError(`Bot Framework token: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
}

/** A Bot Framework activity as this adapter sends it. */
export interface OutgoingActivity {
  readonly type: 'message';
  readonly id?: string;
  readonly text?: string;
  readonly textFormat?: 'plain' | 'markdown';
  readonly summary?: string;
  readonly attachments?: readonly AdaptiveCardAttachment[];
  readonly from?: { readonly id: string; readonly name?: string | undefined };
  readonly recipient?: { readonly id: string; readonly name?: string | undefined };
  readonly conversation?: { readonly id: string };
  readonly replyToId?: string;
}

/** `TeamsChannelAccount`, as `GET /v3/conversations/{id}/members/{userId}` answers it. */
export interface TeamsMember {
  readonly id: string;
  readonly name?: string;
  readonly objectId?: string;
  readonly aadObjectId?: string;
  readonly email?: string;
  readonly userPrincipalName?: string;
  readonly userRole?: string;
}

const seg = encodeURIComponent;

/**
 * The Bot Connector REST API (learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference),
 * the few operations this adapter uses, over `fetch`. Why not botframework-connector's
 * `ConnectorClient`: its Azure pipeline retries 5xx and sleeps through 429s inside the call, and
 * retries belong to the outbox worker (backoff, dead letters, crash safety, no lease held while
 * sleeping). One attempt per call; redirects are refused so the token never leaves `baseUrl`.
 */
export class BotConnector {
  private readonly base: URL;

  constructor(
    baseUrl: string,
    private readonly token: TokenSource,
    private readonly timeoutMs = 10_000,
  ) {
    // `new URL('v3/…', base)` keeps a path such as `/teams/` only when the base ends with a slash.
    this.base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  }

  /** The same client for another service URL (a verified inbound activity's `serviceUrl`). */
  at(serviceUrl: string): BotConnector {
    return new BotConnector(serviceUrl, this.token, this.timeoutMs);
  }

  /** `POST /v3/conversations`: a 1:1 conversation with one member; Teams answers the same id for the same member. */
  async createConversation(parameters: { readonly bot: { readonly id: string }; readonly member: string; readonly tenantId: string }): Promise<string> {
    const body = {
      isGroup: false,
      bot: parameters.bot,
      members: [{ id: parameters.member }],
      tenantId: parameters.tenantId,
      channelData: { tenant: { id: parameters.tenantId } },
    };
    const created = await this.request('createConversation', 'POST', 'v3/conversations', body);
    return this.id('createConversation', created);
  }

  /** `POST /v3/conversations/{conversationId}/activities` → the new activity's id. */
  async sendToConversation(conversationId: string, activity: OutgoingActivity): Promise<string> {
    return this.id('sendToConversation', await this.request('sendToConversation', 'POST', `v3/conversations/${seg(conversationId)}/activities`, activity));
  }

  /** `POST /v3/conversations/{conversationId}/activities/{activityId}`: a reply to an inbound activity. */
  async replyToActivity(conversationId: string, activityId: string, activity: OutgoingActivity): Promise<string> {
    const path = `v3/conversations/${seg(conversationId)}/activities/${seg(activityId)}`;
    return this.id('replyToActivity', await this.request('replyToActivity', 'POST', path, activity));
  }

  /** `PUT /v3/conversations/{conversationId}/activities/{activityId}`: replaces a message the bot sent. */
  async updateActivity(conversationId: string, activityId: string, activity: OutgoingActivity): Promise<void> {
    await this.request('updateActivity', 'PUT', `v3/conversations/${seg(conversationId)}/activities/${seg(activityId)}`, activity);
  }

  /**
   * `GET /v3/conversations/{conversationId}/members/{userId}`; `userId` may be the Teams user id, the
   * UPN or the Entra object id (…/bots/how-to/get-teams-context#get-single-member-details).
   * Undefined when the conversation has no such member (404).
   */
  async getConversationMember(conversationId: string, userId: string): Promise<TeamsMember | undefined> {
    const found = await this.request('getConversationMember', 'GET', `v3/conversations/${seg(conversationId)}/members/${seg(userId)}`, undefined, true);
    if (found === undefined) return undefined;
    if (typeof found !== 'object' || found === null || !('id' in found) || typeof found.id !== 'string') {
      throw new TeamsRetryableError('Bot Connector getConversationMember: answer without a member id');
    }
    return found as TeamsMember;
  }

  private id(operation: string, answer: unknown): string {
    if (typeof answer === 'object' && answer !== null && 'id' in answer && typeof answer.id === 'string' && answer.id) return answer.id;
    throw new TeamsRetryableError(`Bot Connector ${operation}: answer without an id`);
  }

  private async request(operation: string, method: string, path: string, body?: unknown, notFoundIsUndefined = false): Promise<unknown> {
    const token = await this.token();
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json; charset=utf-8';
    if (token) headers.authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await fetch(new URL(path, this.base), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new TeamsRetryableError(`Bot Connector ${operation}: request failed (${error instanceof Error ? error.message : String(error)})`);
    }
    const raw = await response.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = raw ? JSON.parse(raw) : undefined;
    } catch {
      parsed = undefined;
    }
    if (response.ok) return parsed ?? {};
    if (response.status === 404 && notFoundIsUndefined) return undefined;
    throw connectorFailure(operation, response.status, response.headers.get('retry-after'), parsed, raw);
  }
}

/** The e-mail's {@link emailKey}: ASCII case only, so a look-alike address is never someone else's. */
const normal = (email: string): string => emailKey(email) ?? '';

/**
 * E-mail ↔ Teams user. Teams cannot message a user by e-mail or UPN (…/send-proactive-messages),
 * so each approver's e-mail maps to a Teams user id through the static `users` map, or, when
 * `rosterConversationId` names a team the bot is installed in, through that team's roster. The
 * same map answers the reverse question (who wrote to the bot), which decides what a person may
 * see, so a Teams id mapped to two e-mails is refused at start-up. Roster answers are cached: an
 * hour outbound, ten minutes inbound.
 */
export class TeamsDirectory {
  private readonly byEmail = new Map<string, string>();
  private readonly byUser = new Map<string, string>();
  private readonly userIds: LRUCache<string, string>;
  private readonly emails: LRUCache<string, string>;

  constructor(
    private readonly connector: BotConnector,
    users: Readonly<Record<string, string>>,
    private readonly rosterConversationId: string | undefined,
    clock: Clock,
  ) {
    for (const [email, userId] of Object.entries(users)) {
      const key = normal(email);
      const id = userId.trim();
      const other = this.byUser.get(id);
      if (other !== undefined && other !== key) throw new Error(`users: Teams user "${id}" is mapped to both ${other} and ${key}`);
      this.byEmail.set(key, id);
      this.byUser.set(id, key);
    }
    const perf = { now: () => clock.now().getTime() };
    this.userIds = new LRUCache({ max: 10_000, ttl: 60 * 60_000, perf });
    this.emails = new LRUCache({ max: 10_000, ttl: 10 * 60_000, perf });
  }

  /** The Teams user id for an e-mail; a {@link PermanentDeliveryError} when neither the map nor the roster knows it. */
  async userIdFor(email: string): Promise<string> {
    const key = normal(email);
    const mapped = this.byEmail.get(key) ?? this.userIds.get(key);
    if (mapped) return mapped;
    if (!this.rosterConversationId) throw new PermanentDeliveryError('Teams: no Teams user is configured for this e-mail (notifiers[].config.users)');
    // Looked up by UPN, which is the work e-mail in most tenants; the answer must name it back.
    const member = await this.connector.getConversationMember(this.rosterConversationId, key);
    if (!member || !this.sameAddress(member, key)) throw new PermanentDeliveryError('Teams: the roster has no member with this e-mail');
    this.userIds.set(key, member.id);
    return member.id;
  }

  /**
   * The e-mail of the Teams user behind a verified activity (`from.id`, or `from.aadObjectId`),
   * as its {@link emailKey}; undefined for a user neither the map nor the roster knows. Throws when the roster
   * cannot answer now.
   */
  async emailOf(account: { readonly id?: string | undefined; readonly aadObjectId?: string | undefined }): Promise<string | undefined> {
    for (const id of [account.id, account.aadObjectId]) {
      const mapped = id ? this.byUser.get(id) : undefined;
      if (mapped) return mapped;
    }
    if (!this.rosterConversationId || !account.id) return undefined;
    const cached = this.emails.get(account.id);
    if (cached) return cached;
    const member = await this.connector.getConversationMember(this.rosterConversationId, account.id);
    const email = member?.email ?? member?.userPrincipalName;
    if (!member || member.id !== account.id || member.userRole === 'anonymous' || !email) return undefined;
    this.emails.set(account.id, normal(email));
    return normal(email);
  }

  private sameAddress(member: TeamsMember, email: string): boolean {
    return [member.email, member.userPrincipalName].some((a) => a !== undefined && normal(a) === email);
  }
}

/**
 * Our record of each Teams user's 1:1 chat with the bot: `POST /v3/conversations` with that one
 * member, which Teams answers with the same conversation id every time (…/send-proactive-messages),
 * cached for a day. The notifier posts cards there, and the messages route answers a list only
 * into the chat this record gives for the sender, so a conversation id named in a request is never
 * trusted on its own.
 */
export class PersonalConversations {
  private readonly byUser = new LRUCache<string, string>({ max: 10_000, ttl: 24 * 60 * 60_000 });

  constructor(
    private readonly connector: BotConnector,
    private readonly config: Pick<TeamsConfig, 'appId' | 'tenantId'>,
  ) {}

  /** The 1:1 conversation of the bot with a Teams user (id as {@link TeamsDirectory.userIdFor} gives it). */
  async with(user: string): Promise<string> {
    const known = this.byUser.get(user);
    if (known) return known;
    // A bot's Teams id is `28:<app id>` (…/send-proactive-messages, "Create the conversation").
    const bot = { id: this.config.appId ? `28:${this.config.appId}` : 'approvals-hub' };
    const id = await this.connector.createConversation({ bot, member: user, tenantId: this.config.tenantId });
    this.byUser.set(user, id);
    return id;
  }
}

/** `<conversationId>/<activityId>`, the receipt of a Teams message. Activity ids have no `/`; conversation ids may. */
export function parseRef(ref: string): { conversationId: string; activityId: string } {
  const slash = ref.lastIndexOf('/');
  const conversationId = ref.slice(0, slash);
  const activityId = ref.slice(slash + 1);
  if (slash <= 0 || !activityId) throw new PermanentDeliveryError(`not a Teams message receipt: "${ref}"`);
  return { conversationId, activityId };
}

/** The actions {@link TeamsNotifier} delivers; it refuses any other. */
const TEAMS_ACTIONS: ReadonlySet<string> = new Set<MessageAction>(['notify', 'update', 'close', 'remind', 'digest', 'link']);

/**
 * Delivers cards as 1:1 messages from the bot. `notify` creates (or gets: Teams answers the same
 * id) the personal conversation with the approver, posts the Adaptive Card and returns
 * `<conversationId>/<activityId>`; `update` and `close` replace that activity with `PUT`, so no stale
 * button stays live. A card with act buttons carries Universal Actions and a `refresh` for its
 * approver (see approvalCard); the clicks reach the messages route (teams-routes.ts). `remind` replies to the card with a text-only activity; `digest` posts one
 * Adaptive Card listing the approvals with View links only; `link` posts one Adaptive Card with a sign-in link button. The Bot Connector has no call that reads a chat's history (Microsoft Graph
 * has one, behind tenant-wide chat permissions this adapter does not ask for), so
 * {@link findDelivered} only knows deliveries made by this process: a crash between the post and
 * the outbox commit re-sends the card.
 */
export class TeamsNotifier implements Notifier {
  private readonly delivered = new LRUCache<string, DeliveryReceipt>({ max: 10_000, ttl: 24 * 60 * 60_000 });

  constructor(
    readonly id: string,
    private readonly config: Pick<TeamsConfig, 'appId' | 'tenantId'>,
    private readonly connector: BotConnector,
    private readonly directory: TeamsDirectory,
    private readonly logger: Logger,
    private readonly conversations = new PersonalConversations(connector, config),
  ) {}

  async deliver(message: OutboundMessage): Promise<DeliveryReceipt> {
    if (!TEAMS_ACTIONS.has(message.action)) {
      // OutboundMessage.action: an action this channel does not know is refused, never shown as a card.
      throw new PermanentDeliveryError(
        `Teams notifier ${this.id}: action ${JSON.stringify(message.action)} is not one it delivers (${[...TEAMS_ACTIONS].join(', ')})`,
      );
    }
    const { card } = message;
    if (message.action === 'remind' && message.previous) {
      // A text-only reply to the card in the same conversation: no second card, so no second set of buttons.
      const { conversationId, activityId } = parseRef(message.previous.ref);
      const reply = await this.connector.replyToActivity(conversationId, activityId, {
        type: 'message',
        text: reminderText(card),
        textFormat: 'plain',
        replyToId: activityId,
      });
      const receipt = { ref: `${conversationId}/${reply}` };
      this.delivered.set(message.idempotencyKey, receipt);
      return receipt;
    }
    const { action } = message;
    const fresh = action === 'notify' || action === 'digest' || action === 'link' || !message.previous;
    // A card with act buttons refreshes itself for its approver, named by Teams user id (see approvalCard).
    const acts = action !== 'digest' && action !== 'link' && !card.outcome && card.actions.some((a) => a.type === 'act');
    const user = fresh || acts ? await this.directory.userIdFor(message.recipient.email) : undefined;
    const content =
      action === 'digest' ? digestCard(card.title, message.digest ?? []) : action === 'link' ? linkCard(card) : approvalCard(card, { refreshUserId: user });
    const activity: OutgoingActivity = {
      type: 'message',
      summary: action === 'digest' || action === 'link' ? card.title : cardSummary(card),
      attachments: [attachment(content)],
    };

    if (fresh || !message.previous) {
      const conversationId = await this.conversations.with(user ?? (await this.directory.userIdFor(message.recipient.email)));
      const activityId = await this.connector.sendToConversation(conversationId, activity);
      const receipt = { ref: `${conversationId}/${activityId}` };
      this.delivered.set(message.idempotencyKey, receipt);
      this.logger.debug({ key: card.approvalKey, conversation: conversationId, activity: activityId }, 'card posted');
      return receipt;
    }

    const { conversationId, activityId } = parseRef(message.previous.ref);
    await this.connector.updateActivity(conversationId, activityId, { ...activity, id: activityId });
    return message.previous;
  }

  /** Only deliveries this process made (see the class). */
  async findDelivered(idempotencyKey: string): Promise<DeliveryReceipt | undefined> {
    return this.delivered.get(idempotencyKey);
  }
}
