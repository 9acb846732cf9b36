import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EVENTS_SCOPE } from './sandbox-auth.js';
import { SandboxError } from './sandbox-company.js';
import { addRoute, hasScope, principalOf, type RouteMeta, type SandboxContext } from './sandbox-context.js';
import { topicsFor } from './sandbox-event-subscriptions.js';

/**
 * The ESS management API (event-topics/index.markdown, EventSubscriptionService.swagger.json):
 *
 *   GET    /events/v4/topics                 → ["public.concur.expense.report"] (the topics the token's scopes open)
 *   PUT    /events/v4/subscriptions/webhook  {id, filter, topic, webHookConfig: {endpoint}} → {message}
 *   GET    /events/v4/subscriptions          → PublicWebhookSubscription[]
 *   GET    /events/v4/subscriptions/:id      → [PublicWebhookSubscription] (an array of one, as the doc's example)
 *   DELETE /events/v4/subscriptions/:id      → {message}
 *
 * Only an App token (the client_credentials grant) carrying `events.topic.read` gets in: the doc
 * says the ESS API checks that scope, and a company or user token has none (403). Errors use
 * Spring Boot's default body (essError; Concur documents none).
 */
export function registerEventRoutes(app: FastifyInstance, ctx: SandboxContext): void {
  const meta: RouteMeta = { group: 'events', family: 'ess', auth: true };
  const subscriptions = ctx.events.subscriptions;
  const guard = (request: FastifyRequest): ReadonlySet<string> => {
    const principal = principalOf(ctx, request);
    if (principal.kind !== 'app' || !hasScope(ctx, request, EVENTS_SCOPE)) {
      throw new SandboxError(403, `the ESS API needs an App token (client_credentials grant) with the ${EVENTS_SCOPE} scope`);
    }
    return ctx.requests.get(request)?.scopes ?? new Set();
  };
  const id = (request: FastifyRequest): string => (request.params as { id: string }).id;

  addRoute(app, ctx, 'GET', '/events/v4/topics', meta, async (request) => topicsFor(guard(request)));
  addRoute(app, ctx, 'PUT', '/events/v4/subscriptions/webhook', meta, async (request) => {
    const scopes = guard(request);
    const saved = subscriptions.save(request.body, topicsFor(scopes));
    return { message: `Subscription '${saved.id}' saved successfully` };
  });
  addRoute(app, ctx, 'GET', '/events/v4/subscriptions', meta, async (request) => {
    guard(request);
    return subscriptions.list();
  });
  addRoute(app, ctx, 'GET', '/events/v4/subscriptions/:id', meta, async (request) => {
    guard(request);
    const found = subscriptions.get(id(request));
    if (!found) throw new SandboxError(404, `Subscription '${id(request)}' not found`);
    return [found];
  });
  addRoute(app, ctx, 'DELETE', '/events/v4/subscriptions/:id', meta, async (request) => {
    guard(request);
    if (!subscriptions.delete(id(request))) throw new SandboxError(404, `Subscription '${id(request)}' not found`);
    return { message: `Subscription '${id(request)}' marked for deletion` };
  });
}
