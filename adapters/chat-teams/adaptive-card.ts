import {
  actionComment,
  dayText,
  delegateText,
  moneyText,
  outcomeLabel,
  personText,
  type Card,
  type CardOutcome,
  type QueuedApproval,
} from '../../core/index.js';

/**
 * Card → Adaptive Card, and the list a "what's waiting on me?" reply shows. Pure: no I/O.
 *
 * Teams renders `TextBlock.text` as a Markdown subset (bold, italic, lists, links; learn.microsoft.com
 * microsoftteams/platform/task-modules-and-cards/cards/cards-format) and expands `{{DATE(…)}}` /
 * `{{TIME(…)}}` (learn.microsoft.com/adaptive-cards/authoring-cards/text-features). Every string from a
 * source goes through {@link escapeMarkdown}, so a report named `**bold** [x](https://evil)` shows those
 * characters instead of formatting or a link. No card adds Markdown of its own: emphasis comes from
 * TextBlock `weight` and `color`, which no source text can reach.
 */

/** Attachment content type of an Adaptive Card (Bot Framework activity `attachments[].contentType`). */
export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';
/** 1.4 is the newest schema every Teams client (desktop, web, mobile) renders for bot messages. */
export const ADAPTIVE_CARD_VERSION = '1.4';
/**
 * A card with `Action.Execute` or `refresh` says 1.5: Teams documents Universal Actions with that
 * version, and a lower one may leave them unrendered (…/work-with-universal-actions-for-adaptive-cards).
 */
export const UNIVERSAL_ACTIONS_VERSION = '1.5';
/** The `verb` of an act button; its `data` carries the button's opaque token and the action's name. */
export const ACT_VERB = 'approvals.act';
/** The `verb` of the card's `refresh`: the approver's client asks for the current card when it shows this one. */
export const REFRESH_VERB = 'approvals.refresh';
/** The id of the comment box, so its value arrives as `data.comment`. */
export const COMMENT_INPUT = 'comment';
/**
 * The id of the optional comment box ("Approve with comment"): input ids must be unique within a
 * card, and this box sits in its own ShowCard beside the required one.
 */
export const OPTIONAL_COMMENT_INPUT = 'optionalComment';
/** Characters a comment may have; Concur's send-back comment is far longer, chat comments are short. */
export const COMMENT_MAX = 500;

export interface TextBlock {
  readonly type: 'TextBlock';
  readonly text: string;
  readonly wrap: true;
  readonly size?: 'Small' | 'Default' | 'Medium' | 'Large';
  readonly weight?: 'Lighter' | 'Default' | 'Bolder';
  readonly color?: 'Default' | 'Good' | 'Warning' | 'Attention' | 'Accent';
  readonly isSubtle?: boolean;
  readonly spacing?: 'None' | 'Small' | 'Default' | 'Medium';
}

export interface OpenUrlAction {
  readonly type: 'Action.OpenUrl';
  readonly title: string;
  readonly url: string;
}

/**
 * Universal Actions (learn.microsoft.com/adaptive-cards/authoring-cards/universal-action-model): the
 * client sends an `adaptiveCard/action` invoke with `verb` and `data` (merged with the values of the
 * inputs on this card and, inside a ShowCard, its parent cards) to the bot.
 */
export interface ExecuteAction {
  readonly type: 'Action.Execute';
  readonly title: string;
  readonly verb: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly style?: 'positive' | 'destructive';
}

/** A button that unfolds a card under it (here: the comment box and the button that sends it). */
export interface ShowCardAction {
  readonly type: 'Action.ShowCard';
  readonly title: string;
  readonly card: AdaptiveCard;
}

export type CardActionElement = OpenUrlAction | ExecuteAction | ShowCardAction;

export interface ActionSet {
  readonly type: 'ActionSet';
  readonly actions: readonly CardActionElement[];
}

/** Input.Text; `isRequired` is checked by the client before it sends (input validation, schema 1.3+). */
export interface TextInput {
  readonly type: 'Input.Text';
  readonly id: string;
  readonly label: string;
  readonly isRequired: boolean;
  readonly isMultiline: true;
  readonly maxLength: number;
  readonly errorMessage?: string;
}

