/**
 * The web inbox's documents: static HTML shells, one stylesheet, one script. No source data is
 * ever written into HTML: the script fetches JSON and inserts every string with `textContent`,
 * so the strict Content-Security-Policy (no inline script or style) holds and a report named
 * `<img onerror=…>` is just a title.
 */

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

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

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
    <button type="button" id="show-new" class="button secondary is-idle">Show new</button>
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
</main>`,
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
  --closed-bg: #e9edf2; --offline: #c2410c; --idle: #75818f;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f141b; --card: #18202b; --text: #e6ebf2; --muted: #a9b4c2; --line: #2e3a48; --field-line: #7d8a99;
    --accent: #6ea8ff; --accent-hover: #9cc4ff; --accent-text: #0b1420; --focus: #8cbcff;
    --warn-bg: #3a2a05; --warn-text: #ffd98a; --closed-bg: #141b24; --offline: #fb923c; --idle: #7d8a99;
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
  .card, .tombstone, .badge, .flag, .line-flag, .count, .button, select, input { border: 1px solid CanvasText; }
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
 */
export const INBOX_JS = `'use strict';
(function () {
  var API = '/inbox/api/approvals';
  var EVENTS = '/inbox/api/events';
  var NEW_FOR_MS = 15000;
  var CLOSED_KEPT = 20;
  var byId = function (id) { return document.getElementById(id); };
  var list = byId('approvals'), count = byId('count'), who = byId('who'), live = byId('live'), announcer = byId('announcer');
  var main = byId('main'), empty = byId('empty'), noMatch = byId('no-match'), notice = byId('notice'), summary = byId('summary');
  var showNew = byId('show-new'), sortBox = byId('sort'), sourceBox = byId('source'), flaggedBox = byId('flagged'), searchBox = byId('search');
  var closedList = byId('closed-list'), closedNone = byId('closed-none');
  /** Every pending approval, shown or not, by key. */
  var items = new Map();
  /** The list's slot of each approval it shows. */
  var slots = new Map();
  var fresh = new Set(), reminded = new Set(), held = new Set();
  var pending = null, loads = 0, loaded = false, ended = false, lost = false, ids = 0;
  var view = { sort: stored('sort') || 'oldest', source: '', flagged: false, q: '' };
  var said = [], sayTimer = 0;

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
    if (actions.childElementCount) a.append(actions);
    return a;
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
    var links = Array.prototype.slice.call(li.querySelectorAll('a[href], button'));
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
      var li = slots.get(item.key);
      if (!li) {
        if (!held.has(item.key)) place(item);
        return;
      }
      var index = focusIndex(li), before = height(li);
      li.replaceChildren(card(item));
      // A card that got shorter keeps its height, so the cards after it stay where they are.
      if (height(li) < before) li.style.minHeight = before + 'px';
      if (index >= 0) focusSlot(li, index);
      return;
    }
    markFresh(item.key);
    var shown = place(item);
    var amount = item.amount ? ', ' + money(item.amount) : '';
    var from = item.requester ? ', from ' + item.requester : '';
    var where = shown ? '' : held.has(item.key) ? ' Use Show new to list it.' : ' It is hidden by your filters.';
    say('New approval: ' + item.title + from + amount + '.' + where);
  }

  function remember(entry) {
    var li = el('li');
    li.append(el('strong', null, entry.label), ' ' + entry.title + ' ');
    li.append(el('span', 'when', '(' + [entry.source, entry.at].filter(Boolean).join(', ') + ')'));
    closedList.prepend(li);
    while (closedList.childElementCount > CLOSED_KEPT) closedList.lastElementChild.remove();
    closedNone.hidden = true;
  }

  function close(key, title, outcome) {
    var item = items.get(key);
    if (!item) return;
    items.delete(key);
    held.delete(key);
    fresh.delete(key);
    reminded.delete(key);
    var words = OUTCOMES[outcome] || LEFT;
    var li = slots.get(key);
    if (li) {
      var focused = focusIndex(li) >= 0;
      li.style.minHeight = height(li) + 'px';
      li.classList.add('is-closed');
      var note = el('div', 'tombstone');
      note.append(el('p', null, '“' + title + '” ' + words[1]));
      li.replaceChildren(note);
      slots.delete(key);
      if (focused) focusNeighbour(li);
    }
    remember({ label: words[0], title: title, source: item.source, at: clock(new Date()) });
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
    else if (ev.type === 'closed') close(ev.key, ev.title, ev.outcome);
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
    Array.from(items.values()).forEach(function (item) { if (!next.has(item.key)) close(item.key, item.title, null); });
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
      receive({ type: 'closed', key: d.key, title: d.title, outcome: d.outcome });
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
