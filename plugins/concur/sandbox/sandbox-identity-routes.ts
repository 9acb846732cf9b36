import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SandboxError } from './sandbox-company.js';
import { addRoute, principalOf, QueryParams, type SandboxContext } from './sandbox-context.js';
import { projectScim, renderScimUser, type SandboxUser } from './sandbox-people.js';
import { compileScimFilter, ScimFilterError, type ScimResolver } from './sandbox-scim-filter.js';

/**
 * Identity v4 (`/profile/identity/v4/Users`, startIndex/count paging, filter on userName,
 * externalId, employeeNumber only) and v4.1 search (`POST /profile/identity/v4.1/Users/.search`,
 * cursor paging). Both accept company-level tokens only (v4.identity.md, v4.1.identity.md).
 */

const LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const SEARCH_REQUEST = 'urn:ietf:params:scim:api:messages:concur:2.0:SearchRequest';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

const V4_FILTER_ATTRIBUTES = ['userName', 'externalId', 'employeeNumber', `${ENTERPRISE}:employeeNumber`];
const V41_FILTER_ATTRIBUTES = [
  'id',
  'userName',
  'externalId',
  'active',
  'emails.value',
  'emails.type',
  'name.givenName',
  'name.familyName',
  'nickName',
  `${ENTERPRISE}:employeeNumber`,
  `${ENTERPRISE}:companyId`,
  `${ENTERPRISE}:manager.value`,
];

function resolver(ctx: SandboxContext): ScimResolver<SandboxUser> {
  return (u, path) => {
    switch (path.toLowerCase()) {
      case 'id':
        return u.id;
      case 'username':
        return u.loginId;
      case 'externalid':
        return u.externalId;
      case 'active':
        return true;
      case 'emails.value':
        return [u.email];
      case 'emails.type':
        return ['work'];
      case 'name.givenname':
        return u.givenName;
      case 'name.familyname':
        return u.familyName;
      case 'nickname':
        return null;
      case 'employeenumber':
      case `${ENTERPRISE}:employeenumber`.toLowerCase():
        return u.employeeNumber;
      case `${ENTERPRISE}:companyid`.toLowerCase():
        return ctx.company.companyId;
      case `${ENTERPRISE}:manager.value`.toLowerCase(): {
        const m = ctx.company.directory.manager(u);
        return m ? m.id : null;
      }
      default:
        return undefined;
    }
  };
}

/** Users matching `filter` (all users when absent); uses the login/e-mail indexes for `eq`. */
function matchUsers(ctx: SandboxContext, filter: string | undefined, allowed: readonly string[], operators?: readonly string[]): SandboxUser[] {
  const { directory } = ctx.company;
  if (filter === undefined || filter.trim() === '') return [...directory.users];
  let compiled;
  try {
    compiled = compileScimFilter(filter, resolver(ctx), allowed, operators);
  } catch (e) {
    if (e instanceof ScimFilterError) throw new SandboxError(400, `invalidFilter: ${e.message}`);
    throw e;
  }
  const eq = compiled.equality;
  if (eq && typeof eq.value === 'string') {
    const path = eq.path.toLowerCase();
    const hit = path === 'username' ? directory.byLoginId(eq.value) : path === 'emails.value' ? directory.byWorkEmail(eq.value) : undefined;
    if (path === 'username' || path === 'emails.value') return hit ? [hit] : [];
  }
  return directory.users.filter((u) => compiled.matches(u));
}

function requireCompany(ctx: SandboxContext, request: FastifyRequest): void {
  if (principalOf(ctx, request).kind !== 'company') {
    throw new SandboxError(403, 'Identity APIs accept company-level access tokens only');
  }
}

const list = (value: unknown): string[] | undefined => {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map(String);
  return String(value)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
};

