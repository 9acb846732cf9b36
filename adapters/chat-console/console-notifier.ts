import { dayText, moneyText, type Card, type DeliveryReceipt, type Notifier, type OutboundMessage } from '../../core/index.js';

/** Strips terminal control sequences from source text, so a report name cannot drive the terminal. */
const plain = (text: string): string => text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');

export function formatCard(card: Card): string[] {
  const lines: string[] = [];
  const amount = card.amount ? ` · ${moneyText(card.amount)}` : '';
  const who = card.requester.name ?? card.requester.email ?? 'unknown requester';
  lines.push(`${plain(card.title)} — ${plain(who)}${amount}`);
  if (card.submittedAt) lines.push(`  submitted ${dayText(card.submittedAt)}`);
  for (const f of card.fields) lines.push(`  ${plain(f.label)}: ${plain(f.value)}`);
  for (const l of card.lineItems) {
    lines.push(`  • ${plain(l.label)}${l.amount ? ` ${moneyText(l.amount)}` : ''}${l.flags?.length ? ` (${l.flags.map(plain).join(', ')})` : ''}`);
  }
  if (card.flags.length) lines.push(`  ⚠ ${card.flags.map(plain).join(', ')}`);
  if (card.outcome) lines.push(`  ✔ ${card.outcome.replaceAll('_', ' ')}`);
  for (const a of card.actions) lines.push(a.type === 'link' ? `  [${a.label}] ${a.url}` : `  [${a.label}]`);
  return lines;
}

/** One approval of a digest: its first card line and its links (a digest has no act buttons). */
export function formatDigestLine(card: Card): string[] {
  const [first = plain(card.title)] = formatCard({ ...card, fields: [], lineItems: [], flags: [], actions: [] });
  const links = card.actions.flatMap((a) => (a.type === 'link' ? [`    [${plain(a.label)}] ${a.url}`] : []));
  return [`  • ${first}`, ...links];
}

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
      const head = `[${this.id}] DIGEST for ${message.recipient.email}: ${plain(card.title)}`;
      this.write([head, ...listed.flatMap(formatDigestLine), ''].join('\n'));
      return { ref: `${this.id}-${++this.sent}` };
    }
    const verb = { notify: 'NEW', update: 'UPDATED', close: 'CLOSED', remind: 'REMINDER' }[message.action];
    const head = `[${this.id}] ${verb} for ${message.recipient.email} (${card.approvalKey} r${card.revision})`;
    // A reminder points at the card already shown; it repeats only its first line and its links.
    const body = message.action === 'remind' ? formatDigestLine(card).map((l) => `  ${l.trimStart()}`) : formatCard(card);
    this.write([head, ...body, ''].join('\n'));
    return message.previous ?? { ref: `${this.id}-${++this.sent}` };
  }
}
