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

/** The inbox shell; app.js fills it. */
export function inboxHtml(): string {
  return htmlPage(
    'Approvals waiting on you',
    `<header class="top">
  <div class="heading">
    <p class="brand">approvals-hub</p>
    <h1>Waiting on you <span id="count" class="count">…</span></h1>
  </div>
  <div class="status">
    <p class="who">Signed in as <strong id="who"></strong></p>
    <div class="status-row">
      <p id="live" class="live" data-state="connecting">Connecting…</p>
      <form method="post" action="/inbox/logout" class="signout"><button type="submit" class="link-button">Sign out</button></form>
    </div>
  </div>
</header>
<div id="notice" class="notice" role="status" aria-live="polite" hidden></div>
<main id="approvals" class="approvals" aria-busy="true" aria-label="Pending approvals"></main>
<p id="empty" class="empty" hidden>Nothing is waiting on you. New approvals appear here as they arrive.</p>`,
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

export const INBOX_CSS = `:root {
  color-scheme: light;
  --bg: #f3f5f8; --card: #fff; --text: #1b2430; --muted: #5b6776; --line: #e3e8ef;
  --accent: #0b62d6; --warn-bg: #fff4d6; --warn-text: #7a4b00; --new: #17a34a;
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
.top {
  display: flex; justify-content: space-between; align-items: flex-end; gap: 16px;
  padding: 22px 32px 18px; background: var(--card); border-bottom: 1px solid var(--line);
}
.brand { margin: 0 0 2px; color: var(--muted); font-size: 13px; letter-spacing: .04em; text-transform: uppercase; }
h1 { margin: 0; font-size: 24px; font-weight: 650; }
.count {
  display: inline-block; min-width: 1.8em; padding: 1px 8px; margin-left: 6px; border-radius: 999px;
  background: var(--accent); color: #fff; font-size: 15px; text-align: center; vertical-align: 3px;
}
.status { text-align: right; }
.who { margin: 0 0 4px; color: var(--muted); }
.who strong { color: var(--text); font-weight: 600; overflow-wrap: anywhere; }
.live { margin: 0; font-size: 13px; color: var(--muted); }
.live::before { content: ""; display: inline-block; width: 8px; height: 8px; margin-right: 6px; border-radius: 50%; background: #a0a9b5; }
.live[data-state="live"]::before { background: var(--new); }
.live[data-state="offline"]::before { background: #c2410c; }
.notice {
  margin: 16px 32px 0; padding: 10px 14px; border-radius: 8px;
  background: #e8f1ff; color: #123c7a; border: 1px solid #c9dcfb;
}
.approvals { columns: 2 440px; column-gap: 18px; padding: 20px 32px 32px; }
.card {
  break-inside: avoid; margin: 0 0 18px;
  background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 18px 20px;
  box-shadow: 0 1px 2px rgba(16, 24, 40, .05);
  container: card / inline-size;
}
.card.is-new { border-color: var(--new); box-shadow: 0 0 0 3px rgba(23, 163, 74, .15); }
.card.is-reminded { border-color: #d97706; box-shadow: 0 0 0 3px rgba(217, 119, 6, .15); }
.badge.reminder { background: #d97706; }
.card-head { display: flex; justify-content: space-between; gap: 12px; align-items: baseline; }
.title { flex: 1 1 auto; min-width: 0; margin: 0; font-size: 17px; font-weight: 650; overflow-wrap: anywhere; }
.badge { margin-left: 8px; padding: 1px 7px; border-radius: 999px; background: var(--new); color: #fff; font-size: 12px; vertical-align: 2px; }
.amount { font-size: 18px; font-weight: 650; white-space: nowrap; font-variant-numeric: tabular-nums; }
.meta { margin: 4px 0 10px; color: var(--muted); }
.meta span + span::before { content: "·"; margin: 0 8px; }
.flags { display: flex; flex-wrap: wrap; gap: 6px; list-style: none; margin: 0 0 10px; padding: 0; }
.flag { padding: 2px 9px; border-radius: 6px; background: var(--warn-bg); color: var(--warn-text); font-size: 13px; font-weight: 600; }
.flag::before { content: "⚠ "; }
.fields { display: grid; grid-template-columns: fit-content(40%) minmax(0, 1fr); gap: 2px 12px; margin: 0 0 10px; font-size: 14px; }
.fields dt { color: var(--muted); overflow-wrap: anywhere; }
.fields dd { margin: 0; overflow-wrap: anywhere; }
.lines { list-style: none; margin: 0 0 14px; padding: 0; border-top: 1px solid var(--line); font-size: 14px; }
.lines li {
  display: grid; grid-template-columns: minmax(0, 1fr) auto; grid-template-areas: "label amount" "flags flags";
  column-gap: 12px; align-items: baseline; padding: 7px 0; border-bottom: 1px solid var(--line);
}
.line-label { grid-area: label; overflow-wrap: anywhere; }
.line-amount { grid-area: amount; text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.line-flags { grid-area: flags; display: flex; flex-wrap: wrap; gap: 4px 6px; margin-top: 4px; }
.line-flag { padding: 0 6px; border-radius: 5px; background: var(--warn-bg); color: var(--warn-text); font-size: 12px; font-weight: 600; white-space: nowrap; }
/* A wide card has room for the flags between the description and the amount; the description keeps 12em. */
@container card (min-width: 460px) {
  .lines li { grid-template-columns: minmax(12em, 1fr) auto auto; grid-template-areas: "label flags amount"; }
  .line-flags { justify-content: flex-end; margin-top: 0; }
}
.actions { display: flex; flex-wrap: wrap; gap: 10px; }
.button {
  display: inline-block; padding: 9px 16px; border-radius: 8px; background: var(--accent); color: #fff;
  font-weight: 600; text-decoration: none;
}
button.button { border: 0; font: inherit; cursor: pointer; }
.button:hover, .button:focus-visible { background: #084ca8; }
.status-row { display: flex; justify-content: flex-end; align-items: center; gap: 14px; }
.signout { margin: 0; }
.link-button { padding: 0; border: 0; background: none; color: var(--accent); font: inherit; font-size: 13px; cursor: pointer; text-decoration: underline; }
.button:focus-visible { outline: 3px solid rgba(11, 98, 214, .35); outline-offset: 2px; }
.empty { margin: 48px 32px; text-align: center; color: var(--muted); font-size: 16px; }
.message { max-width: 560px; margin: 12vh auto; padding: 28px 32px; background: var(--card); border: 1px solid var(--line); border-radius: 12px; }
.message h1 { margin-bottom: 10px; }
@media (max-width: 640px) {
  .top { flex-direction: column; align-items: stretch; padding: 16px; }
  .status { text-align: left; }
  .status-row { justify-content: space-between; }
  .notice { margin: 12px 16px 0; }
  .approvals { columns: 1; padding: 16px 12px; }
  .card { padding: 14px 14px; }
  .empty { margin: 32px 16px; }
}
`;

/**
 * The page's script. It opens the event stream first and (re)loads the list on every connect,
 * holding events that arrive during a load and replaying them after it, so nothing slips
 * between the snapshot and the stream. A card is replaced only by the same or a newer revision.
 */
export const INBOX_JS = `'use strict';
(function () {
  var API = '/inbox/api/approvals';
  var EVENTS = '/inbox/api/events';
  var byId = function (id) { return document.getElementById(id); };
  var list = byId('approvals'), count = byId('count'), who = byId('who'), live = byId('live');
  var empty = byId('empty'), notice = byId('notice');
  var items = new Map();
  var fresh = new Set();
  var reminded = new Set();
  var held = null;
  var loads = 0;
  var noticeTimer = 0;
  var ended = false;

  var OUTCOMES = {
    approved: 'was approved and left your queue.',
    rejected: 'was rejected and left your queue.',
    sent_back: 'was sent back to the requester.',
    recalled: 'was recalled by the requester.',
    no_longer_required: 'no longer needs your approval.',
    expired: 'expired and left your queue.',
    reassigned: 'was reassigned to another approver.'
  };

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function money(m) {
    if (!m) return '';
    try {
      return new Intl.NumberFormat(undefined, { style: 'currency', currency: m.currency }).format(m.value);
    } catch (err) {
      return m.currency + ' ' + m.value;
    }
  }

  function day(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? '' : d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
  }

  function webUrl(url) {
    try {
      var p = new URL(url).protocol;
      return p === 'https:' || p === 'http:' ? url : null;
    } catch (err) {
      return null;
    }
  }

  function card(item) {
    var a = el('article', 'card');
    a.dataset.key = item.key;
    a.dataset.revision = String(item.revision);
    var head = el('div', 'card-head');
    var title = el('h2', 'title', item.title);
    if (fresh.has(item.key)) {
      a.classList.add('is-new');
      title.append(el('span', 'badge', 'New'));
    }
    if (reminded.has(item.key)) {
      a.classList.add('is-reminded');
      title.append(el('span', 'badge reminder', 'Reminder'));
    }
    head.append(title, el('div', 'amount', money(item.amount)));
    a.append(head);
    var meta = el('p', 'meta');
    meta.append(el('span', 'requester', item.requester || 'Unknown requester'));
    if (item.submittedAt) meta.append(el('span', 'submitted', 'submitted ' + day(item.submittedAt)));
    a.append(meta);
    if (item.flags.length) {
      var flags = el('ul', 'flags');
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
      item.lineItems.forEach(function (l) {
        var li = el('li', 'line');
        li.append(el('span', 'line-label', l.label), el('span', 'line-amount', money(l.amount)));
        if (l.flags && l.flags.length) {
          var lf = el('span', 'line-flags');
          l.flags.forEach(function (f) { lf.append(el('span', 'line-flag', f)); });
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
      b.href = url;
      b.target = '_blank';
      b.rel = 'noopener noreferrer';
      actions.append(b);
    });
    if (actions.childElementCount) a.append(actions);
    return a;
  }

  function render() {
    list.replaceChildren.apply(list, Array.from(items.values()).map(card));
    list.setAttribute('aria-busy', 'false');
    count.textContent = String(items.size);
    empty.hidden = items.size > 0;
    document.title = (items.size ? '(' + items.size + ') ' : '') + 'Approvals waiting on you';
  }

  function say(text) {
    notice.textContent = text;
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(function () { notice.hidden = true; }, 10000);
  }

  function setLive(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  function apply(ev) {
    if (ev.type === 'approval') {
      var item = ev.item, had = items.get(item.key);
      if (had && had.revision > item.revision) return;
      if (had) {
        items.set(item.key, item);
        return;
      }
      items = new Map([[item.key, item]].concat(Array.from(items)));
      fresh.add(item.key);
      setTimeout(function () { fresh.delete(item.key); render(); }, 15000);
    } else if (ev.type === 'reminder' && items.has(ev.key)) {
      reminded.add(ev.key);
    } else if (ev.type === 'closed' && items.has(ev.key)) {
      items.delete(ev.key);
      fresh.delete(ev.key);
      reminded.delete(ev.key);
      say('\\u201c' + ev.title + '\\u201d ' + (OUTCOMES[ev.outcome] || 'left your queue.'));
    }
  }

  function receive(ev) {
    if (held) held.push(ev);
    else {
      apply(ev);
      render();
    }
  }

  function signedOut() {
    ended = true;
    setLive('offline', 'Signed out');
    items = new Map();
    list.replaceChildren();
    count.textContent = '';
    empty.hidden = true;
    notice.textContent = 'Your session has ended. Open a new sign-in link to see your approvals.';
    notice.hidden = false;
    clearTimeout(noticeTimer);
  }

  function load() {
    var mine = ++loads;
    if (!held) held = [];
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
        items = new Map(body.approvals.map(function (i) { return [i.key, i]; }));
        var replay = held;
        held = null;
        replay.forEach(apply);
        render();
      })
      .catch(function () {
        if (mine !== loads) return;
        held = null;
        say('Could not load your approvals; retrying\\u2026');
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
    es.addEventListener('reminder', function (e) {
      var d = JSON.parse(e.data);
      receive({ type: 'reminder', key: d.key, revision: d.revision, title: d.title });
    });
    es.addEventListener('closed', function (e) {
      var d = JSON.parse(e.data);
      receive({ type: 'closed', key: d.key, revision: d.revision, title: d.title, outcome: d.outcome });
    });
    es.addEventListener('error', function () {
      if (es.readyState !== EventSource.CLOSED) return setLive('connecting', 'Reconnecting\\u2026');
      es.close();
      if (ended) return;
      setLive('offline', 'Offline');
      fetch(API, { credentials: 'same-origin', cache: 'no-store' })
        .then(function (r) { if (r.status === 401) signedOut(); })
        .catch(function () {})
        .then(function () { if (!ended) setTimeout(connect, 5000); });
    });
  }

  load();
  connect();
})();
`;
