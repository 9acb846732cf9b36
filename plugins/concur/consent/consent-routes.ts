import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { escapeHtml, isSameOriginPost, type Clock, type HttpRoutes, type Logger } from '../../../core/index.js';
import type { ConcurClient } from '../client/concur-client.js';
import { ConcurAuthError } from '../client/token-manager.js';
import type { ConcurUserClient } from '../client/user-client.js';
import type { ConcurToken } from '../mappers/token-mapper.js';
import { workEmail } from '../mappers/identity-mapper.js';
import type { ApproverConsents } from './approver-consents.js';

/** How an approver may connect: Concur's sign-in and consent page, or a code Concur e-mails them (docs/concur-api.md 4.4). */
export type ConsentMethod = 'authorization_code' | 'otp';

export interface ConsentRouteConfig {
  readonly sourceId: string;
  readonly clientId: string;
  /** Concur's `/oauth2/v0/authorize`. */
  readonly authorizeUrl: string;
  /** Where the code is exchanged (GLZ, or the configured base URL). One-time codes go to the user's geolocation instead: the company's. */
  readonly tokenBase: string;
  /** `<publicUrl>/concur/<source id>/callback`: must be the app's registered redirect URI. */
  readonly redirectUri: string;
  readonly scopes: readonly string[];
  /** What the connect page offers; `otp` adds the e-mailed-code routes. */
  readonly methods: readonly ConsentMethod[];
}

/** The client parameter sent with `/otp` and repeated on the otp grant (Concur returns it unchanged): binds a code to its link. */
const OTP_BINDING_PARAM = 'approvals_hub_link';
/** Form bodies are a state and a code. */
const FORM_BODY_LIMIT = 4096;
const DEAD_LINK = 'It has expired or was already used. Press Approve or Send back on the card again for a new one.';
/** Concur's /otp and otp-grant codes (docs/concur-api.md 4.4) the approver can act on, in their words. */
const OTP_REFUSALS: Readonly<Record<string, string>> = {
  '55': 'Concur does not know your e-mail address, so it cannot send you a code.',
  '82': 'Concur has too many codes waiting for your address. Use the newest code in your e-mail, or wait a few minutes and ask again.',
  '83': 'That code is wrong, was already used or has expired.',
  '84': 'That code was not sent for this link. Use the newest code in your e-mail.',
  '85': 'That code was not sent for this link. Use the newest code in your e-mail.',
  '54': 'Concur will not grant this app the access it asks for with a one-time code; ask your Concur administrator.',
};
/** Codes meaning the typed code was not accepted, so typing another may help. */
const WRONG_CODE = new Set(['83', '84', '85']);

/** The path prefix of a source's consent routes. */
export const consentPath = (sourceId: string): string => `/concur/${encodeURIComponent(sourceId)}`;

/**
 * An approver's once-only "Connect your Concur account" (docs/concur-api.md 4.4, 13), the OAuth2
 * authorization grant with PKCE S256:
 * - `GET /concur/<source>/connect?state=…`: the state must be one `act` issued, open and unexpired;
 *   a PKCE verifier is stored beside it and the browser goes to Concur's authorize page.
 * - `GET /concur/<source>/callback?code&state`: consumes the state, exchanges the code with the
 *   verifier, and keeps the token only if the Concur user it belongs to (id_token `sub`, read in
 *   Identity with the company token) has the work e-mail the state was made for.
 * With `otp` among the methods, the connect page offers "E-mail me a code" instead of redirecting
 * (and the redirect behind a "sign in to Concur" link when that method is on too); see
 * {@link ConsentRoutes.registerOtp}. Anything else (forged, replayed or expired state, Concur's
 * refusal, another person) stores nothing and answers a page saying what went wrong.
 */
export class ConsentRoutes implements HttpRoutes {
  readonly id: string;

  constructor(
    private readonly config: ConsentRouteConfig,
    private readonly consents: ApproverConsents,
    private readonly user: ConcurUserClient,
    private readonly company: ConcurClient,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.id = `${config.sourceId}:consent`;
  }

