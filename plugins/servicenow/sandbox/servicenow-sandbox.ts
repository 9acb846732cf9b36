import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ServiceNowSandboxAdmin } from './sandbox-admin.js';
import { TokenStore } from './sandbox-auth.js';
import { SandboxClock } from './sandbox-clock.js';
import type { SandboxContext } from './sandbox-context.js';
import { FaultInjector, type EndpointGroup, type FaultInput } from './sandbox-faults.js';
import { SandboxError, SandboxInstance } from './sandbox-instance.js';
import type { InvalidQueryMode, TieOrder } from './sandbox-query.js';
import { SeededRandom, deriveSeed } from './sandbox-random.js';
import { registerAdminRoutes, registerOAuthRoutes, registerTableRoutes, sendError } from './sandbox-routes.js';
import { seedInstance } from './sandbox-seed.js';

export interface ServiceNowSandboxOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Seed of all generated data, tie orders and fault draws. Default 1. */
  readonly seed?: number;
  /** People besides the integration user. Default 12. */
  readonly users?: number;
  /** How many of them approve. Default 4. */
  readonly approvers?: number;
  /** Seeded requested items (sc_req_item), each with one or two approval records. Default 8. */
  readonly requestedItems?: number;
  /** Seeded change requests. Default 4. */
  readonly changeRequests?: number;
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** user_name of the integration user: basic auth, the password grant, and what client_credentials acts as. */
  readonly username?: string;
  readonly password?: string;
  /** Password of every other seeded user (for user-level password grants). Default `sandbox`. */
  readonly userPassword?: string;
  /** Sandbox time at start; default a fixed time derived from the seed. */
  readonly clock?: string | number | Date;
  /** When true the clock moves only through the admin API. Default false. */
  readonly freezeClock?: boolean;
  /** The API user's time zone, minutes ahead of UTC: display values of date/time fields and gs.dateGenerate. Default 0. */
  readonly userTimeZoneOffsetMinutes?: number;
  /** Default 1800. */
  readonly accessTokenLifetimeSeconds?: number;
  /** Default 8,640,000 (100 days). */
  readonly refreshTokenLifetimeSeconds?: number;
  /** glide.oauth.inbound.client.credential.grant_type.enabled (false in a real instance until set). Default true. */
  readonly clientCredentialsEnabled?: boolean;
  /** Records per page without sysparm_limit. Default 10000. */
  readonly defaultLimit?: number;
  /** Unknown field or operator in sysparm_query: `error` (default, 400), `ignore` (ServiceNow's default), `no_rows`. */
  readonly invalidQuery?: InvalidQueryMode;
  /** Order of records equal on every ORDERBY field. Default `unstable`. */
  readonly tieOrder?: TieOrder;
  /** X-RateLimit-Limit sent with 429s. Default 5000. */
  readonly rateLimitPerHour?: number;
  readonly faults?: FaultInput;
}

export interface ServiceNowSandboxCredentials {
  readonly clientId: string;
  readonly clientSecret: string;
  /** The integration user (basic auth and password grant). */
  readonly username: string;
  readonly password: string;
  /** Password of every other seeded user. */
  readonly userPassword: string;
}

/** 2026-03-02T09:00:00Z plus up to ~41 days by seed: fixed per seed, never "now". */
const seededStart = (seed: number): number => Date.UTC(2026, 2, 2, 9, 0, 0) + (deriveSeed(seed, 7) % 1000) * 3_600_000;

/** sys_id named by X-RateLimit-Rule. */
const RATE_LIMIT_RULE = '6a3e0c1f1b2e4d5c8f9a0b1c2d3e4f50';

/**
 * A local HTTP server speaking the subset of ServiceNow's Table API and OAuth endpoint the ServiceNow
 * plugin uses, over an in-memory instance, with an admin back door and fault injection. See README.md.
 */
export class ServiceNowSandbox {
  readonly credentials: ServiceNowSandboxCredentials;
  readonly admin: ServiceNowSandboxAdmin;
  private readonly ctx: SandboxContext;
  private readonly app: FastifyInstance;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private baseUrl = '';
  private closed = false;