export interface CardContainer {
  readonly type: 'Container';
  readonly items: readonly CardElement[];
  readonly separator?: boolean;
}

export type CardElement = TextBlock | ActionSet | CardContainer | TextInput;

/**
 * `refresh`: the client runs `action` when the card is shown, and shows the card the bot answers
 * instead. Automatic for the users (MRIs, `29:…`) in `userIds`, at most 60; without `userIds`,
 * automatic for everyone in a chat of 60 or fewer, such as the approver's 1:1 chat with the bot
 * (learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/universal-actions-for-adaptive-cards/work-with-universal-actions-for-adaptive-cards).
 */
export interface CardRefresh {
  readonly action: ExecuteAction;
  readonly userIds?: readonly string[];
}

export interface AdaptiveCard {
  readonly type: 'AdaptiveCard';
  readonly $schema?: 'http://adaptivecards.io/schemas/adaptive-card.json';
  readonly version: string;
  readonly body: readonly CardElement[];
  readonly refresh?: CardRefresh;
  /** Absent on a card with an outcome, so no button outlives the approval. */
  readonly actions?: readonly CardActionElement[];
}

export interface AdaptiveCardAttachment {
  readonly contentType: typeof ADAPTIVE_CARD_CONTENT_TYPE;
  readonly content: AdaptiveCard;
}

/** Characters of source text shown before it is cut with an ellipsis; keeps activities far below Teams' ~28 KB message limit. */
const MAX_TEXT = 1000;
const LINE_ITEMS_SHOWN = 10;
/** Approvals a digest lists before "and N more". */
const DIGEST_SHOWN = 40;
const BUTTON_TITLE = 80;

