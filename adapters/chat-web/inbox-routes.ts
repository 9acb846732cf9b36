import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApprovalLookup, Clock, inject, injectable, Logger, type HttpRoutes } from '../../core/index.js';
import { createCardRenderer } from '../../core/index.js';
import { CONTENT_SECURITY_POLICY, INBOX_CSS, INBOX_JS, inboxHtml, messageHtml, signingInHtml } from './inbox-page.js';
import { signToken, verifyToken } from './signed-links.js';
import { inboxItem, WebInboxNotifier, WebInboxSettings, type InboxEvent, type InboxStream } from './web-inbox-notifier.js';

const SESSION_COOKIE = 'ah_inbox_session';
/** Comment lines keep proxies and load balancers from closing an idle stream (most cut at 30-60 s). */
const HEARTBEAT_MS = 15_000;
/** A page this far behind is not reading; its stream is closed and it reloads when it reconnects. */
const MAX_BUFFERED_BYTES = 1 << 20;
/** Longest a timer may be set for in Node (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const HTML = 'text/html; charset=utf-8';

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const SIGNED_OUT = {
  title: 'Sign in to see your approvals',
  text: 'Open the sign-in link you were sent. Links and sessions expire; ask for a new link if yours no longer works.',
};
const LINK_REFUSED = {
  expired: { title: 'This sign-in link has expired', text: 'Ask for a new sign-in link; each one works for a limited time.' },
  invalid: { title: 'This sign-in link is not valid', text: 'Open the link exactly as you received it, or ask for a new one.' },
};

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
        ? { key: event.key, revision: event.revision, title: event.title, outcome: event.outcome }
        : { key: event.key, revision: event.revision, title: event.title };
  // JSON.stringify escapes CR and LF, the only line breaks SSE knows, so one `data:` line always holds the event.
  return `event: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * The web inbox's HTTP routes, under `/inbox`:
 * - `GET /inbox/login?token=…`: a signed, expiring sign-in link becomes a signed, expiring
 *   HttpOnly SameSite=Strict session cookie (scoped to `/inbox`); a bad link gets a 401 page.
 * - `GET /inbox`, `/inbox/app.js`, `/inbox/app.css`: the page (401 without a session) and its assets.
 * - `GET /inbox/api/approvals`: the session's pending approvals, read from the queue.
 * - `GET /inbox/api/events`: server-sent events for the session's e-mail only (`approval`, `closed`, `reminder`).
 * A session names one e-mail and every read is filtered by it (invariant 4). Everything is a GET
 * that changes nothing in the source, and the cookie is Strict, so there is nothing to forge.
 */
@injectable()
export class InboxRoutes implements HttpRoutes {
  readonly id: string;
  private readonly render = createCardRenderer(new Map());

  constructor(
    @inject(WebInboxSettings) private readonly settings: WebInboxSettings,
    @inject(WebInboxNotifier) private readonly notifier: WebInboxNotifier,
    @inject(ApprovalLookup) private readonly lookup: ApprovalLookup,
    @inject(Clock) private readonly clock: Clock,
    @inject(Logger) private readonly logger: Logger,
  ) {
    this.id = `${settings.instanceId}:inbox`;
  }

  register(app: FastifyInstance): void {
    app.addHook('onSend', async (_request, reply, payload) => {
      reply.headers(SECURITY_HEADERS);
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
      return payload;
    });
    // Open event streams would keep the server from closing; pages reconnect to the next host.
    app.addHook('preClose', async () => this.notifier.endStreams());

    app.get('/inbox/login', async (request, reply) => this.login(request, reply));
    app.get('/inbox', async (request, reply) => {
      if (!this.session(request)) return reply.code(401).type(HTML).send(messageHtml(SIGNED_OUT.title, SIGNED_OUT.text));
      return reply.type(HTML).send(inboxHtml());
    });
    app.get('/inbox/app.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(INBOX_JS));
    app.get('/inbox/app.css', async (_request, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'no-cache').send(INBOX_CSS));
    app.get('/inbox/api/approvals', async (request, reply) => {
      const session = this.session(request);
      if (!session) return reply.code(401).send({ error: 'not signed in' });
      const rows = await this.lookup.waitingOn(session.email, { limit: 500 });
      // waitingOn already filters by approver; the check is repeated here because a leak would be silent.
      const mine = rows.filter((row) => row.approvers.some((a) => a.email?.toLowerCase() === session.email));
      return reply.send({ email: session.email, approvals: mine.map((row) => inboxItem(this.render(row))) });
    });
    app.get('/inbox/api/events', async (request, reply) => {
      const session = this.session(request);
      if (!session) return reply.code(401).send({ error: 'not signed in' });
      this.stream(session, reply);
      return reply;
    });
  }

  private login(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const raw = (request.query as Record<string, unknown> | undefined)?.token;
    const now = this.clock.now();
    const link = verifyToken(this.settings.signingKey, 'link', typeof raw === 'string' ? raw : '', now);
    if (!link.ok) {
      this.logger.warn({ channel: this.settings.instanceId, reason: link.reason }, 'web inbox sign-in refused');
      const page = link.reason === 'expired' ? LINK_REFUSED.expired : LINK_REFUSED.invalid;
      return reply.code(401).type(HTML).send(messageHtml(page.title, page.text));
    }
    const maxAgeSeconds = Math.floor(this.settings.sessionTtlMs / 1000);
    const session = signToken(this.settings.signingKey, 'session', link.email, new Date(now.getTime() + maxAgeSeconds * 1000));
    // Secure when people reach us over https, even if a proxy in front forgets X-Forwarded-Proto.
    const secure = request.protocol === 'https' || this.settings.publicUrl.startsWith('https:') ? '; Secure' : '';
    reply.header('set-cookie', `${SESSION_COOKIE}=${session}; Path=/inbox; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure}`);
    this.logger.info({ channel: this.settings.instanceId, email: link.email }, 'web inbox sign-in');
    return reply.type(HTML).send(signingInHtml());
  }

  /** The signed-in person, if the request carries a good, unexpired session cookie. */
  private session(request: FastifyRequest): { email: string; expiresAt: Date } | undefined {
    const token = cookieValue(request.headers.cookie, SESSION_COOKIE);
    if (!token) return undefined;
    const verified = verifyToken(this.settings.signingKey, 'session', token, this.clock.now());
    return verified.ok ? { email: verified.email, expiresAt: verified.expiresAt } : undefined;
  }

  /** Serves one page's event stream until the page goes away, the session expires or the host stops. */
  private stream(session: { email: string; expiresAt: Date }, reply: FastifyReply): void {
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
    const stream: InboxStream = { send: (event) => write(eventFrame(event)), end };
    const detach = this.notifier.attach(session.email, stream);
    const heartbeat = setInterval(() => write(': heartbeat\n\n'), HEARTBEAT_MS).unref();
    const expiry = setTimeout(end, Math.min(MAX_TIMER_MS, Math.max(0, session.expiresAt.getTime() - this.clock.now().getTime()))).unref();
    // The response closes when the page goes away (tab closed, network lost) or after end().
    res.on('close', end);
    write('retry: 5000\n: connected\n\n');
  }
}
