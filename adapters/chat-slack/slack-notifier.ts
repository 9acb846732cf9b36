import {
  LogLevel,
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebAPIRequestError,
  WebClient,
  type Logger as SlackLogger,
} from '@slack/web-api';
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
import { CARD_EVENT_TYPE, cardBlocks, cardText, digestBlocks, fit, linkBlocks, reminderText } from './block-kit.js';
import { configSchema } from './config-schema.js';

/**
 * One Slack notifier instance's config, as plugin.json validates it (secrets resolved by the host),
 * derived from config-schema.ts so the two cannot drift. `teamId` unset: learned from `auth.test`.
 */
export type SlackConfig = Readonly<FromSchema<typeof configSchema>>;

const { apiUrl, callbackPath, appHome } = configSchema.properties;
/** The schema's defaults, for a caller that builds the module without the host's validation. */
export const SLACK_DEFAULTS = { apiUrl: apiUrl.default, callbackPath: callbackPath.default, appHome: appHome.default } as const;

/**
 * A Slack call that may succeed later: 429, 5xx, network, or a token the operator has to fix.
 * `retryAfterMs` is Slack's `Retry-After` when it sent one; the message says it too, because the
 * outbox worker only keeps the message.
 */
export class SlackRetryableError extends RetryLaterError {
  override readonly name: string = 'SlackRetryableError';
  constructor(message: string, retryAfterMs = 0) {
    super(message, retryAfterMs);
  }
}

/**
 * Errors that no retry can fix for this message (docs.slack.dev/reference/methods/chat.postMessage#errors
 * and friends). Token and scope errors are left retryable on purpose: they fail every message until
 * an operator fixes the config, and dead-lettering the whole outbox meanwhile would lose them.
 */
const PERMANENT = new Set([
  'users_not_found',
  'user_not_found',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'messages_tab_disabled',
  'cannot_dm_bot',
  'user_disabled',
  'msg_too_long',
  'no_text',
  'too_many_attachments',
  'invalid_blocks',
  'invalid_blocks_format',
  'invalid_arguments',
  'invalid_metadata_format',
  'invalid_metadata_schema',
  'metadata_too_large',
  'message_not_found',
  'cant_update_message',
  'edit_window_closed',
]);

const TOKEN_ERRORS = new Set(['not_authed', 'invalid_auth', 'account_inactive', 'token_revoked', 'token_expired', 'missing_scope', 'no_permission']);

/** The error the outbox (or a route) sees for a failed Web API call. Never carries the token. */
export function slackFailure(method: string, error: unknown): Error {
  if (error instanceof WebAPIRateLimitedError) {
    // The client has read the header into seconds already; the shared reader caps it like any other.
    const wait = retryAfterMs(String(error.retryAfter)) ?? 0;
    return new SlackRetryableError(`Slack ${method}: rate limited, Retry-After ${Math.ceil(wait / 1000)}s`, wait);
  }
  if (error instanceof WebAPIPlatformError) {
    const code = error.data.error;
    if (PERMANENT.has(code)) return new PermanentDeliveryError(`Slack ${method}: ${code}`);
    if (TOKEN_ERRORS.has(code)) return new SlackRetryableError(`Slack ${method}: ${code} (check the bot token and its scopes)`);
    return new SlackRetryableError(`Slack ${method}: ${code}`);
  }
  if (error instanceof WebAPIHTTPError) {
    const header = error.headers['retry-after'];
    const wait = retryAfterMs(Array.isArray(header) ? header[0] : header);
    return new SlackRetryableError(`Slack ${method}: HTTP ${error.statusCode}${wait !== undefined ? `, Retry-After ${Math.ceil(wait / 1000)}s` : ''}`, wait);
  }
  if (error instanceof WebAPIRequestError) return new SlackRetryableError(`Slack ${method}: request failed (${error.original.message})`);
  return error instanceof Error ? error : new Error(String(error));
}

/** Runs one Web API call and turns its failure into {@link slackFailure}. */
export async function slackCall<T>(method: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw slackFailure(method, error);
  }
}

/** Routes the Web API client's own log lines into the host's logger. */
function slackLogger(logger: Logger): SlackLogger {
  let level = LogLevel.WARN;
  const line = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg) => logger.debug(line(msg)),
    info: (...msg) => logger.info(line(msg)),
    warn: (...msg) => logger.warn(line(msg)),
    error: (...msg) => logger.error(line(msg)),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}

/**
 * The Web API client. Retries belong to the outbox worker (backoff, dead letters, crash safety),
 * so the client makes one attempt, and on 429 throws at once with Retry-After instead of sleeping
 * inside `deliver`. Method names only (`allowAbsoluteUrls: false`): the token never goes to a URL
 * that is not `apiUrl`.
 */
