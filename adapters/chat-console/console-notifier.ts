import {
  PermanentDeliveryError,
  dayText,
  delegateText,
  moneyText,
  type Card,
  type DeliveryReceipt,
  type Notifier,
  type OutboundMessage,
} from '../../core/index.js';

/**
 * C0 and C1 control characters (ESC starts a terminal escape sequence, U+009B is a one-character
 * CSI, CR and TAB rewrite a line) and the characters that reorder or break text as it is shown:
 * the Unicode bidi controls (U+061C, U+200E/U+200F, U+202A–U+202E, U+2066–U+2069) and the line and
 * paragraph separators U+2028/U+2029.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

/**
 * One printed line as plain text: every control character becomes a space, so nothing a source or
 * a recipient's address carries can drive the terminal or reorder what the reader sees. Newlines
 * are the layout's own: lines are joined only after this ran on each of them.
 */
export const plain = (line: string): string => line.replace(UNPRINTABLE, ' ');

/** The card as lines; not yet {@link plain}: {@link ConsoleNotifier} cleans every line it prints. */
export function formatCard(card: Card): string[] {
  const lines: string[] = [];
  const amount = card.amount ? ` · ${moneyText(card.amount)}` : '';
  const who = card.requester.name ?? card.requester.email ?? 'unknown requester';
  lines.push(`${card.title} — ${who}${amount}`);
  if (card.onBehalfOf) lines.push(`  ${delegateText(card)!}`);
  if (card.submittedAt) lines.push(`  submitted ${dayText(card.submittedAt)}`);
  for (const f of card.fields) lines.push(`  ${f.label}: ${f.value}`);
  for (const l of card.lineItems) {
    lines.push(`  • ${l.label}${l.amount ? ` ${moneyText(l.amount)}` : ''}${l.flags?.length ? ` (${l.flags.join(', ')})` : ''}`);
  }
  if (card.flags.length) lines.push(`  ⚠ ${card.flags.join(', ')}`);
  if (card.outcome) lines.push(`  ✔ ${card.outcome.replaceAll('_', ' ')}${card.outcomeNote ? ` (${card.outcomeNote})` : ''}`);
  for (const a of card.actions) lines.push(a.type === 'link' ? `  [${a.label}] ${a.url}` : `  [${a.label}]`);
  return lines;
}

/** One approval of a digest: its first card line and its links (a digest has no act buttons). */
export function formatDigestLine(card: Card): string[] {
  const [first = card.title] = formatCard({ ...card, fields: [], lineItems: [], flags: [], actions: [] });
  const links = card.actions.flatMap((a) => (a.type === 'link' ? [`    [${a.label}] ${a.url}`] : []));
  return [`  • ${first}`, ...links];
}

/** How each action other than `digest` and `link` is headed; {@link ConsoleNotifier} refuses an action not here. */
const VERBS: ReadonlyMap<string, string> = new Map([
  ['notify', 'NEW'],
  ['update', 'UPDATED'],
  ['close', 'CLOSED'],
  ['remind', 'REMINDER'],
]);

/** The embedded default channel: readable text, one block per message. */
export class ConsoleNotifier implements Notifier {
  private sent = 0;

  constructor(
    readonly id: string,
    private readonly write: (text: string) => void,
  ) {}

  async deliver(message: OutboundMessage): Promise<DeliveryReceipt> {
    const { card } = message;
    if (message.action === 'digest') {
      const listed = message.digest ?? [];
      const head = `[${this.id}] DIGEST for ${message.recipient.email}: ${card.title}`;
      this.print([head, ...listed.flatMap(formatDigestLine)]);
      return { ref: `${this.id}-${++this.sent}` };
    }
    if (message.action === 'link') {
      // A sign-in link: no approval behind it, so only its title, its fields and its link.
      const head = `[${this.id}] SIGN-IN LINK for ${message.recipient.email}: ${card.title}`;
      const links = card.actions.flatMap((a) => (a.type === 'link' ? [`  [${a.label}] ${a.url}`] : []));
      this.print([head, ...card.fields.map((f) => `  ${f.label}: ${f.value}`), ...links]);
      return { ref: `${this.id}-${++this.sent}` };
    }
    const verb = VERBS.get(message.action);
    if (verb === undefined) {
      // OutboundMessage.action: an action this channel does not know is refused, never printed.
      throw new PermanentDeliveryError(
        `console notifier ${this.id}: action ${JSON.stringify(message.action)} is not one it prints (${['digest', 'link', ...VERBS.keys()].join(', ')})`,
      );
    }
    const head = `[${this.id}] ${verb} for ${message.recipient.email} (${card.approvalKey} r${card.revision})`;
    // A reminder points at the card already shown; it repeats only its first line and its links.
    const body = message.action === 'remind' ? formatDigestLine(card).map((l) => `  ${l.trimStart()}`) : formatCard(card);
    this.print([head, ...body]);
    return message.previous ?? { ref: `${this.id}-${++this.sent}` };
  }

  /** Every field passes through here: each line is cleaned before the lines are joined. */
  private print(lines: readonly string[]): void {
    this.write([...lines.map(plain), ''].join('\n'));
  }
}
