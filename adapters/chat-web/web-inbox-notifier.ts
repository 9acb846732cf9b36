import {
  ApprovalActions,
  Clock,
  DeliveryFeed,
  delegateText,
  inject,
  injectable,
  Logger,
  optional,
  parseIdempotencyKey,
  PermanentDeliveryError,
  type Card,
  type CardOutcome,
  type DeliveredEntry,
  type DeliveryReceipt,
  type Money,
  type Notifier,
  type MessageAction,
  type OutboxAction,
  type OutboundMessage,
} from '../../core/index.js';
import { InboxSessions, type InboxSession } from './inbox-sessions.js';
import { normaliseEmail } from './signed-links.js';
import { WebInboxSettings } from './web-inbox-settings.js';

export { WebInboxSettings } from './web-inbox-settings.js';

/** A card as the inbox page shows it: display strings and safe links only, nothing to interpret. */
export interface InboxItem {
  readonly key: string;
  readonly revision: number;
  readonly kind: string;
  readonly title: string;
  readonly requester: string;
  /** On a delegate's copy: "As delegate of <approver>"; null on the approver's own. */
  readonly onBehalfOf: string | null;
  readonly amount: Money | null;
  readonly submittedAt: string | null;
  /** The source instance (`concur`), for the page's per-source counts and filter. */
  readonly source: string | null;
  /** Since when it has waited in the queue (host clock); the page's age falls back to it without `submittedAt`. */
  readonly queuedAt: string | null;
  readonly fields: readonly { readonly label: string; readonly value: string }[];
  readonly lineItems: readonly { readonly label: string; readonly amount: Money | null; readonly flags: readonly string[] }[];
  readonly flags: readonly string[];
  /** Link buttons (View Expense Report). */
  readonly links: readonly { readonly label: string; readonly url: string }[];
  /**
   * Act buttons (Approve, Send Back) for the person the item was made for, each with its opaque
   * token for `POST /inbox/api/act`; empty when the source offers no actions. A button without a
   * token (a card not drawn for one person) is left out: it could not be pressed.
   */
  readonly actions: readonly InboxAction[];
}

/** One act button of an {@link InboxItem}. */
export interface InboxAction {
  readonly action: string;
  readonly label: string;
  readonly token: string;
}

/** What an open inbox page is told: a card to show (new or changed), one to take away, or one still waiting to point out. */
export type InboxEvent =
  | { readonly type: 'approval'; readonly item: InboxItem }
  | {
      readonly type: 'closed';
      readonly key: string;
      readonly revision: number;
      readonly title: string;
      readonly outcome: CardOutcome | null;
      /** Who acted where, when the approval was decided from a channel ("Approved by ann@… in Slack at …"). */
      readonly note: string | null;
    }
  | { readonly type: 'reminder'; readonly key: string; readonly revision: number; readonly title: string };

/** One open page's event stream (inbox-routes.ts serves them as server-sent events). */
export interface InboxStream {
  send(event: InboxEvent): void;
  end(): void;
  /** The session the page opened it with: the stream ends when that session is signed out or revoked. */
  readonly session?: InboxSession;
}

/** Open pages one person may hold; opening one more closes the oldest (a tab left open all week). */
const MAX_STREAMS_PER_PERSON = 16;

/** How often a host with open pages reads what other hosts delivered (shared queue only). */
export const FEED_POLL_MS = 1_000;
/**
 * The feed is read again this far back: a delivery is stamped with its host's clock before its
 * transaction commits, and host clocks differ a little. Pushes already made are skipped.
 */
const FEED_MARGIN_MS = 10_000;
const FEED_PAGE = 500;
/**
 * How often a host with open pages checks their sessions against the store, so a sign-out or
 * `inbox revoke` on any host (or the CLI) closes the event streams it serves within this long.
 */
export const SESSION_RECHECK_MS = 15_000;

