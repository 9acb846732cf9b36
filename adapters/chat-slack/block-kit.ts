import type { ActionsBlock, Button, ContextBlock, HomeView, KnownBlock, ModalView, PlainTextElement, SectionBlock } from '@slack/web-api';
import {
  delegateText,
  actionComment,
  dayText,
  moneyText,
  outcomeLabel,
  personText,
  type ActionResult,
  type Card,
  type CardAction,
  type QueuedApproval,
} from '../../core/index.js';

/**
 * Card → Block Kit, and the lists the slash command, App Home and "also waiting on you" replies
 * show. Pure: no I/O. Every string from a source is shown through a `plain_text` object, and
 * every text object (mrkdwn or plain) has Slack's three control characters escaped, so a report
 * named `<!channel> *bold* <https://evil|click>` reads as exactly that and mentions no one.
 * Limits are Slack's documented ones (Block Kit reference, docs.slack.dev/reference/block-kit).
 */

/** Action ids the interactivity route answers; the value of each button is the approval key. */
export const OPEN_ACTION = 'approvals.open';
export const MORE_ACTION = 'approvals.more';
/**
 * Act buttons: `approvals.act.<action>` (action ids must differ within a block), each with its
 * recipient's action token as the value; the route hands the token to `ApprovalActions`.
 */
export const ACT_ACTION = 'approvals.act';
/**
 * The optional-comment twin of an act button (`approvals.act-comment.approve`): same token as its
 * button, but the click opens the comment modal with the comment optional instead of acting at once.
 */
export const ACT_COMMENT_ACTION = 'approvals.act-comment';

/** `callback_id` of the modal that asks for a comment, and the block and element ids of its input. */
export const COMMENT_CALLBACK = 'approvals.comment';
/** `callback_id` of the modal whose comment may be left empty (Approve with comment). */
export const OPTIONAL_COMMENT_CALLBACK = 'approvals.comment.optional';
export const COMMENT_BLOCK = 'comment';

/** `event_type` of the message metadata every card carries (idempotency key, approval, revision). */
export const CARD_EVENT_TYPE = 'approvals_hub_card';

const LIMIT = { header: 150, text: 3000, field: 2000, button: 75, url: 3000, value: 2000, fields: 10, modalTitle: 24, metadata: 3000 } as const;
/** The longest comment the modal takes: Concur's limit for a send-back or approval comment. */
const COMMENT_MAX = 2000;
/** Lines of line items a card shows before "and N more". */
const LINE_ITEMS_SHOWN = 10;

/** `approvals.open`, `approvals.more`, `approvals.act.*`, `approvals.act-comment.*`: what an action id asks for, or undefined for anything else. */
export function actionKind(actionId: string): 'open' | 'more' | 'act' | 'act-comment' | undefined {
  if (actionId === OPEN_ACTION || actionId.startsWith(`${OPEN_ACTION}.`)) return 'open';
  if (actionId === MORE_ACTION) return 'more';
  if (actionId.startsWith(`${ACT_ACTION}.`)) return 'act';
  if (actionId.startsWith(`${ACT_COMMENT_ACTION}.`)) return 'act-comment';
  return undefined;
}

/**
 * Slack treats `&`, `<` and `>` as control characters in text objects and the message `text`;
 * only these three are escaped, as its formatting reference says (docs.slack.dev/messaging/formatting-message-text#escaping).
 */
export function escapeText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

// C0 controls other than tab and newline, DEL, and the bidirectional overrides that can make a
// report name display reversed.
const UNSHOWABLE = /[\u0000-\u0008\u000b-\u001f\u007f\u202a-\u202e\u2066-\u2069]/g;

/** Escapes `text` and cuts it to at most `max` characters of escaped text, never inside an entity. */
export function fit(text: string, max: number): string {
  const escaped = escapeText(text.replace(UNSHOWABLE, ' '));
  if (escaped.length <= max) return escaped;
  let out = '';
  for (const ch of text.replace(UNSHOWABLE, ' ')) {
    const piece = escapeText(ch);
    if (out.length + piece.length + 1 > max) break;
    out += piece;
  }
  return `${out}…`;
}

function plain(text: string, max: number = LIMIT.text): PlainTextElement {
  // A text object needs at least one character; `emoji: false` keeps `:shortcodes:` in source text literal.
  return { type: 'plain_text', text: fit(text, max) || '-', emoji: false };
}

