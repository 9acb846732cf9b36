import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServiceNowSandboxAdmin, CreateApprovalsSpec } from './sandbox-admin.js';
import type { SandboxContext } from './sandbox-context.js';
import type { FaultInput } from './sandbox-faults.js';
import { SandboxError } from './sandbox-instance.js';
import { matches, parseQuery, sortRows } from './sandbox-query.js';
import { renderRow, type DisplayMode } from './sandbox-render.js';
import { tableDef } from './sandbox-schema.js';

/** ServiceNow's REST error body: `{"error":{"message","detail"},"status":"failure"}`. */
export function sendError(reply: FastifyReply, status: number, message: string, detail: string | null = null): FastifyReply {
  return reply.code(status).type('application/json;charset=UTF-8').send({ error: { message, detail }, status: 'failure' });
}

type Query = Record<string, string | undefined>;

function flag(q: Query, name: string): boolean {
  return (q[name] ?? '').toLowerCase() === 'true';
}

function wholeNumber(q: Query, name: string, min: number): number | undefined {
  const raw = q[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new SandboxError(400, `Invalid ${name}`, `${name} must be a whole number >= ${min}, got "${raw}"`);
  return Number(raw);
}

function displayMode(q: Query): DisplayMode {
  const raw = (q.sysparm_display_value ?? 'false').toLowerCase();
  if (raw !== 'true' && raw !== 'false' && raw !== 'all') throw new SandboxError(400, 'Invalid sysparm_display_value', `true, false or all, got "${raw}"`);
  return raw;
}

function fieldList(q: Query): string[] | undefined {
  const raw = q.sysparm_fields;
  if (raw === undefined || raw.trim() === '') return undefined;
  return raw
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
}

function knownTable(table: string): void {
  if (!tableDef(table)) throw new SandboxError(400, `Invalid table ${table}`);
}

/**
 * `Link: <…offset=0…>;rel="first",<…>;rel="prev",<…>;rel="next",<…>;rel="last"`: absolute URLs with the
 * request's own parameters and sysparm_offset / sysparm_limit set; prev and next only where there is one;
 * no header when everything fits on the first page (docs/servicenow-api.md section 2.4).
 */
function linkHeader(base: string, path: string, query: Query, offset: number, limit: number, total: number): string | undefined {
  if (offset === 0 && total <= limit) return undefined;
  const url = (at: number): string => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && k !== 'sysparm_offset' && k !== 'sysparm_limit') params.append(k, v);
    params.append('sysparm_offset', String(at));
    params.append('sysparm_limit', String(limit));
    return `${base}${path}?${params.toString()}`;
  };
  const last = total === 0 ? 0 : Math.floor((total - 1) / limit) * limit;
  const links = [`<${url(0)}>;rel="first"`];
  if (offset > 0) links.push(`<${url(Math.max(0, offset - limit))}>;rel="prev"`);
  if (offset + limit < total) links.push(`<${url(offset + limit)}>;rel="next"`);
  links.push(`<${url(last)}>;rel="last"`);
  return links.join(',');
}

export function registerTableRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  app.get('/api/now/table/:table', async (request: FastifyRequest<{ Params: { table: string }; Querystring: Query }>, reply) => {
    const { table } = request.params;
    knownTable(table);
    const q = request.query;
    const instance = ctx.instance;
    const display = displayMode(q);
    const limit = wholeNumber(q, 'sysparm_limit', 1) ?? ctx.settings.defaultLimit;
    const offset = wholeNumber(q, 'sysparm_offset', 0) ?? 0;
    const { query, noRows } = parseQuery(instance, table, q.sysparm_query, ctx.settings.invalidQuery);
    const matching = noRows ? [] : [...instance.rows(table).values()].filter((row) => matches(instance, table, row, query));
    const sorted = sortRows(instance, table, matching, query, ctx.settings.tieOrder, ctx.listingRng.uint32());
    const page = sorted.slice(offset, offset + limit);
    const options = { display, excludeReferenceLink: flag(q, 'sysparm_exclude_reference_link'), fields: fieldList(q), baseUrl: ctx.baseUrl() };
    const result = page.map((row) => renderRow(instance, table, row, options));
    ctx.listHook?.({ table, offset, limit, total: sorted.length, sysIds: page.map((r) => r.sys_id!) });
    if (!flag(q, 'sysparm_suppress_pagination_header')) {
      const link = linkHeader(ctx.baseUrl(), request.url.split('?')[0]!, q, offset, limit, sorted.length);
      if (link) reply.header('link', link);
    }
    if (!flag(q, 'sysparm_no_count')) reply.header('x-total-count', String(sorted.length));
    return reply.type('application/json;charset=UTF-8').send({ result });
  });

  app.get('/api/now/table/:table/:sysId', async (request: FastifyRequest<{ Params: { table: string; sysId: string }; Querystring: Query }>, reply) => {
    const { table, sysId } = request.params;
    knownTable(table);
    const q = request.query;
    const row = ctx.instance.get(table, sysId);
    if (!row) return sendError(reply, 404, 'No Record found', "Record doesn't exist or ACL restricts the record retrieval");
    const result = renderRow(ctx.instance, table, row, {
      display: displayMode(q),
      excludeReferenceLink: flag(q, 'sysparm_exclude_reference_link'),
      fields: fieldList(q),
      baseUrl: ctx.baseUrl(),
    });
    return reply.type('application/json;charset=UTF-8').send({ result });
  });
}

