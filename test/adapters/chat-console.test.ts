import { expect } from 'chai';
import { ConsoleNotifier } from '../../adapters/chat-console/console-notifier.js';
import type { Card, OutboundMessage } from '../../core/index.js';

const card = (key: string, title: string): Card => ({
  approvalKey: key,
  kind: 'expense-report',
  revision: 2,
  title,
  requester: { name: 'Ada Lovelace' },
  amount: { value: '120.00', currency: 'EUR' },
  fields: [{ label: 'Policy', value: 'Travel' }],
  lineItems: [{ label: 'Hotel' }],
  flags: [],
  actions: [{ type: 'link', label: 'View Expense Report', url: `https://example.test/${key}` }],
});
const recipient = { sourceUserId: 'grace', email: 'grace@acme.test' };

describe('console notifier', () => {
  let printed: string[];
  let notifier: ConsoleNotifier;
  beforeEach(() => {
    printed = [];
    notifier = new ConsoleNotifier('console', (text) => printed.push(text));
  });

  it('prints a reminder as REMINDER with the title and the View link only, keeping the card\'s receipt', async () => {
    const message: OutboundMessage = { idempotencyKey: 'k#g.2:grace:console:remind-1', action: 'remind', recipient, card: card('src:r:1', 'Berlin offsite'), previous: { ref: 'console-1' } };
    const receipt = await notifier.deliver(message);

    expect(receipt).to.deep.equal({ ref: 'console-1' });
    expect(printed[0]!.split('\n')).to.deep.equal([
      '[console] REMINDER for grace@acme.test (src:r:1 r2)',
      '  • Berlin offsite — Ada Lovelace · EUR 120.00',
      '  [View Expense Report] https://example.test/src:r:1',
      '',
    ]);
  });

  it('prints a digest as one block listing each approval with its link', async () => {
    const summary = { ...card('digest:grace@acme.test', '2 approvals are waiting on you'), kind: 'digest', actions: [] };
    await notifier.deliver({ idempotencyKey: 'digest:grace@acme.test:console:2026-01-05', action: 'digest', recipient, card: summary, digest: [card('src:r:1', 'One'), card('src:r:2', 'Two')] });

    expect(printed).to.have.length(1);
    expect(printed[0]!.split('\n')).to.deep.equal([
      '[console] DIGEST for grace@acme.test: 2 approvals are waiting on you',
      '  • One — Ada Lovelace · EUR 120.00',
      '    [View Expense Report] https://example.test/src:r:1',
      '  • Two — Ada Lovelace · EUR 120.00',
      '    [View Expense Report] https://example.test/src:r:2',
      '',
    ]);
  });
});
