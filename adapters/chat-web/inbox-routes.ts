import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import {
  ApprovalActions,
  ApprovalLookup,
  Clock,
  emailKey,
  isSameOriginPost,
  inject,
  injectable,
  isPermanentDeliveryError,
  Logger,
  Notifiers,
  type ActionResult,
  type Actor,
  type Card,
  type HttpRoutes,
  type Notifier,
  type QueuedApproval,
  type SourceCapabilities,
} from '../../core/index.js';
import { cardFor, createCardRenderer } from '../../core/index.js';
import { CONTENT_SECURITY_POLICY, INBOX_CSS, INBOX_JS, inboxHtml, messageHtml, openInboxHtml, signInHtml } from './inbox-page.js';
import { InboxBusyError, InboxSessions, type InboxSession, type LinkRefusal } from './inbox-sessions.js';
import { linkRequestedHtml, linkRequestHtml, linkRequestInvalidHtml, linkRequestLimitedHtml } from './link-request-page.js';
import { normaliseEmail } from './signed-links.js';
import { inboxItem, WebInboxNotifier, WebInboxSettings, type InboxEvent, type InboxStream } from './web-inbox-notifier.js';

const SESSION_COOKIE = 'ah_inbox_session';
/** Comment lines keep proxies and load balancers from closing an idle stream (most cut at 30-60 s). */
const HEARTBEAT_MS = 15_000;
/** A page this far behind is not reading; its stream is closed and it reloads when it reconnects. */
const MAX_BUFFERED_BYTES = 1 << 20;
/** Longest a timer may be set for in Node (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A sign-in form holds one token (under 1 KiB), a link request one address; nothing else is posted here. */
const FORM_BODY_LIMIT = 4096;
const HTML = 'text/html; charset=utf-8';
/** How the page names this channel in a card's outcome ("Approved by ann@… in the web inbox at …"). */
const CHANNEL_NAME = 'the web inbox';
/** A token is under 1 KiB and a comment a few sentences; a bulk approval carries at most {@link BULK_MAX} tokens. */
const ACT_BODY_LIMIT = 16 * 1024;
const BULK_BODY_LIMIT = 128 * 1024;
const MAX_TOKEN_LENGTH = 2048;
/** Concur's send-back comment holds 2,000 characters; no source needs more. */
const MAX_COMMENT_LENGTH = 2000;
/** Reports one bulk approval may carry: a page of selected cards, not the whole queue at once. */
const BULK_MAX = 50;
/** Actions of one bulk approval in flight at a time: each is a call to the source, which has rate limits of its own. */
const BULK_CONCURRENCY = 4;

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on our own
  // form posts, and the same-origin check needs the real one. Other sites still get nothing.
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