  register(app: FastifyInstance): void {
    const prefix = consentPath(this.config.sourceId);
    const methods = this.config.methods;
    app.get(`${prefix}/connect`, async (request, reply) => {
      const query = request.query as Record<string, unknown>;
      const state = String(query['state'] ?? '');
      const redirect = !methods.includes('otp') || (query['method'] === 'authorization_code' && methods.includes('authorization_code'));
      if (!redirect) return this.offerOtp(request, reply, state, methods.includes('authorization_code'));
      const started = await this.consents.startConnect(state);
      if (!started) {
        this.logger.warn({ path: request.url.split('?')[0] }, 'refused a Concur connect link with an unknown, used or expired state');
        return page(reply, 400, 'This link does not work', DEAD_LINK);
      }
      const challenge = createHash('sha256').update(started.verifier).digest('base64url');
      const url = new URL(this.config.authorizeUrl);
      url.search = new URLSearchParams({
        client_id: this.config.clientId,
        redirect_uri: this.config.redirectUri,
        response_type: 'code',
        scope: this.config.scopes.join(' '),
        state,
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }).toString();
      return reply.code(302).header('cache-control', 'no-store').header('location', url.toString()).send();
    });

    if (methods.includes('otp')) this.registerOtp(app, prefix);
    if (!methods.includes('authorization_code')) return;

    app.get(`${prefix}/callback`, async (request, reply) => {
      const query = request.query as Record<string, unknown>;
      const state = typeof query['state'] === 'string' ? query['state'] : '';
      const started = await this.consents.finishConnect(state);
      if (!started) {
        this.logger.warn({ path: request.url.split('?')[0] }, 'refused a Concur consent callback with an unknown, used or expired state');
        return page(
          reply,
          400,
          'Not connected',
          'This answer from Concur does not match a link we made, or it was already used. Press the button on the card again.',
        );
      }
      const error = query['error'] ?? query['error_code'];
      const code = query['code'];
      if (typeof error === 'string' || typeof code !== 'string' || code === '') {
        const why = typeof query['error_description'] === 'string' ? query['error_description'] : typeof error === 'string' ? error : 'no code';
        this.logger.info({ approver: started.email, error }, 'Concur consent not given');
        return page(reply, 400, 'Not connected', `Concur did not grant access (${why}). Nothing was stored; you can still decide in Concur.`);
      }
      let token: ConcurToken;
      try {
        token = await this.user.exchangeCode(this.config.tokenBase, code, this.config.redirectUri, started.verifier);
      } catch (err) {
        this.logger.warn({ approver: started.email, err: (err as Error).message }, 'Concur consent could not be completed');
        return page(reply, 502, 'Not connected', 'Concur did not complete the connection. Press the button on the card again in a minute.');
      }
      const other = `You signed in to Concur as someone other than ${started.email}. Sign out of Concur, open the link again and sign in as yourself.`;
      return this.keep(reply, started.email, token, other);
    });
  }