export function createSlackClient(config: Pick<SlackConfig, 'botToken' | 'apiUrl'>, logger: Logger): WebClient {
  return new WebClient(config.botToken, {
    slackApiUrl: config.apiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
    allowAbsoluteUrls: false,
    logger: slackLogger(logger),
  });
}

/**
 * E-mail ↔ Slack user, cached. Outbound: `users.lookupByEmail` (scope users:read.email);
 * inbound: `users.info` for the e-mail of the person behind a signed request. Cached with a TTL so
 * a changed e-mail or a deactivated account is noticed within the hour (inbound: ten minutes,
 * since that mapping decides what a person may see).
 */
export class SlackDirectory {
  private readonly userIds: LRUCache<string, string>;
  private readonly emails: LRUCache<string, string>;

  constructor(
    private readonly client: WebClient,
    clock: Clock,
    options: { userTtlMs?: number; emailTtlMs?: number; max?: number } = {},
  ) {
    const perf = { now: () => clock.now().getTime() };
    this.userIds = new LRUCache({ max: options.max ?? 10_000, ttl: options.userTtlMs ?? 60 * 60_000, perf });
    this.emails = new LRUCache({ max: options.max ?? 10_000, ttl: options.emailTtlMs ?? 10 * 60_000, perf });
  }

  /** The Slack user id for an e-mail; `users_not_found` is a {@link PermanentDeliveryError}. */
  async userIdFor(email: string): Promise<string> {
    const key = emailKey(email) ?? '';
    const cached = this.userIds.get(key);
    if (cached) return cached;
    // https://docs.slack.dev/reference/methods/users.lookupByEmail
    const found = await slackCall('users.lookupByEmail', () => this.client.users.lookupByEmail({ email: email.trim() }));
    const user = found.user;
    if (!user?.id) throw new SlackRetryableError('Slack users.lookupByEmail: answer without a user id');
    if (user.deleted) throw new PermanentDeliveryError('Slack users.lookupByEmail: the Slack account for this e-mail is deactivated');
    this.userIds.set(key, user.id);
    return user.id;
  }

  /**
   * The work e-mail of a Slack user, as its {@link emailKey}, or undefined for an unknown, deactivated or bot
   * user or one without a visible e-mail. Throws when Slack cannot answer now.
   */
  async emailOf(userId: string): Promise<string | undefined> {
    if (!/^[UW][A-Z0-9]{2,30}$/.test(userId)) return undefined;
    const cached = this.emails.get(userId);
    if (cached) return cached;
    let info;
    try {
      // https://docs.slack.dev/reference/methods/users.info
      info = await this.client.users.info({ user: userId });
    } catch (error) {
      if (error instanceof WebAPIPlatformError && error.data.error === 'user_not_found') return undefined;
      throw slackFailure('users.info', error);
    }
    const user = info.user;
    const email = emailKey(user?.profile?.email);
    if (!user || user.deleted || user.is_bot || !email) return undefined;
    this.emails.set(userId, email);
    return email;
  }
}

/** The idempotency key in a card's metadata payload. */
function keyOf(payload: unknown): unknown {
  return typeof payload === 'object' && payload !== null && 'idempotency_key' in payload ? payload.idempotency_key : undefined;
}

/** `<channel>/<ts>`, the receipt of a Slack message. */
function parseRef(ref: string): { channel: string; ts: string } {
  const slash = ref.indexOf('/');
  const channel = ref.slice(0, slash);
  const ts = ref.slice(slash + 1);
  if (slash <= 0 || !/^[A-Z0-9]+$/.test(channel) || !/^\d+\.\d+$/.test(ts)) throw new PermanentDeliveryError(`not a Slack message receipt: "${ref}"`);
  return { channel, ts };
}

/** The actions {@link SlackNotifier} delivers; it refuses any other. */
const SLACK_ACTIONS: ReadonlySet<string> = new Set<MessageAction>(['notify', 'update', 'close', 'remind', 'digest', 'link']);

/**
 * Delivers cards as direct messages from the app's bot user. `notify` posts with
 * `channel: <user id>` (a bot may DM a user that way; Slack answers with the DM channel id) and
 * returns `<channel>/<ts>`; `update` and `close` edit that message with `chat.update`. `remind`
 * replies in the card's thread with plain text and leaves the card as it is; `digest` posts one
 * DM listing the approvals with View links only; `link` posts one DM with a sign-in link button. Every
 * message carries metadata with its idempotency key, so {@link findDelivered} can tell whether a
 * post whose reply was lost did reach Slack.
 */
export class SlackNotifier implements Notifier {
  /** Idempotency key → Slack user id of notifies this process attempted and may have posted. */
  private readonly attempted = new LRUCache<string, string>({ max: 10_000, ttl: 24 * 60 * 60_000 });

