import { randomUUID } from 'node:crypto';
import { isPermanentDeliveryError, isRetryLaterError, type Notifier, type OutboundMessage } from '../../contracts/notifier.js';
import type { Card } from '../../model/card.js';
import type { DeliveryReceipt, OutboxAction } from '../../model/queue-types.js';
import { describeKit, runKitCases, testFramework, type KitCaseResult, type TestFramework } from './framework.js';

/**
 * What the notifier kit needs of the channel behind a notifier, implemented by the plugin's author
 * against a test double of that channel (a fake chat API on loopback, a loopback HTTP receiver, a
 * captured stream …). It observes and breaks the channel, never the notifier.
 */
export interface ChannelDriver {
  /**
   * What the test recipient's channel shows now: one entry per message (its latest version if the
   * channel edits messages), oldest first, as any text that contains what the message shows (JSON
   * of the API payload will do). The kit looks for card titles in it.
   */
  messages(): Promise<readonly string[]>;
  /** From now on the channel refuses every delivery for good (an unknown user, a 4xx), until {@link recover}. */
  failPermanently(): Promise<void>;
  /** From now on the channel refuses every delivery for now: 429 or 503 with `Retry-After: 1`, until {@link recover}. */
  failTemporarily(): Promise<void>;
  /** The channel accepts deliveries again. */
  recover(): Promise<void>;
}

/** What `make` returns: a notifier on a fresh channel, its driver, the recipient to send to, teardown. */
export interface NotifierUnderTest {
  readonly notifier: Notifier;
  readonly driver: ChannelDriver;
  /** A person the channel can reach. */
  readonly recipient: OutboundMessage['recipient'];
  close?(): Promise<void>;
}

/** The cases the notifier kit runs, by name; the keys of {@link NotifierKitOptions.skip}. */
export const NOTIFIER_KIT_CASES = [
  'notify',
  'update',
  'close',
  'remind',
  'digest',
  'idempotency',
  'permanent error',
  'retryable error',
  'retry after',
  'unknown action',
] as const;
export type NotifierKitCase = (typeof NOTIFIER_KIT_CASES)[number];

export interface NotifierKitOptions {
  /**
   * Whether `update` and `close` edit the message in place (chat APIs) rather than post a new one
   * (a terminal, a webhook whose receiver applies the event). Default true: the kit then also
   * checks that they add no message.
   */
  readonly editsInPlace?: boolean;
  /** Cases this channel genuinely cannot support, each with the reason (shown in the skipped test's title). */
  readonly skip?: Partial<Record<NotifierKitCase, string>>;
  /** Test framework functions; default: the globals of mocha, jest or vitest. */
  readonly framework?: TestFramework;
}

/** The outcome of one case run programmatically: every contract breach found (empty = passed). */
export type NotifierKitResult = KitCaseResult<NotifierKitCase>;

/** A card with a title no other case uses, so the kit can find it in what the channel shows. */
function kitCard(title: string, overrides: Partial<Card> = {}): Card {
  return {
    approvalKey: `kit:expense-report:${title.replace(/\W+/g, '-')}`,
    kind: 'expense-report',
    revision: 1,
    title,
    requester: { name: 'Ada Lovelace', email: 'ada@example.test' },
    amount: { value: '120.00', currency: 'EUR' },
    submittedAt: '2026-03-02T09:00:00.000Z',
    fields: [{ label: 'Report number', value: 'R-0001' }],
    lineItems: [{ label: 'Hotel', amount: { value: '100.00', currency: 'EUR' } }],
    flags: [],
    actions: [{ type: 'link', label: 'View Expense Report', url: 'https://example.test/reports/R-0001' }],
    ...overrides,
  };
}

const errorText = (error: unknown): string => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

