import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { SandboxAdmin } from './sandbox-admin.js';
import { registerAdminRoutes } from './sandbox-admin-routes.js';
import { APP_SCOPES, TokenStore } from './sandbox-auth.js';
import { CallLog, type CallCounts } from './sandbox-calls.js';
import { SandboxClock } from './sandbox-clock.js';
import { SandboxCompany, SandboxError, type ReportRecord } from './sandbox-company.js';
import { sendError, type RequestState, type RouteMeta, type SandboxContext, type SandboxSettings } from './sandbox-context.js';
import { SandboxEvents, type SandboxEventsOptions } from './sandbox-event-sender.js';
import { EventSubscriptions } from './sandbox-event-subscriptions.js';
import { registerEventRoutes } from './sandbox-events-routes.js';
import { registerExpenseRoutes } from './sandbox-expense-routes.js';
import { FaultInjector, type FaultInput } from './sandbox-faults.js';
import { rateLimitBody, reason } from './sandbox-format.js';
import { registerIdentityRoutes } from './sandbox-identity-routes.js';
import { registerSpendUserRoutes } from './sandbox-spend-user-routes.js';
import { registerAuthorizeRoutes } from './sandbox-authorize-routes.js';
import { registerOAuthRoutes } from './sandbox-oauth-routes.js';
import { OtpStore } from './sandbox-otp.js';
import { SnapshotStore } from './sandbox-paging.js';
import { SeededRandom, deriveSeed } from './sandbox-random.js';

export interface ConcurSandboxOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Seed of all generated data and fault draws. Default 1. */
  readonly seed?: number;
  /** Pending (A_PEND) reports to seed. Default 20. */
  readonly reports?: number;
  /** Reports in other states (A_NOTF, A_APPR, A_RESU, A_ACCO). Default ceil(reports / 4). */
  readonly otherReports?: number;
  /** Default 5. */
  readonly approvers?: number;
  /** Default 40. */
  readonly employees?: number;
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** The initial company refresh token. */
  readonly refreshToken?: string;
  /** Company UUID. */
  readonly companyId?: string;
  /** Company request token for the credtype=authtoken grant (valid 24 h of sandbox time). */
  readonly requestToken?: string;
  readonly faults?: FaultInput;
  /** Sandbox time at start; default a fixed time derived from the seed. */
  readonly clock?: string | number | Date;
  /** When true the clock moves only through advanceClock/setClock. Default false. */
  readonly freezeClock?: boolean;
  /** Default 3600. */
  readonly accessTokenLifetimeSeconds?: number;
  /** Lifetime of an authorization code from the consent page. Default 600 (RFC 6749's recommended maximum). */
  readonly authorizationCodeLifetimeSeconds?: number;
  /**
   * Redirect URIs registered for the app; `/oauth2/v0/authorize` refuses others without redirecting.
   * Default: none registered, any absolute http(s) URI is accepted.
   */
  readonly redirectUris?: readonly string[];
  /** Default true: each refresh token works once (its successor comes in the response). */
  readonly invalidateUsedRefreshTokens?: boolean;
  /** Default true: the last page has no NextPage key (as the doc's example); false sends null. */
  readonly omitNextPageWhenLast?: boolean;
  /**
   * Default true. When false, approve / sendBack / recall / reassign leave LastModifiedDate alone
   * (whether Concur bumps it on workflow steps is UNCONFIRMED, concur-api.md 10.1).
   */
  readonly workflowBumpsLastModified?: boolean;
  /** Manager approvals a report needs before it leaves A_PEND. Default 1. */
  readonly approvalLevels?: number;
  /** Status after the last manager approval. Default A_APPR (A_ACCO models a processor step). */
  readonly finalApprovalStatus?: string;
  /** `snapshot` (default): pages show reports as they were at the first page; `live`: as they are now. */
  readonly listingConsistency?: 'snapshot' | 'live';
  /** When true, v3 calls without `application/json` in Accept get 406 (Concur's default is UNCONFIRMED, maybe XML). */
  readonly requireJsonAccept?: boolean;
  /** Share of users whose work e-mail differs from the login ID. Default 0.1. */
  readonly emailDiffersFromLoginRate?: number;
  /**
   * Scopes app tokens (the client_credentials grant) carry. Default `events.topic.read
   * expense.report.read`: the ESS API and the expense topic. Without a topic's scope,
   * `GET /events/v4/topics` lists nothing; without `events.topic.read` the ESS API answers 403.
   */
  readonly appScopes?: readonly string[];
  /** ESS push events: signing key, mTLS, retries, step notifications and delivery faults (README "Events"). */
  readonly events?: SandboxEventsOptions;
  /** Share of approvers seeded with one expense delegate (another approver, can approve, gets approval e-mails). Default 0. */
  readonly delegateRate?: number;
}

