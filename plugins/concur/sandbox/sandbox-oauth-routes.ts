import type { FastifyInstance, FastifyReply } from 'fastify';
import { COMPANY_SCOPES, idToken, USER_SCOPES, type Principal, type TokenGrant } from './sandbox-auth.js';
import { addRoute, type SandboxContext } from './sandbox-context.js';
import { oauthError } from './sandbox-format.js';
import { clientParams, OTP_API_PARAMS, OTP_TOKEN_PARAMS } from './sandbox-otp.js';

type Failure = readonly [status: number, code: number, error: string, description: string];

/** Client authentication shared by /token and /otp (the doc's codes 61-64); undefined when it passes. */
function clientFailure(ctx: SandboxContext, p: Record<string, string | undefined>): Failure | undefined {
  if (!p['client_id']) return [400, 62, 'invalid_request', 'client_id was not supplied'];
  if (p['client_id'] !== ctx.settings.clientId) return [401, 61, 'invalid_client', 'client not found'];
  if (!p['client_secret']) return [400, 63, 'invalid_request', 'client_secret was not supplied'];
  if (p['client_secret'] !== ctx.settings.clientSecret) return [401, 64, 'invalid_client', 'Incorrect credentials. Please Retry'];
  return undefined;
}

/** The channel of an OTP request (codes 57, 58, 80, 81): only e-mail exists. */
function channelFailure(p: Record<string, string | undefined>): Failure | undefined {
  if (!p['channel_type']) return [400, 57, 'invalid_request', 'channel_type was not supplied'];
  if (!p['channel_handle']) return [400, 58, 'invalid_request', 'channel_handle was not supplied'];
  if (p['channel_type'] !== 'email') return [400, 80, 'invalid_request', 'invalid channel type'];
  if (!/^[^@\s]+@[^@\s]+$/.test(p['channel_handle'])) return [400, 81, 'invalid_request', 'bad channel handle'];
  return undefined;
}

/** Requested scopes (space-separated) within what the app holds for users; empty means all of them. */
function userScope(requested: string | undefined): string | undefined {
  const asked = (requested ?? '').split(' ').filter((s) => s.length > 0);
  if (asked.some((s) => !USER_SCOPES.includes(s))) return undefined;
  return (asked.length > 0 ? [...new Set(asked)] : USER_SCOPES).join(' ');
}

/** Why a code exchange failed → the doc's /token code, error and text (PKCE has no Concur code; RFC 7636 4.6 says invalid_grant). */
const CODE_FAILURES = {
  unknown: [103, 'invalid_request', 'code is bad or expired'],
  expired: [103, 'invalid_request', 'code is bad or expired'],
  client: [105, 'invalid_grant', 'this grant was not issued to you!'],
  redirect_uri: [104, 'invalid_grant', 'redirect_uri does not match the previous grant'],
  verifier: [103, 'invalid_grant', 'code_verifier does not match the code_challenge of the grant'],
} as const;

/**
 * `POST /oauth2/v0/token` (apidoc.markdown): the refresh_token grant, the authorization_code grant
 * (a code from the consent page, sandbox-authorize-routes.ts, with its PKCE verifier), the otp grant
 * (a one-time token from `POST /oauth2/v0/otp`, below, with the client's own parameters) and the
 * password grant with credtype=authtoken (company: username = company UUID, password = request
 * token) or credtype=password (user: username = login ID; the sandbox takes any non-empty
 * password), and client_credentials (an App token for the ESS API, no refresh token). Error codes and texts are the doc's /token table; invalid_client answers 401, the
 * rest 400. A refresh keeps the scopes of the grant it continues.
 */