async function runCase(name: NotifierKitCase, subject: NotifierUnderTest, options: NotifierKitOptions): Promise<string[]> {
  const { notifier, driver, recipient } = subject;
  const problems: string[] = [];
  const run = randomUUID().slice(0, 8);
  const title = (what: string) => `Kit ${run} ${what}`;
  const message = (action: OutboxAction, card: Card, extra: Partial<OutboundMessage> = {}): OutboundMessage => ({
    idempotencyKey: `${card.approvalKey}#${run}.${card.revision}:${recipient.sourceUserId}:${notifier.id}:${action}`,
    action,
    recipient,
    card,
    ...extra,
  });
  const receiptProblem = (what: string, receipt: DeliveryReceipt | undefined) => {
    if (typeof receipt?.ref !== 'string' || receipt.ref === '')
      problems.push(`${what}: returned ${JSON.stringify(receipt)} instead of a receipt with a non-empty ref`);
  };
  const showing = (texts: readonly string[], text: string) => texts.filter((m) => m.includes(text)).length;
  const notify = async (what: string) => {
    const card = kitCard(title(what));
    const receipt = await notifier.deliver(message('notify', card));
    receiptProblem('notify', receipt);
    return { card, receipt };
  };
  const rejection = async (m: OutboundMessage): Promise<unknown> => {
    try {
      await notifier.deliver(m);
    } catch (error) {
      return error;
    }
    return undefined;
  };
  const editsInPlace = options.editsInPlace ?? true;

  switch (name) {
    case 'notify': {
      const before = (await driver.messages()).length;
      const { card } = await notify('notify');
      const after = await driver.messages();
      if (after.length !== before + 1) problems.push(`notify: the channel went from ${before} to ${after.length} messages; expected one new message`);
      if (showing(after, card.title) !== 1) problems.push(`notify: ${showing(after, card.title)} messages show the card's title "${card.title}"; expected 1`);
      break;
    }
    case 'update':
    case 'close': {
      const { card, receipt } = await notify(name);
      const before = await driver.messages();
      const changed: Card = name === 'update' ? { ...card, title: title('updated'), revision: 2 } : { ...card, revision: 2, outcome: 'approved' };
      const next = await notifier.deliver(message(name, changed, { previous: receipt }));
      receiptProblem(name, next);
      const after = await driver.messages();
      if (editsInPlace && after.length !== before.length)
        problems.push(`${name}: the channel went from ${before.length} to ${after.length} messages; an ${name} edits the message in \`previous\``);
      if (JSON.stringify(after) === JSON.stringify(before)) problems.push(`${name}: nothing the channel shows changed`);
      if (name === 'update' && showing(after, changed.title) === 0) problems.push(`update: no message shows the new title "${changed.title}"`);
      break;
    }
    case 'remind': {
      const { card, receipt } = await notify('remind');
      const before = await driver.messages();
      const next = await notifier.deliver(
        message('remind', card, { idempotencyKey: `${card.approvalKey}#${run}.1:${recipient.sourceUserId}:${notifier.id}:remind-1`, previous: receipt }),
      );
      receiptProblem('remind', next);
      const after = await driver.messages();
      if (JSON.stringify(after) === JSON.stringify(before)) problems.push('remind: nothing the channel shows changed');
      if (after.length > before.length + 1) problems.push(`remind: ${after.length - before.length} new messages; a reminder is at most one`);
      break;
    }
    case 'digest': {
      const listed = [kitCard(title('digest one')), kitCard(title('digest two'))];
      const summary = kitCard(title('2 approvals are waiting on you'), { approvalKey: `digest:${recipient.email}`, kind: 'digest', actions: [] });
      const before = (await driver.messages()).length;
      const receipt = await notifier.deliver(message('digest', summary, { idempotencyKey: `digest:${recipient.email}:${notifier.id}:${run}`, digest: listed }));
      receiptProblem('digest', receipt);
      const after = await driver.messages();
      if (after.length !== before + 1) problems.push(`digest: the channel went from ${before} to ${after.length} messages; a digest is one message`);
      const last = after.at(-1) ?? '';
      for (const c of listed) if (!last.includes(c.title)) problems.push(`digest: the digest message does not list "${c.title}"`);
      break;
    }
    case 'idempotency': {
      // The outbox worker's retry of an entry that may have been sent: with findDelivered it asks
      // first and re-sends only what the channel does not have; without, it re-sends and the
      // channel itself must show one message per key.
      const card = kitCard(title('idempotent'));
      const m = message('notify', card);
      const before = (await driver.messages()).length;
      const first = await notifier.deliver(m);
      receiptProblem('idempotency (first delivery)', first);
      if (notifier.findDelivered) {
        const found = await notifier.findDelivered(m.idempotencyKey, recipient);
        if (found?.ref !== first.ref)
          problems.push(`idempotency: findDelivered returned ${JSON.stringify(found)} for a delivered key; expected the receipt ${JSON.stringify(first)}`);
        if (found === undefined) await notifier.deliver(m);
        const unknown = await notifier.findDelivered(`${m.idempotencyKey}:never-sent`, recipient);
        if (unknown !== undefined)
          problems.push(`idempotency: findDelivered returned ${JSON.stringify(unknown)} for a key never delivered; expected undefined`);
      } else {
        receiptProblem('idempotency (second delivery)', await notifier.deliver(m));
      }
      const after = await driver.messages();
      if (after.length !== before + 1 || showing(after, card.title) !== 1) {
        problems.push(
          `idempotency: the same idempotency key delivered twice left ${after.length - before} new messages (${showing(after, card.title)} showing the card); expected one`,
        );
      }
      break;
    }
    case 'permanent error': {
      await driver.failPermanently();
      const error = await rejection(message('notify', kitCard(title('refused'))));
      await driver.recover();
      if (error === undefined) problems.push('permanent error: deliver resolved although the channel refused it');
      else if (!isPermanentDeliveryError(error))
        problems.push(
          `permanent error: the error is not recognised by isPermanentDeliveryError (code ${JSON.stringify((error as { code?: unknown }).code)}), so the outbox would retry it forever: ${errorText(error)}`,
        );
      else if (isRetryLaterError(error)) problems.push('permanent error: the error is also a RetryLaterError');
      break;
    }
    case 'retryable error':
    case 'retry after': {
      await driver.failTemporarily();
      const card = kitCard(title('retried'));
      const error = await rejection(message('notify', card));
      await driver.recover();
      if (error === undefined) problems.push(`${name}: deliver resolved although the channel refused it for now`);
      else if (isPermanentDeliveryError(error))
        problems.push(`${name}: a temporary refusal was reported as permanent, so the outbox would dead-letter it: ${errorText(error)}`);
      else if (name === 'retry after') {
        const wait = (error as { retryAfterMs?: unknown }).retryAfterMs;
        if (!isRetryLaterError(error))
          problems.push(`retry after: the error is not recognised by isRetryLaterError, so the channel's Retry-After is lost: ${errorText(error)}`);
        else if (typeof wait !== 'number' || !Number.isFinite(wait) || wait < 0)
          problems.push(`retry after: retryAfterMs is ${JSON.stringify(wait)}, not a finite number of milliseconds`);
      }
      if (name === 'retryable error') {
        const receipt = await notifier.deliver(message('notify', card));
        receiptProblem('retryable error (after recovery)', receipt);
        const shown = showing(await driver.messages(), card.title);
        if (shown !== 1) problems.push(`retryable error: after recovery the retried message shows ${shown} times; expected once`);
      }
      break;
    }
    case 'unknown action': {
      const before = await driver.messages();
      const error = await rejection(message('no-such-action' as OutboxAction, kitCard(title('unknown action'))));
      const after = await driver.messages();
      if (!isPermanentDeliveryError(error))
        problems.push(
          `unknown action: an action the channel does not know was ${error === undefined ? 'delivered' : `refused with an error isPermanentDeliveryError does not recognise (${errorText(error)})`}; it must be refused for good`,
        );
      if (JSON.stringify(after) !== JSON.stringify(before)) problems.push('unknown action: the channel shows something new');
      break;
    }
  }
  return problems;
}