/** What an open page is told about one delivered message. */
function inboxEvents(action: MessageAction, card: Card, digest: readonly Card[] | undefined): InboxEvent[] {
  // The page already lists every pending approval, so a reminder, and each approval of a
  // digest, only points out a card it shows.
  if (action === 'remind' || action === 'digest') {
    return (action === 'remind' ? [card] : (digest ?? [])).map((c) => ({ type: 'reminder', key: c.approvalKey, revision: c.revision, title: c.title }));
  }
  if (action === 'close' || card.outcome)
    return [
      { type: 'closed', key: card.approvalKey, revision: card.revision, title: card.title, outcome: card.outcome ?? null, note: card.outcomeNote ?? null },
    ];
  return [{ type: 'approval', item: inboxItem(card) }];
}

/** Only http(s) links become buttons: a `javascript:` URL from a source must never reach an `href`. */
function isWebUrl(url: string): boolean {
  try {
    const { protocol } = new URL(url);
    return protocol === 'https:' || protocol === 'http:';
  } catch {
    return false;
  }
}

export function inboxItem(card: Card): InboxItem {
  return {
    key: card.approvalKey,
    revision: card.revision,
    kind: card.kind,
    title: card.title,
    requester: card.requester.name ?? card.requester.email ?? '',
    onBehalfOf: delegateText(card) ?? null,
    amount: card.amount ?? null,
    submittedAt: card.submittedAt ?? null,
    source: card.source ?? null,
    queuedAt: card.queuedAt ?? null,
    fields: card.fields.map((f) => ({ label: f.label, value: f.value })),
    lineItems: card.lineItems.map((l) => ({ label: l.label, amount: l.amount ?? null, flags: [...(l.flags ?? [])] })),
    flags: [...card.flags],
    links: card.actions.flatMap((a) => (a.type === 'link' && isWebUrl(a.url) ? [{ label: a.label, url: a.url }] : [])),
    actions: card.actions.flatMap((a) => (a.type === 'act' && a.token ? [{ action: a.action, label: a.label, token: a.token }] : [])),
  };
}

/** The actions {@link WebInboxNotifier} pushes to open pages; it refuses any other. */
const WEB_ACTIONS: ReadonlySet<string> = new Set<OutboxAction>(['notify', 'update', 'close', 'remind', 'digest']);

/**
 * The web inbox channel. Its page reads the queue on every load, so a card counts as delivered
 * whether or not the person has the page open; pages that are open get the card pushed to them
 * (by e-mail, the only identity a signed-in page has). Re-delivering a card is harmless: a page
 * keys cards by approval and keeps the newest revision, so no `findDelivered` is needed.
 *
 * With several hosts on one queue, a page may be served by a host other than the one that
 * delivered: while a host holds open pages it follows the queue's feed of what was delivered on
 * this channel (every {@link FEED_POLL_MS}) and pushes what it did not push itself.
 */
@injectable()
export class WebInboxNotifier implements Notifier {
  readonly id: string;
  private readonly streams = new Map<string, Set<InboxStream>>();
  /** Deliveries already pushed (by idempotency key), with when they settled, so the feed skips them. */
  private readonly pushed = new Map<string, number>();
  private feedTimer: NodeJS.Timeout | undefined;
  private feedAfter = 0;
  private reading: Promise<void> | undefined;
  private recheckTimer: NodeJS.Timeout | undefined;
  private rechecking: Promise<void> | undefined;

  constructor(
    @inject(WebInboxSettings) private readonly settings: WebInboxSettings,
    @inject(Clock) private readonly clock: Clock,
    @inject(Logger) private readonly logger: Logger,
    @inject(DeliveryFeed) private readonly feed: DeliveryFeed,
    @inject(InboxSessions) private readonly sessions: InboxSessions,
    /** The host always binds it; without it (a notifier built alone), cards from the feed show no act buttons. */
    @inject(ApprovalActions) @optional() private readonly actions?: ApprovalActions,
  ) {
    this.id = settings.instanceId;
  }

