import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SandboxAdmin } from './sandbox-admin.js';
import { SandboxError, type ApproveOptions, type EditSpec, type SubmitSpec } from './sandbox-company.js';
import { addRoute, type SandboxContext } from './sandbox-context.js';
import type { DelegateSpec } from './sandbox-delegates.js';
import type { FaultInput } from './sandbox-faults.js';

/**
 * `/_admin` over HTTP, JSON in and out, mirroring {@link SandboxAdmin}. Not counted in calls(),
 * exempt from faults unless a profile scopes `admin`, no auth (the sandbox listens on loopback).
 *
 *   GET    /_admin/state                      → SandboxState
 *   GET    /_admin/users                      → SandboxUserInfo[]
 *   GET    /_admin/credentials                → {baseUrl, companyId, clientId, clientSecret, refreshToken, requestToken}
 *   POST   /_admin/reports                    {owner?, approver?, name?, total?, entries?} → V3Report (201)
 *   GET    /_admin/reports/:id                → V3Report
 *   PATCH  /_admin/reports/:id                {name?, total?, hasException?, receiptsReceived?, lastComment?, paymentStatusCode?}
 *   DELETE /_admin/reports/:id                → 204
 *   POST   /_admin/reports/:id/approve        {nextApprover?, status?}
 *   POST   /_admin/reports/:id/sendBack       {comment?}
 *   POST   /_admin/reports/:id/recall
 *   POST   /_admin/reports/:id/resubmit
 *   POST   /_admin/reports/:id/reassign       {approver}
 *   GET    /_admin/clock                      → {now}
 *   PUT    /_admin/clock                      {now: iso} → {now}
 *   POST   /_admin/clock/advance              {seconds} → {now}
 *   GET    /_admin/faults                     → FaultOptions
 *   PUT    /_admin/faults                     "chaos" | {profile: "chaos"} | FaultOptions
 *   GET    /_admin/calls                      → CallCounts
 *   DELETE /_admin/calls                      → 204
 *   POST   /_admin/tokens/refresh-token       → {refreshToken}
 *   POST   /_admin/tokens/request-token       → {requestToken}
 *   POST   /_admin/users/:user/consent        {scopes?: string[]} → {refreshToken} (a user refresh token, as after the consent page)
 *   POST   /_admin/users/:user/revoke-consent → {revoked} (the user's refresh tokens stop working)
 *   GET    /_admin/otp/outbox                 → OtpMessage[] (one-time tokens "e-mailed" by /oauth2/v0/otp)
 *   GET    /_admin/events                     → {counters, faults, losing, stepNotifications, subscriptions} (ESS push side)
 *   POST   /_admin/events/subscriptions       {endpoint, id?, filter?} → WebhookSubscription (no App token needed; 201)
 *   PUT    /_admin/events/faults              {duplicateRate?, reorder?, delayMs?, dropRate?, lose?} → EventFaultOptions
 *   PUT    /_admin/events/step-notifications  {enabled: boolean} (publish mid-workflow approvals or not)
 *   POST   /_admin/events/pause               {minutes?} (events published meanwhile are lost; no minutes: until resume)
 *   POST   /_admin/events/resume
 *   POST   /_admin/events/idle                → EventCounters, once every delivery so far is settled
 *   GET    /_admin/events/deliveries          → DeliveryAttempt[] (the last 1000 attempts)
 *   DELETE /_admin/events/counters            → 204
 *   GET    /_admin/users/:user/delegates      → DelegateSpec[] (the user's expense delegates)
 *   PUT    /_admin/users/:user/delegates      DelegateSpec[] → DelegateSpec[] (replaces them)
 */