export interface SandboxCredentials {
  readonly clientId: string;
  readonly clientSecret: string;
  /** The initial company refresh token; it stops working after its first use when rotation invalidates. */
  readonly refreshToken: string;
  readonly requestToken: string;
}

/** 2025-03-03T09:00:00Z plus up to ~41 days by seed: fixed per seed, never "now". */
const seededStart = (seed: number): number => Date.UTC(2025, 2, 3, 9, 0, 0) + (deriveSeed(seed, 7) % 1000) * 3_600_000;

/**
 * A local HTTP server speaking the subset of SAP Concur's API the plugin uses, over a seeded
 * company, with an admin back door, fault injection and call accounting. See README.md here.
 */
export class ConcurSandbox {
  readonly companyId: string;
  readonly credentials: SandboxCredentials;
  readonly admin: SandboxAdmin;
  /** ESS: subscriptions, the webhook sender, its counters and faults; `await sb.events.idle()` waits for deliveries to settle. */
  readonly events: SandboxEvents;
  private readonly app: FastifyInstance;
  private readonly ctx: SandboxContext;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sweeper: NodeJS.Timeout;
  private url = '';
  private closed = false;

  private constructor(options: ConcurSandboxOptions) {
    const seed = options.seed ?? 1;
    const setup = new SeededRandom(deriveSeed(seed, 0xc0ffee));
    const clock = new SandboxClock({ start: options.clock ?? seededStart(seed), followRealTime: !options.freezeClock });
    const reports = options.reports ?? 20;
    this.companyId = options.companyId ?? setup.uuid();
    this.credentials = {
      clientId: options.clientId ?? setup.uuid(),
      clientSecret: options.clientSecret ?? setup.chars(32, 'abcdefghijklmnopqrstuvwxyz0123456789'),
      refreshToken: options.refreshToken ?? setup.uuid(),
      requestToken: options.requestToken ?? setup.chars(32, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'),
    };
    const company = new SandboxCompany({
      seed: deriveSeed(seed, 0xda7a),
      companyId: this.companyId,
      reports,
      otherReports: options.otherReports ?? Math.ceil(reports / 4),
      approvers: options.approvers ?? 5,
      employees: options.employees ?? 40,
      emailDiffersFromLoginRate: options.emailDiffersFromLoginRate ?? 0.1,
      workflowBumpsLastModified: options.workflowBumpsLastModified ?? true,
      approvalLevels: options.approvalLevels ?? 1,
      finalApprovalStatus: options.finalApprovalStatus ?? 'A_APPR',
      delegateRate: options.delegateRate ?? 0,
      clock,
    });
    const tokens = new TokenStore({
      clock,
      accessTokenLifetimeSeconds: options.accessTokenLifetimeSeconds ?? 3600,
      refreshTokenLifetimeSeconds: 180 * 86_400,
      invalidateUsedRefreshTokens: options.invalidateUsedRefreshTokens ?? true,
      requestTokenLifetimeSeconds: 86_400,
      authorizationCodeLifetimeSeconds: options.authorizationCodeLifetimeSeconds ?? 600,
    });
    tokens.addCompanyRefreshToken(this.credentials.refreshToken);
    tokens.addRequestToken(this.credentials.requestToken);
    const settings: SandboxSettings = {
      clientId: this.credentials.clientId,
      clientSecret: this.credentials.clientSecret,
      omitNextPageWhenLast: options.omitNextPageWhenLast ?? true,
      listingConsistency: options.listingConsistency ?? 'snapshot',
      requireJsonAccept: options.requireJsonAccept ?? false,
      redirectUris: options.redirectUris,
      appScopes: options.appScopes ?? APP_SCOPES,
    };
    this.events = new SandboxEvents(new EventSubscriptions(this.credentials.clientId, this.companyId), company, clock, () => this.url, seed, options.events);
    this.ctx = {
      company,
      tokens,
      otp: new OtpStore(clock),
      faults: new FaultInjector(seed, options.faults),
      clock,
      calls: new CallLog(),
      snapshots: new SnapshotStore<ReportRecord>(),
      settings,
      listingRng: new SeededRandom(deriveSeed(seed, 0x5a0f)),
      events: this.events,
      routes: new Map(),
      requests: new WeakMap(),
      baseUrl: () => this.url,
    };
    this.admin = new SandboxAdmin(this.ctx);
    this.app = this.buildApp();
    this.sweeper = setInterval(() => tokens.sweep(), 60_000);
    this.sweeper.unref();
  }

  static async start(options: ConcurSandboxOptions = {}): Promise<ConcurSandbox> {
    const sandbox = new ConcurSandbox(options);
    await sandbox.listen(options.host ?? '127.0.0.1', options.port ?? 0);
    return sandbox;
  }

  /** `http://127.0.0.1:<port>`; also the `geolocation` every token response names. */
  get baseUrl(): string {
    return this.url;
  }

  calls(): CallCounts {
    return this.ctx.calls.snapshot();
  }

  /** How the refresh tokens were redeemed: attempts per issued token in issue order, and refusals (code 108). */
  refreshTokenUsage(): { readonly attempts: readonly number[]; readonly refused: number } {
    return this.ctx.tokens.refreshTokenUsage();
  }

  resetCalls(): void {
    this.ctx.calls.reset();
  }

  setFaults(faults: FaultInput): void {
    this.ctx.faults.set(faults);
  }

  /** Stops listening and destroys every socket, hung ones included. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.events.close();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    // Destroyed sockets emit 'close' a few ticks later; waiting for it lets calls() count the aborts.
    const closing = [...this.sockets].map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
    for (const s of this.sockets) s.destroy();
    await this.app.close();
    await Promise.all(closing);
    this.ctx.snapshots.clear();
  }

  private async listen(host: string, port: number): Promise<void> {
    await this.app.listen({ host, port });
    const address = this.app.server.address();
    if (address === null || typeof address === 'string') throw new Error('the sandbox did not get a TCP address');
    const shownHost = host.includes(':') ? `[${host}]` : host;
    this.url = `http://${shownHost}:${address.port}`;
  }

  private buildApp(): FastifyInstance {
    const app = Fastify({ logger: false, forceCloseConnections: true, exposeHeadRoutes: false });
    app.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    });
    app.addHook('onRequest', (request, reply) => this.onRequest(request, reply));
    app.addHook('onSend', async (request, reply, payload) => {
      const state = this.ctx.requests.get(request);
      if (state && !state.statusRecorded && state.meta?.group !== 'admin') {
        state.statusRecorded = true;
        this.ctx.calls.finished(state.key, reply.statusCode);
      }
      return payload;
    });
    app.setErrorHandler((error: FastifyError | SandboxError, request, reply) => {
      const status = error instanceof SandboxError ? error.status : (error.statusCode ?? 500);
      const family = this.ctx.requests.get(request)?.meta?.family ?? 'v3';
      const message = status >= 500 && !(error instanceof SandboxError) ? reason(status) : error.message;
      return sendError(this.ctx, request, reply, family, status, message);
    });
    app.setNotFoundHandler((request, reply) =>
      sendError(this.ctx, request, reply, 'v3', 404, `No such resource: ${request.method} ${request.url.split('?')[0] ?? ''}`),
    );
    registerOAuthRoutes(app, this.ctx);
    registerAuthorizeRoutes(app, this.ctx);
    registerExpenseRoutes(app, this.ctx);
    registerIdentityRoutes(app, this.ctx);
    registerEventRoutes(app, this.ctx);
    registerSpendUserRoutes(app, this.ctx);
    registerAdminRoutes(app, this.ctx, this.admin, () => ({
      baseUrl: this.url,
      companyId: this.companyId,
      ...this.credentials,
    }));
    return app;
  }

  /** Correlation id, call accounting, faults, then auth: in that order, for every request. */
  private async onRequest(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const pattern = request.routeOptions.url;
    const meta: RouteMeta | undefined = pattern ? this.ctx.routes.get(`${request.method} ${pattern}`) : undefined;
    const key = meta && pattern ? `${request.method} ${pattern}` : `${request.method} (unmatched)`;
    const state: RequestState = { key, meta };
    this.ctx.requests.set(request, state);
    // A caller that names a correlation id (a follow-up of a push event) gets it back, and it is logged.
    const asked = request.headers['concur-correlationid'];
    reply.header('concur-correlationid', typeof asked === 'string' && asked ? asked : randomUUID());
    if (typeof asked === 'string' && asked && meta?.group !== 'admin') this.ctx.calls.correlated(key, asked);
    const deprecated = this.ctx.faults.deprecation(key);
    if (deprecated) reply.header('x-api-warn', deprecated.warning).header('sunset', deprecated.sunset);
    if (meta?.group !== 'admin') {
      this.ctx.calls.arrived(key);
      reply.raw.once('close', () => {
        if (!state.statusRecorded) {
          state.statusRecorded = true;
          this.ctx.calls.finished(key, 'aborted');
        }
      });
    }
    if (!meta) return undefined;

    const decision = this.ctx.faults.decide(meta.group, meta.reportList === true);
    if (decision.latencyMs > 0) await this.sleep(decision.latencyMs);
    const outcome = decision.outcome;
    switch (outcome.kind) {
      case 'hang':
        // Hold the socket open and never answer; close() destroys it.
        return new Promise<never>(() => undefined);
      case 'late':
        await this.sleep(outcome.delayMs);
        break;
      case '429':
        return reply
          .code(429)
          .header('retry-after', String(outcome.retryAfterSeconds))
          .type('application/json; charset=utf-8')
          .send(rateLimitBody(request.url.split('?')[0] ?? request.url, this.ctx.clock.nowMs()));
      case '503':
        return sendError(this.ctx, request, reply, meta.family, 503, 'Service Unavailable');
      case '504':
        return sendError(this.ctx, request, reply, meta.family, 504, 'Gateway Timeout');
      case 'malformed':
        state.malformed = true;
        break;
      case 'none':
        break;
    }

    if (meta.auth) {
      const check = this.ctx.tokens.check(request.headers.authorization);
      if (!check.ok) {
        const message =
          check.reason === 'missing'
            ? 'Authorization: Bearer <access token> is required'
            : check.reason === 'expired'
              ? 'The access token has expired'
              : 'The access token is not valid';
        reply.header('www-authenticate', `Bearer error="invalid_token", error_description="${message}"`);
        return sendError(this.ctx, request, reply, meta.family, 401, message);
      }
      state.principal = check.principal;
      state.scopes = check.scopes;
      // An App token (client_credentials) is for the ESS API only; Concur's other APIs want a user or company.
      if (check.principal.kind === 'app' && meta.group !== 'events') {
        return sendError(this.ctx, request, reply, meta.family, 403, 'an App token (client_credentials grant) cannot call this API');
      }
    }
    if (this.ctx.settings.requireJsonAccept && meta.family === 'v3') {
      const accept = String(request.headers.accept ?? '').toLowerCase();
      if (!accept.includes('application/json')) {
        return sendError(this.ctx, request, reply, 'v3', 406, 'Send Accept: application/json (the default format is not JSON)');
      }
    }
    return undefined;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }
}

/** Starts a sandbox on loopback and resolves once it listens. */
export function startConcurSandbox(options: ConcurSandboxOptions = {}): Promise<ConcurSandbox> {
  return ConcurSandbox.start(options);
}