/** Runs the notifier kit's cases without a test framework and returns what each found. */
export async function checkNotifier(
  make: () => Promise<NotifierUnderTest>,
  options: NotifierKitOptions = {},
  cases: readonly NotifierKitCase[] = NOTIFIER_KIT_CASES,
): Promise<NotifierKitResult[]> {
  return runKitCases(make, cases, options.skip, errorText, (name, subject) => runCase(name, subject, options));
}

const TITLES: Record<NotifierKitCase, string> = {
  notify: 'posts one message for a notify and returns its receipt',
  update: 'shows an update of the message in `previous`',
  close: 'shows a close of the message in `previous`',
  remind: 'shows a reminder of the message in `previous`, at most one new message',
  digest: 'posts a digest as one message listing every approval',
  idempotency: 'shows one message for an idempotency key sent again as the outbox retries it (findDelivered first, where the notifier has it)',
  'permanent error': 'reports a permanent refusal as an error isPermanentDeliveryError recognises',
  'retryable error': 'reports a temporary refusal as a retryable error, and delivers once it passes',
  'retry after': 'reports a temporary refusal with Retry-After as an error isRetryLaterError recognises',
  'unknown action': 'refuses an action it does not know for good, posting nothing',
};

/**
 * The contract every {@link Notifier} plugin must keep, as a test suite. `make` returns a notifier
 * on a fresh channel and a {@link ChannelDriver} to observe and break that channel; it is called
 * once per case.
 *
 * ```ts
 * import { describeNotifier } from 'approvals-hub/testing';
 * describeNotifier('my-chat', async () => {
 *   const fake = await startFakeChat();
 *   return { notifier: new MyChatNotifier('chat', fake.url), driver: fake.driver(), recipient: { sourceUserId: 'ada', email: 'ada@example.test' }, close: () => fake.close() };
 * });
 * ```
 */
export function describeNotifier(name: string, make: () => Promise<NotifierUnderTest>, options: NotifierKitOptions = {}): void {
  const t = testFramework(options.framework);
  describeKit(t, `Notifier contract kit: ${name}`, NOTIFIER_KIT_CASES, TITLES, options.skip, `${name} breaks the Notifier contract`, (kase) =>
    checkNotifier(make, options, [kase]),
  );
}