/** Only http(s) URLs within Slack's length limit become buttons. */
function safeUrl(url: string | undefined): string | undefined {
  if (!url || url.length > LIMIT.url) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? url : undefined;
  } catch {
    return undefined;
  }
}

function linkButton(label: string, url: string, actionId: string, approvalKey: string): Button {
  const button: Button = { type: 'button', text: plain(label, LIMIT.button), url, action_id: actionId };
  if (approvalKey.length <= LIMIT.value) button.value = approvalKey;
  return button;
}

/**
 * An act button: the recipient's token as its value. A button without a token (never delivered
 * through the outbox) or with one longer than Slack keeps is left out: it could not act.
 */
function actButton(action: Extract<CardAction, { type: 'act' }>): Button | undefined {
  if (!action.token || action.token.length > LIMIT.value) return undefined;
  const button: Button = {
    type: 'button',
    text: plain(action.label, LIMIT.button),
    action_id: `${ACT_ACTION}.${action.action}`.slice(0, 255),
    value: action.token,
  };
  if (action.style) button.style = action.style;
  return button;
}

/** "Approve with comment…": unstyled, the same token as the button it follows, its own action id. */
function optionalCommentButton(action: Extract<CardAction, { type: 'act' }>, token: string): Button {
  return {
    type: 'button',
    text: plain(`${action.label} with comment…`, LIMIT.button),
    action_id: `${ACT_COMMENT_ACTION}.${action.action}`.slice(0, 255),
    value: token,
  };
}

export { outcomeLabel };

/** The blocks of one approval card. A card with an outcome has no actions block, so no button outlives the approval. */
export function cardBlocks(card: Card): KnownBlock[] {
  const blocks: KnownBlock[] = [{ type: 'header', text: plain(card.title, LIMIT.header) }];
  if (card.outcome) blocks.push({ type: 'section', text: plain(outcomeLabel(card.outcome)) });
  // Who acted, where and when ("Approved by ann@x in Slack at ..."), right under the outcome.
  if (card.outcome && card.outcomeNote) blocks.push({ type: 'context', elements: [plain(card.outcomeNote)] } satisfies ContextBlock);
  // A delegate's copy: whom they may act for ("As delegate of Ann Berg").
  const delegate = delegateText(card);
  if (delegate) blocks.push({ type: 'context', elements: [plain(delegate)] } satisfies ContextBlock);

  const facts: [string, string | undefined][] = [
    ['Requester', personText(card.requester)],
    ['Amount', moneyText(card.amount)],
    ['Submitted', dayText(card.submittedAt)],
    ...card.fields.map((f): [string, string] => [f.label, f.value]),
  ];
  const shown = facts.filter((f): f is [string, string] => typeof f[1] === 'string' && f[1].length > 0);
  for (let i = 0; i < shown.length; i += LIMIT.fields) {
    const fields = shown.slice(i, i + LIMIT.fields).map(([label, value]) => plain(`${label}\n${value}`, LIMIT.field));
    blocks.push({ type: 'section', fields } satisfies SectionBlock);
  }

  if (card.lineItems.length > 0) {
    const lines = card.lineItems.slice(0, LINE_ITEMS_SHOWN).map((l) => {
      const amount = moneyText(l.amount);
      return `• ${l.label}${amount ? ` — ${amount}` : ''}${l.flags?.length ? ` (${l.flags.join(', ')})` : ''}`;
    });
    const hidden = card.lineItems.length - LINE_ITEMS_SHOWN;
    if (hidden > 0) lines.push(`…and ${hidden} more`);
    blocks.push({ type: 'section', text: plain(lines.join('\n')) });
  }

  if (card.flags.length > 0) {
    blocks.push({ type: 'context', elements: [plain(`⚠️ ${card.flags.join(' · ')}`, LIMIT.field)] } satisfies ContextBlock);
  }

  if (!card.outcome) {
    // Links are numbered among links, so a card without act buttons keeps its action ids.
    let links = 0;
    const buttons = card.actions.flatMap((a): Button[] => {
      if (a.type === 'act') {
        const button = actButton(a);
        if (!button) return [];
        return actionComment(a.action) === 'optional' && button.value ? [button, optionalCommentButton(a, button.value)] : [button];
      }
      const i = links++;
      const url = safeUrl(a.url);
      if (!url) return [];
      return [linkButton(a.label, url, i === 0 ? OPEN_ACTION : `${OPEN_ACTION}.${i}`, card.approvalKey)];
    });
    if (buttons.length > 0) blocks.push({ type: 'actions', elements: buttons.slice(0, 25) } satisfies ActionsBlock);
  }
  return blocks;
}

