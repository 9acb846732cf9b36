import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import type { Principal, TokenStore } from './sandbox-auth.js';
import type { CallLog } from './sandbox-calls.js';
import type { SandboxClock } from './sandbox-clock.js';
import { SandboxError, type ReportRecord, type SandboxCompany } from './sandbox-company.js';
import type { EndpointGroup, FaultInjector } from './sandbox-faults.js';
import type { SandboxEvents } from './sandbox-event-sender.js';
import { essError, oauthError, scimError, v3Error, v4Error } from './sandbox-format.js';
import type { OtpStore } from './sandbox-otp.js';
import type { SnapshotStore } from './sandbox-paging.js';
import type { SeededRandom } from './sandbox-random.js';

/** Which documented error shape an endpoint answers with. */
export type ErrorFamily = 'v3' | 'v4' | 'scim' | 'oauth' | 'admin' | 'ess';

export interface RouteMeta {
  readonly group: EndpointGroup;
  readonly family: ErrorFamily;
  /** Requires `Authorization: Bearer <valid access token>`. */
  readonly auth: boolean;
  /** The v3 report list: the only endpoint the malformed-page fault hits. */
  readonly reportList?: boolean;
}

export interface SandboxSettings {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly omitNextPageWhenLast: boolean;
  readonly listingConsistency: 'snapshot' | 'live';
  readonly requireJsonAccept: boolean;
  /** Redirect URIs registered for the app; undefined accepts any absolute http(s) URI. */
  readonly redirectUris: readonly string[] | undefined;
  /** Scopes of app tokens (the client_credentials grant). */
  readonly appScopes: readonly string[];
}

/** Per-request bookkeeping set by the sandbox's onRequest hook. */
export interface RequestState {
  readonly key: string;
  readonly meta: RouteMeta | undefined;
  principal?: Principal;
  /** Scopes of the request's access token. */
  scopes?: ReadonlySet<string>;
  malformed?: boolean;
  statusRecorded?: boolean;
}

/** Everything route modules need; built once by ConcurSandbox. */
export interface SandboxContext {
  readonly company: SandboxCompany;
  readonly tokens: TokenStore;
  readonly otp: OtpStore;
  readonly faults: FaultInjector;
  readonly clock: SandboxClock;
  readonly calls: CallLog;
  readonly snapshots: SnapshotStore<ReportRecord>;
  readonly settings: SandboxSettings;
  readonly listingRng: SeededRandom;
  readonly events: SandboxEvents;
  readonly routes: Map<string, RouteMeta>;
  readonly requests: WeakMap<FastifyRequest, RequestState>;
  baseUrl(): string;
}

/** Registers a route and its metadata (group, error family, auth) under `METHOD /pattern`. */
export function addRoute(
  app: FastifyInstance,
  ctx: SandboxContext,
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  url: string,
  meta: RouteMeta,
  handler: RouteHandlerMethod,
): void {
  ctx.routes.set(`${method} ${url}`, meta);
  app.route({ method, url, handler });
}

/** The authenticated principal of a request whose route requires auth. */
export function principalOf(ctx: SandboxContext, request: FastifyRequest): Principal {
  const p = ctx.requests.get(request)?.principal;
  if (!p) throw new SandboxError(401, 'no authenticated principal');
  return p;
}

/** Whether the request's access token carries `scope`. */
export function hasScope(ctx: SandboxContext, request: FastifyRequest, scope: string): boolean {
  return ctx.requests.get(request)?.scopes?.has(scope) ?? false;
}

/** Sends `message` with `status` in the documented error shape of `family`. */
export function sendError(
  ctx: SandboxContext,
  request: FastifyRequest,
  reply: FastifyReply,
  family: ErrorFamily,
  status: number,
  message: string,
): FastifyReply {
  const now = ctx.clock.nowMs();
  const path = request.url.split('?')[0] ?? request.url;
  let body: unknown;
  switch (family) {
    case 'v4':
      body = v4Error(status, message, path, now);
      break;
    case 'scim':
      body = scimError(status, message);
      break;
    case 'oauth':
      body = oauthError(0, status === 401 ? 'invalid_client' : 'invalid_request', message);
      break;
    case 'admin':
      body = { error: message, status };
      break;
    case 'ess':
      body = essError(status, message, path, now);
      break;
    default:
      body = v3Error(message, now);
  }
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

export type Query = Record<string, string | string[] | undefined>;

/**
 * Query parameters with case-insensitive names (Concur's v3 stack binds them that way); a
 * parameter given twice is refused rather than silently picking one.
 */
export class QueryParams {
  private readonly values = new Map<string, string>();

  constructor(query: unknown) {
    for (const [name, value] of Object.entries((query ?? {}) as Query)) {
      if (Array.isArray(value)) throw new SandboxError(400, `query parameter ${name} was given more than once`);
      if (value !== undefined) this.values.set(name.toLowerCase(), value);
    }
  }

  get(name: string): string | undefined {
    const v = this.values.get(name.toLowerCase());
    return v === '' ? undefined : v;
  }

  has(name: string): boolean {
    return this.values.has(name.toLowerCase());
  }

  int(name: string, fallback: number, min: number): number {
    const raw = this.get(name);
    if (raw === undefined) return fallback;
    if (!/^-?\d+$/.test(raw)) throw new SandboxError(400, `${name} must be an integer, got "${raw}"`);
    const n = Number(raw);
    if (n < min) throw new SandboxError(400, `${name} must be at least ${min}`);
    return n;
  }
}

/** The raw query string of a request (without `?`), as Concur echoes it into WorkflowActionUrl. */
export const rawQuery = (request: FastifyRequest): string => {
  const i = request.url.indexOf('?');
  return i < 0 ? '' : request.url.slice(i + 1);
};