export function registerIdentityRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const meta = { group: 'identity', family: 'scim', auth: true } as const;
  const render = (u: SandboxUser, version: 'v4' | 'v4.1'): Record<string, unknown> =>
    renderScimUser(u, ctx.company.directory, ctx.company.companyId, `${ctx.baseUrl()}/profile/identity/${version}/Users/${u.id}`);

  // GET /profile/identity/v4/Users: count default 10, max 100 (v4.identity.md); startIndex 1-based.
  addRoute(app, ctx, 'GET', '/profile/identity/v4/Users', meta, async (request, reply) => {
    requireCompany(ctx, request);
    const q = new QueryParams(request.query);
    const users = matchUsers(ctx, q.get('filter'), V4_FILTER_ATTRIBUTES, ['eq']);
    const count = Math.min(Math.max(q.int('count', 10, Number.MIN_SAFE_INTEGER), 0), 100);
    const startIndex = Math.max(q.int('startIndex', 1, Number.MIN_SAFE_INTEGER), 1);
    const page = users.slice(startIndex - 1, startIndex - 1 + count);
    return reply.send({
      schemas: [LIST_RESPONSE],
      totalResults: users.length,
      startIndex,
      itemsPerPage: page.length,
      Resources: page.map((u) => projectScim(render(u, 'v4'), list(q.get('attributes')), list(q.get('excludedAttributes')))),
    });
  });

  addRoute(app, ctx, 'GET', '/profile/identity/v4/Users/:id', meta, async (request, reply) => {
    requireCompany(ctx, request);
    const { id } = request.params as { id: string };
    const user = ctx.company.directory.byUuid(id);
    if (!user) throw new SandboxError(404, `User ${id} not found`);
    return reply.send(render(user, 'v4'));
  });

  // POST /profile/identity/v4.1/Users/.search (identity-search.md): count 1–1000, default 100;
  // no startIndex, a nextCursor instead, absent on the last page.
  addRoute(app, ctx, 'POST', '/profile/identity/v4.1/Users/.search', meta, async (request, reply) => {
    requireCompany(ctx, request);
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new SandboxError(400, 'invalidSyntax: a JSON object body is required');
    const b = body as Record<string, unknown>;
    const schemas = b['schemas'];
    if (!Array.isArray(schemas) || !schemas.includes(SEARCH_REQUEST)) {
      throw new SandboxError(400, `invalidSyntax: schemas must contain ${SEARCH_REQUEST}`);
    }
    let filter = typeof b['filter'] === 'string' ? b['filter'] : undefined;
    let start = 0;
    if (b['cursor'] !== undefined) {
      const cursor = decodeCursor(b['cursor']);
      if (!cursor) throw new SandboxError(400, 'invalidValue: cursor is not valid');
      filter = cursor.filter;
      start = cursor.start;
    }
    const rawCount = b['count'];
    if (rawCount !== undefined && !(typeof rawCount === 'number' && Number.isInteger(rawCount) && rawCount >= 1)) {
      throw new SandboxError(400, 'invalidValue: count must be an integer from 1 to 1000');
    }
    const count = Math.min(rawCount ?? 100, 1000);
    const users = matchUsers(ctx, filter, V41_FILTER_ATTRIBUTES);
    const page = users.slice(start, start + count);
    const next = start + count < users.length ? encodeCursor(filter, start + count) : undefined;
    return reply.send({
      schemas: [LIST_RESPONSE],
      totalResults: users.length,
      startIndex: start + 1,
      itemsPerPage: page.length,
      Resources: page.map((u) => projectScim(render(u, 'v4.1'), list(b['attributes']), list(b['excludedAttributes']))),
      ...(next ? { nextCursor: next } : {}),
    });
  });
}

function encodeCursor(filter: string | undefined, start: number): string {
  return Buffer.from(JSON.stringify({ filter: filter ?? null, startIndex: start + 1 }), 'utf8').toString('base64url');
}

function decodeCursor(cursor: unknown): { filter: string | undefined; start: number } | undefined {
  if (typeof cursor !== 'string') return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { filter?: unknown; startIndex?: unknown };
    if (typeof parsed.startIndex !== 'number' || !Number.isInteger(parsed.startIndex) || parsed.startIndex < 1) return undefined;
    return { filter: typeof parsed.filter === 'string' ? parsed.filter : undefined, start: parsed.startIndex - 1 };
  } catch {
    return undefined;
  }
}