/** How a page without an inbox ends: the form below it, or, with no other channel to send a link through, whom to ask. */
const NEW_LINK = {
  form: 'Enter your work e-mail below to be sent a new one.',
  ask: 'Ask whoever sent you the link (your approvals-hub administrator) for a new one.',
};
type Page = { title: string; text: string };
const SIGNED_OUT: Page = {
  title: 'Sign in to see your approvals',
  text: 'Open the sign-in link you were sent. Each link works once, for a limited time.',
};
const SIGNED_OUT_AFTER_LOGOUT: Page = { title: 'You are signed out', text: 'To sign in again, open a new sign-in link.' };
const LINK_REFUSED: Record<LinkRefusal | 'invalid', Page> = {
  expired: { title: 'This sign-in link has expired', text: 'Sign-in links work for a limited time.' },
  used: { title: 'This sign-in link has already been used', text: 'Each sign-in link works once.' },
  revoked: { title: 'This sign-in link is no longer valid', text: 'Your inbox sessions were ended by an administrator.' },
  malformed: { title: 'This sign-in link is not valid', text: 'Open the link exactly as you received it.' },
  forged: { title: 'This sign-in link is not valid', text: 'Open the link exactly as you received it.' },
  invalid: { title: 'This sign-in link is not valid', text: 'Open the link exactly as you received it.' },
};
/** What the "Send me a new link" answer calls the channels a link goes through; generic, so it tells nothing about the address. */
const OTHER_CHANNELS = 'your chat or e-mail';
/** Per client IP, on `POST /inbox/link-request` only: enough for a person's typos, too few to probe many addresses. */
const LINK_REQUEST_LIMIT = { max: 10, timeWindow: 10 * 60_000 };
const MINUTE_MS = 60_000;
const CROSS_SITE = {
  title: 'Sign-in refused',
  text: 'This request did not come from the inbox’s own page. Open your sign-in link and press Continue there.',
};
const BUSY = { title: 'Please try again', text: 'Your sign-in is being handled elsewhere right now. Go back and press Continue again.' };

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function eventFrame(event: InboxEvent): string {
  const data =
    event.type === 'approval'
      ? event.item
      : event.type === 'closed'
        ? { key: event.key, revision: event.revision, title: event.title, outcome: event.outcome, note: event.note }
        : { key: event.key, revision: event.revision, title: event.title };
  // JSON.stringify escapes CR and LF, the only line breaks SSE knows, so one `data:` line always holds the event.
  return `event: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Whether a request says it carries JSON: a cross-site form cannot send this content type (it would need a CORS preflight, which we never grant). */
function isJson(request: FastifyRequest): boolean {
  return /^application\/json\s*(;|$)/i.test(request.headers['content-type'] ?? '');
}

/** The `{ token, comment? }` of `POST /inbox/api/act`, or what is wrong with it. */
function actBody(body: unknown): { token: string; comment: string | undefined } | { error: string } {
  const { token, comment } = (body ?? {}) as Record<string, unknown>;
  if (typeof token !== 'string' || !token || token.length > MAX_TOKEN_LENGTH) return { error: 'token must be the button’s token (a string)' };
  if (comment !== undefined && comment !== null && typeof comment !== 'string') return { error: 'comment must be a string' };
  const text = typeof comment === 'string' ? comment.trim() : '';
  if (text.length > MAX_COMMENT_LENGTH) return { error: `comment must be at most ${MAX_COMMENT_LENGTH} characters` };
  return { token, comment: text || undefined };
}

/** The `{ tokens }` of `POST /inbox/api/act-bulk` (duplicates dropped), or what is wrong with it. */
function bulkBody(body: unknown): { tokens: string[] } | { error: string } {
  const { tokens } = (body ?? {}) as Record<string, unknown>;
  if (!Array.isArray(tokens) || tokens.length === 0 || !tokens.every((t) => typeof t === 'string' && t && t.length <= MAX_TOKEN_LENGTH)) {
    return { error: 'tokens must be a non-empty list of button tokens' };
  }
  const unique = [...new Set(tokens as string[])];
  if (unique.length > BULK_MAX) return { error: `at most ${BULK_MAX} reports can be approved at once` };
  return { tokens: unique };
}

/** `work` on each item, at most `limit` at a time; results in the items' order. */
async function inTurn<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await work(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** A form body as fields; only the first value of each counts. */
function formField(body: unknown, name: string): string {
  return body instanceof URLSearchParams ? (body.get(name) ?? '') : '';
}

/**
 * The web inbox's HTTP routes, under `/inbox`:
 * - `GET /inbox/login?token=…`: a page saying whom a good link signs in, with a Continue button
 *   that posts it; the GET itself signs nobody in (chat unfurlers and link scanners open links).
 * - `POST /inbox/login` (same-origin only): redeems the link, once, for an HttpOnly SameSite=Lax
 *   session cookie scoped to `/inbox`, and sends the browser to `/inbox`.
 * - `POST /inbox/logout` (same-origin only): ends the session on every host and clears the cookie.
 * - `GET /inbox`, `/inbox/app.js`, `/inbox/app.css`: the page (401 without a session) and its assets.
 * - `GET /inbox/api/approvals`: the session's pending approvals, read from the queue.
 * - `GET /inbox/api/events`: server-sent events for the session's e-mail only (`approval`, `closed`, `reminder`).
 * - `POST /inbox/api/act` (same-origin, JSON only): one act button pressed, `{ token, comment? }`;
 *   the session's e-mail is the actor. Answers the {@link ActionResult}.
 * - `POST /inbox/api/act-bulk` (same-origin, JSON only): `{ tokens }`, up to {@link BULK_MAX}
 *   buttons pressed together (bulk approve), each a single action; answers a result per token.
 * - `GET /inbox/api/connections`, `POST /inbox/api/disconnect` (same-origin, JSON only, `{ source }`):
 *   the approver's connections to sources for actions (Concur's consent), and their own Disconnect.
 * - `POST /inbox/link-request` (same-origin only, rate-limited per IP): "Send me a new link"; the
 *   pages without an inbox (no session, a refused link, signed out) carry its form whenever the
 *   host has a channel besides web inboxes to send the link through.
 * A session names one e-mail and every read is filtered by it (invariant 4). Every session is
 * checked against the store on each request, so a sign-out or `inbox revoke` holds on every host.
 */
@injectable()
export class InboxRoutes implements HttpRoutes {
  readonly id: string;
  private readonly publicOrigin: string;
  /** The tail of the link requests being worked through, one at a time. */
  private linkRequests: Promise<void> = Promise.resolve();

  constructor(
    @inject(WebInboxSettings) private readonly settings: WebInboxSettings,
    @inject(WebInboxNotifier) private readonly notifier: WebInboxNotifier,
    @inject(InboxSessions) private readonly sessions: InboxSessions,
    @inject(ApprovalLookup) private readonly lookup: ApprovalLookup,
    @inject(Clock) private readonly clock: Clock,
    @inject(Logger) private readonly logger: Logger,
    @inject(Notifiers) private readonly notifiers: ReadonlyMap<string, Notifier>,
    @inject(ApprovalActions) private readonly actions: ApprovalActions,
  ) {
    this.id = `${settings.instanceId}:inbox`;
    this.publicOrigin = new URL(settings.publicUrl).origin;
  }

  async register(app: FastifyInstance): Promise<void> {
    app.addHook('onSend', async (_request, reply, payload) => {
      reply.headers(SECURITY_HEADERS);
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
      return payload;
    });
    // Open event streams would keep the server from closing; pages reconnect to the next host.
    app.addHook('preClose', async () => this.notifier.endStreams());
    // Only this plugin's scope: the sign-in and sign-out forms. Slack's routes parse their own.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_request, body, done) => {
      done(null, new URLSearchParams(body as string));
    });

    app.get('/inbox/login', async (request, reply) => this.showLink(request, reply));
    app.post('/inbox/login', async (request, reply) => this.login(request, reply));
    app.post('/inbox/logout', async (request, reply) => this.logout(request, reply));
    app.get('/inbox', async (request, reply) => {
      if (!(await this.session(request))) return reply.code(401).type(HTML).send(this.noInboxHtml(SIGNED_OUT));
      return reply.type(HTML).send(inboxHtml());
    });
    app.get('/inbox/app.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(INBOX_JS));
    app.get('/inbox/app.css', async (_request, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'no-cache').send(INBOX_CSS));
    app.get('/inbox/api/approvals', async (request, reply) => {
      const session = await this.session(request);
      if (!session) return reply.code(401).send({ error: 'not signed in' });
      const rows = await this.lookup.waitingOn(session.email, { limit: 500 });
      // waitingOn already filters by approver; the check is repeated here because a leak would be silent.
      const mine = rows.filter((row) => row.approvers.some((a) => emailKey(a.email) === session.email));
      const items = (await this.cards(mine, session.email)).map(inboxItem);
      return reply.send({ email: session.email, approvals: items });
    });
    app.post('/inbox/api/act', { bodyLimit: ACT_BODY_LIMIT }, async (request, reply) => {
      const actor = await this.actor(request, reply);
      if (!actor) return reply;
      const body = actBody(request.body);
      if ('error' in body) return reply.code(400).send({ error: body.error });
      return reply.send(await this.actions.act(body.token, actor, { comment: body.comment }));
    });
    app.post('/inbox/api/act-bulk', { bodyLimit: BULK_BODY_LIMIT }, async (request, reply) => {
      const actor = await this.actor(request, reply);
      if (!actor) return reply;
      const body = bulkBody(request.body);
      if ('error' in body) return reply.code(400).send({ error: body.error });
      const results = await inTurn(body.tokens, BULK_CONCURRENCY, async (token) => ({ token, result: await this.bulkOne(token, actor) }));
      return reply.send({ results });
    });
    app.get('/inbox/api/connections', async (request, reply) => {
      const session = await this.session(request);
      if (!session) return reply.code(401).send({ error: 'not signed in' });
      return reply.send({ connections: await this.actions.connections(session.email) });
    });
    app.post('/inbox/api/disconnect', { bodyLimit: ACT_BODY_LIMIT }, async (request, reply) => {
      const actor = await this.actor(request, reply);
      if (!actor) return reply;
      const source = (request.body as { source?: unknown } | undefined)?.source;
      if (typeof source !== 'string' || source === '') return reply.code(400).send({ error: 'body must be { "source": "<source id>" }' });
      return reply.send({ disconnected: await this.actions.disconnect(actor.email, source) });
    });
    app.get('/inbox/api/events', async (request, reply) => {
      const session = await this.session(request);
      if (!session) return reply.code(401).send({ error: 'not signed in' });
      this.stream(session, reply);
      return reply;
    });
    // Its own scope, so the rate limit and its 429 page apply to this route only.
    await app.register(async (scope) => {
      await scope.register(rateLimit, { global: false });
      scope.setErrorHandler((error: { statusCode?: number }, _request, reply) => {
        if (error.statusCode !== 429) throw error;
        return reply
          .code(429)
          .type(HTML)
          .send(linkRequestLimitedHtml(LINK_REQUEST_LIMIT.timeWindow / MINUTE_MS));
      });
      scope.post('/inbox/link-request', { config: { rateLimit: LINK_REQUEST_LIMIT } }, async (request, reply) => this.requestLink(request, reply));
    });
  }

  /**
   * `email`'s cards for queued approvals, as a channel would have been sent them: the View link,
   * the act buttons each source offers, and tokens on them for this person. One renderer serves
   * the whole list, knowing the actions of the sources in it.
   */
  private cards(rows: readonly QueuedApproval[], email: string): Promise<Card[]> {
    const sources = new Set(rows.map((row) => row.source));
    const render = createCardRenderer(new Map<string, SourceCapabilities>([...sources].map((source) => [source, { actions: this.actions.actionsOf(source) }])));
    const me = emailKey(email);
    return Promise.all(
      rows.map((row) => {
        // A delegate's copy names the approver they stand in for, as their chat card does.
        const entry = row.approvers.find((a) => emailKey(a.email) === me);
        return this.actions.withTokens(entry ? cardFor(render(row), entry) : render(row), row.generation, email);
      }),
    );
  }

  /**
   * Who presses a button, for a POST of the act API: the signed-in person, if the request came
   * from the inbox's own page as JSON (CSRF: a page on another site can neither pass the origin
   * check nor send JSON without a preflight). Otherwise answers the refusal and returns undefined.
   */
  private async actor(request: FastifyRequest, reply: FastifyReply): Promise<Actor | undefined> {
    if (!isSameOriginPost(request, this.publicOrigin) || !isJson(request)) {
      this.logger.warn(
        { channel: this.settings.instanceId, origin: request.headers.origin ?? null, fetchSite: request.headers['sec-fetch-site'] ?? null },
        'web inbox action refused: not from the inbox’s own page',
      );
      reply.code(403).send({ error: 'This request did not come from the inbox’s own page.' });
      return undefined;
    }
    const session = await this.session(request);
    if (!session) {
      reply.code(401).send({ error: 'not signed in' });
      return undefined;
    }
    return { email: session.email, channel: this.notifier.id, channelName: CHANNEL_NAME };
  }

  /** One report of a bulk approval: only approve buttons are taken, and a failure is that report's answer, not the request's. */
  private async bulkOne(token: string, actor: Actor): Promise<ActionResult> {
    const target = await this.actions.peek(token);
    if (target && target.action !== 'approve') return { outcome: 'refused', message: 'Only approvals can be done in bulk; send back one report at a time.' };
    try {
      return await this.actions.act(token, actor);
    } catch (error) {
      this.logger.error({ channel: this.settings.instanceId, err: (error as Error).message }, 'web inbox bulk approval: one action failed');
      return { outcome: 'refused', message: 'This report could not be approved just now; nothing was changed. Try again.' };
    }
  }

  /** GET of a link: what it would do, and a button to do it. Changes nothing. */
  private async showLink(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const raw = (request.query as Record<string, unknown> | undefined)?.token;
    const token = typeof raw === 'string' ? raw : '';
    const link = await this.sessions.checkLink(token);
    if (link.ok) return reply.type(HTML).send(signInHtml(link.email, token));
    // Tapping a link twice (chat apps do) should not look like an error to the person it signed in.
    const current = link.reason === 'used' ? await this.session(request) : undefined;
    if (current && current.email === link.email) {
      return reply.type(HTML).send(openInboxHtml('You are signed in', `This link was used already; you are signed in as ${current.email}.`));
    }
    return this.refuseLink(reply, link.reason);
  }

  /** POST of a link from our own page: redeems it once for a session cookie. */
  private async login(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (!isSameOriginPost(request, this.publicOrigin)) return this.refuseCrossSite(request, reply, 'sign-in');
    let redeemed;
    try {
      redeemed = await this.sessions.redeem(formField(request.body, 'token'));
    } catch (error) {
      if (error instanceof InboxBusyError) return reply.code(503).header('retry-after', '1').type(HTML).send(messageHtml(BUSY.title, BUSY.text));
      throw error;
    }
    if (!redeemed.ok) return this.refuseLink(reply, redeemed.reason);
    const maxAge = Math.max(0, Math.floor((redeemed.session.expiresAt.getTime() - this.clock.now().getTime()) / 1000));
    reply.header('set-cookie', this.cookie(request, redeemed.cookie, maxAge));
    this.logger.info({ channel: this.settings.instanceId, email: redeemed.session.email }, 'web inbox sign-in');
    // 303: the browser GETs /inbox. The POST came from our page, so this navigation is same-site and carries the new cookie.
    return reply.code(303).header('location', '/inbox').type(HTML).send(openInboxHtml('Signed in', 'You are signed in.'));
  }

  /** POST from our own page: ends this browser's session everywhere and clears its cookie. */
  private async logout(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (!isSameOriginPost(request, this.publicOrigin)) return this.refuseCrossSite(request, reply, 'sign-out');
    const session = await this.session(request);
    if (session) {
      await this.sessions.signOut(session);
      this.notifier.endSession(session.id);
      this.logger.info({ channel: this.settings.instanceId, email: session.email }, 'web inbox sign-out');
    }
    reply.header('set-cookie', this.cookie(request, '', 0));
    return reply.type(HTML).send(this.noInboxHtml(SIGNED_OUT_AFTER_LOGOUT));
  }

  /**
   * "Send me a new link", posted from our own page. Every well-formed address gets the same page,
   * sent before anything else is done, so neither the answer nor its timing tells whether the
   * address is an approver's; the link, if any, is sent after (see {@link sendLink}).
   */
  private async requestLink(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (!isSameOriginPost(request, this.publicOrigin)) return this.refuseCrossSite(request, reply, 'link request');
    const typed = formField(request.body, 'email').trim();
    const email = normaliseEmail(typed);
    if (!email) {
      const problem = typed ? `“${typed}” is not an e-mail address. Enter it as name@company.com.` : 'Enter your work e-mail address.';
      return reply.code(400).type(HTML).send(linkRequestInvalidHtml(problem, typed));
    }
    // One at a time, after the answer is out: a burst of requests queues here rather than racing for the store.
    reply.raw.once('close', () => {
      this.linkRequests = this.linkRequests.then(() =>
        this.sendLink(email).catch((error: unknown) =>
          this.logger.warn({ channel: this.settings.instanceId, err: (error as Error).message }, 'web inbox could not send a requested sign-in link'),
        ),
      );
    });
    const page = linkRequestedHtml(
      email,
      OTHER_CHANNELS,
      Math.round(this.settings.linkTtlMs / MINUTE_MS),
      Math.round(this.settings.linkRequestIntervalMs / MINUTE_MS),
    );
    return reply.type(HTML).send(page);
  }

  /**
   * Sends `email` a sign-in link through each of its other channels, if an approval waits on it
   * in the queue and it was not sent one it asked for within `linkRequestIntervalMinutes`.
   * Nothing is sent to anyone else, and a refusal is logged without the address (it is whatever
   * someone typed). A channel that does not deliver links (permanent refusal) is skipped.
   */
  private async sendLink(email: string): Promise<void> {
    const channel = this.settings.instanceId;
    const [waiting] = await this.lookup.waitingOn(email, { limit: 1 });
    const approver = waiting?.approvers.find((a) => emailKey(a.email) === email);
    if (!approver) {
      this.logger.info({ channel }, 'web inbox link request: no approval waits on that address; nothing sent');
      return;
    }
    if (!(await this.sessions.claimLinkRequest(email, this.settings.linkRequestIntervalMs))) {
      this.logger.info({ channel, email }, 'web inbox link request: a link was sent to this address within linkRequestIntervalMinutes; nothing sent');
      return;
    }
    const link = await this.notifier.signInUrl(email);
    const card = signInLinkCard(email, link.url, Math.round(this.settings.linkTtlMs / MINUTE_MS));
    const recipient = { ...approver, email };
    for (const notifier of this.otherChannels()) {
      try {
        await notifier.deliver({ idempotencyKey: `sign-in:${email}:${notifier.id}:${randomUUID()}`, action: 'link', recipient, card });
        this.logger.info({ channel, email, to: notifier.id }, 'web inbox link request: sign-in link sent');
      } catch (error) {
        // Never the link itself: it signs in. A channel's error message does not carry it.
        const skipped = isPermanentDeliveryError(error);
        this.logger[skipped ? 'info' : 'warn'](
          { channel, email, to: notifier.id, err: (error as Error).message },
          skipped ? 'web inbox link request: channel does not deliver this link; skipped' : 'web inbox link request: channel failed to deliver the link',
        );
      }
    }
  }

  /** The host's channels other than web inboxes: where a requested link can go. Read per request (they load after these routes). */
  private otherChannels(): Notifier[] {
    return [...this.notifiers.values()].filter((n) => !(n instanceof WebInboxNotifier));
  }

  /** A page without an inbox (no session, a refused link, signed out): with the form when a link can be sent, else whom to ask. */
  private noInboxHtml(page: Page): string {
    return this.otherChannels().length > 0
      ? linkRequestHtml(page.title, `${page.text} ${NEW_LINK.form}`)
      : messageHtml(page.title, `${page.text} ${NEW_LINK.ask}`);
  }

  private refuseLink(reply: FastifyReply, reason: LinkRefusal): FastifyReply {
    this.logger.warn({ channel: this.settings.instanceId, reason }, 'web inbox sign-in refused');
    const page = LINK_REFUSED[reason] ?? LINK_REFUSED.invalid;
    return reply
      .code(reason === 'used' || reason === 'expired' || reason === 'revoked' ? 410 : 401)
      .type(HTML)
      .send(this.noInboxHtml(page));
  }

  private refuseCrossSite(request: FastifyRequest, reply: FastifyReply, what: string): FastifyReply {
    this.logger.warn(
      { channel: this.settings.instanceId, origin: request.headers.origin ?? null, fetchSite: request.headers['sec-fetch-site'] ?? null },
      `web inbox ${what} refused: not from the inbox's own page`,
    );
    return reply.code(403).type(HTML).send(messageHtml(CROSS_SITE.title, CROSS_SITE.text));
  }

  /** The session cookie: HttpOnly, SameSite=Lax, scoped to /inbox, Secure whenever people reach us over https. */
  private cookie(request: FastifyRequest, value: string, maxAgeSeconds: number): string {
    // Secure when people reach us over https, even if a proxy in front forgets X-Forwarded-Proto.
    const secure = request.protocol === 'https' || this.settings.publicUrl.startsWith('https:') ? '; Secure' : '';
    return `${SESSION_COOKIE}=${value}; Path=/inbox; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${secure}`;
  }

  /** The signed-in person, if the request carries a good session cookie that is neither expired, signed out nor revoked. */
  private async session(request: FastifyRequest): Promise<InboxSession | undefined> {
    const token = cookieValue(request.headers.cookie, SESSION_COOKIE);
    return token ? this.sessions.session(token) : undefined;
  }

  /** Serves one page's event stream until the page goes away, the session ends or the host stops. */
  private stream(session: InboxSession, reply: FastifyReply): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // nginx and some other proxies buffer responses unless told not to.
      'x-accel-buffering': 'no',
    });
    let open = true;
    const end = () => {
      if (!open) return;
      open = false;
      clearInterval(heartbeat);
      clearTimeout(expiry);
      detach();
      res.end();
    };
    const write = (chunk: string) => {
      if (!open) return;
      if (res.writableLength > MAX_BUFFERED_BYTES) return end();
      res.write(chunk);
    };
    const stream: InboxStream = { send: (event) => write(eventFrame(event)), end, session };
    const detach = this.notifier.attach(session.email, stream);
    const heartbeat = setInterval(() => write(': heartbeat\n\n'), HEARTBEAT_MS).unref();
    const expiry = setTimeout(end, Math.min(MAX_TIMER_MS, Math.max(0, session.expiresAt.getTime() - this.clock.now().getTime()))).unref();
    // The response closes when the page goes away (tab closed, network lost) or after end().
    res.on('close', end);
    write('retry: 5000\n: connected\n\n');
  }
}

/** The message a requested link goes out as: what it is, how long it works, its one button. No approval behind it. */
function signInLinkCard(email: string, url: string, ttlMinutes: number): Card {
  return {
    approvalKey: `sign-in:${email}`,
    kind: 'sign-in-link',
    revision: 1,
    title: 'Your new sign-in link to the approvals inbox',
    requester: {},
    fields: [
      { label: 'Works', value: `once, for ${ttlMinutes === 1 ? '1 minute' : `${ttlMinutes} minutes`}` },
      { label: 'Did not ask for it?', value: 'Ignore it, and do not forward it: whoever opens the link is signed in as you.' },
    ],
    lineItems: [],
    flags: [],
    actions: [{ type: 'link', label: 'Open your approvals', url }],
  };
}