export function registerAdminRoutes(app: FastifyInstance, ctx: SandboxContext, admin: SandboxAdmin, credentials: () => Record<string, string>): void {
  const meta = { group: 'admin', family: 'admin', auth: false } as const;
  const body = (request: FastifyRequest): Record<string, unknown> => {
    const b = request.body;
    if (b === undefined || b === null) return {};
    if (typeof b !== 'object' || Array.isArray(b)) throw new SandboxError(400, 'body must be a JSON object');
    return b as Record<string, unknown>;
  };
  const id = (request: FastifyRequest): string => (request.params as { id: string }).id;
  const str = (b: Record<string, unknown>, key: string, required = false): string | undefined => {
    const v = b[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string') throw new SandboxError(400, `${key} must be a string`);
    return v;
  };

  addRoute(app, ctx, 'GET', '/_admin/state', meta, async () => admin.state());
  addRoute(app, ctx, 'GET', '/_admin/users', meta, async () => admin.users());
  addRoute(app, ctx, 'GET', '/_admin/credentials', meta, async () => credentials());
  addRoute(app, ctx, 'POST', '/_admin/reports', meta, async (request, reply) => reply.code(201).send(admin.submit(body(request) as SubmitSpec)));
  addRoute(app, ctx, 'GET', '/_admin/reports/:id', meta, async (request) => {
    const report = admin.report(id(request));
    if (!report) throw new SandboxError(404, `no report ${id(request)}`);
    return report;
  });
  addRoute(app, ctx, 'PATCH', '/_admin/reports/:id', meta, async (request) => admin.edit(id(request), body(request) as EditSpec));
  addRoute(app, ctx, 'DELETE', '/_admin/reports/:id', meta, async (request, reply) => {
    admin.delete(id(request));
    return reply.code(204).send();
  });
  addRoute(app, ctx, 'POST', '/_admin/reports/:id/approve', meta, async (request) => admin.approve(id(request), body(request) as ApproveOptions));
  addRoute(app, ctx, 'POST', '/_admin/reports/:id/sendBack', meta, async (request) => admin.sendBack(id(request), str(body(request), 'comment')));
  addRoute(app, ctx, 'POST', '/_admin/reports/:id/recall', meta, async (request) => admin.recall(id(request)));
  addRoute(app, ctx, 'POST', '/_admin/reports/:id/resubmit', meta, async (request) => admin.resubmit(id(request)));
  addRoute(app, ctx, 'POST', '/_admin/reports/:id/reassign', meta, async (request) =>
    admin.reassign(id(request), str(body(request), 'approver', true) as string),
  );
  addRoute(app, ctx, 'GET', '/_admin/clock', meta, async () => ({ now: admin.now() }));
  addRoute(app, ctx, 'PUT', '/_admin/clock', meta, async (request) => ({
    now: wrapRange(() => admin.setClock(str(body(request), 'now', true) as string)),
  }));
  addRoute(app, ctx, 'POST', '/_admin/clock/advance', meta, async (request) => {
    const seconds = body(request)['seconds'];
    if (typeof seconds !== 'number') throw new SandboxError(400, 'seconds must be a number');
    return { now: wrapRange(() => admin.advanceClock(seconds)) };
  });
  addRoute(app, ctx, 'GET', '/_admin/faults', meta, async () => admin.faults());
  addRoute(app, ctx, 'PUT', '/_admin/faults', meta, async (request) => {
    const b = request.body;
    const input = (typeof b === 'string' ? b : typeof b === 'object' && b !== null && 'profile' in b ? (b as { profile: unknown }).profile : b) as FaultInput;
    wrapRange(() => admin.setFaults(input));
    return admin.faults();
  });
  addRoute(app, ctx, 'GET', '/_admin/calls', meta, async () => admin.calls());
  addRoute(app, ctx, 'DELETE', '/_admin/calls', meta, async (_request, reply) => {
    admin.resetCalls();
    return reply.code(204).send();
  });
  addRoute(app, ctx, 'POST', '/_admin/tokens/refresh-token', meta, async () => ({ refreshToken: admin.mintCompanyRefreshToken() }));
  addRoute(app, ctx, 'POST', '/_admin/tokens/request-token', meta, async () => ({ requestToken: admin.mintRequestToken() }));
  const user = (request: FastifyRequest): string => (request.params as { user: string }).user;
  addRoute(app, ctx, 'POST', '/_admin/users/:user/consent', meta, async (request) => {
    const scopes = body(request)['scopes'];
    if (scopes !== undefined && !(Array.isArray(scopes) && scopes.every((s) => typeof s === 'string'))) {
      throw new SandboxError(400, 'scopes must be an array of strings');
    }
    return admin.consent(user(request), scopes as string[] | undefined);
  });
  addRoute(app, ctx, 'POST', '/_admin/users/:user/revoke-consent', meta, async (request) => admin.revokeConsent(user(request)));
  addRoute(app, ctx, 'GET', '/_admin/otp/outbox', meta, async () => admin.otpOutbox());

  const events = ctx.events;
  addRoute(app, ctx, 'GET', '/_admin/events', meta, async () => events.status());
  addRoute(app, ctx, 'POST', '/_admin/events/subscriptions', meta, async (request, reply) => {
    const b = body(request);
    const endpoint = str(b, 'endpoint', true) as string;
    return reply.code(201).send(events.subscribe(endpoint, { id: str(b, 'id'), filter: str(b, 'filter') }));
  });
  addRoute(app, ctx, 'PUT', '/_admin/events/faults', meta, async (request) => wrapRange(() => events.setFaults(body(request))));
  addRoute(app, ctx, 'PUT', '/_admin/events/step-notifications', meta, async (request) => {
    const enabled = body(request)['enabled'];
    if (typeof enabled !== 'boolean') throw new SandboxError(400, 'enabled must be a boolean');
    events.stepNotifications = enabled;
    return { stepNotifications: enabled };
  });
  addRoute(app, ctx, 'POST', '/_admin/events/pause', meta, async (request) => {
    const minutes = body(request)['minutes'];
    wrapRange(() => events.pause(minutes as number | undefined));
    return events.status();
  });
  addRoute(app, ctx, 'POST', '/_admin/events/resume', meta, async () => {
    events.resume();
    return events.status();
  });
  addRoute(app, ctx, 'POST', '/_admin/events/idle', meta, async () => {
    await events.idle();
    return events.counts();
  });
  addRoute(app, ctx, 'GET', '/_admin/events/deliveries', meta, async () => events.deliveries());
  addRoute(app, ctx, 'DELETE', '/_admin/events/counters', meta, async (_request, reply) => {
    events.resetCounts();
    return reply.code(204).send();
  });
  addRoute(app, ctx, 'GET', '/_admin/users/:user/delegates', meta, async (request) => admin.delegates(user(request)));
  addRoute(app, ctx, 'PUT', '/_admin/users/:user/delegates', meta, async (request) => {
    if (!Array.isArray(request.body)) throw new SandboxError(400, 'body must be a JSON array of delegates');
    return admin.setDelegates(user(request), request.body as DelegateSpec[]);
  });
}

/** RangeErrors from the clock and fault validation become 400s. */
function wrapRange<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof RangeError) throw new SandboxError(400, e.message);
    throw e;
  }
}
