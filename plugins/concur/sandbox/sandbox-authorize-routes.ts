import type { FastifyInstance, FastifyReply } from 'fastify';
import { escapeHtml } from '../../../core/index.js';
import { USER_SCOPES } from './sandbox-auth.js';
import { SandboxError } from './sandbox-company.js';
import { addRoute, principalOf, QueryParams, type SandboxContext } from './sandbox-context.js';

/**
 * The user consent flow (apidoc.markdown "Authorization grant", RFC 6749 4.1, PKCE per RFC 7636):
 *
 *   GET  /oauth2/v0/authorize        → a consent page: pick the sandbox person to sign in as, Allow or Deny
 *   POST /oauth2/v0/authorize        ← that form → 302 to redirect_uri with code, geolocation and state
 *                                      (or error=access_denied)
 *   DELETE /app-mgmt/v0/connections  ← a user's bearer token: revokes that user's refresh tokens
 *
 * Concur documents client_id, redirect_uri, scope, response_type=code and state on /authorize and
 * `<redirect_uri>?geolocation=…&code=…` on success; PKCE, where errors go and what a bad request
 * looks like follow the RFCs, since the doc is silent. Concur documents no login_hint, so the page
 * offers a select. The consent form is the sandbox's stand-in for Concur's sign-in page: anyone
 * may pick anyone (there is no password to check), and its POST is not part of Concur's API.
 */

/** A validated /authorize request; every field is re-checked when the consent form comes back. */
interface AuthorizeRequest {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly scope: string;
  readonly state: string | undefined;
  readonly codeChallenge: string | undefined;
}

type Checked =
  | { readonly kind: 'ok'; readonly request: AuthorizeRequest }
  /** RFC 6749 4.1.2.1: a bad client_id or redirect_uri must not redirect; the user sees an error page. */
  | { readonly kind: 'page'; readonly message: string }
  | { readonly kind: 'redirect'; readonly redirectUri: string; readonly state: string | undefined; readonly error: string; readonly description: string };

/** RFC 7636 4.2: an S256 challenge is 43 base64url characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

function check(ctx: SandboxContext, q: QueryParams): Checked {
  const clientId = q.get('client_id');
  if (!clientId) return { kind: 'page', message: 'client_id was not supplied' };
  if (clientId !== ctx.settings.clientId) return { kind: 'page', message: 'client not found' };
  const redirectUri = q.get('redirect_uri');
  if (!redirectUri) return { kind: 'page', message: 'redirect_uri was not supplied' };
  if (!isAbsoluteHttpUrl(redirectUri)) return { kind: 'page', message: 'redirect_uri must be an absolute http(s) URI without a fragment' };
  const registered = ctx.settings.redirectUris;
  if (registered && !registered.includes(redirectUri)) return { kind: 'page', message: 'redirect_uri is not registered for this client' };
  const state = q.get('state');
  const refuse = (error: string, description: string): Checked => ({ kind: 'redirect', redirectUri, state, error, description });
  if (q.get('response_type') !== 'code') return refuse('unsupported_response_type', 'response_type must be code');
  const requested = (q.get('scope') ?? '').split(' ').filter((s) => s.length > 0);
  const unknown = requested.filter((s) => !USER_SCOPES.includes(s));
  if (unknown.length > 0) return refuse('invalid_scope', `requested scope exceeds granted scope: ${unknown.join(' ')}`);
  const method = q.get('code_challenge_method');
  const codeChallenge = q.get('code_challenge');
  if (codeChallenge !== undefined || method !== undefined) {
    // Without a method RFC 7636 means "plain", which the sandbox, like any server that can, refuses.
    if (method !== 'S256') return refuse('invalid_request', 'code_challenge_method must be S256');
    if (codeChallenge === undefined || !S256_CHALLENGE.test(codeChallenge)) {
      return refuse('invalid_request', 'code_challenge must be the 43-character base64url SHA-256 of the code_verifier');
    }
  }
  // No scope asked for means everything the app holds (RFC 6749 3.3 lets the server pick a default).
  const scope = (requested.length > 0 ? [...new Set(requested)] : USER_SCOPES).join(' ');
  return { kind: 'ok', request: { clientId, redirectUri, scope, state, codeChallenge } };
}

function isAbsoluteHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hash === '' && !value.includes('#');
  } catch {
    return false;
  }
}

/** `redirectUri` with `params` added to its query, keeping the query it already has (RFC 6749 3.1.2). */
function redirectTo(reply: FastifyReply, redirectUri: string, params: Record<string, string | undefined>): FastifyReply {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.append(name, value);
  return reply.code(302).header('location', url.toString()).header('cache-control', 'no-store').send();
}