  /**
   * The e-mailed one-time password grant (docs/concur-api.md 4.4, 13.1), for where a browser
   * redirect is not wanted. Both steps are same-origin form posts carrying the link's `state`:
   * - `POST …/otp/send`: Concur e-mails a code to the address the state was made for (never one
   *   typed), with a random client parameter stored beside the state, so only codes sent for this
   *   link redeem; the answer is the form to type the code.
   * - `POST …/otp/verify`: exchanges the code with the same parameter, then the callback's checks
   *   and storage. A wrong code may be retried a few times on the same link; success uses it up.
   * Both Concur calls go to the user's geolocation (docs/concur-api.md 4.1); before the approver
   * has a token, the best known one is the company's.
   */
  private registerOtp(app: FastifyInstance, prefix: string): void {
    // This plugin scope only (the host registers each HttpRoutes in its own).
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_request, body, done) => {
      done(null, new URLSearchParams(body as string));
    });

    app.post(`${prefix}/otp/send`, async (request, reply) => {
      if (!isSameOriginPost(request, new URL(this.config.redirectUri).origin)) return this.crossSite(request, reply);
      const state = formField(request, 'state');
      const step = await this.consents.startOtp(state);
      if (!step) return this.deadLink(request, reply);
      try {
        await this.user.requestOtp(await this.company.apiBase(), step.email, { [OTP_BINDING_PARAM]: step.binding });
      } catch (err) {
        const code = err instanceof ConcurAuthError ? err.code : undefined;
        this.logger.warn({ approver: step.email, code, err: (err as Error).message }, 'Concur did not send a one-time code');
        const why = (code && OTP_REFUSALS[code]) ?? `Concur did not send a code${code ? ` (code ${code})` : ''}. Try again in a minute.`;
        // Too many open codes: one already sent still works.
        return code === '82' ? codePage(reply, 400, state, why) : page(reply, 502, 'No code sent', why, sendForm(state, 'Try again'));
      }
      this.logger.info({ approver: step.email }, 'Concur e-mailed the approver a one-time code');
      return codePage(reply, 200, state, `Concur has e-mailed a one-time code to ${step.email}. Type it here.`);
    });

    app.post(`${prefix}/otp/verify`, async (request, reply) => {
      if (!isSameOriginPost(request, new URL(this.config.redirectUri).origin)) return this.crossSite(request, reply);
      const state = formField(request, 'state');
      const otp = formField(request, 'code').replace(/\s+/g, '');
      if (!/^[A-Za-z0-9-]{1,64}$/.test(otp)) {
        if (!(await this.consents.peek(state))) return this.deadLink(request, reply);
        return codePage(reply, 400, state, 'Type the code from the e-mail Concur sent you.');
      }
      const step = await this.consents.tryOtp(state);
      if (!step)
        return this.deadLink(request, reply, 'It has expired, was already used, or too many codes were typed. Press Approve or Send back on the card again.');
      let token: ConcurToken;
      try {
        token = await this.user.exchangeOtp(await this.company.apiBase(), step.email, otp, this.config.scopes.join(' '), {
          [OTP_BINDING_PARAM]: step.binding,
        });
      } catch (err) {
        const code = err instanceof ConcurAuthError ? err.code : undefined;
        this.logger.warn({ approver: step.email, code, err: (err as Error).message }, 'Concur refused a one-time code');
        if (code && WRONG_CODE.has(code)) {
          if (step.triesLeft === 0) {
            await this.consents.consume(state);
            return page(
              reply,
              400,
              'Not connected',
              `${OTP_REFUSALS[code]} That was the last try for this link: press Approve or Send back on the card again.`,
            );
          }
          return codePage(
            reply,
            400,
            state,
            `${OTP_REFUSALS[code]} Check the e-mail and try again (${step.triesLeft} ${step.triesLeft === 1 ? 'try' : 'tries'} left).`,
          );
        }
        // No answer from Concur: the code was not redeemed, so the same one may work in a minute.
        if (!code) return codePage(reply, 502, state, 'Concur did not answer. Try the code again in a minute.');
        return page(
          reply,
          502,
          'Not connected',
          OTP_REFUSALS[code] ?? `Concur refused the connection (code ${code}). Press the button on the card again later.`,
        );
      }
      await this.consents.consume(state);
      return this.keep(reply, step.email, token, `That code belongs to a Concur account other than ${step.email}'s; nothing was stored.`);
    });
  }

  /** The connect page with OTP on: "E-mail me a code" for the state's approver, and the sign-in link when that method is on too. */
  private async offerOtp(request: FastifyRequest, reply: FastifyReply, state: string, withSignIn: boolean): Promise<FastifyReply> {
    const email = await this.consents.peek(state);
    if (!email) {
      this.logger.warn({ path: request.url.split('?')[0] }, 'refused a Concur connect link with an unknown, used or expired state');
      return page(reply, 400, 'This link does not work', DEAD_LINK);
    }
    const signIn = withSignIn
      ? `<p>Or <a href="connect?${escapeHtml(new URLSearchParams({ state, method: 'authorization_code' }).toString())}">sign in to Concur</a> instead.</p>`
      : '';
    return page(
      reply,
      200,
      'Connect your Concur account',
      `Concur will e-mail a one-time code to ${email}; you type it on the next page. Connecting lets approvals-hub approve and send back reports as you.`,
      sendForm(state, 'E-mail me a code') + signIn,
    );
  }

  /**
   * Keeps `token` for `approver` only if its Concur user (the id_token's `sub`, read in Identity
   * with the company token) has the approver's work e-mail; else stores nothing and answers `other`.
   */
  private async keep(reply: FastifyReply, approver: string, token: ConcurToken, other: string): Promise<FastifyReply> {
    try {
      const userId = subjectOf(token.idToken);
      const person = userId ? await this.company.getUser(userId, AbortSignal.timeout(30_000)) : undefined;
      const email = person ? workEmail(person)?.toLowerCase() : undefined;
      if (!userId || !person || person.id !== userId || email !== approver) {
        this.logger.warn({ approver, concurUser: userId }, 'Concur consent came from another Concur user than the approver; not stored');
        return page(reply, 403, 'Not connected: another Concur account', other);
      }
      await this.consents.save(approver, {
        userId,
        loginId: person.userName,
        refreshToken: token.refreshToken ?? '',
        geolocation: token.geolocation,
        connectedAt: this.clock.now().toISOString(),
        accessToken: token.accessToken,
        accessExpiresAt: this.clock.now().getTime() + token.expiresInSeconds * 1000,
      });
      this.logger.info({ approver, concurUser: userId }, 'approver connected their Concur account');
      return page(reply, 200, 'Connected', 'Your Concur account is connected. Go back and press Approve or Send back again.');
    } catch (err) {
      this.logger.warn({ approver, err: (err as Error).message }, 'Concur consent could not be completed');
      return page(reply, 502, 'Not connected', 'Concur did not complete the connection. Press the button on the card again in a minute.');
    }
  }

  private crossSite(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    this.logger.warn({ path: request.url, origin: request.headers.origin }, 'refused a cross-site post to a Concur connect form');
    return page(reply, 403, 'Refused', 'This form only works from the connect page it belongs to. Open the link from the card again.');
  }

  private deadLink(request: FastifyRequest, reply: FastifyReply, text = DEAD_LINK): FastifyReply {
    this.logger.warn({ path: request.url }, 'refused a Concur one-time-code form with an unknown, used or expired state');
    return page(reply, 400, 'This link does not work', text);
  }
}

