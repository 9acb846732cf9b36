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

  it("prints a reminder as REMINDER with the title and the View link only, keeping the card's receipt", async () => {
    const message: OutboundMessage = {
      idempotencyKey: 'k#g.2:grace:console:remind-1',
      action: 'remind',
      recipient,
      card: card('src:r:1', 'Berlin offsite'),
      previous: { ref: 'console-1' },
    };
    const receipt = await notifier.deliver(message);

    expect(receipt).to.deep.equal({ ref: 'console-1' });
    expect(printed[0]!.split('\n')).to.deep.equal([
      '[console] REMINDER for grace@acme.test (src:r:1 r2)',
      '  • Berlin offsite — Ada Lovelace · EUR 120.00',
      '  [View Expense Report] https://example.test/src:r:1',
      '',
    ]);
  });

  it('prints who acted where on a closed card, and no button', async () => {
    const closed: Card = {
      ...card('src:r:2', 'Client dinner'),
      outcome: 'approved',
      outcomeNote: 'Approved by grace@acme.test in Slack at 2026-03-02 09:01 UTC',
      actions: [],
    };
    await notifier.deliver({ idempotencyKey: 'k#g.2:grace:console:close', action: 'close', recipient, card: closed, previous: { ref: 'console-1' } });
    expect(printed[0]!.split('\n')).to.include('  ✔ approved (Approved by grace@acme.test in Slack at 2026-03-02 09:01 UTC)');
  });

  it('prints a sign-in link (`link`) as its title, its fields and the link only', async () => {
    const url = 'https://inbox.example.test/inbox/login?token=abc.def';
    const link: Card = {
      ...card('sign-in:grace@acme.test', 'Your new sign-in link to the approvals inbox'),
      kind: 'sign-in-link',
      requester: {},
      amount: undefined,
      fields: [{ label: 'Works', value: 'once, for 15 minutes' }],
      lineItems: [],
      actions: [{ type: 'link', label: 'Open your approvals', url }],
    };
    const receipt = await notifier.deliver({ idempotencyKey: 'sign-in:grace@acme.test:console:1', action: 'link', recipient, card: link });

    expect(receipt.ref).to.be.a('string').and.not.equal('');
    expect(printed).to.have.length(1);
    expect(printed[0]!.split('\n')).to.deep.equal([
      '[console] SIGN-IN LINK for grace@acme.test: Your new sign-in link to the approvals inbox',
      '  Works: once, for 15 minutes',
      `  [Open your approvals] ${url}`,
      '',
    ]);
  });

  it('prints a digest as one block listing each approval with its link', async () => {
    const summary = { ...card('digest:grace@acme.test', '2 approvals are waiting on you'), kind: 'digest', actions: [] };
    await notifier.deliver({
      idempotencyKey: 'digest:grace@acme.test:console:2026-01-05',
      action: 'digest',
      recipient,
      card: summary,
      digest: [card('src:r:1', 'One'), card('src:r:2', 'Two')],
    });

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

  it('prints no control or bidi character from any field, so a source cannot drive the terminal', async () => {
    const hostile = '\u001b[2J\u009b31m\u202eevil\u202c\u2066x\u2069\u200e\u200f\u061c\r\t\u0007\u2028';
    const bad: Card = {
      ...card(`src:r:${hostile}`, `Berlin ${hostile}\noffsite`),
      requester: { name: `Ada ${hostile}` },
      amount: { value: `1${hostile}`, currency: `EU${hostile}` },
      submittedAt: `2026-01-05${hostile}`,
      fields: [{ label: `Policy${hostile}`, value: `Travel${hostile}` }],
      lineItems: [{ label: `Hotel${hostile}`, amount: { value: '1.00', currency: 'EUR' }, flags: [`late${hostile}`] }],
      flags: [`missing receipt${hostile}`],
      actions: [
        { type: 'link', label: `View${hostile}`, url: `https://example.test/${hostile}` },
        { type: 'act', label: `Approve${hostile}`, action: 'approve' },
      ],
    };
    const unprintable = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/;
    const evil = { sourceUserId: 'grace', email: `grace${hostile}@acme.test` };
    await notifier.deliver({ idempotencyKey: 'k#g.2:grace:console:notify', action: 'notify', recipient: evil, card: bad });
    await notifier.deliver({ idempotencyKey: 'k#g.2:grace:console:remind-1', action: 'remind', recipient: evil, card: bad, previous: { ref: 'console-1' } });
    await notifier.deliver({
      idempotencyKey: 'digest:grace:console:2026-01-05',
      action: 'digest',
      recipient: evil,
      card: { ...bad, title: `1 waiting${hostile}` },
      digest: [bad],
    });

    expect(printed).to.have.length(3);
    for (const text of printed) expect(text).not.to.match(unprintable);
    const lines = printed[0]!.split('\n');
    // The title's own newline does not start a line of its own: header, title, submitted, field,
    // line item, flags, two buttons and the block's closing newline, as for any card.
    expect(lines[1]).to.match(/^Berlin .*\[2J.*evil.* offsite — Ada /);
    expect(lines).to.have.length(9);
  });
});
