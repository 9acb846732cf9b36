import { escapeHtml } from '../../core/index.js';
import { htmlPage } from './inbox-page.js';

/**
 * The "Send me a new link" pages: the form an approver without a working link fills in, and the
 * answers to it. Every page is one `<main class="message">` with one `h1`, and every string in
 * it is escaped, the address someone typed included.
 */

/** The form: one labelled e-mail field and its button, posting to `POST /inbox/link-request`. `email` refills the field. */
export function linkRequestForm(email = ''): string {
  const value = email ? ` value="${escapeHtml(email)}"` : '';
  return `<form class="request" method="post" action="/inbox/link-request">
    <p class="field"><label for="request-email">Your work e-mail</label><input id="request-email" type="email" name="email" autocomplete="email" required${value}></p>
    <button type="submit" class="button">Send me a new link</button>
  </form>`;
}

function page(title: string, paragraphs: readonly string[], form: string): string {
  const text = paragraphs.map((p) => `  <p>${escapeHtml(p)}</p>\n`).join('');
  return htmlPage(title, `<main class="message">\n  <h1>${escapeHtml(title)}</h1>\n${text}${form ? `  ${form}\n` : ''}</main>`);
}

/** A page saying why there is no inbox to show (a refused link, no session, signed out), with the form to ask for a link. */
export function linkRequestHtml(title: string, text: string): string {
  return page(title, [text], linkRequestForm());
}

/**
 * The one answer to every well-formed request, sent or not: it says the same whether or not the
 * address is an approver's, and whether or not a link was sent just before.
 */
export function linkRequestedHtml(email: string, channels: string, linkTtlMinutes: number, intervalMinutes: number): string {
  return page(
    'Check your messages',
    [
      `If ${email} has approvals waiting here, a new sign-in link is on its way to you through ${channels}. It works once, for ${minutesText(linkTtlMinutes)}.`,
      `Nothing arrived? You can ask again after ${minutesText(intervalMinutes)}.`,
    ],
    '',
  );
}

/** The 400 answer: what is wrong with what was typed, and the form again with it filled in. */
export function linkRequestInvalidHtml(problem: string, email: string): string {
  return page('Check the e-mail address', [problem], linkRequestForm(email));
}

/** The 429 answer to one address (IP) asking too often. */
export function linkRequestLimitedHtml(retryMinutes: number): string {
  return page('Too many requests', [`Too many links were asked for from your network. Try again in ${minutesText(retryMinutes)}.`], '');
}

function minutesText(minutes: number): string {
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}