/** A field of a form post (parsed in this plugin's scope); empty when absent. */
function formField(request: FastifyRequest, name: string): string {
  return request.body instanceof URLSearchParams ? (request.body.get(name) ?? '') : '';
}

/** The "E-mail me a code" button: a post of the link's state to the sibling route (relative, so a path under publicUrl is kept). */
function sendForm(state: string, label: string): string {
  return (
    `<form method="post" action="otp/send"><input type="hidden" name="state" value="${escapeHtml(state)}">` +
    `<button type="submit">${escapeHtml(label)}</button></form>`
  );
}

/** The page to type an e-mailed code, with `text` above it (what happened, or what was wrong). */
function codePage(reply: FastifyReply, status: number, state: string, text: string): FastifyReply {
  const form =
    `<form method="post" action="otp/verify"><input type="hidden" name="state" value="${escapeHtml(state)}">` +
    `<label>Code <input name="code" inputmode="numeric" autocomplete="one-time-code" required></label> <button type="submit">Connect</button></form>` +
    `<p>No e-mail?</p>${sendForm(state, 'Send another code')}`;
  return page(reply, status, 'Type your code', text, form);
}

/** The id_token's `sub` (the user UUID, docs/concur-api.md 4.2); the token came straight from Concur's token endpoint over TLS. */
function subjectOf(idToken: string | undefined): string | undefined {
  try {
    const claims = JSON.parse(Buffer.from(idToken?.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof claims.sub === 'string' && claims.sub !== '' ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}

/** A small page: `title` and `text` escaped; `html` only ever built here from escaped parts. */
function page(reply: FastifyReply, status: number, title: string, text: string, html = ''): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
    .send(
      `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title>` +
        `<body style="font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>${html}</body></html>`,
    );
}
