import createClient from 'openapi-fetch';
import { registerSecret } from '../../../core/index.js';
import type { components, paths as EventsV4 } from '../generated/events-v4.js';
import type { paths as OAuth2 } from '../generated/oauth2.js';
import { isRecord } from '../mappers/json-reader.js';
import { parseTokenError, parseTokenResponse } from '../mappers/token-mapper.js';
import type { FetchLike } from './resilient-fetch.js';

/** The expense topic (v4.expense-events.md). */
export const EXPENSE_REPORT_TOPIC = 'public.concur.expense.report';

export type WebhookSubscription = components['schemas']['PublicWebhookSubscription'];

/** What the ESS calls need of a Concur source's config. */
export interface EventsAppConfig {
  readonly clientId: string;
  readonly clientSecret: string;
  /** Where the App token is requested (any production host takes the client_credentials grant). */
  readonly authBaseUrl: string;
  /** When set, every call goes here instead of the token's geolocation. */
  readonly baseUrl?: string | undefined;
}

/** An ESS call Concur refused (or a token it would not give): HTTP status, Concur's message, correlation id. */
export class ConcurEventsError extends Error {
  override readonly name = 'ConcurEventsError';
  constructor(
    message: string,
    readonly status: number,
    readonly correlationId?: string,
  ) {
    super(message);
  }
}

/**
 * Concur's Event Subscription Service management API (docs/concur-api.md 6): topics and webhook
 * subscriptions of this application. ESS takes an App JWT from the **client_credentials** grant
 * (the application is the subject, scope `events.topic.read`), not the company token the rest of
 * the plugin uses; it lives 60 minutes and has no refresh token, so it is simply requested again.
 * Calls are few and operator-driven (CLI), so there is no shared cache or lock.
 */
export class ConcurEventsClient {
  private readonly oauth;
  private readonly ess;
  private readonly configuredOrigins: string[];
  private app: { token: string; base: string; expiresAtMs: number } | undefined;

  constructor(
    private readonly config: EventsAppConfig,
    fetch: FetchLike = (r) => globalThis.fetch(r),
    private readonly nowMs: () => number = Date.now,
  ) {
    if (!config.clientId) throw new ConcurEventsError('no clientId is configured for this Concur source: ESS needs the app credentials', 0);
    if (!config.clientSecret) {
      throw new ConcurEventsError('no clientSecret is configured for this Concur source: the ESS API needs an App token from the client_credentials grant', 0);
    }
    registerSecret(config.clientSecret);
    this.oauth = createClient<OAuth2>({ fetch, headers: { Accept: 'application/json' } });
    this.ess = createClient<EventsV4>({ fetch, headers: { Accept: 'application/json' } });
    this.configuredOrigins = [config.authBaseUrl, config.baseUrl].filter((u): u is string => u !== undefined);
  }

  /** Topics this application may subscribe to; empty when it holds `events.topic.read` but no topic's scope. */
  async topics(): Promise<string[]> {
    const { base, headers } = await this.auth();
    const { data, error, response } = await this.ess.GET('/events/v4/topics', { baseUrl: base, headers });
    if (!response.ok) throw refusal('listing topics', response, error);
    return Array.isArray(data) ? data.filter((t): t is string => typeof t === 'string') : [];
  }

  /** Every subscription of this application. */
  async subscriptions(): Promise<WebhookSubscription[]> {
    const { base, headers } = await this.auth();
    const { data, error, response } = await this.ess.GET('/events/v4/subscriptions', { baseUrl: base, headers });
    if (!response.ok) throw refusal('listing subscriptions', response, error);
    return Array.isArray(data) ? data.filter(isSubscription) : [];
  }

  /** One subscription, or undefined when Concur answers 404. The docs' example answers an array of one; the swagger one object: both are read. */
  async subscription(id: string): Promise<WebhookSubscription | undefined> {
    const { base, headers } = await this.auth();
    const { data, error, response } = await this.ess.GET('/events/v4/subscriptions/{id}', { baseUrl: base, headers, params: { path: { id } } });
    if (response.status === 404) return undefined;
    if (!response.ok) throw refusal(`reading subscription ${id}`, response, error);
    const found = (Array.isArray(data) ? data : [data]).filter(isSubscription);
    return found.find((s) => s.id === id) ?? found[0];
  }