  private constructor(options: ServiceNowSandboxOptions) {
    const seed = options.seed ?? 1;
    const setup = new SeededRandom(deriveSeed(seed, 0x5e7));
    const clock = new SandboxClock(options.clock ?? seededStart(seed), !options.freezeClock);
    this.credentials = {
      clientId: options.clientId ?? setup.sysId(),
      clientSecret: options.clientSecret ?? setup.chars(24, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'),
      username: options.username ?? 'approvals.integration',
      password: options.password ?? setup.chars(20, 'abcdefghijklmnopqrstuvwxyz0123456789'),
      userPassword: options.userPassword ?? 'sandbox',
    };
    const rng = new SeededRandom(deriveSeed(seed, 0xda7a));
    const instance = new SandboxInstance({ clock, rng, userTimeZoneOffsetMinutes: options.userTimeZoneOffsetMinutes ?? 0 });
    seedInstance(instance, {
      users: options.users ?? 12,
      approvers: options.approvers ?? 4,
      requestedItems: options.requestedItems ?? 8,
      changeRequests: options.changeRequests ?? 4,
      integrationUser: this.credentials.username,
    });
    const tokens = new TokenStore({
      clock,
      rng: new SeededRandom(deriveSeed(seed, 0x70c)),
      accessTokenLifetimeSeconds: options.accessTokenLifetimeSeconds ?? 1800,
      refreshTokenLifetimeSeconds: options.refreshTokenLifetimeSeconds ?? 8_640_000,
    });
    for (const user of instance.rows('sys_user').values()) {
      tokens.setPassword(user.user_name!, user.user_name === this.credentials.username ? this.credentials.password : this.credentials.userPassword);
    }
    const defaultLimit = options.defaultLimit ?? 10_000;
    if (!Number.isInteger(defaultLimit) || defaultLimit < 1) throw new RangeError('defaultLimit must be a whole number >= 1');
    this.ctx = {
      instance,
      tokens,
      faults: new FaultInjector(seed, options.faults),
      settings: {
        clientId: this.credentials.clientId,
        clientSecret: this.credentials.clientSecret,
        oauthApplicationUser: this.credentials.username,
        clientCredentialsEnabled: options.clientCredentialsEnabled ?? true,
        defaultLimit,
        invalidQuery: options.invalidQuery ?? 'error',
        tieOrder: options.tieOrder ?? 'unstable',
        rateLimitPerHour: options.rateLimitPerHour ?? 5000,
      },
      listingRng: new SeededRandom(deriveSeed(seed, 0x71e)),
      calls: new Map(),
      listHook: undefined,
      baseUrl: () => this.baseUrl,
    };
    this.admin = new ServiceNowSandboxAdmin(this.ctx);
    this.app = this.buildApp();
  }

  static async start(options: ServiceNowSandboxOptions = {}): Promise<ServiceNowSandbox> {
    const sandbox = new ServiceNowSandbox(options);
    await sandbox.listen(options.host ?? '127.0.0.1', options.port ?? 0);
    return sandbox;
  }

  /** The instance URL, `http://127.0.0.1:<port>` (what `https://<instance>.service-now.com` is in production). */
  get url(): string {
    return this.baseUrl;
  }

  /** Stops listening and destroys every open socket. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    await this.app.close();
  }

  private async listen(host: string, port: number): Promise<void> {
    await this.app.listen({ host, port });
    const address = this.app.server.address();
    if (address === null || typeof address === 'string') throw new Error('the sandbox did not get a TCP address');
    this.baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
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
    app.setErrorHandler((error: FastifyError | SandboxError, _request, reply) => {
      if (error instanceof SandboxError) return sendError(reply, error.status, error.message, error.detail);
      const status = error.statusCode ?? 500;
      return sendError(reply, status, status >= 500 ? 'Internal Server Error' : error.message);
    });
    app.setNotFoundHandler((_request, reply) => sendError(reply, 400, 'Requested URI does not represent any resource'));
    registerTableRoutes(app, this.ctx);
    registerOAuthRoutes(app, this.ctx);
    registerAdminRoutes(app, this.admin);
    return app;
  }

  /** Call accounting, faults, then auth (Table API only), for every request. */
  private async onRequest(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const route = request.routeOptions.url ?? '';
    const group: EndpointGroup | undefined = route.startsWith('/api/now/table/')
      ? 'table'
      : route === '/oauth_token.do'
        ? 'token'
        : route.startsWith('/_admin/')
          ? 'admin'
          : undefined;
    if (group !== 'admin') {
      const params = request.params as { table?: string; sysId?: string };
      const key =
        group === 'table'
          ? `${request.method} /api/now/table/${params.table ?? ''}${params.sysId ? '/:sys_id' : ''}`
          : `${request.method} ${route || '(unmatched)'}`;
      this.ctx.calls.set(key, (this.ctx.calls.get(key) ?? 0) + 1);
    }
    if (!group) return undefined;

    const decision = this.ctx.faults.decide(group);
    if (decision.latencyMs > 0) await this.sleep(decision.latencyMs);
    const outcome = decision.outcome;
    if (outcome.kind === '429') {
      const reset = Math.floor(this.ctx.instance.clock.nowMs() / 1000) + outcome.retryAfterSeconds;
      reply
        .header('retry-after', String(outcome.retryAfterSeconds))
        .header('x-ratelimit-limit', String(this.ctx.settings.rateLimitPerHour))
        .header('x-ratelimit-reset', String(reset))
        .header('x-ratelimit-rule', RATE_LIMIT_RULE);
      return sendError(reply, 429, 'Rate limit exceeded', `Too many requests: the rule allows ${this.ctx.settings.rateLimitPerHour} an hour`);
    }
    if (outcome.kind === '500') return sendError(reply, 500, 'Internal Server Error', 'fault injected by the sandbox');
    if (outcome.kind === '503') return sendError(reply, 503, 'Service Unavailable', 'fault injected by the sandbox');

    if (group === 'table') {
      const check = this.ctx.tokens.check(request.headers.authorization);
      if (!check.ok) {
        reply.header('www-authenticate', 'BASIC realm="Service-now"');
        return sendError(
          reply,
          401,
          'User Not Authenticated',
          check.reason === 'missing'
            ? 'Required to provide Auth information'
            : check.reason === 'expired'
              ? 'The access token has expired'
              : 'Invalid credentials or token',
        );
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

/** Starts a sandbox on loopback; `url`, `credentials`, `admin` and `close()` are what callers use. */
export function startServiceNowSandbox(options: ServiceNowSandboxOptions = {}): Promise<ServiceNowSandbox> {
  return ServiceNowSandbox.start(options);
}
