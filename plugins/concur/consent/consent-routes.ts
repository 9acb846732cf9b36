import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Clock, HttpRoutes, Logger } from '../../../core/index.js';
import type { ConcurClient } from '../client/concur-client.js';
import type { ConcurUserClient } from '../client/user-client.js';
import { workEmail } from '../mappers/identity-mapper.js';
import type { ApproverConsents } from './approver-consents.js';

export interface ConsentRouteConfig {
  readonly sourceId: string;
  readonly clientId: string;
  /** Concur's `/oauth2/v0/authorize`. */
  readonly authorizeUrl: string;
  /** Where the code is exchanged (GLZ, or the configured base URL). */
  readonly tokenBase: string;
  /** `<publicUrl>/concur/<source id>/callback`: must be the app's registered redirect URI. */
  readonly redirectUri: string;
  readonly scopes: readonly string[];
}

/** The path prefix of a source's consent routes. */
export const consentPath = (sourceId: string): string => `/concur/${encodeURIComponent(sourceId)}`;

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * An approver's once-only "Connect your Concur account" (docs/concur-api.md 4.4, 13), the OAuth2
 * authorization grant with PKCE S256:
 * - `GET /concur/<source>/connect?state=…`: the state must be one `act` issued, open and unexpired;
 *   a PKCE verifier is stored beside it and the browser goes to Concur's authorize page.
 * - `GET /concur/<source>/callback?code&state`: consumes the state, exchanges the code with the
 *   verifier, and keeps the token only if the Concur user it belongs to (id_token `sub`, read in
 *   Identity with the company token) has the work e-mail the state was made for.
 * Anything else (forged, replayed or expired state, Concur's refusal, another person) stores nothing
 * and answers a page saying what went wrong.
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
    app.get(`${prefix}/connect`, async (request, reply) => {
      const state = String((request.query as Record<string, unknown>)['state'] ?? '');
      const started = await this.consents.startConnect(state);
      if (!started) {
        this.logger.warn({ path: request.url.split('?')[0] }, 'refused a Concur connect link with an unknown, used or expired state');
        return page(reply, 400, 'This link does not work', 'It has expired or was already used. Press Approve or Send back on the card again for a new one.');
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
      try {
        const token = await this.user.exchangeCode(this.config.tokenBase, code, this.config.redirectUri, started.verifier);
        const userId = subjectOf(token.idToken);
        const person = userId ? await this.company.getUser(userId, AbortSignal.timeout(30_000)) : undefined;
        const email = person ? workEmail(person)?.toLowerCase() : undefined;
        if (!userId || !person || person.id !== userId || email !== started.email) {
          this.logger.warn({ approver: started.email, concurUser: userId }, 'Concur consent came from another Concur user than the approver; not stored');
          return page(
            reply,
            403,
            'Not connected: another Concur account',
            `You signed in to Concur as someone other than ${started.email}. Sign out of Concur, open the link again and sign in as yourself.`,
          );
        }
        await this.consents.save(started.email, {
          userId,
          loginId: person.userName,
          refreshToken: token.refreshToken ?? '',
          geolocation: token.geolocation,
          connectedAt: this.clock.now().toISOString(),
          accessToken: token.accessToken,
          accessExpiresAt: this.clock.now().getTime() + token.expiresInSeconds * 1000,
        });
        this.logger.info({ approver: started.email, concurUser: userId }, 'approver connected their Concur account');
        return page(reply, 200, 'Connected', 'Your Concur account is connected. Go back and press Approve or Send back again.');
      } catch (err) {
        this.logger.warn({ approver: started.email, err: (err as Error).message }, 'Concur consent could not be completed');
        return page(reply, 502, 'Not connected', 'Concur did not complete the connection. Press the button on the card again in a minute.');
      }
    });
  }
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

function page(reply: FastifyReply, status: number, title: string, text: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
    .send(
      `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title>` +
        `<body style="font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p></body></html>`,
    );
}