function page(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(
      `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>\n<body>\n<h1>${escapeHtml(title)}</h1>\n${body}\n</body></html>\n`,
    );
}

function consentPage(ctx: SandboxContext, reply: FastifyReply, request: AuthorizeRequest, q: QueryParams): FastifyReply {
  const hidden = ['client_id', 'redirect_uri', 'scope', 'response_type', 'state', 'code_challenge', 'code_challenge_method']
    .map((name) => [name, q.get(name)] as const)
    .filter((pair): pair is readonly [string, string] => pair[1] !== undefined)
    .map(([name, value]) => `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`)
    .join('\n');
  const options = ctx.company.directory.users
    .map((u) => `<option value="${escapeHtml(u.loginId)}">${escapeHtml(u.displayName)} (${escapeHtml(u.loginId)})</option>`)
    .join('\n');
  const scopes = request.scope
    .split(' ')
    .map((s) => `<li><code>${escapeHtml(s)}</code></li>`)
    .join('');
  return page(
    reply,
    200,
    'Concur sandbox: sign in and allow access',
    `<p>An application asks to act for you with these scopes:</p>\n<ul>${scopes}</ul>\n` +
      `<form method="post" action="/oauth2/v0/authorize">\n${hidden}\n` +
      `<label for="loginId">Sign in as</label>\n<select id="loginId" name="loginId" required>\n${options}\n</select>\n` +
      `<button type="submit" name="decision" value="allow">Allow</button>\n` +
      `<button type="submit" name="decision" value="deny">Deny</button>\n</form>`,
  );
}

export function registerAuthorizeRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const meta = { group: 'token', family: 'oauth', auth: false } as const;

  addRoute(app, ctx, 'GET', '/oauth2/v0/authorize', meta, async (request, reply) => {
    const q = new QueryParams(request.query);
    const checked = check(ctx, q);
    if (checked.kind === 'page') return page(reply, 400, 'Authorization request refused', `<p>${escapeHtml(checked.message)}</p>`);
    if (checked.kind === 'redirect') {
      return redirectTo(reply, checked.redirectUri, { error: checked.error, error_description: checked.description, state: checked.state });
    }
    return consentPage(ctx, reply, checked.request, q);
  });

  addRoute(app, ctx, 'POST', '/oauth2/v0/authorize', meta, async (request, reply) => {
    const contentType = String(request.headers['content-type'] ?? '').toLowerCase();
    if (!contentType.startsWith('application/x-www-form-urlencoded')) throw new SandboxError(400, 'the consent form is application/x-www-form-urlencoded');
    const q = new QueryParams(request.body);
    const checked = check(ctx, q);
    if (checked.kind === 'page') return page(reply, 400, 'Authorization request refused', `<p>${escapeHtml(checked.message)}</p>`);
    if (checked.kind === 'redirect') {
      return redirectTo(reply, checked.redirectUri, { error: checked.error, error_description: checked.description, state: checked.state });
    }
    const { request: grant } = checked;
    const decision = q.get('decision');
    if (decision === 'deny') {
      return redirectTo(reply, grant.redirectUri, {
        error: 'access_denied',
        error_description: 'The user did not authorize the application',
        state: grant.state,
      });
    }
    if (decision !== 'allow') return page(reply, 400, 'Authorization request refused', '<p>decision must be allow or deny</p>');
    const user = ctx.company.directory.byLoginId(q.get('loginId') ?? '');
    if (!user) return page(reply, 400, 'Sign-in failed', '<p>Incorrect credentials. Please retry.</p>');
    const code = ctx.tokens.issueCode({
      clientId: grant.clientId,
      redirectUri: grant.redirectUri,
      userIndex: user.index,
      scope: grant.scope,
      codeChallenge: grant.codeChallenge,
    });
    return redirectTo(reply, grant.redirectUri, { code, geolocation: ctx.baseUrl(), state: grant.state });
  });

  // apidoc.markdown "Revoking a token": the user's own access token revokes all their refresh tokens for the app.
  addRoute(app, ctx, 'DELETE', '/app-mgmt/v0/connections', { group: 'token', family: 'oauth', auth: true }, async (request, reply) => {
    const principal = principalOf(ctx, request);
    if (principal.kind !== 'user') throw new SandboxError(403, 'only a user access token can revoke its connection');
    ctx.tokens.revokeUser(principal.userIndex);
    return reply.code(200).send();
  });
}