  /** Creates or updates subscription `id` (PUT: running it again with the same values changes nothing). Returns Concur's message. */
  async subscribe(subscription: { id: string; topic: string; filter: string; endpoint: string }): Promise<string> {
    const { base, headers } = await this.auth();
    const { data, error, response } = await this.ess.PUT('/events/v4/subscriptions/webhook', {
      baseUrl: base,
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: { id: subscription.id, filter: subscription.filter, topic: subscription.topic, webHookConfig: { endpoint: subscription.endpoint } },
    });
    if (!response.ok) throw refusal(`saving subscription ${subscription.id}`, response, error);
    return data?.message ?? `Subscription '${subscription.id}' saved`;
  }

  /** Deletes subscription `id`; undefined when it did not exist (404). */
  async unsubscribe(id: string): Promise<string | undefined> {
    const { base, headers } = await this.auth();
    const { data, error, response } = await this.ess.DELETE('/events/v4/subscriptions/{id}', { baseUrl: base, headers, params: { path: { id } } });
    if (response.status === 404) return undefined;
    if (!response.ok) throw refusal(`deleting subscription ${id}`, response, error);
    return data?.message ?? `Subscription '${id}' deleted`;
  }

  /** A valid App token and the origin to call, from the client_credentials grant (requested again a minute before it expires). */
  private async auth(): Promise<{ base: string; headers: Record<string, string> }> {
    if (!this.app || this.app.expiresAtMs - 60_000 <= this.nowMs()) {
      const { data, error, response } = await this.oauth.POST('/oauth2/v0/token', {
        baseUrl: this.config.baseUrl ?? this.config.authBaseUrl,
        body: { grant_type: 'client_credentials', client_id: this.config.clientId, client_secret: this.config.clientSecret },
        bodySerializer: (b) => new URLSearchParams(b as Record<string, string>).toString(),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        parseAs: 'json',
      });
      if (!response.ok) {
        const problem = parseTokenError(error);
        const correlationId = response.headers.get('concur-correlationid') ?? undefined;
        throw new ConcurEventsError(
          `Concur refused the client_credentials grant (the App token ESS needs): HTTP ${response.status}` +
            `${problem ? ` ${problem.error ?? ''} (code ${problem.code ?? '?'}): ${problem.error_description ?? ''}` : ''}` +
            `${correlationId ? ` [concur-correlationid ${correlationId}]` : ''}`,
          response.status,
          correlationId,
        );
      }
      const token = parseTokenResponse(data, { configuredOrigins: this.configuredOrigins });
      registerSecret(token.accessToken);
      this.app = { token: token.accessToken, base: this.config.baseUrl ?? token.geolocation, expiresAtMs: this.nowMs() + token.expiresInSeconds * 1000 };
    }
    return { base: this.app.base, headers: { Authorization: `Bearer ${this.app.token}` } };
  }
}

function isSubscription(v: unknown): v is WebhookSubscription {
  return isRecord(v) && typeof v['id'] === 'string' && typeof v['topic'] === 'string' && isRecord(v['webHookConfig']);
}

/** A refused ESS call as an error naming what was tried, the status, Concur's message and its correlation id. */
function refusal(what: string, response: Response, error: unknown): ConcurEventsError {
  const correlationId = response.headers.get('concur-correlationid') ?? undefined;
  const message = isRecord(error)
    ? [error['message'], error['errorMessage'], error['error_description']].find((m): m is string => typeof m === 'string' && m !== '')
    : undefined;
  const hint =
    response.status === 401
      ? ' (the App token was refused)'
      : response.status === 403
        ? " (the application lacks the events.topic.read scope, or the topic's own scope: ask SAP Concur to add them)"
        : '';
  return new ConcurEventsError(
    `Concur ESS refused ${what}: HTTP ${response.status}${hint}${message ? `: ${message}` : ''}${correlationId ? ` [concur-correlationid ${correlationId}]` : ''}`,
    response.status,
    correlationId,
  );
}
