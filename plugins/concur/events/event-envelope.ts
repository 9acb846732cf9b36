/**
 * The body of a Concur Event Subscription Service push (docs/concur-api.md 6.2): an envelope
 * `{id, correlationId, route, topic, eventType, timeStamp, facts}`, read into the few fields the
 * receiver acts on. An event is a hint to re-read a record, never its state, so only what names
 * the record (and what orders or routes the re-read) is kept.
 */

/** What an event is about: an expense report, a user's identity or spend profile, or something this host does not act on. */
export type ConcurEventKind = 'report' | 'identity' | 'spend' | 'unknown';

export interface ConcurEvent {
  /** Unique per event; the same on every redelivery (at-least-once), so it is the duplicate key. */
  readonly id: string;
  /** Concur asks that follow-up API calls carry it (`concur-correlationid`); the header's when the body has none. */
  readonly correlationId: string;
  readonly eventType: string;
  readonly topic: string;
  /** RFC 3339, as sent: when Concur issued the event. */
  readonly timeStamp: string;
  readonly kind: ConcurEventKind;
  /** Report events: the report to re-read. */
  readonly reportId?: string | undefined;
  /** Report events: the report's last change, to tell a stale event from a fresh one. */
  readonly lastModifiedDate?: string | undefined;
  /** `statusChanged`: the users the report's new step is assigned to (`startingStep.stepInstances[].assignedUserId`, nulls left out). */
  readonly assignedUserIds: readonly string[];
  /** Report events: the owner or the actor; identity and spend events: the user whose profile changed. */
  readonly userId?: string | undefined;
}

/** A body that is not an event this receiver can read: `field` names the part that is wrong (answered 400, as a retry cannot help). */
export class EventEnvelopeError extends Error {
  override readonly name = 'EventEnvelopeError';
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/**
 * Topics by kind, every spelling seen: the expense docs' samples name `concur.expense.report` as
 * well as `public.concur.expense.report`, and the identity samples `public.concur.profile.identity`.
 */
export const EVENT_TOPICS: Readonly<Record<Exclude<ConcurEventKind, 'unknown'>, readonly string[]>> = {
  report: ['public.concur.expense.report', 'concur.expense.report'],
  identity: ['public.concur.user.profile.identity', 'concur.user.profile.identity', 'public.concur.profile.identity', 'concur.profile.identity'],
  spend: ['public.concur.user.profile.spend', 'concur.user.profile.spend', 'public.concur.profile.spend', 'concur.profile.spend'],
};

/** The event types acted on, by kind; any other type on a known topic is `unknown` (acknowledged and ignored). */
export const EVENT_TYPES: Readonly<Record<Exclude<ConcurEventKind, 'unknown'>, readonly string[]>> = {
  report: ['statusChanged', 'reportCreated', 'reportUpdated', 'reportDeleted'],
  identity: ['IdentityProfileCreated', 'IdentityProfileUpdated', 'IdentityProfileDeleted'],
  spend: ['SpendProfileCreated', 'SpendProfileUpdated', 'SpendProfileDeleted'],
};

/** Which kind a topic and event type make; `unknown` for anything not listed (event types compared without case). */
export function eventKind(topic: string, eventType: string): ConcurEventKind {
  const t = topic.toLowerCase();
  const e = eventType.toLowerCase();
  for (const kind of ['report', 'identity', 'spend'] as const) {
    if (EVENT_TOPICS[kind].includes(t) && EVENT_TYPES[kind].some((x) => x.toLowerCase() === e)) return kind;
  }
  return 'unknown';
}

/**
 * Reads a push body. Throws {@link EventEnvelopeError} naming the field when the body is not a JSON
 * object, or lacks what every event has (`id`, `eventType`, `topic`, a valid `timeStamp`), or what
 * its kind needs (`facts.reportId`, `facts.userId`). An unknown topic or event type is not an error.
 * `headerCorrelationId` (the `concur-correlationid` header) stands in when the body has no correlation id.
 */
export function parseEvent(body: Buffer, headerCorrelationId?: string): ConcurEvent {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (error) {
    throw new EventEnvelopeError('(body)', `is not UTF-8 JSON (${(error as Error).message})`);
  }
  if (!isObject(json)) throw new EventEnvelopeError('(body)', `must be a JSON object, not ${describe(json)}`);
  const id = requiredString(json, 'id', 'id');
  const eventType = requiredString(json, 'eventType', 'eventType');
  const topic = requiredString(json, 'topic', 'topic');
  const timeStamp = requiredString(json, 'timeStamp', 'timeStamp');
  if (Number.isNaN(Date.parse(timeStamp))) throw new EventEnvelopeError('timeStamp', `is not a date and time (${JSON.stringify(timeStamp.slice(0, 40))})`);
  const correlationId = optionalString(json, 'correlationId', 'correlationId') ?? headerCorrelationId ?? '';
  const kind = eventKind(topic, eventType);
  const base = { id, correlationId, eventType, topic, timeStamp, kind };
  if (kind === 'unknown') return { ...base, assignedUserIds: [] };

  const facts = json['facts'];
  if (!isObject(facts)) throw new EventEnvelopeError('facts', `must be an object, not ${describe(facts)}`);
  if (kind !== 'report') return { ...base, userId: requiredString(facts, 'userId', 'facts.userId'), assignedUserIds: [] };

  const reportId = requiredString(facts, 'reportId', 'facts.reportId');
  const lastModifiedDate = optionalString(facts, 'lastModifiedDate', 'facts.lastModifiedDate');
  if (lastModifiedDate !== undefined && Number.isNaN(Date.parse(lastModifiedDate))) {
    throw new EventEnvelopeError('facts.lastModifiedDate', `is not a date and time (${JSON.stringify(lastModifiedDate.slice(0, 40))})`);
  }
  return { ...base, reportId, lastModifiedDate, userId: optionalString(facts, 'userId', 'facts.userId'), assignedUserIds: assignedUsers(facts) };
}

/** `facts.startingStep.stepInstances[].assignedUserId`, distinct, in order; a missing step or a null user is no one. */
function assignedUsers(facts: Record<string, unknown>): string[] {
  const step = facts['startingStep'];
  if (step === undefined || step === null) return [];
  if (!isObject(step)) throw new EventEnvelopeError('facts.startingStep', `must be an object, not ${describe(step)}`);
  const instances = step['stepInstances'];
  if (instances === undefined || instances === null) return [];
  if (!Array.isArray(instances)) throw new EventEnvelopeError('facts.startingStep.stepInstances', `must be an array, not ${describe(instances)}`);
  const out: string[] = [];
  instances.forEach((instance: unknown, i) => {
    if (!isObject(instance)) throw new EventEnvelopeError(`facts.startingStep.stepInstances[${i}]`, `must be an object, not ${describe(instance)}`);
    const user = optionalString(instance, 'assignedUserId', `facts.startingStep.stepInstances[${i}].assignedUserId`);
    if (user !== undefined && !out.includes(user)) out.push(user);
  });
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

function requiredString(from: Record<string, unknown>, key: string, field: string): string {
  const value = from[key];
  if (typeof value !== 'string') throw new EventEnvelopeError(field, value === undefined ? 'is missing' : `must be a string, not ${describe(value)}`);
  if (value.trim() === '') throw new EventEnvelopeError(field, 'is empty');
  return value;
}

/** A string, or undefined when absent, null or empty. */
function optionalString(from: Record<string, unknown>, key: string, field: string): string | undefined {
  const value = from[key];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new EventEnvelopeError(field, `must be a string, not ${describe(value)}`);
  return value;
}
