/**
 * The web inbox's documents: static HTML shells, one stylesheet, one script. No source data is
 * ever written into HTML: the script fetches JSON and inserts every string with `textContent`,
 * so the strict Content-Security-Policy (no inline script or style) holds and a report named
 * `<img onerror=…>` is just a title.
 */
import { escapeHtml } from '../../core/index.js';

/** Served on every inbox response. `connect-src 'self'` covers the JSON API and the event stream. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  // The sign-in page posts its link, and the inbox its sign-out, to this origin only.
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** A whole inbox document: the shared head (stylesheet, viewport, referrer policy) around `body`, which must already be escaped. */
export function htmlPage(title: string, body: string, head = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/inbox/app.css">
${head}</head>
<body>
${body}
</body>
</html>
`;
}

/**
 * The inbox shell; app.js fills it. Everything that changes while the page is open (the list, the
 * counts, the "Show new" button, the recently closed list) sits in space the shell already holds,
 * so a live update moves nothing the approver is looking at, and one persistent polite live
 * region (#announcer) says what changed.
 */
export function inboxHtml(): string {
  return htmlPage(
    'Approvals waiting on you',
    `<a class="skip" href="#approvals-heading">Skip to your approvals</a>
<header class="top">
  <div class="heading">
    <p class="brand">approvals-hub</p>
    <h1 id="page-heading" tabindex="-1">Waiting on you <span id="count" class="count">…</span></h1>
  </div>
  <div class="status">
    <p class="who">Signed in as <strong id="who"></strong></p>
    <div class="status-row">
      <p id="live" class="live" data-state="connecting">Connecting…</p>
      <form method="post" action="/inbox/logout" class="signout"><button type="submit" class="link-button">Sign out</button></form>
    </div>
  </div>
</header>
<div id="announcer" class="visually-hidden" role="status" aria-live="polite" aria-atomic="true"></div>
<main id="main" aria-busy="true">
  <form id="controls" class="controls" role="search" aria-label="Sort and filter your approvals">
    <p class="control"><label for="sort">Sort</label>
      <select id="sort"><option value="oldest">Oldest first</option><option value="newest">Newest first</option><option value="amount">Largest amount</option></select></p>
    <p class="control"><label for="source">Source</label><select id="source"><option value="">All sources</option></select></p>
    <p class="control check"><input type="checkbox" id="flagged"><label for="flagged">Flagged only</label></p>
    <p class="control search"><label for="search">Search title or requester</label><input type="search" id="search" autocomplete="off"></p>
  </form>
  <div class="list-bar">
    <p id="summary" class="summary"></p>
    <div class="bar-buttons">
      <button type="button" id="approve-selected" class="button secondary bulk" aria-disabled="true" hidden>Approve selected (0)</button>
      <button type="button" id="show-new" class="button secondary is-idle">Show new</button>
    </div>
  </div>
  <h2 id="approvals-heading" class="visually-hidden" tabindex="-1">Pending approvals</h2>
  <ul id="approvals" class="approvals" aria-labelledby="approvals-heading"></ul>
  <p id="empty" class="empty" hidden>Nothing is waiting on you. New approvals appear here as they arrive.</p>
  <p id="no-match" class="empty" hidden>No pending approval matches these filters.</p>
  <p id="notice" class="notice" hidden></p>
  <section class="closed" aria-labelledby="closed-heading">
    <h2 id="closed-heading">Recently closed</h2>
    <p id="closed-none" class="closed-none">Nothing has left your queue since you opened this page.</p>
    <ul id="closed-list" class="closed-list"></ul>
  </section>
  <section id="accounts" class="closed" aria-labelledby="accounts-heading" hidden>
    <h2 id="accounts-heading">Connected accounts</h2>
    <p class="closed-none">To approve from here as yourself, an approval system asks you to connect once. Disconnect to take that back; your next Approve asks again.</p>
    <ul id="accounts-list" class="closed-list"></ul>
  </section>
</main>
<dialog id="comment-dialog" class="dialog" aria-labelledby="comment-heading" aria-describedby="comment-about">
  <form id="comment-form" method="dialog" novalidate>
    <h2 id="comment-heading">Send back</h2>
    <p id="comment-about" class="dialog-about"></p>
    <p class="field"><label id="comment-label" for="comment">Comment for the requester (required)</label>
      <textarea id="comment" rows="4" maxlength="2000" required aria-describedby="comment-hint comment-error"></textarea></p>
    <p id="comment-hint" class="hint">Say what to change; the requester sees this comment.</p>
    <p id="comment-error" class="error" hidden></p>
    <div class="dialog-buttons">
      <button type="submit" id="comment-submit" class="button">Send back</button>
      <button type="button" id="comment-cancel" class="button secondary">Cancel</button>
    </div>
  </form>
</dialog>
<dialog id="bulk-dialog" class="dialog" aria-labelledby="bulk-heading" aria-describedby="bulk-text">
  <h2 id="bulk-heading" tabindex="-1">Approve selected</h2>
  <p id="bulk-text" class="dialog-about"></p>
  <ul id="bulk-list" class="bulk-list"></ul>
  <div class="dialog-buttons">
    <button type="button" id="bulk-confirm" class="button">Approve</button>
    <button type="button" id="bulk-cancel" class="button secondary">Cancel</button>
  </div>
</dialog>`,
    '<script src="/inbox/app.js" defer></script>\n',
  );
}

/**
 * The answer to a GET of a good sign-in link: who it signs in, and a button that posts the link
 * back. Opening a link (a chat unfurler fetching it, a cross-site request) signs nobody in; the
 * person's own click on this page does, once.
 */
export function signInHtml(email: string, token: string): string {
  return htmlPage(
    'Sign in to your approvals',
    `<main class="message">
  <h1>Sign in to your approvals</h1>
  <p>You are signing in as <strong>${escapeHtml(email)}</strong>.</p>
  <form method="post" action="/inbox/login">
    <input type="hidden" name="token" value="${escapeHtml(token)}">
    <button type="submit" class="button">Continue</button>
  </form>
</main>`,
  );
}

/** A page with a button to the inbox (already signed in). */
export function openInboxHtml(title: string, text: string): string {
  return htmlPage(
    title,
    `<main class="message">\n  <h1>${escapeHtml(title)}</h1>\n  <p>${escapeHtml(text)}</p>\n  <p><a class="button" href="/inbox">Open your approvals</a></p>\n</main>`,
  );
}

/** A 401 page: why, and what to do. */
export function messageHtml(title: string, text: string): string {
  return htmlPage(title, `<main class="message">\n  <h1>${escapeHtml(title)}</h1>\n  <p>${escapeHtml(text)}</p>\n</main>`);
}

/**
 * One stylesheet for every inbox page. Text meets 4.5:1 and focus rings and field borders 3:1 in
 * both palettes (light, and dark under `prefers-color-scheme`); forced-colours mode keeps every
 * box and ring; nothing needs more than 320 px, even with WCAG 1.4.12 text spacing.
 */
export const INBOX_CSS = `:root {
  color-scheme: light dark;
  --bg: #f3f5f8; --card: #fff; --text: #1b2430; --muted: #4f5b6a; --line: #d5dce6; --field-line: #75818f;
  --accent: #0b62d6; --accent-hover: #084ca8; --accent-text: #fff; --focus: #0b62d6;
  --warn-bg: #fff4d6; --warn-text: #6e4300; --new: #15803d; --remind: #b45309; --badge-text: #fff;
  --closed-bg: #e9edf2; --offline: #c2410c; --idle: #75818f; --error: #b42318; --new-text: #166534;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f141b; --card: #18202b; --text: #e6ebf2; --muted: #a9b4c2; --line: #2e3a48; --field-line: #7d8a99;
    --accent: #6ea8ff; --accent-hover: #9cc4ff; --accent-text: #0b1420; --focus: #8cbcff;
    --warn-bg: #3a2a05; --warn-text: #ffd98a; --closed-bg: #141b24; --offline: #fb923c; --idle: #7d8a99;
    --error: #ff9b8f; --new-text: #86efac;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.visually-hidden {
  position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
.skip { position: absolute; left: 8px; top: -60px; padding: 8px 12px; background: var(--card); border-radius: 8px; z-index: 1; }
.skip:focus { top: 8px; }
.top {
  display: flex; flex-wrap: wrap; justify-content: space-between; align-items: flex-end; gap: 12px 16px;
  padding: 22px 32px 18px; background: var(--card); border-bottom: 1px solid var(--line);
}
.brand { margin: 0 0 2px; color: var(--muted); font-size: 13px; letter-spacing: .04em; text-transform: uppercase; }
h1 { margin: 0; font-size: 24px; font-weight: 650; }
h1:focus { outline: none; }
.count {
  display: inline-block; min-width: 1.8em; padding: 1px 8px; margin-left: 6px; border-radius: 999px;
  background: var(--accent); color: var(--accent-text); font-size: 15px; text-align: center; vertical-align: 3px;
}
.status { text-align: right; min-width: 0; }
.who { margin: 0 0 4px; color: var(--muted); overflow-wrap: anywhere; }
.who strong { color: var(--text); font-weight: 600; }
.live { margin: 0; font-size: 13px; color: var(--muted); }
.live::before { content: ""; display: inline-block; width: 8px; height: 8px; margin-right: 6px; border-radius: 50%; background: var(--idle); }
.live[data-state="live"]::before { background: var(--new); }
.live[data-state="offline"]::before { background: var(--offline); }
.status-row { display: flex; flex-wrap: wrap; justify-content: flex-end; align-items: center; gap: 4px 14px; }
.signout { margin: 0; }
.link-button { padding: 0; border: 0; background: none; color: var(--accent); font: inherit; font-size: 13px; cursor: pointer; text-decoration: underline; }
main { display: block; padding: 18px 32px 32px; }
.controls { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 10px 16px; margin: 0 0 8px; }
.control { display: flex; flex-direction: column; gap: 4px; margin: 0; min-width: 0; max-width: 100%; }
.control label { color: var(--muted); font-size: 13px; font-weight: 600; }
.control.check { flex-direction: row; align-items: center; gap: 8px; min-height: 38px; }
.control.check label { color: var(--text); font-size: 15px; font-weight: 400; }
.control.check input { width: 18px; height: 18px; margin: 0; accent-color: var(--accent); }
.control.search { flex: 1 1 12em; }
select, input[type="search"], input[type="email"] {
  min-width: 0; max-width: 100%; padding: 7px 10px; border: 1px solid var(--field-line); border-radius: 8px;
  background: var(--card); color: var(--text); font: inherit;
}
.control.search input { width: 100%; }
.list-bar { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center; gap: 8px 16px; min-height: 48px; margin: 0 0 8px; }
.summary { margin: 0; color: var(--muted); }
.approvals {
  display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 420px), 1fr)); gap: 18px; align-items: start;
  margin: 0; padding: 0; list-style: none;
}
.slot { min-width: 0; }
.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 12px 20px 18px;
  box-shadow: 0 1px 2px rgba(16, 24, 40, .05);
  container: card / inline-size;
}
.card.is-new { border-color: var(--new); box-shadow: 0 0 0 2px var(--new); }
.card.is-reminded { border-color: var(--remind); box-shadow: 0 0 0 2px var(--remind); }
.tags { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 8px; min-height: 24px; margin: 0 0 4px; font-size: 12px; }
.source { color: var(--muted); font-weight: 600; letter-spacing: .04em; text-transform: uppercase; }
.badge { padding: 1px 8px; border-radius: 999px; color: var(--badge-text); font-weight: 600; }
.badge.new { background: var(--new); }
.badge.reminder { background: var(--remind); }
.badge.is-faded { visibility: hidden; }
.card-head { display: flex; justify-content: space-between; gap: 12px; align-items: baseline; }
.title { flex: 1 1 auto; min-width: 0; margin: 0; font-size: 17px; font-weight: 650; overflow-wrap: anywhere; }
.amount { margin: 0; font-size: 18px; font-weight: 650; white-space: nowrap; font-variant-numeric: tabular-nums; }
.meta { margin: 4px 0 10px; color: var(--muted); }
.meta > span { display: inline-block; }
.meta > span + span::before { content: "·"; margin: 0 8px; }
.flags { display: flex; flex-wrap: wrap; gap: 6px; list-style: none; margin: 0 0 10px; padding: 0; }
.flag { padding: 2px 9px; border-radius: 6px; background: var(--warn-bg); color: var(--warn-text); font-size: 13px; font-weight: 600; }
.fields { display: grid; grid-template-columns: fit-content(40%) minmax(0, 1fr); gap: 2px 12px; margin: 0 0 10px; font-size: 14px; }
.fields dt { color: var(--muted); overflow-wrap: anywhere; }
.fields dd { margin: 0; overflow-wrap: anywhere; }
.lines { list-style: none; margin: 0 0 14px; padding: 0; border-top: 1px solid var(--line); font-size: 14px; }
.lines li {
  display: grid; grid-template-columns: minmax(0, 1fr) auto; grid-template-areas: "label amount" "flags flags";
  column-gap: 12px; align-items: baseline; padding: 7px 0; border-bottom: 1px solid var(--line);
}
.line-label { grid-area: label; min-width: 0; overflow-wrap: anywhere; }
.line-amount { grid-area: amount; text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.line-flags { grid-area: flags; display: flex; flex-wrap: wrap; gap: 4px 6px; min-width: 0; margin-top: 4px; }
.line-flag { padding: 0 6px; border-radius: 5px; background: var(--warn-bg); color: var(--warn-text); font-size: 12px; font-weight: 600; }
/* A wide card has room for the flags between the description and the amount; the description keeps 12em. */
@container card (min-width: 460px) {
  .lines li { grid-template-columns: minmax(12em, 1fr) auto auto; grid-template-areas: "label flags amount"; }
  .line-flags { justify-content: flex-end; margin-top: 0; }
}
.actions { display: flex; flex-wrap: wrap; gap: 10px; }
.button {
  display: inline-block; padding: 9px 16px; border: 1px solid transparent; border-radius: 8px;
  background: var(--accent); color: var(--accent-text); font: inherit; font-weight: 600; text-decoration: none; cursor: pointer;
}
.button:hover { background: var(--accent-hover); }
.button.secondary { padding: 6px 14px; background: var(--card); color: var(--accent); border-color: var(--accent); }
.button.secondary:hover { background: var(--bg); }
.button.is-idle { visibility: hidden; }
.button[aria-disabled="true"] { background: var(--card); color: var(--muted); border-color: var(--line); cursor: default; }
.bar-buttons { display: flex; flex-wrap: wrap; gap: 8px 10px; margin-left: auto; }
/* Wide enough for "Approve selected (50)": the count changing never moves what is beside it. */
.button.bulk { min-width: 13.5em; }
.pick { display: inline-flex; align-items: center; gap: 8px; min-height: 38px; margin-left: auto; cursor: pointer; }
.pick input { width: 18px; height: 18px; margin: 0; accent-color: var(--accent); }
.act-note { margin: 10px 0 0; padding: 8px 12px; border-radius: 8px; background: var(--closed-bg); overflow-wrap: anywhere; }
.act-note.is-refused { background: var(--warn-bg); color: var(--warn-text); }
.act-note a { color: inherit; font-weight: 600; }
.card[aria-busy="true"] .actions .button { cursor: progress; }
.tombstone-note, .closed-note { color: var(--muted); }
.tombstone .tombstone-note { margin-top: 6px; }
.closed-note { display: block; }
.dialog {
  width: min(34rem, calc(100vw - 24px)); padding: 20px 24px; border: 1px solid var(--line); border-radius: 12px;
  background: var(--card); color: var(--text);
}
.dialog::backdrop { background: rgba(15, 20, 27, .6); }
.dialog h2 { margin: 0 0 6px; font-size: 19px; }
.dialog h2:focus { outline: none; }
.dialog-about { margin: 0 0 12px; overflow-wrap: anywhere; }
.dialog textarea {
  width: 100%; min-height: 6em; padding: 7px 10px; border: 1px solid var(--field-line); border-radius: 8px;
  background: var(--card); color: var(--text); font: inherit; resize: vertical;
}
.dialog textarea[aria-invalid="true"] { border-color: var(--error); }
.hint { margin: 0; color: var(--muted); font-size: 14px; }
.error { margin: 6px 0 0; color: var(--error); font-weight: 600; }
.dialog-buttons { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 16px; }
.bulk-list { margin: 0; padding: 0; list-style: none; border-top: 1px solid var(--line); }
.bulk-list li { padding: 6px 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
.bulk-list .result { display: block; color: var(--muted); }
.bulk-list .result.is-done { color: var(--new-text); }
.bulk-list .result.is-refused { color: var(--warn-text); }
.tombstone { display: flex; align-items: flex-start; height: 100%; padding: 16px 20px; border: 1px dashed var(--field-line); border-radius: 12px; background: var(--closed-bg); }
.tombstone p { margin: 0; overflow-wrap: anywhere; }
.slot.is-closed { display: flex; flex-direction: column; }
.slot.is-closed .tombstone { flex: 1 1 auto; }
.empty { margin: 40px 0; text-align: center; color: var(--muted); font-size: 16px; }
.notice { margin: 16px 0; padding: 12px 16px; border: 1px solid var(--line); border-radius: 8px; background: var(--card); }
.closed { margin-top: 32px; padding-top: 8px; border-top: 1px solid var(--line); }
.closed h2 { margin: 8px 0; font-size: 17px; }
.closed-none { margin: 0; color: var(--muted); }
.closed-list { margin: 0; padding: 0; list-style: none; }
.closed-list li { padding: 6px 0; border-bottom: 1px solid var(--line); overflow-wrap: anywhere; }
.closed-list .when { color: var(--muted); }
.message { max-width: 560px; margin: 12vh auto; padding: 28px 32px; background: var(--card); border: 1px solid var(--line); border-radius: 12px; }
.message h1 { margin-bottom: 10px; }
.request { margin: 20px 0 0; padding-top: 16px; border-top: 1px solid var(--line); }
.field { display: flex; flex-direction: column; gap: 4px; margin: 0 0 12px; }
.field label { font-weight: 600; }
@media (max-width: 640px) {
  .top { flex-direction: column; align-items: stretch; padding: 16px; }
  .status { text-align: left; }
  .status-row { justify-content: space-between; }
  main { padding: 14px 12px 24px; }
  .card { padding: 10px 14px 14px; }
  .message { margin: 24px 12px; padding: 20px; }
}
@media (forced-colors: active) {
  .card, .tombstone, .badge, .flag, .line-flag, .count, .button, select, input, textarea, .dialog, .act-note { border: 1px solid CanvasText; }
  .button { border-color: ButtonText; }
  .card.is-new, .card.is-reminded { outline: 2px solid Highlight; }
  .live::before { forced-color-adjust: none; }
}
`;

/**
 * The page's script. It opens the event stream first and (re)loads the list on every connect,
 * holding events that arrive during a load and replaying them after it, so nothing slips between
 * the snapshot and the stream; a reload after a reconnect is applied as changes, not a redraw.
 *
 * Live changes touch only their own card: an arrival goes at the end of the list when that is
 * where the sort puts it, else behind the "Show new" button; a closed card leaves a note of the
 * same height in its place; a changed card is redrawn in place and never shrinks; badges fade
 * without giving up their space. Focus stays where it was, or moves to the next card when its
 * card closes. Only the approver's own actions (sort, filter, search, the "Show 2 new, remove 3
 * closed" button) redraw the list.
 *
 * Act buttons (Approve, Send back) post the card's token to the act API as JSON; Send back asks
 * for the comment in a modal dialog first, "Approve with comment…" asks in the same dialog for an
 * optional one (empty approves without), and "Approve selected" confirms in one, then lists a
 * result per report there. An answer is said through the live region and, unless the card is
 * closing, shown on the card until the approver acts on it again; a card that was acted on
 * closes when the outbox's close arrives, like any other.
 */
export const INBOX_JS = `'use strict';
(function () {
  var API = '/inbox/api/approvals';
  var ACT = '/inbox/api/act';
  var ACT_BULK = '/inbox/api/act-bulk';
  /** The most the act API takes in one bulk request (BULK_MAX in inbox-routes.ts); more selected are sent in turns. */
  var BULK_MAX = 50;
  var EVENTS = '/inbox/api/events';
  var NEW_FOR_MS = 15000;
  var CLOSED_KEPT = 20;
  var byId = function (id) { return document.getElementById(id); };
  var list = byId('approvals'), count = byId('count'), who = byId('who'), live = byId('live'), announcer = byId('announcer');
  var main = byId('main'), empty = byId('empty'), noMatch = byId('no-match'), notice = byId('notice'), summary = byId('summary');
  var showNew = byId('show-new'), sortBox = byId('sort'), sourceBox = byId('source'), flaggedBox = byId('flagged'), searchBox = byId('search');
  var closedList = byId('closed-list'), closedNone = byId('closed-none'), bulkButton = byId('approve-selected');
  var commentDialog = byId('comment-dialog'), commentForm = byId('comment-form'), commentBox = byId('comment'), commentError = byId('comment-error');
  var bulkDialog = byId('bulk-dialog'), bulkHeading = byId('bulk-heading'), bulkText = byId('bulk-text'), bulkList = byId('bulk-list');
  var bulkConfirm = byId('bulk-confirm'), bulkCancel = byId('bulk-cancel');
  /** The comment hint the page was served with: Send back's. */
  var HINT = byId('comment-hint').textContent;
  /** Every pending approval, shown or not, by key. */
  var items = new Map();
  /** The list's slot of each approval it shows. */
  var slots = new Map();
  var fresh = new Set(), reminded = new Set(), held = new Set();
  var pending = null, loads = 0, loaded = false, ended = false, lost = false, ids = 0;
  var view = { sort: stored('sort') || 'oldest', source: '', flagged: false, q: '' };
  var said = [], sayTimer = 0;
  /** Cards the approver ticked for "Approve selected"; cards with an action on its way; each card's last answer. */
  var selected = new Set(), acting = new Set(), answers = new Map();
  /** The card whose comment the dialog asks for: { key, action, opener }. */
  var asking = null;
  /** The reports of the open bulk dialog, and whether their approval was started. */
  var bulk = null;

  var OUTCOMES = {
    approved: ['Approved', 'was approved and left your queue.'],
    rejected: ['Rejected', 'was rejected and left your queue.'],
    sent_back: ['Sent back', 'was sent back to the requester.'],
    recalled: ['Recalled', 'was recalled by the requester.'],
    no_longer_required: ['No longer needed', 'no longer needs your approval.'],
    expired: ['Expired', 'expired and left your queue.'],
    reassigned: ['Reassigned', 'was reassigned to another approver.']
  };
  var LEFT = ['Closed', 'left your queue.'];

  function stored(name) {
    try { return window.localStorage.getItem('approvals-hub.' + name); } catch (err) { return null; }
  }
  function store(name, value) {
    try { window.localStorage.setItem('approvals-hub.' + name, value); } catch (err) { /* private mode */ }
  }

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function hiddenText(text) { return el('span', 'visually-hidden', text); }

  function money(m) {
    if (!m) return '';
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: m.currency }).format(Number(m.value));
    } catch (err) {
      return m.currency + ' ' + m.value;
    }
  }
  function day(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? '' : d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
  }
  function clock(date) { return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }); }
  function since(item) { return item.submittedAt || item.queuedAt || ''; }
  function time(iso) { var t = Date.parse(iso); return isNaN(t) ? 0 : t; }
  /** "3 days ago", from the report's submission (else from when it reached the queue). */
  function age(item) {
    var t = time(since(item));
    if (!t) return '';
    var minutes = Math.max(0, Math.round((Date.now() - t) / 60000));
    var rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
    if (minutes < 60) return rtf.format(-minutes, 'minute');
    if (minutes < 48 * 60) return rtf.format(-Math.round(minutes / 60), 'hour');
    return rtf.format(-Math.round(minutes / 1440), 'day');
  }
  function webUrl(url) {
    try {
      var p = new URL(url).protocol;
      return p === 'https:' || p === 'http:' ? url : null;
    } catch (err) {
      return null;
    }
  }
  function isFlagged(item) {
    return item.flags.length > 0 || item.lineItems.some(function (l) { return l.flags && l.flags.length > 0; });
  }
  function matches(item) {
    if (view.source && item.source !== view.source) return false;
    if (view.flagged && !isFlagged(item)) return false;
    if (view.q && (item.title + ' ' + item.requester).toLocaleLowerCase().indexOf(view.q) < 0) return false;
    return true;
  }
  function compare(a, b) {
    if (view.sort === 'amount') {
      var x = a.amount ? Number(a.amount.value) : -Infinity, y = b.amount ? Number(b.amount.value) : -Infinity;
      if (x !== y) return y > x ? 1 : -1;
    } else {
      // Ties (sources that give a date only) go by arrival in the queue, so an arrival sorts after its peers.
      var d = time(since(a)) - time(since(b)) || time(a.queuedAt || '') - time(b.queuedAt || '');
      if (d) return view.sort === 'newest' ? -d : d;
    }
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  }

  function card(item) {
    var a = el('article', 'card');
    var titleId = 'card-title-' + ++ids;
    a.dataset.key = item.key;
    a.dataset.revision = String(item.revision);
    a.tabIndex = -1;
    a.setAttribute('aria-labelledby', titleId);
    var tags = el('p', 'tags');
    if (item.source) tags.append(el('span', 'source', item.source));
    var badge = el('span', 'badge new', 'New');
    if (fresh.has(item.key)) a.classList.add('is-new');
    else badge.classList.add('is-faded');
    var reminder = el('span', 'badge reminder', 'Reminder');
    reminder.hidden = !reminded.has(item.key);
    if (reminded.has(item.key)) a.classList.add('is-reminded');
    tags.append(badge, reminder);
    a.append(tags);
    var head = el('div', 'card-head');
    var title = el('h3', 'title', item.title);
    title.id = titleId;
    head.append(title);
    if (item.amount) {
      var amount = el('p', 'amount');
      amount.append(hiddenText('Total: '), money(item.amount));
      head.append(amount);
    }
    a.append(head);
    var meta = el('p', 'meta');
    meta.append(el('span', 'requester', item.requester || 'Unknown requester'));
    if (item.submittedAt) meta.append(el('span', 'submitted', 'submitted ' + day(item.submittedAt)));
    if (item.onBehalfOf) meta.append(el('span', 'behalf', item.onBehalfOf));
    var ageText = age(item);
    if (ageText) {
      var ageEl = el('span', 'age', ageText);
      ageEl.dataset.since = since(item);
      meta.append(ageEl);
    }
    a.append(meta);
    if (item.flags.length) {
      var flags = el('ul', 'flags');
      flags.setAttribute('aria-label', 'Warnings');
      item.flags.forEach(function (f) { flags.append(el('li', 'flag', f)); });
      a.append(flags);
    }
    if (item.fields.length) {
      var dl = el('dl', 'fields');
      item.fields.forEach(function (f) { dl.append(el('dt', null, f.label), el('dd', null, f.value)); });
      a.append(dl);
    }
    if (item.lineItems.length) {
      var lines = el('ul', 'lines');
      lines.setAttribute('aria-label', 'Line items');
      item.lineItems.forEach(function (l) {
        var li = el('li', 'line');
        var amountEl = el('span', 'line-amount');
        amountEl.append(hiddenText(', amount '), money(l.amount));
        li.append(el('span', 'line-label', l.label), amountEl);
        if (l.flags && l.flags.length) {
          var lf = el('span', 'line-flags');
          lf.append(hiddenText(', warnings: '));
          l.flags.forEach(function (f, i) {
            if (i) lf.append(hiddenText(', '));
            lf.append(el('span', 'line-flag', f));
          });
          li.append(lf);
        }
        lines.append(li);
      });
      a.append(lines);
    }
    var actions = el('div', 'actions');
    item.links.forEach(function (l) {
      var url = webUrl(l.url);
      if (!url) return;
      var b = el('a', 'button', l.label);
      // Named after its report, starting with what it shows (WCAG 2.5.3: a voice user says what they see).
      b.setAttribute('aria-label', l.label + ': ' + item.title + ' (opens in a new tab)');
      b.href = url;
      b.target = '_blank';
      b.rel = 'noopener noreferrer';
      actions.append(b);
    });
    var acts = item.actions || [];
    acts.forEach(function (act) {
      actions.append(actButton(item, act, act.action === 'approve' ? 'button' : 'button secondary', act.label, false));
      // Approve also comes with an optional comment, asked for in the same dialog as Send back's.
      if (act.action === 'approve') actions.append(actButton(item, act, 'button secondary', act.label + ' with comment…', true));
    });
    if (approveOf(item)) {
      var pick = el('label', 'pick');
      var box = el('input');
      var pickText = el('span', null, 'Select');
      pickText.id = 'pick-' + ids;
      box.type = 'checkbox';
      box.checked = selected.has(item.key);
      // Named "Select <title>": the word a voice user sees, then which report.
      box.setAttribute('aria-labelledby', pickText.id + ' ' + titleId);
      box.addEventListener('change', function () {
        if (box.checked) selected.add(item.key);
        else selected.delete(item.key);
        updateBulk();
      });
      pick.append(box, pickText);
      actions.append(pick);
    }
    if (acting.has(item.key)) a.setAttribute('aria-busy', 'true');
    if (actions.childElementCount) a.append(actions);
    var answer = answers.get(item.key);
    if (answer) a.append(answerNote(answer));
    return a;
  }

  /** An act button; with withComment it asks for an optional comment in the dialog before acting. */
  function actButton(item, act, className, label, withComment) {
    var b = el('button', className, label);
    b.type = 'button';
    b.dataset.act = act.action;
    if (withComment) b.dataset.comment = 'optional';
    // Named after its report, starting with the words it shows (the ellipsis is not spoken).
    b.setAttribute('aria-label', label.replace(/…$/, '') + ': ' + item.title);
    if (acting.has(item.key)) b.setAttribute('aria-disabled', 'true');
    b.addEventListener('click', function () { press(item.key, act.action, b, withComment); });
    return b;
  }

  function approveOf(item) {
    return item && (item.actions || []).filter(function (x) { return x.action === 'approve'; })[0];
  }

  /** A card's last answer: the message, and the link to connect the account when the source asks for consent. */
  function answerNote(answer) {
    var p = el('p', answer.refused ? 'act-note is-refused' : 'act-note', answer.text);
    var url = answer.url && webUrl(answer.url);
    if (url) {
      var link = el('a', null, 'Connect your account');
      link.href = url;
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
      p.append(' ', link);
    }
    return p;
  }

  /** Exact, not rounded as offsetHeight is: a slot kept at a rounded height moves the row after it by a pixel. */
  function height(li) { return li.getBoundingClientRect().height; }

  function slot(item) {
    var li = el('li', 'slot');
    li.dataset.key = item.key;
    li.append(card(item));
    slots.set(item.key, li);
    return li;
  }

  /** The focusable things of a slot, in order: its links, else the card itself. */
  function focusables(li) {
    var links = Array.prototype.slice.call(li.querySelectorAll('a[href], button, input'));
    var article = li.querySelector('article');
    return links.length ? links : article ? [article] : [];
  }
  function focusIndex(li) {
    var active = document.activeElement;
    if (!active || !li.contains(active)) return -1;
    var all = focusables(li);
    var i = all.indexOf(active);
    return i < 0 ? 0 : i;
  }
  function focusSlot(li, index) {
    var all = focusables(li);
    var target = all[Math.min(index, all.length - 1)];
    if (target) target.focus();
  }
  /** After the focused card closed: the next open card, else the one before, else the page heading. */
  function focusNeighbour(li) {
    for (var n = li.nextElementSibling; n; n = n.nextElementSibling) if (!n.classList.contains('is-closed')) return focusSlot(n, 0);
    for (var p = li.previousElementSibling; p; p = p.previousElementSibling) if (!p.classList.contains('is-closed')) return focusSlot(p, 0);
    byId('page-heading').focus();
  }

  function say(text) {
    said.push(text);
    clearTimeout(sayTimer);
    // Changes that come together are said together, once.
    sayTimer = setTimeout(function () {
      var message = said.join(' ');
      said = [];
      announcer.textContent = '';
      setTimeout(function () { announcer.textContent = message; }, 50);
    }, 400);
  }

  function filtering() { return Boolean(view.source || view.flagged || view.q); }

  function refresh() {
    var total = items.size;
    count.textContent = String(total);
    summary.textContent = filtering() ? slots.size + ' of ' + total + ' shown' : total === 1 ? '1 approval' : total + ' approvals';
    empty.hidden = !loaded || total > 0;
    noMatch.hidden = total === 0 || slots.size > 0 || held.size > 0;
    // One button for what live updates left for the approver to take in: arrivals held back, closed cards' notes.
    var closed = list.querySelectorAll('li.slot.is-closed').length;
    var parts = [];
    if (held.size) parts.push('show ' + held.size + ' new');
    if (closed) parts.push('remove ' + closed + ' closed');
    var label = parts.join(', ');
    showNew.textContent = label.charAt(0).toUpperCase() + label.slice(1);
    showNew.classList.toggle('is-idle', parts.length === 0);
    showNew.disabled = parts.length === 0;
    updateBulk();
    sources();
    document.title = (total ? '(' + total + ') ' : '') + 'Approvals waiting on you';
  }

  /** The source filter's options, each with its count. */
  function sources() {
    var counts = new Map();
    items.forEach(function (item) { if (item.source) counts.set(item.source, (counts.get(item.source) || 0) + 1); });
    if (view.source && !counts.has(view.source)) counts.set(view.source, 0);
    var names = Array.from(counts.keys()).sort();
    var options = [['', 'All sources (' + items.size + ')']].concat(names.map(function (n) { return [n, n + ' (' + counts.get(n) + ')']; }));
    var same = sourceBox.options.length === options.length && options.every(function (o, i) {
      return sourceBox.options[i].value === o[0] && sourceBox.options[i].textContent === o[1];
    });
    if (same) return;
    sourceBox.replaceChildren.apply(sourceBox, options.map(function (o) {
      var option = el('option', null, o[1]);
      option.value = o[0];
      return option;
    }));
    sourceBox.value = view.source;
  }

  /** Redraws the list for the approver's own change of view; keeps focus on the same card if it is still shown. */
  function rebuild() {
    var focusedKey = null, index = -1;
    slots.forEach(function (li, key) { var i = focusIndex(li); if (i >= 0) { focusedKey = key; index = i; } });
    held.clear();
    slots.clear();
    var shown = Array.from(items.values()).filter(matches).sort(compare);
    list.replaceChildren.apply(list, shown.map(slot));
    // Only what the approver sees stays selected: nothing hidden by a filter is approved with the rest.
    selected.forEach(function (key) { if (!slots.has(key)) selected.delete(key); });
    if (focusedKey && slots.has(focusedKey)) focusSlot(slots.get(focusedKey), index);
    refresh();
  }

  /** The last open card the list shows. */
  function lastShown() {
    for (var li = list.lastElementChild; li; li = li.previousElementSibling) {
      if (!li.classList.contains('is-closed') && items.has(li.dataset.key)) return items.get(li.dataset.key);
    }
    return null;
  }

  /** An arrival: at the end if the sort puts it there, else held for "Show new"; nothing else moves. */
  function place(item) {
    if (!matches(item)) return false;
    var last = lastShown();
    if (!last || compare(last, item) <= 0) {
      list.append(slot(item));
      return true;
    }
    held.add(item.key);
    return false;
  }

  function markFresh(key) {
    fresh.add(key);
    setTimeout(function () {
      fresh.delete(key);
      var li = slots.get(key);
      if (!li) return;
      li.querySelector('article').classList.remove('is-new');
      li.querySelector('.badge.new').classList.add('is-faded');
    }, NEW_FOR_MS);
  }

  function upsert(item) {
    var had = items.get(item.key);
    if (had && had.revision > item.revision) return;
    items.set(item.key, item);
    if (had) {
      if (!slots.has(item.key)) {
        if (!held.has(item.key)) place(item);
        return;
      }
      redraw(item.key);
      return;
    }
    markFresh(item.key);
    var shown = place(item);
    var amount = item.amount ? ', ' + money(item.amount) : '';
    var from = item.requester ? ', from ' + item.requester : '';
    var where = shown ? '' : held.has(item.key) ? ' Use Show new to list it.' : ' It is hidden by your filters.';
    say('New approval: ' + item.title + from + amount + '.' + where);
  }

  /** Draws a shown card again in place, keeping focus on the same control. */
  function redraw(key) {
    var li = slots.get(key), item = items.get(key);
    if (!li || !item) return;
    var index = focusIndex(li), before = height(li);
    li.replaceChildren(card(item));
    // A card that got shorter keeps its height, so the cards after it stay where they are.
    if (height(li) < before) li.style.minHeight = before + 'px';
    if (index >= 0) focusSlot(li, index);
  }

  function remember(entry) {
    var li = el('li');
    li.append(el('strong', null, entry.label), ' ' + entry.title + ' ');
    li.append(el('span', 'when', '(' + [entry.source, entry.at].filter(Boolean).join(', ') + ')'));
    if (entry.note) li.append(el('span', 'closed-note', entry.note));
    closedList.prepend(li);
    while (closedList.childElementCount > CLOSED_KEPT) closedList.lastElementChild.remove();
    closedNone.hidden = true;
  }

  function close(key, title, outcome, note) {
    var item = items.get(key);
    if (!item) return;
    items.delete(key);
    held.delete(key);
    fresh.delete(key);
    reminded.delete(key);
    selected.delete(key);
    answers.delete(key);
    var words = OUTCOMES[outcome] || LEFT;
    var li = slots.get(key);
    if (li) {
      var focused = focusIndex(li) >= 0;
      li.style.minHeight = height(li) + 'px';
      li.classList.add('is-closed');
      var tombstone = el('div', 'tombstone');
      tombstone.append(el('p', null, '“' + title + '” ' + words[1]));
      if (note) tombstone.append(el('p', 'tombstone-note', note));
      li.replaceChildren(tombstone);
      slots.delete(key);
      if (focused) focusNeighbour(li);
    }
    remember({ label: words[0], title: title, source: item.source, at: clock(new Date()), note: note });
    say('“' + title + '” ' + words[1]);
  }

  function remind(key) {
    if (!items.has(key)) return;
    reminded.add(key);
    var item = items.get(key);
    var li = slots.get(key);
    if (li) {
      li.querySelector('article').classList.add('is-reminded');
      li.querySelector('.badge.reminder').hidden = false;
    }
    say('Reminder: ' + item.title + ' is still waiting on you.');
  }

  function apply(ev) {
    if (ev.type === 'approval') upsert(ev.item);
    else if (ev.type === 'reminder') remind(ev.key);
    else if (ev.type === 'closed') close(ev.key, ev.title, ev.outcome, ev.note);
  }

  function receive(ev) {
    if (pending) return void pending.push(ev);
    apply(ev);
    refresh();
  }

  function setLive(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  function signedOut() {
    ended = true;
    if (commentDialog.open) commentDialog.close();
    if (bulkDialog.open) bulkDialog.close();
    selected.clear();
    setLive('offline', 'Signed out');
    items = new Map();
    slots.clear();
    held.clear();
    list.replaceChildren();
    loaded = false;
    refresh();
    count.textContent = '';
    summary.textContent = '';
    notice.replaceChildren('Your session has ended. ', Object.assign(el('a', null, 'Sign in again'), { href: '/inbox' }), ' to see your approvals.');
    notice.hidden = false;
    say('Your session has ended. Sign in again to see your approvals.');
  }

  /** A fresh list from the queue: drawn whole the first time, applied as changes after a reconnect. */
  function sync(approvals) {
    if (!loaded) {
      approvals.forEach(function (i) { items.set(i.key, i); });
      loaded = true;
      rebuild();
      main.setAttribute('aria-busy', 'false');
      return;
    }
    var next = new Map(approvals.map(function (i) { return [i.key, i]; }));
    Array.from(items.values()).forEach(function (item) { if (!next.has(item.key)) close(item.key, item.title, null, null); });
    next.forEach(upsert);
  }

  function load() {
    var mine = ++loads;
    if (!pending) pending = [];
    fetch(API, { credentials: 'same-origin', cache: 'no-store', headers: { accept: 'application/json' } })
      .then(function (r) {
        if (r.status === 401) return null;
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (body) {
        if (mine !== loads) return;
        if (!body) return signedOut();
        who.textContent = body.email;
        var replay = pending;
        pending = null;
        sync(body.approvals);
        replay.forEach(apply);
        refresh();
        accounts();
        if (lost) {
          lost = false;
          say('Reconnected. Your list is up to date.');
        }
      })
      .catch(function () {
        if (mine !== loads) return;
        pending = null;
        say('Could not load your approvals; retrying.');
        setTimeout(load, 5000);
      });
  }

  /** The approver's connections for actions, each with its own Disconnect. */
  function accounts() {
    var section = byId('accounts'), accountList = byId('accounts-list');
    fetch('/inbox/api/connections', { credentials: 'same-origin', cache: 'no-store', headers: { accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) return;
        accountList.replaceChildren.apply(accountList, body.connections.map(function (c) {
          var li = el('li');
          var button = el('button', 'link-button', 'Disconnect');
          button.type = 'button';
          button.setAttribute('aria-label', 'Disconnect ' + c.source);
          button.addEventListener('click', function () {
            button.disabled = true;
            post('/inbox/api/disconnect', { source: c.source })
              .then(function (answer) {
                if (!answer) return;
                say('Disconnected from ' + c.source + '. Your next Approve there asks you to connect again.');
                accounts();
              })
              .catch(function () {
                button.disabled = false;
                say('Could not disconnect just now; try again.');
              });
          });
          li.append(el('strong', null, c.source), ' connected ' + day(c.connectedAt) + ' ', button);
          return li;
        }));
        section.hidden = body.connections.length === 0;
      })
      .catch(function () {});
  }

  function connect() {
    var es = new EventSource(EVENTS);
    es.addEventListener('open', function () {
      setLive('live', 'Live');
      load();
    });
    es.addEventListener('approval', function (e) { receive({ type: 'approval', item: JSON.parse(e.data) }); });
    es.addEventListener('reminder', function (e) { receive({ type: 'reminder', key: JSON.parse(e.data).key }); });
    es.addEventListener('closed', function (e) {
      var d = JSON.parse(e.data);
      receive({ type: 'closed', key: d.key, title: d.title, outcome: d.outcome, note: d.note || null });
    });
    es.addEventListener('error', function () {
      if (!lost && !ended && loaded) {
        lost = true;
        say('Connection lost. Reconnecting; new approvals will show when it is back.');
      }
      if (es.readyState !== EventSource.CLOSED) return setLive('connecting', 'Reconnecting…');
      es.close();
      if (ended) return;
      setLive('offline', 'Offline');
      fetch(API, { credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) { if (r.status === 401) signedOut(); })
        .catch(function () {})
        .then(function () { if (!ended) setTimeout(connect, 5000); });
    });
  }

  /** POSTs JSON to the act API (same origin, JSON: what the API requires against cross-site posts); null when signed out. */
  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body)
    }).then(function (r) {
      if (r.status === 401) {
        signedOut();
        return null;
      }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    });
  }

  function setActing(key, on) {
    if (on) acting.add(key);
    else acting.delete(key);
    var li = slots.get(key);
    if (!li) return;
    var article = li.querySelector('article');
    if (on) article.setAttribute('aria-busy', 'true');
    else article.removeAttribute('aria-busy');
    li.querySelectorAll('button[data-act]').forEach(function (b) {
      if (on) b.setAttribute('aria-disabled', 'true');
      else b.removeAttribute('aria-disabled');
    });
  }

  /**
   * An act button pressed: approve at once; "Approve with comment…" asks for an optional comment
   * first, and any other action (send back) for a required one.
   */
  function press(key, action, button, withComment) {
    var item = items.get(key);
    if (!item || acting.has(key)) return;
    var act = item.actions.filter(function (x) { return x.action === action; })[0];
    if (!act) return;
    if (action === 'approve' && !withComment) return run(item, act, undefined);
    askComment(item, act, button, action === 'approve');
  }

  function run(item, act, comment) {
    var key = item.key, title = item.title;
    answers.delete(key);
    setActing(key, true);
    post(ACT, { token: act.token, comment: comment })
      .then(function (result) {
        setActing(key, false);
        if (result) answer(key, title, result);
      })
      .catch(function () {
        setActing(key, false);
        answer(key, title, { outcome: 'refused', message: 'The inbox could not be reached; try again.' });
      });
  }

  /** What an action came to: said, and shown on its card (a card acted on closes when its close arrives). */
  function answer(key, title, result) {
    var text = result.message || '';
    var refused = result.outcome !== 'done';
    answers.set(key, { text: text, refused: refused, url: result.outcome === 'consent_needed' ? result.url : null });
    if (items.has(key)) redraw(key);
    else answers.delete(key);
    var more = result.outcome === 'consent_needed' ? ' Use Connect your account on its card, then press the button again.' : '';
    say('“' + title + '”: ' + text + more);
  }

  /**
   * Send back, or Approve with comment: the modal dialog asks for the comment (required, or
   * optional); focus stays in it until it closes, then returns to the button.
   */
  function askComment(item, act, opener, optional) {
    asking = { key: item.key, action: act.action, opener: opener, optional: optional };
    byId('comment-heading').textContent = optional ? act.label + ' with comment' : act.label;
    byId('comment-submit').textContent = act.label;
    byId('comment-about').textContent = item.title + (item.requester ? ', from ' + item.requester : '');
    byId('comment-label').textContent = 'Comment for the requester (' + (optional ? 'optional' : 'required') + ')';
    byId('comment-hint').textContent = optional ? 'Leave it empty to approve without a comment; the requester sees any comment.' : HINT;
    commentBox.required = !optional;
    commentBox.value = '';
    commentBox.removeAttribute('aria-invalid');
    commentError.hidden = true;
    commentError.textContent = '';
    commentDialog.showModal();
    commentBox.focus();
  }

  commentForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var text = commentBox.value.trim();
    if (!text && !(asking && asking.optional)) {
      commentError.textContent = 'Enter a comment: the requester needs to know what to change.';
      commentError.hidden = false;
      commentBox.setAttribute('aria-invalid', 'true');
      commentBox.focus();
      return;
    }
    var ask = asking;
    commentDialog.close();
    var item = ask && items.get(ask.key);
    var act = item && item.actions.filter(function (x) { return x.action === ask.action; })[0];
    if (!act) return say('That approval no longer waits on you; nothing was sent.');
    run(item, act, text || undefined);
  });
  byId('comment-cancel').addEventListener('click', function () { commentDialog.close(); });
  commentDialog.addEventListener('close', function () {
    var ask = asking;
    asking = null;
    if (!ask) return;
    if (ask.opener.isConnected) return ask.opener.focus();
    // Its card was redrawn meanwhile: the same button of the new drawing, else the next card.
    var li = slots.get(ask.key);
    var again = li && Array.prototype.filter.call(li.querySelectorAll('button[data-act]'), function (b) {
      return b.dataset.act === ask.action && (b.dataset.comment === 'optional') === Boolean(ask.optional);
    })[0];
    if (again) again.focus();
    else byId('approvals-heading').focus();
  });

  /** The "Approve selected (N)" button: shown once any card can be approved here, then always (no layout shift). */
  function updateBulk() {
    var any = false;
    slots.forEach(function (li, key) { if (approveOf(items.get(key))) any = true; });
    selected.forEach(function (key) { if (!slots.has(key) || !approveOf(items.get(key))) selected.delete(key); });
    if (any) bulkButton.hidden = false;
    bulkButton.textContent = 'Approve selected (' + selected.size + ')';
    bulkButton.setAttribute('aria-disabled', selected.size ? 'false' : 'true');
  }

  function plural(n) { return n === 1 ? '1 report' : n + ' reports'; }

  bulkButton.addEventListener('click', function () {
    if (!selected.size) return say('Nothing is selected: tick Select on the cards to approve first.');
    var chosen = Array.prototype.map.call(list.children, function (li) { return li.dataset.key; })
      .filter(function (key) { return selected.has(key) && items.has(key); })
      .map(function (key) { return items.get(key); });
    bulk = { items: chosen, started: false, rows: new Map() };
    bulkHeading.textContent = 'Approve ' + plural(chosen.length) + '?';
    bulkText.textContent = 'Each is approved in your name, as if you pressed its Approve button.';
    bulkList.replaceChildren.apply(bulkList, chosen.map(function (item) {
      var li = el('li');
      var result = el('span', 'result');
      li.append(el('strong', null, item.title), ' ' + [item.requester, money(item.amount)].filter(Boolean).join(', '), result);
      bulk.rows.set(item.key, result);
      return li;
    }));
    bulkConfirm.hidden = false;
    bulkConfirm.removeAttribute('aria-disabled');
    bulkConfirm.textContent = 'Approve ' + chosen.length;
    bulkCancel.textContent = 'Cancel';
    bulkDialog.showModal();
    bulkConfirm.focus();
  });

  bulkConfirm.addEventListener('click', function () {
    if (!bulk || bulk.started) return;
    var run = bulk;
    run.started = true;
    bulkConfirm.setAttribute('aria-disabled', 'true');
    bulkConfirm.textContent = 'Approving…';
    var byToken = new Map();
    run.items.forEach(function (item) {
      var act = approveOf(item);
      run.rows.get(item.key).textContent = 'Approving…';
      selected.delete(item.key);
      setActing(item.key, true);
      byToken.set(act.token, item);
    });
    updateBulk();
    slots.forEach(function (li) { li.querySelectorAll('.pick input').forEach(function (b) { b.checked = false; }); });
    var tokens = Array.from(byToken.keys());
    var done = 0, failed = 0;
    var turns = [];
    for (var i = 0; i < tokens.length; i += BULK_MAX) turns.push(tokens.slice(i, i + BULK_MAX));
    function report(item, result) {
      setActing(item.key, false);
      var ok = result.outcome === 'done';
      if (ok) done++;
      else failed++;
      var row = run.rows.get(item.key);
      row.className = ok ? 'result is-done' : 'result is-refused';
      row.textContent = result.message || (ok ? 'Approved.' : 'Not approved.');
      if (!ok) {
        answers.set(item.key, { text: result.message, refused: true, url: result.outcome === 'consent_needed' ? result.url : null });
        if (items.has(item.key)) redraw(item.key);
      }
    }
    function next() {
      var turn = turns.shift();
      if (!turn) return finish();
      return post(ACT_BULK, { tokens: turn })
        .then(function (body) {
          if (!body) return;
          body.results.forEach(function (r) { report(byToken.get(r.token), r.result); });
          return next();
        })
        .catch(function () {
          turn.concat.apply(turn, turns).forEach(function (token) {
            report(byToken.get(token), { outcome: 'refused', message: 'The inbox could not be reached; this one was not approved. Try again.' });
          });
          turns = [];
          finish();
        });
    }
    function finish() {
      var summaryText = 'Approved ' + done + ' of ' + plural(run.items.length) + '.' + (failed ? ' ' + failed + ' not: the list says why.' : '');
      bulkHeading.textContent = summaryText;
      bulkText.textContent = done ? 'Approved cards leave your list as their approvals close.' : '';
      bulkConfirm.hidden = true;
      bulkCancel.textContent = 'Close';
      if (bulkDialog.open) bulkHeading.focus();
      say(summaryText);
    }
    next();
  });
  bulkCancel.addEventListener('click', function () { bulkDialog.close(); });
  bulkDialog.addEventListener('close', function () {
    bulk = null;
    bulkButton.focus();
  });

  function setView(change) {
    Object.assign(view, change);
    rebuild();
  }
  sortBox.value = view.sort;
  if (sortBox.value !== view.sort) view.sort = sortBox.value = 'oldest';
  sortBox.addEventListener('change', function () {
    store('sort', sortBox.value);
    setView({ sort: sortBox.value });
  });
  sourceBox.addEventListener('change', function () { setView({ source: sourceBox.value }); });
  flaggedBox.addEventListener('change', function () { setView({ flagged: flaggedBox.checked }); });
  var searchTimer = 0;
  searchBox.addEventListener('input', function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { setView({ q: searchBox.value.trim().toLocaleLowerCase() }); }, 200);
  });
  byId('controls').addEventListener('submit', function (e) { e.preventDefault(); });
  showNew.addEventListener('click', function () {
    var first = Array.from(held)[0];
    rebuild();
    if (first && slots.has(first)) focusSlot(slots.get(first), 0);
  });
  // Ages read "3 hours ago": keep them true while the page stays open.
  setInterval(function () {
    list.querySelectorAll('.age').forEach(function (e) { e.textContent = age({ submittedAt: e.dataset.since }); });
  }, 60000);

  load();
  connect();
})();
`;