  constructor(
    readonly id: string,
    private readonly client: WebClient,
    private readonly directory: SlackDirectory,
    private readonly logger: Logger,
  ) {}

  async deliver(message: OutboundMessage): Promise<DeliveryReceipt> {
    if (!SLACK_ACTIONS.has(message.action)) {
      // OutboundMessage.action: an action this channel does not know is refused, never shown as a card.
      throw new PermanentDeliveryError(
        `Slack notifier ${this.id}: action ${JSON.stringify(message.action)} is not one it delivers (${[...SLACK_ACTIONS].join(', ')})`,
      );
    }
    const { card } = message;
    // https://docs.slack.dev/messaging/message-metadata
    const metadata = {
      event_type: CARD_EVENT_TYPE,
      event_payload: { idempotency_key: message.idempotencyKey, approval_key: card.approvalKey, revision: card.revision },
    };

    if (message.action === 'remind' && message.previous) {
      // A reply in the card's thread, plain text and no blocks, so the card stays the only message
      // with buttons. Broadcast to the DM too: a reply only in the thread of a day-old message is
      // easy to miss, and only a broadcast reply is listed by conversations.history, which is
      // where findDelivered looks for it after a crash.
      const { channel, ts } = parseRef(message.previous.ref);
      // https://docs.slack.dev/reference/methods/chat.postMessage#threads
      const posted = await slackCall('chat.postMessage', () =>
        this.client.chat.postMessage({
          channel,
          thread_ts: ts,
          reply_broadcast: true,
          text: reminderText(card),
          metadata,
          unfurl_links: false,
          unfurl_media: false,
        }),
      );
      return { ref: `${posted.channel ?? channel}/${posted.ts ?? ts}` };
    }

    const digest = message.action === 'digest';
    const link = message.action === 'link';
    const blocks = digest ? digestBlocks(card.title, message.digest ?? []) : link ? linkBlocks(card) : cardBlocks(card);
    const text = digest || link ? fit(card.title, 1000) : cardText(card);

    if (message.action === 'notify' || digest || link || !message.previous) {
      const user = await this.directory.userIdFor(message.recipient.email);
      this.attempted.set(message.idempotencyKey, user);
      let posted;
      try {
        // https://docs.slack.dev/reference/methods/chat.postMessage
        posted = await this.client.chat.postMessage({ channel: user, text, blocks, metadata, unfurl_links: false, unfurl_media: false });
      } catch (error) {
        // A 429 or an {ok: false} answer means Slack posted nothing; only a 5xx or a lost reply
        // leaves it unknown, and only then is the DM worth searching before a retry.
        if (error instanceof WebAPIRateLimitedError || error instanceof WebAPIPlatformError) this.attempted.delete(message.idempotencyKey);
        throw slackFailure('chat.postMessage', error);
      }
      if (!posted.channel || !posted.ts) throw new SlackRetryableError('Slack chat.postMessage: answer without channel and ts');
      this.logger.debug({ key: card.approvalKey, channel: posted.channel, ts: posted.ts }, 'card posted');
      return { ref: `${posted.channel}/${posted.ts}` };
    }

    const { channel, ts } = parseRef(message.previous.ref);
    // https://docs.slack.dev/reference/methods/chat.update
    const updated = await slackCall('chat.update', () => this.client.chat.update({ channel, ts, text, blocks, metadata }));
    return { ref: `${updated.channel ?? channel}/${updated.ts ?? ts}` };
  }

  /**
   * The receipt of a card already in the recipient's DM with this idempotency key, looked up in the
   * 15 most recent DM messages (`conversations.history` with `include_all_metadata`; 15 is the
   * page Slack allows apps distributed outside the Marketplace). The outbox worker passes only the
   * key, which names no Slack user, so without `recipient` this finds notifies this process
   * attempted and may have posted; after a restart it answers undefined and the card is re-sent.
   * Needs the `im:history` scope.
   */
  async findDelivered(idempotencyKey: string, recipient?: { readonly email: string }): Promise<DeliveryReceipt | undefined> {
    const user = recipient ? await this.directory.userIdFor(recipient.email) : this.attempted.get(idempotencyKey);
    if (!user) return undefined;
    // https://docs.slack.dev/reference/methods/conversations.open
    const opened = await slackCall('conversations.open', () => this.client.conversations.open({ users: user }));
    const channel = opened.channel?.id;
    if (!channel) return undefined;
    // https://docs.slack.dev/reference/methods/conversations.history
    const history = await slackCall('conversations.history', () => this.client.conversations.history({ channel, include_all_metadata: true, limit: 15 }));
    const found = history.messages?.find((m) => m.metadata?.event_type === CARD_EVENT_TYPE && keyOf(m.metadata.event_payload) === idempotencyKey);
    return found?.ts ? { ref: `${channel}/${found.ts}` } : undefined;
  }
}
