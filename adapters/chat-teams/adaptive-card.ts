import { dayText, moneyText, outcomeLabel, personText, type Card, type CardOutcome, type QueuedApproval } from '../../core/index.js';

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

export interface ActionSet {
  readonly type: 'ActionSet';
  readonly actions: readonly OpenUrlAction[];
}

export interface CardContainer {
  readonly type: 'Container';
  readonly items: readonly CardElement[];
  readonly separator?: boolean;
}

export type CardElement = TextBlock | ActionSet | CardContainer;

export interface AdaptiveCard {
  readonly type: 'AdaptiveCard';
  readonly $schema: 'http://adaptivecards.io/schemas/adaptive-card.json';
  readonly version: string;
  readonly body: readonly CardElement[];
  /** Absent on a card with an outcome, so no button outlives the approval. */
  readonly actions?: readonly OpenUrlAction[];
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

/** The Adaptive Card of one approval. A card with an outcome shows it and has no `actions`. */
export function approvalCard(card: Card): AdaptiveCard {
  const body: CardElement[] = [text(escapeMarkdown(card.title, 300), { size: 'Medium', weight: 'Bolder' })];
  if (card.outcome) body.push(text(outcomeLabel(card.outcome), { weight: 'Bolder', color: OUTCOME_COLORS[card.outcome] }));

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
  // Only link buttons: acting from Teams needs an inbound action contract core does not have yet.
  // Action titles are plain text in every host, so labels are not escaped.
  const actions = card.actions.flatMap((a): OpenUrlAction[] => {
    const url = a.type === 'link' ? safeUrl(a.url) : undefined;
    return url ? [{ type: 'Action.OpenUrl', title: clean(a.label, BUTTON_TITLE), url }] : [];
  });
  return actions.length > 0 ? { ...adaptive, actions } : adaptive;
}

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