// C0 controls (newlines included: a TextBlock needs two of them for a break, so one would be
// silently dropped, and a line break would open a new Markdown block), DEL, C1 controls, and the
// bidirectional overrides that can make a report name display reversed.
const UNSHOWABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
// Inline Markdown (emphasis, links, code), headings, entities and HTML, and the `{{DATE()}}`
// function. CommonMark lets any ASCII punctuation be escaped with a backslash; only these are, so
// a client that ignores an escape (older Teams mobile builds did) shows few stray backslashes.
const INLINE = /[\\`*_[\]()#<>&{}]/g;
// Block syntax that only counts at the start of a line: bullets (`-`, `+`), a setext underline (`=`),
// and an ordered-list marker (`1.`). Source text has no newlines left, so "line start" is the start.
const LINE_START = /^(\s*)(?:([-+=])|(\d{1,9})([.)]))/;

/** Replaces unshowable characters with spaces and cuts `text` to at most `max` characters. */
function clean(text: string, max: number): string {
  const shown = text.replace(UNSHOWABLE, ' ');
  if (shown.length <= max) return shown;
  return `${[...shown].slice(0, max - 1).join('')}…`;
}

/**
 * Makes source text literal in a TextBlock: controls become spaces, Markdown-significant ASCII
 * punctuation gets a CommonMark backslash escape, and a leading list or heading marker is escaped.
 * Cut to `max` characters before escaping, so no escape is ever cut in half.
 */
export function escapeMarkdown(text: string, max: number = MAX_TEXT): string {
  const escaped = clean(text, max).replace(INLINE, (ch) => `\\${ch}`);
  return escaped.replace(LINE_START, (_m, space: string, marker: string | undefined, digits: string | undefined, dot: string | undefined) =>
    marker ? `${space}\\${marker}` : `${space}${digits}\\${dot}`,
  );
}

const OUTCOME_COLORS: Record<CardOutcome, TextBlock['color']> = {
  approved: 'Good',
  rejected: 'Attention',
  sent_back: 'Warning',
  recalled: 'Warning',
  no_longer_required: 'Default',
  expired: 'Warning',
  reassigned: 'Default',
};

export { outcomeLabel };

/** Only http(s) URLs become buttons; anything else (javascript:, data:, relative) is dropped. */
export function safeUrl(url: string | undefined): string | undefined {
  if (!url || url.length > 2048) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? url : undefined;
  } catch {
    return undefined;
  }
}

function text(value: string, extra: Omit<TextBlock, 'type' | 'text' | 'wrap'> = {}): TextBlock {
  // A TextBlock with empty text renders nothing and some clients reject it.
  return { type: 'TextBlock', text: value || '-', wrap: true, ...extra };
}

/** `Label: value` with both sides escaped; labels come from sources too (Concur fields). */
function fact(label: string, value: string): TextBlock {
  return text(`${escapeMarkdown(label, 100)}: ${escapeMarkdown(value)}`, { spacing: 'Small' });
}

/** How the card's `refresh` reaches its approver: their Teams user id when it is an MRI (`29:…`). */
export interface ApprovalCardOptions {
  readonly refreshUserId?: string | undefined;
}

type ActButton = Extract<Card['actions'][number], { type: 'act' }>;

/**
 * The Adaptive Card of one approval. A card with an outcome shows it (and its `outcomeNote`) and has
 * no `actions`. Act buttons that carry a token become Universal Actions: `Action.Execute`, or for an
 * action that needs a reason a ShowCard with a required comment box and its own `Action.Execute`;
 * such a card also gets a `refresh`, so the approver's client redraws it from the queue when shown.
 * Without act buttons the card is the plain 1.4 card with link buttons.
 */
export function approvalCard(card: Card, options: ApprovalCardOptions = {}): AdaptiveCard {
  const body: CardElement[] = [text(escapeMarkdown(card.title, 300), { size: 'Medium', weight: 'Bolder' })];
  if (card.outcome) body.push(text(outcomeLabel(card.outcome), { weight: 'Bolder', color: OUTCOME_COLORS[card.outcome] }));
  if (card.outcome && card.outcomeNote) body.push(text(escapeMarkdown(card.outcomeNote), { spacing: 'None' }));
  const delegate = delegateText(card);
  if (delegate) body.push(text(escapeMarkdown(delegate), { spacing: 'None', isSubtle: true }));

  const facts: [string, string | undefined][] = [
    ['Requester', personText(card.requester)],
    ['Amount', moneyText(card.amount)],
    ['Submitted', dayText(card.submittedAt)],
    ...card.fields.map((f): [string, string] => [f.label, f.value]),
  ];
  for (const [label, value] of facts) if (value) body.push(fact(label, value));

  if (card.lineItems.length > 0) {
    for (const item of card.lineItems.slice(0, LINE_ITEMS_SHOWN)) {
      const amount = moneyText(item.amount);
      const flags = item.flags?.length ? ` (${item.flags.map((f) => escapeMarkdown(f, 200)).join(', ')})` : '';
      // `•` is not Markdown, so the line reads as a bullet without being parsed as a list.
      body.push(text(`• ${escapeMarkdown(item.label, 300)}${amount ? ` — ${escapeMarkdown(amount)}` : ''}${flags}`, { spacing: 'None' }));
    }
    const hidden = card.lineItems.length - LINE_ITEMS_SHOWN;
    if (hidden > 0) body.push(text(`…and ${hidden} more`, { spacing: 'None', isSubtle: true }));
  }

  if (card.flags.length > 0) body.push(text(`⚠️ ${card.flags.map((f) => escapeMarkdown(f, 200)).join(' · ')}`, { color: 'Warning' }));

  const adaptive: AdaptiveCard = { type: 'AdaptiveCard', $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', version: ADAPTIVE_CARD_VERSION, body };
  if (card.outcome) return adaptive;
  // Action titles are plain text in every host, so labels are not escaped.
  const links = card.actions.flatMap((a): OpenUrlAction[] => {
    const url = a.type === 'link' ? safeUrl(a.url) : undefined;
    return url ? [{ type: 'Action.OpenUrl', title: clean(a.label, BUTTON_TITLE), url }] : [];
  });
  const acts = card.actions.filter((a): a is ActButton & { token: string } => a.type === 'act' && typeof a.token === 'string' && a.token.length > 0);
  if (acts.length === 0) return links.length > 0 ? { ...adaptive, actions: links } : adaptive;

  const names = acts.map((a) => a.action);
  const refresh: CardRefresh = {
    action: { type: 'Action.Execute', title: 'Refresh', verb: REFRESH_VERB, data: { key: card.approvalKey, actions: names } },
    ...(options.refreshUserId?.startsWith('29:') ? { userIds: [options.refreshUserId] } : {}),
  };
  return { ...adaptive, version: UNIVERSAL_ACTIONS_VERSION, refresh, actions: [...acts.flatMap((a) => actButtons(a, names)), ...links] };
}

/**
 * The buttons of one act action: `Action.Execute`, or a ShowCard asking for the comment first when
 * the action needs one; an action that may carry a comment (Approve) also gets "Approve with
 * comment", a ShowCard with an optional box and its own `Action.Execute` with the same token.
 */
function actButtons(a: ActButton & { token: string }, names: readonly string[]): (ExecuteAction | ShowCardAction)[] {
  const button = actButton(a, names);
  if (actionComment(a.action) !== 'optional') return [button];
  const input: TextInput = {
    type: 'Input.Text',
    id: OPTIONAL_COMMENT_INPUT,
    label: 'Comment for the requester (optional)',
    isRequired: false,
    isMultiline: true,
    maxLength: COMMENT_MAX,
  };
  const execute: ExecuteAction = {
    type: 'Action.Execute',
    title: clean(a.label, BUTTON_TITLE),
    verb: ACT_VERB,
    data: { token: a.token, action: a.action, actions: names },
  };
  const title = clean(`${a.label} with comment`, BUTTON_TITLE);
  return [button, { type: 'Action.ShowCard', title, card: { type: 'AdaptiveCard', version: UNIVERSAL_ACTIONS_VERSION, body: [input], actions: [execute] } }];
}

/** One act button: `Action.Execute`, or a ShowCard asking for the comment first when the action needs one. */
function actButton(a: ActButton & { token: string }, names: readonly string[]): ExecuteAction | ShowCardAction {
  const title = clean(a.label, BUTTON_TITLE);
  const execute: ExecuteAction = {
    type: 'Action.Execute',
    title,
    verb: ACT_VERB,
    // `actions` only says which buttons to draw again on a redraw; the token alone says what may be done.
    data: { token: a.token, action: a.action, actions: names },
    ...(a.style === 'primary' ? { style: 'positive' as const } : a.style === 'danger' ? { style: 'destructive' as const } : {}),
  };
  if (actionComment(a.action) !== 'required') return execute;
  const input: TextInput = {
    type: 'Input.Text',
    id: COMMENT_INPUT,
    label: 'Comment for the requester',
    isRequired: true,
    isMultiline: true,
    maxLength: COMMENT_MAX,
    errorMessage: 'Say why: a comment is required.',
  };
  return { type: 'Action.ShowCard', title, card: { type: 'AdaptiveCard', version: UNIVERSAL_ACTIONS_VERSION, body: [input], actions: [execute] } };
}

/**
 * The card that answers a click whose source needs the approver's consent first: the approval card
 * as it is now (with its buttons, to press again once connected) under a notice with the link.
 */
export function consentCard(card: AdaptiveCard, message: string, url: string, title: string = CONNECT_TITLE): AdaptiveCard {
  const link = safeUrl(url);
  const notice: CardContainer = {
    type: 'Container',
    items: [
      text(escapeMarkdown(message), { weight: 'Bolder', color: 'Attention' }),
      ...(link ? [{ type: 'ActionSet' as const, actions: [{ type: 'Action.OpenUrl' as const, title, url: link }] }] : []),
    ],
  };
  return { ...card, version: UNIVERSAL_ACTIONS_VERSION, body: [notice, ...card.body] };
}

/** The consent link button's title when the source names none. */
export const CONNECT_TITLE = 'Connect your account';

/** The activity `summary`: what notifications and the chat list show. Plain text, not rendered. */
export function cardSummary(card: Card): string {
  const head = card.outcome ? `${outcomeLabel(card.outcome)}:` : 'Waiting for your approval:';
  const amount = moneyText(card.amount);
  return clean(`${head} ${card.title} — ${personText(card.requester)}${amount ? ` · ${amount}` : ''}`, 300);
}

export function attachment(content: AdaptiveCard): AdaptiveCardAttachment {
  return { contentType: ADAPTIVE_CARD_CONTENT_TYPE, content };
}

/** The text of a reminder: plain (the activity says `textFormat: plain`), no card, so no button. */
export function reminderText(card: Card): string {
  const amount = moneyText(card.amount);
  return clean(`⏰ Reminder: still waiting for your approval: ${card.title} — ${personText(card.requester)}${amount ? ` · ${amount}` : ''}`, 300);
}

/** A sign-in link (`link` action): its title, its fields, and its link button only; no approval behind it. */
export function linkCard(card: Card): AdaptiveCard {
  const body: CardElement[] = [text(escapeMarkdown(card.title, 300), { size: 'Medium', weight: 'Bolder' })];
  for (const f of card.fields) body.push(fact(f.label, f.value));
  const actions = card.actions.flatMap((a): OpenUrlAction[] => {
    const url = a.type === 'link' ? safeUrl(a.url) : undefined;
    return url ? [{ type: 'Action.OpenUrl', title: clean(a.label, BUTTON_TITLE), url }] : [];
  });
  const adaptive: AdaptiveCard = { type: 'AdaptiveCard', $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', version: ADAPTIVE_CARD_VERSION, body };
  return actions.length > 0 ? { ...adaptive, actions } : adaptive;
}

/** A digest: a heading, then one container per approval with its View link; no other actions. */
export function digestCard(heading: string, cards: readonly Card[]): AdaptiveCard {
  // Bounded, like a list reply, to stay far below Teams' message size limit.
  const shown = cards.slice(0, DIGEST_SHOWN);
  const items = shown.map((card): CardContainer => {
    const amount = moneyText(card.amount);
    const submitted = dayText(card.submittedAt);
    const detail = [personText(card.requester), amount, submitted ? `submitted ${submitted}` : undefined].filter((s): s is string => Boolean(s));
    const entries: CardElement[] = [
      text(escapeMarkdown(card.title, 300), { weight: 'Bolder' }),
      text(detail.map((d) => escapeMarkdown(d, 300)).join(' · '), { isSubtle: true, spacing: 'None' }),
    ];
    const link = card.actions.find((a) => a.type === 'link');
    const url = link?.type === 'link' ? safeUrl(link.url) : undefined;
    if (url) entries.push({ type: 'ActionSet', actions: [{ type: 'Action.OpenUrl', title: 'View', url }] });
    return { type: 'Container', items: entries, separator: true };
  });
  const body: CardElement[] = [text(escapeMarkdown(heading), { weight: 'Bolder', size: 'Medium' }), ...items];
  if (cards.length > shown.length) body.push(text(`…and ${cards.length - shown.length} more.`, { isSubtle: true }));
  return { type: 'AdaptiveCard', $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', version: ADAPTIVE_CARD_VERSION, body };
}

/** One approval of a list: title, requester · amount · date, and a View button when it has a link. */
function listItem(approval: QueuedApproval): CardContainer {
  const amount = moneyText(approval.amount);
  const submitted = dayText(approval.submittedAt);
  const detail = [personText(approval.requester), amount, submitted ? `submitted ${submitted}` : undefined].filter((s): s is string => Boolean(s));
  const items: CardElement[] = [
    text(escapeMarkdown(approval.title, 300), { weight: 'Bolder' }),
    text(detail.map((d) => escapeMarkdown(d, 300)).join(' · '), { isSubtle: true, spacing: 'None' }),
  ];
  const url = safeUrl(approval.links.view);
  if (url) items.push({ type: 'ActionSet', actions: [{ type: 'Action.OpenUrl', title: 'View', url }] });
  return { type: 'Container', items, separator: true };
}

/** A list of approvals under a heading; `more` says how many were left out. */
export function approvalListCard(heading: string, approvals: readonly QueuedApproval[], more = 0): AdaptiveCard {
  const body: CardElement[] = [text(escapeMarkdown(heading), { weight: 'Bolder', size: 'Medium' }), ...approvals.map(listItem)];
  if (more > 0) body.push(text(`…and ${more} more.`, { isSubtle: true }));
  return { type: 'AdaptiveCard', $schema: 'http://adaptivecards.io/schemas/adaptive-card.json', version: ADAPTIVE_CARD_VERSION, body };
}

/** The `summary` of a list reply. */
export function listSummary(count: number): string {
  return count === 0 ? 'Nothing is waiting on you.' : `${count} approval${count === 1 ? ' is' : 's are'} waiting on you.`;
}