/** What the comment modal carries to its `view_submission`: the button's token, and where to answer the clicker. */
export interface CommentRequest {
  readonly token: string;
  readonly responseUrl?: string | undefined;
}

/**
 * The modal a button that needs a comment opens (Send back): the approval's title, one required
 * multiline input, and the token in `private_metadata`, which Slack returns with the submission
 * and never shows. The `response_url` of the click rides along when it fits in Slack's 3000
 * characters, so the result can be told in the conversation the card is in. With `optional`
 * (Approve with comment) the input is marked `optional`, so Slack lets it be submitted empty, and
 * the modal has its own `callback_id`, so the submission is not held to a required comment.
 */
export function commentModal(label: string, title: string | undefined, request: CommentRequest, optional = false): ModalView {
  const full = JSON.stringify(request);
  const metadata = full.length <= LIMIT.metadata ? full : JSON.stringify({ token: request.token });
  const blocks: KnownBlock[] = [];
  if (title) blocks.push({ type: 'section', text: plain(title) });
  blocks.push({
    type: 'input',
    block_id: COMMENT_BLOCK,
    label: plain('Comment for the requester', LIMIT.field),
    element: { type: 'plain_text_input', action_id: COMMENT_BLOCK, multiline: true, max_length: COMMENT_MAX },
    ...(optional ? { optional: true } : {}),
  });
  return {
    type: 'modal',
    callback_id: optional ? OPTIONAL_COMMENT_CALLBACK : COMMENT_CALLBACK,
    title: plain(optional ? `${label} with comment` : label, LIMIT.modalTitle),
    submit: plain(label, LIMIT.modalTitle),
    close: plain('Cancel', LIMIT.modalTitle),
    private_metadata: metadata,
    blocks,
  };
}

/** The comment modal's `private_metadata` read back, or undefined when it is not one. */
export function readCommentRequest(metadata: string | undefined): CommentRequest | undefined {
  if (!metadata) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(metadata);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { token, responseUrl } = parsed as Record<string, unknown>;
  if (typeof token !== 'string' || token.length === 0) return undefined;
  return { token, responseUrl: typeof responseUrl === 'string' ? responseUrl : undefined };
}

/**
 * What the clicker is told about an action's result: its sentence, and for `consent_needed` a
 * button to the source's consent page. The card itself is redrawn by the outbox.
 */
export function resultMessage(result: ActionResult): { text: string; blocks?: KnownBlock[] } {
  const text = fit(result.message, 1000);
  const url = result.outcome === 'consent_needed' ? safeUrl(result.url) : undefined;
  if (!url) return { text };
  const connect: Button = {
    type: 'button',
    text: plain(result.outcome === 'consent_needed' && result.label ? result.label : 'Connect your account', LIMIT.button),
    url,
    action_id: CONNECT_ACTION,
    style: 'primary',
  };
  return {
    text,
    blocks: [
      { type: 'section', text: plain(result.message) },
      { type: 'actions', elements: [connect] },
    ],
  };
}

/** Action id of the consent link's button: not one the interactivity route answers, so a click only opens it. */
export const CONNECT_ACTION = 'approvals.connect';

/** The message `text`: what notifications and screen readers show. mrkdwn by default, so escaped too. */
export function cardText(card: Card): string {
  const head = card.outcome
    ? `${outcomeLabel(card.outcome)}:`
    : card.onBehalfOf
      ? `Waiting for your approval as delegate of ${card.onBehalfOf}:`
      : 'Waiting for your approval:';
  const amount = moneyText(card.amount);
  return fit(`${head} ${card.title} — ${personText(card.requester)}${amount ? ` · ${amount}` : ''}`, 1000);
}

/** Action id of a sign-in link's button: not one the interactivity route answers, so a click only opens it. */
export const SIGN_IN_ACTION = 'approvals.sign-in';