/** RFC 6749 5.2-style token error; ServiceNow's own bodies for these cases are UNCONFIRMED (README.md). */
function tokenError(reply: FastifyReply, status: number, error: string, description: string): FastifyReply {
  return reply.code(status).type('application/json;charset=UTF-8').send({ error, error_description: description });
}

export function registerOAuthRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  app.post('/oauth_token.do', async (request, reply) => {
    const type = String(request.headers['content-type'] ?? '');
    if (!type.startsWith('application/x-www-form-urlencoded') || typeof request.body !== 'object' || request.body === null) {
      return tokenError(reply, 400, 'invalid_request', 'send the parameters form-encoded (application/x-www-form-urlencoded)');
    }
    const body = request.body as Record<string, string | undefined>;
    const s = ctx.settings;
    const denied = (): FastifyReply => tokenError(reply, 401, 'server_error', 'access_denied');
    if (body.client_id !== s.clientId || body.client_secret !== s.clientSecret) return denied();
    let grant;
    switch (body.grant_type) {
      case 'password': {
        const user = body.username ?? '';
        if (!ctx.tokens.passwordMatches(user, body.password ?? '')) return denied();
        grant = ctx.tokens.passwordGrant(s.clientId, user);
        break;
      }
      case 'refresh_token':
        grant = ctx.tokens.refreshGrant(s.clientId, body.refresh_token ?? '');
        if (!grant) return denied();
        break;
      case 'client_credentials':
        if (!s.clientCredentialsEnabled) return denied();
        grant = ctx.tokens.clientCredentialsGrant(s.clientId, s.oauthApplicationUser);
        break;
      default:
        return tokenError(reply, 400, 'unsupported_grant_type', `grant_type "${body.grant_type ?? ''}" is not supported`);
    }
    return reply.type('application/json;charset=UTF-8').send({
      access_token: grant.accessToken,
      ...(grant.refreshToken ? { refresh_token: grant.refreshToken } : {}),
      scope: 'useraccount',
      token_type: 'Bearer',
      expires_in: grant.expiresIn,
    });
  });
}

/**
 * The admin API over HTTP, for a sandbox running as its own process (no auth, not counted, never faulted
 * unless `scope` names `admin`):
 *   GET    /_admin/state                          now, users, approvals per state
 *   POST   /_admin/approvals                      CreateApprovalsSpec → {tasks, approvals}
 *   POST   /_admin/approvals/:id/:action          approve | reject | cancel {comment?}; reassign {approver}
 *   DELETE /_admin/records/:table/:id
 *   POST   /_admin/touch                          {sysIds, fields?, table?} → {sys_updated_on}
 *   POST   /_admin/storm                          {requests, retryAfterSeconds?}
 *   PUT    /_admin/faults                         a profile name (JSON string) or fault options
 *   POST   /_admin/clock                          {advanceSeconds?, set?, freeze?}
 */
export function registerAdminRoutes(app: FastifyInstance, admin: ServiceNowSandboxAdmin): void {
  app.get('/_admin/state', async () => {
    const perState: Record<string, number> = {};
    for (const a of admin.approvals()) perState[a.state ?? ''] = (perState[a.state ?? ''] ?? 0) + 1;
    return { now: admin.now(), users: admin.users(), approvals: perState };
  });
  app.post('/_admin/approvals', async (request) => admin.createApprovals((request.body ?? {}) as CreateApprovalsSpec));
  app.post(
    '/_admin/approvals/:id/:action',
    async (request: FastifyRequest<{ Params: { id: string; action: string }; Body: { comment?: string; approver?: string } | undefined }>) => {
      const { id, action } = request.params;
      const body = request.body ?? {};
      switch (action) {
        case 'approve':
          return admin.approve(id, body.comment);
        case 'reject':
          return admin.reject(id, body.comment);
        case 'cancel':
          return admin.cancel(id);
        case 'reassign':
          if (!body.approver) throw new SandboxError(400, 'reassign needs {"approver": sys_id or user_name}');
          return admin.reassign(id, body.approver);
        default:
          throw new SandboxError(404, `no admin action ${action} (approve, reject, cancel, reassign)`);
      }
    },
  );
  app.delete('/_admin/records/:table/:id', async (request: FastifyRequest<{ Params: { table: string; id: string } }>) => ({
    deleted: admin.delete(request.params.id, request.params.table),
  }));
  app.post('/_admin/touch', async (request: FastifyRequest<{ Body: { sysIds?: string[]; fields?: Record<string, string>; table?: string } | undefined }>) => {
    const body = request.body ?? {};
    if (!Array.isArray(body.sysIds)) throw new SandboxError(400, 'touch needs {"sysIds": [...]}');
    return { sys_updated_on: admin.touch(body.sysIds, body.fields ?? {}, body.table) };
  });
  app.post('/_admin/storm', async (request: FastifyRequest<{ Body: { requests?: number; retryAfterSeconds?: number } | undefined }>) => {
    admin.rateLimitStorm(request.body?.requests ?? 0, request.body?.retryAfterSeconds ?? 1);
    return { ok: true };
  });
  app.put('/_admin/faults', async (request) => {
    admin.setFaults(request.body as FaultInput);
    return { ok: true };
  });
  app.post('/_admin/clock', async (request: FastifyRequest<{ Body: { advanceSeconds?: number; set?: string; freeze?: boolean } | undefined }>) => {
    const body = request.body ?? {};
    if (body.set !== undefined) admin.setClock(body.set);
    if (body.advanceSeconds !== undefined) admin.advanceClock(body.advanceSeconds);
    if (body.freeze !== undefined) admin.freezeClock(body.freeze);
    return { now: admin.now() };
  });
}