  async deliver(message: OutboundMessage): Promise<DeliveryReceipt> {
    if (!WEB_ACTIONS.has(message.action)) {
      // OutboundMessage.action: an action this channel does not know is refused, never shown as a card.
      throw new PermanentDeliveryError(
        `web inbox notifier ${this.id}: action ${JSON.stringify(message.action)} is not one it delivers (${[...WEB_ACTIONS].join(', ')})`,
      );
    }
    const { card } = message;
    const email = normaliseEmail(message.recipient.email) ?? message.recipient.email;
    const open = this.push(email, inboxEvents(message.action, card, message.digest));
    // While the feed is followed, it will list this delivery too: remember it was pushed.
    if (this.feedTimer) this.pushed.set(message.idempotencyKey, this.clock.now().getTime());
    this.logger.debug({ channel: this.id, key: card.approvalKey, action: message.action, openPages: open }, 'web inbox delivery');
    return message.previous ?? { ref: `${this.id}:${card.approvalKey}:${email}` };
  }

  /** Sends events to `email`'s open pages; returns how many there are. */
  private push(email: string, events: readonly InboxEvent[]): number {
    const open = this.streams.get(email);
    for (const stream of open ?? []) for (const event of events) stream.send(event);
    return open?.size ?? 0;
  }

  /** One read of the feed: pushes what other hosts delivered to the pages open here. */
  readFeed(): Promise<void> {
    this.reading ??= this.followFeed()
      .catch((error: unknown) => this.logger.warn({ channel: this.id, err: (error as Error).message }, 'web inbox could not read the delivery feed; retrying'))
      .finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async followFeed(): Promise<void> {
    let from = this.feedAfter - FEED_MARGIN_MS;
    for (;;) {
      const entries = await this.feed.deliveredSince(this.id, new Date(from), FEED_PAGE);
      for (const entry of entries) {
        const settled = Date.parse(entry.settledAt);
        this.feedAfter = Math.max(this.feedAfter, settled);
        if (this.pushed.has(entry.idempotencyKey)) continue;
        this.pushed.set(entry.idempotencyKey, settled);
        const email = entry.approver.email && (normaliseEmail(entry.approver.email) ?? entry.approver.email);
        if (email) this.push(email, inboxEvents(entry.action, await this.cardFor(entry, email), entry.digest));
      }
      if (entries.length < FEED_PAGE) break;
      // A full page: the next starts just before its last millisecond, so entries that share it are
      // read again (and skipped), not missed; only a page all of one millisecond is moved past.
      const last = Date.parse(entries.at(-1)!.settledAt);
      from = last - 1 > from ? last - 1 : last;
    }
    // What settled before the window can never be read again: forget it.
    const horizon = this.feedAfter - 2 * FEED_MARGIN_MS;
    for (const [key, settled] of this.pushed) if (settled < horizon) this.pushed.delete(key);
  }

  /**
   * A card from the feed as its recipient gets it: the feed holds the card as queued, and the
   * tokens on its act buttons are made per recipient at delivery, so they are made again here.
   */
  private async cardFor(entry: DeliveredEntry, email: string): Promise<Card> {
    if (!this.actions || !entry.card.actions.some((a) => a.type === 'act' && !a.token)) return entry.card;
    const names = parseIdempotencyKey(entry.idempotencyKey);
    return names.kind === 'approval' ? this.actions.withTokens(entry.card, names.generation, email) : entry.card;
  }

  /** Follows the feed while this host holds open pages (shared queue only). */
  private followWhileOpen(): void {
    if (!this.feed.shared) return;
    if (this.streams.size > 0 && !this.feedTimer) {
      // From now: what was delivered before a page opened, the page read when it loaded.
      this.feedAfter = Math.max(this.feedAfter, this.clock.now().getTime());
      this.feedTimer = setInterval(() => void this.readFeed(), FEED_POLL_MS);
      this.feedTimer.unref();
    } else if (this.streams.size === 0 && this.feedTimer) {
      clearInterval(this.feedTimer);
      this.feedTimer = undefined;
      this.pushed.clear();
    }
  }

  /** Registers an open page of `email`'s; returns the function that unregisters it. */
  attach(email: string, stream: InboxStream): () => void {
    let open = this.streams.get(email);
    if (!open) this.streams.set(email, (open = new Set()));
    if (open.size >= MAX_STREAMS_PER_PERSON) {
      const oldest = open.values().next().value;
      if (oldest) {
        open.delete(oldest);
        oldest.end();
      }
    }
    open.add(stream);
    this.followWhileOpen();
    this.recheckWhileOpen();
    return () => {
      open.delete(stream);
      if (open.size === 0 && this.streams.get(email) === open) this.streams.delete(email);
      this.followWhileOpen();
      this.recheckWhileOpen();
    };
  }

  /** One check of every open page's session against the store: ends the streams of sessions signed out or revoked anywhere. */
  recheckSessions(): Promise<void> {
    this.rechecking ??= this.recheck()
      .catch((error: unknown) => this.logger.warn({ channel: this.id, err: (error as Error).message }, 'web inbox could not check open sessions; retrying'))
      .finally(() => (this.rechecking = undefined));
    return this.rechecking;
  }

  private async recheck(): Promise<void> {
    const open = [...this.streams.values()].flatMap((set) => [...set]).filter((s) => s.session !== undefined);
    if (open.length === 0) return;
    const live = await this.sessions.live(open.map((s) => s.session!));
    for (const stream of open) if (!live.has(stream.session!.id)) stream.end();
  }

  private recheckWhileOpen(): void {
    if (this.streams.size > 0 && !this.recheckTimer) {
      this.recheckTimer = setInterval(() => void this.recheckSessions(), SESSION_RECHECK_MS);
      this.recheckTimer.unref();
    } else if (this.streams.size === 0 && this.recheckTimer) {
      clearInterval(this.recheckTimer);
      this.recheckTimer = undefined;
    }
  }

  /** Ends the streams this host serves for one session (it was just signed out here). */
  endSession(sessionId: string): void {
    for (const open of [...this.streams.values()]) for (const stream of [...open]) if (stream.session?.id === sessionId) stream.end();
  }

  /**
   * Ends every session of `email` and every link made for them so far, on every host sharing the
   * queue (`approvals-hub inbox revoke`); streams this host serves for them end now, others' within
   * {@link SESSION_RECHECK_MS}. Returns the person's new session generation.
   */
  async revokeSessions(email: string): Promise<number> {
    const generation = await this.sessions.revoke(email);
    for (const stream of [...(this.streams.get(normaliseEmail(email) ?? email) ?? [])]) stream.end();
    return generation;
  }

  /** Open pages per person, for tests and diagnostics. */
  openPages(email: string): number {
    return this.streams.get(normaliseEmail(email) ?? email)?.size ?? 0;
  }

  /** Ends every open stream (the host is stopping); pages reconnect to whichever host serves them next. */
  endStreams(): void {
    for (const open of this.streams.values()) for (const stream of open) stream.end();
    this.streams.clear();
    this.followWhileOpen();
    this.recheckWhileOpen();
  }

  /**
   * A sign-in link for `email`, valid once, for `linkTtlMinutes` from now (host clock). `baseUrl`
   * overrides the configured `publicUrl`, e.g. with the address a test server really listens on.
   * @throws Error when `email` is not an e-mail address.
   */
  async signInUrl(email: string, options: { baseUrl?: string | undefined } = {}): Promise<{ url: string; email: string; expiresAt: Date }> {
    const link = await this.sessions.issueLink(email);
    const base = (options.baseUrl ?? this.settings.publicUrl).replace(/\/+$/, '');
    return { url: `${base}/inbox/login?token=${encodeURIComponent(link.token)}`, email: link.email, expiresAt: link.expiresAt };
  }
}
