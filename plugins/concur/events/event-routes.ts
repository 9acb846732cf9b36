import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock, HttpRoutes, Logger, SourceTriggers } from '../../../core/index.js';
import type { EventAuthenticator, EventVerdict } from './event-auth.js';
import { EventEnvelopeError, parseEvent, type ConcurEvent } from './event-envelope.js';

/** A change to a user's Concur profile, for whoever caches who is who. */
export interface ProfileEvent {
  readonly kind: 'identity' | 'spend';
  readonly userId: string;
  readonly eventType: string;
}

/** The path Concur's event subscription for a source instance posts to (its `webHookConfig.endpoint`, under `publicUrl`). */
export const eventsPath = (instanceId: string): string => `/concur/${encodeURIComponent(instanceId)}/events`;

/** What this receiver has answered, by outcome: read by a test or a health check. */
export interface EventCounts {
  accepted: number;
  duplicates: number;
  ignored: number;
  profile: number;
  refused: number;
  malformed: number;
  unavailable: number;
}

/**
 * `POST /concur/<instance>/events`, the webhook of Concur's Event Subscription Service
 * (docs/concur-api.md 6). Concur waits only seconds and retries on 5xx, 401, 403 and 429 but not on
 * other 4xx, so each answer says what a retry can do:
 * - not authentic (signature 401, client certificate 403, too large 413, too old 401): refused,
 *   counted through `SourceTriggers.refused`, logged without the body;
 * - not an event we can read: 400 (a retry sends the same bytes);
 * - a report event: stored as a trigger before the 200, so an acknowledged event survives a crash;
 *   a store that cannot take it answers 503 and Concur sends it again;
 * - a profile event: handed to `onProfileEvent`, then 200; anything else: 200 and ignored.
 */
export class EventRoutes implements HttpRoutes {
  readonly id: string;
  readonly counts: EventCounts = { accepted: 0, duplicates: 0, ignored: 0, profile: 0, refused: 0, malformed: 0, unavailable: 0 };

  constructor(
    private readonly instanceId: string,
    private readonly authenticator: EventAuthenticator,
    private readonly triggers: SourceTriggers,
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly onProfileEvent: (event: ProfileEvent) => void | Promise<void> = () => undefined,
  ) {
    this.id = `${instanceId}:events`;
  }

  register(app: FastifyInstance): void {
    const path = eventsPath(this.instanceId);
    const bodyLimit = this.authenticator.config.maxBodyBytes;
    // This plugin scope only (the host registers each HttpRoutes in its own): the signature is over
    // the bytes as sent, so no parser may touch them first, whatever the content type.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body));
    app.setErrorHandler((error: { statusCode?: number; code?: string; message?: string }, request, reply) => {
      if (error.statusCode === 413 || error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        return this.refuse(request, reply, { ok: false, status: 413, reason: `oversized: the body is larger than ${bodyLimit} bytes` });
      }
      const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
      if (status >= 500) this.logger.error({ path, err: error.message }, 'Concur event receiver failed');
      return reply.code(status).send({ error: status >= 500 ? 'internal error' : (error.message ?? 'bad request') });
    });
    app.post(path, { bodyLimit }, async (request, reply) => this.receive(request, reply));
  }

  private async receive(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const verdict = this.authenticator.authenticate({ body, headers: request.headers, socket: request.raw.socket });
    if (!verdict.ok) return this.refuse(request, reply, verdict);
    if (verdict.warning) this.logger.warn({ path: request.url, reason: verdict.warning }, 'Concur event signature not verified');

    const header = request.headers['concur-correlationid'];
    let event: ConcurEvent;
    try {
      event = parseEvent(body, Array.isArray(header) ? header[0] : header);
    } catch (error) {
      if (!(error instanceof EventEnvelopeError)) throw error;
      this.counts.malformed++;
      this.logger.warn({ path: request.url, field: error.field, err: error.message }, 'Concur event not readable; answered 400');
      return reply.code(400).send({ error: error.message });
    }
    const age = this.authenticator.checkAge(event.timeStamp, this.clock.now());
    if (!age.ok) return this.refuse(request, reply, age, event);

    const log = { path: request.url, eventId: event.id, correlationId: event.correlationId, eventType: event.eventType, topic: event.topic };
    if (event.kind === 'report') return this.submit(reply, event, log);
    if ((event.kind === 'identity' || event.kind === 'spend') && event.userId !== undefined) {
      try {
        await this.onProfileEvent({ kind: event.kind, userId: event.userId, eventType: event.eventType });
      } catch (error) {
        // A cache that could not be updated is no reason for Concur to send the event again.
        this.logger.warn({ ...log, err: (error as Error).message }, 'Concur profile event not applied');
      }
      this.counts.profile++;
      this.logger.debug(log, 'Concur profile event received');
      return reply.code(200).send({ accepted: true });
    }
    this.counts.ignored++;
    this.logger.debug(log, 'Concur event of a topic or type this host does not act on; acknowledged and ignored');
    return reply.code(200).send({ accepted: false, ignored: true });
  }

  /** Stores the report event as a trigger; acknowledges only once it is stored. */
  private async submit(reply: FastifyReply, event: ConcurEvent, log: Record<string, unknown>): Promise<FastifyReply> {
    let added: number;
    try {
      ({ added } = await this.triggers.submit([
        {
          id: event.id,
          externalId: event.reportId!,
          data: {
            eventType: event.eventType,
            lastModifiedDate: event.lastModifiedDate,
            correlationId: event.correlationId,
            assignedUserIds: event.assignedUserIds,
            timeStamp: event.timeStamp,
          },
        },
      ]));
    } catch (error) {
      this.counts.unavailable++;
      this.logger.error({ ...log, err: (error as Error).message }, 'Concur event could not be stored; answered 503 so Concur sends it again');
      return reply.code(503).header('retry-after', '30').send({ error: 'the event could not be stored; send it again' });
    }
    if (added === 0) this.counts.duplicates++;
    else this.counts.accepted++;
    this.logger.info({ ...log, reportId: event.reportId, duplicate: added === 0 }, 'Concur event stored as a trigger');
    return reply.code(200).send({ accepted: true, duplicate: added === 0 });
  }

  private refuse(request: FastifyRequest, reply: FastifyReply, verdict: Extract<EventVerdict, { ok: false }>, event?: ConcurEvent): FastifyReply {
    this.counts.refused++;
    this.triggers.refused(verdict.reason);
    // Never the body: a refused push may be anyone's.
    this.logger.warn(
      { path: request.url, status: verdict.status, reason: verdict.reason, remote: request.ip, eventId: event?.id },
      'refused a Concur event push',
    );
    return reply.code(verdict.status).send({ error: verdict.reason });
  }
}