export function registerOAuthRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  addRoute(app, ctx, 'POST', '/oauth2/v0/token', { group: 'token', family: 'oauth', auth: false }, async (request, reply) => {
    const fail = (status: number, code: number, error: string, description: string): FastifyReply =>
      reply.code(status).send(oauthError(code, error, description));
    const contentType = String(request.headers['content-type'] ?? '');
    if (!contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      return fail(400, 65, 'invalid_request', 'the token endpoint takes application/x-www-form-urlencoded');
    }
    const p = (request.body ?? {}) as Record<string, string | undefined>;
    const { settings, tokens, company } = ctx;
    if (!p['grant_type']) return fail(400, 65, 'invalid_request', 'grant_type was not supplied');
    const client = clientFailure(ctx, p);
    if (client) return fail(...client);

    const lifetime = ctx.faults.tokenLifetimeOverride;
    let grant: TokenGrant | undefined;
    switch (p['grant_type']) {
      case 'refresh_token': {
        const token = p['refresh_token'];
        if (!token) return fail(400, 106, 'invalid_request', 'refresh_token was not supplied');
        grant = tokens.redeem(token, lifetime);
        if (!grant) return fail(400, 108, 'invalid_grant', 'bad or expired refresh token');
        break;
      }
      case 'password': {
        const credtype = p['credtype'] ?? 'password';
        if (credtype !== 'password' && credtype !== 'authtoken') return fail(400, 120, 'invalid_request', 'credtype is invalid');
        const username = p['username'];
        const password = p['password'];
        if (!username) return fail(400, 51, 'invalid_request', 'username was not supplied');
        if (!password) return fail(400, 52, 'invalid_request', 'password was not supplied');
        let principal: Principal | undefined;
        if (credtype === 'authtoken') {
          if (username.toLowerCase() === company.companyId.toLowerCase() && tokens.isValidRequestToken(password)) {
            principal = { kind: 'company' };
          }
        } else {
          const user = company.directory.byLoginId(username);
          if (user) principal = { kind: 'user', userIndex: user.index };
        }
        if (!principal) return fail(400, 5, 'invalid_grant', 'Incorrect Credentials. Please Retry');
        grant = tokens.issue(principal, (principal.kind === 'company' ? COMPANY_SCOPES : USER_SCOPES).join(' '), lifetime);
        break;
      }
      case 'authorization_code': {
        const authorizationCode = p['code'];
        const redirectUri = p['redirect_uri'];
        if (!authorizationCode) return fail(400, 101, 'invalid_request', 'code was not supplied');
        if (!redirectUri) return fail(400, 102, 'invalid_request', 'redirect_uri was not supplied');
        const redeemed = tokens.redeemCode(authorizationCode, settings.clientId, redirectUri, p['code_verifier']);
        if (!redeemed.ok) {
          const [code, error, description] = CODE_FAILURES[redeemed.reason];
          return fail(400, code, error, description);
        }
        grant = tokens.issue({ kind: 'user', userIndex: redeemed.binding.userIndex }, redeemed.binding.scope, lifetime);
        break;
      }
      case 'otp': {
        const channel = channelFailure(p);
        if (channel) return fail(...channel);
        if (!p['otp']) return fail(400, 56, 'invalid_request', 'otp was not supplied');
        const scope = userScope(p['scope']);
        if (scope === undefined) return fail(400, 54, 'invalid_scope', 'requested scope exceeds granted scope');
        const redeemed = ctx.otp.redeem(p['channel_handle'] as string, p['otp'], clientParams(p, OTP_TOKEN_PARAMS));
        if (!redeemed.ok) {
          return redeemed.reason === 'not_found'
            ? fail(400, 83, 'invalid_request', 'otp not found')
            : fail(400, 85, 'invalid_request', 'otp verification failed');
        }
        grant = tokens.issue({ kind: 'user', userIndex: redeemed.userIndex }, scope, lifetime);
        break;
      }
      case 'client_credentials': {
        // An App token (principal: the application), no refresh token and no id_token, as in
        // oauth-token-client-credentials.json; the ESS management API takes only these.
        const issued = tokens.issueAccessOnly({ kind: 'app' }, settings.appScopes.join(' '), lifetime);
        return reply.send({
          expires_in: String(issued.expiresIn),
          scope: issued.scope,
          token_type: 'Bearer',
          access_token: issued.accessToken,
          geolocation: ctx.baseUrl(),
        });
      }
      default:
        return fail(400, 60, 'invalid_grant', 'these are not the grants you are looking for');
    }
    const principal = grant.principal;
    const subject =
      principal.kind === 'company' ? company.companyId : principal.kind === 'app' ? settings.clientId : company.directory.get(principal.userIndex).id;
    return reply.send({
      // A string, as in the reference example (oauth-token.json); the TMC guide shows a number.
      expires_in: String(grant.expiresIn),
      scope: grant.scope,
      token_type: 'Bearer',
      access_token: grant.accessToken,
      refresh_token: grant.refreshToken,
      id_token: idToken({
        clientId: settings.clientId,
        baseUrl: ctx.baseUrl(),
        subject,
        type: principal.kind === 'app' ? 'company' : principal.kind,
        nowMs: ctx.clock.nowMs(),
        lifetimeSeconds: grant.expiresIn,
      }),
      geolocation: ctx.baseUrl(),
    });
  });

  // POST /oauth2/v0/otp (apidoc.markdown "One Time Password grant"): "e-mails" a one-time token to a
  // user's work e-mail, i.e. puts it in the sandbox's outbox (admin.otpOutbox()). An address no user
  // has is refused with the doc's code 55 ("we don't know this email", listed for /token).
  addRoute(app, ctx, 'POST', '/oauth2/v0/otp', { group: 'token', family: 'oauth', auth: false }, async (request, reply) => {
    const fail = (status: number, code: number, error: string, description: string): FastifyReply =>
      reply.code(status).send(oauthError(code, error, description));
    const contentType = String(request.headers['content-type'] ?? '');
    if (!contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      return fail(400, 57, 'invalid_request', 'the otp endpoint takes application/x-www-form-urlencoded');
    }
    const p = (request.body ?? {}) as Record<string, string | undefined>;
    const failure = clientFailure(ctx, p) ?? channelFailure(p);
    if (failure) return fail(...failure);
    const handle = p['channel_handle'] as string;
    const user = ctx.company.directory.byWorkEmail(handle);
    if (!user) return fail(400, 55, 'invalid_request', "we don't know this email");
    const sent = ctx.otp.send(handle, user.index, { name: p['name'], company: p['company'], link: p['link'], params: clientParams(p, OTP_API_PARAMS) });
    if (!sent) return fail(400, 82, 'invalid_request', 'the number of open otp requests has been exceeded');
    return reply.send({ message: 'otp sent' });
  });
}