/** A sign-in link (`link` action): its title, its fields, and its link button only; no approval behind it. */
export function linkBlocks(card: Card): KnownBlock[] {
  const blocks: KnownBlock[] = [{ type: 'header', text: plain(card.title, LIMIT.header) }];
  for (const f of card.fields) blocks.push({ type: 'section', text: plain(`${f.label}: ${f.value}`) });
  const buttons = card.actions.flatMap((a, i) => {
    const url = a.type === 'link' ? safeUrl(a.url) : undefined;
    return url ? [linkButton(a.label, url, i === 0 ? SIGN_IN_ACTION : `${SIGN_IN_ACTION}.${i}`, card.approvalKey)] : [];
  });
  if (buttons.length > 0) blocks.push({ type: 'actions', elements: buttons.slice(0, 25) } satisfies ActionsBlock);
  return blocks;
}

/** The text of a reminder: plain, no blocks, so it adds no button to the conversation. */
export function reminderText(card: Card): string {
  const amount = moneyText(card.amount);
  return fit(`⏰ Reminder: still waiting for your approval: ${card.title} — ${personText(card.requester)}${amount ? ` · ${amount}` : ''}`, 1000);
}

/** A digest's blocks: a heading, then one line per approval with its View link; no other buttons. */
export function digestBlocks(heading: string, cards: readonly Card[]): KnownBlock[] {
  // A message holds 50 blocks: the heading, up to 48 approvals and an "and N more" line.
  const shown = cards.slice(0, 48);
  const blocks: KnownBlock[] = [{ type: 'section', text: plain(heading) }];
  for (const card of shown) {
    const amount = moneyText(card.amount);
    const submitted = dayText(card.submittedAt);
    const detail = [personText(card.requester), amount, submitted ? `submitted ${submitted}` : undefined].filter(Boolean).join(' · ');
    const section: SectionBlock = { type: 'section', text: plain(`${card.title}\n${detail}`) };
    const link = card.actions.find((a) => a.type === 'link');
    const url = link?.type === 'link' ? safeUrl(link.url) : undefined;
    if (url) section.accessory = linkButton('View', url, OPEN_ACTION, card.approvalKey);
    blocks.push(section);
  }
  if (cards.length > shown.length) blocks.push({ type: 'context', elements: [plain(`…and ${cards.length - shown.length} more.`)] });
  return blocks;
}

/** One line of a list: title, requester, amount, date; a View button when the approval has a link. */
function listItem(approval: QueuedApproval): SectionBlock {
  const amount = moneyText(approval.amount);
  const submitted = dayText(approval.submittedAt);
  const detail = [personText(approval.requester), amount, submitted ? `submitted ${submitted}` : undefined].filter(Boolean).join(' · ');
  const section: SectionBlock = { type: 'section', text: plain(`${approval.title}\n${detail}`) };
  const url = safeUrl(approval.links.view);
  if (url) section.accessory = linkButton('View', url, OPEN_ACTION, approval.key);
  return section;
}

/**
 * A list of approvals under a heading; `more` says how many were left out. Messages allow 50
 * blocks and Home tabs 100, so callers pass at most a few dozen approvals.
 */
export function approvalListBlocks(heading: string, approvals: readonly QueuedApproval[], more = 0): KnownBlock[] {
  const blocks: KnownBlock[] = [{ type: 'section', text: plain(heading) }];
  for (const approval of approvals) blocks.push(listItem(approval));
  if (more > 0) blocks.push({ type: 'context', elements: [plain(`…and ${more} more.`)] });
  return blocks;
}

/** The App Home tab of one person: what is waiting on them. */
export function homeView(approvals: readonly QueuedApproval[], more = 0): HomeView {
  const heading = approvals.length === 0 ? 'Nothing is waiting on you.' : `Waiting on you (${approvals.length + more})`;
  return { type: 'home', blocks: [{ type: 'header', text: plain('Approvals', LIMIT.header) }, ...approvalListBlocks(heading, approvals, more)] };
}

/** Fallback `text` of a list message. */
export function listText(count: number): string {
  return count === 0 ? 'Nothing is waiting on you.' : `${count} approval${count === 1 ? ' is' : 's are'} waiting on you.`;
}
