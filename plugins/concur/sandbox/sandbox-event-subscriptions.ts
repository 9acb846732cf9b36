import { SandboxError } from './sandbox-company.js';
import { EXPENSE_TOPIC } from './sandbox-event-facts.js';

/**
 * The sandbox app's ESS webhook subscriptions (event-topics/index.markdown,
 * v4.event-subscription.markdown): at most 5 per application, ids of lower-case letters, digits,
 * "." and "-", a regex filter on the event type, and the read-only fields Concur adds.
 */

/** A subscription as `GET /events/v4/subscriptions` prints it (ess-subscription-get.json). */
export interface WebhookSubscription {
  readonly id: string;
  readonly topic: string;
  readonly filter: string;
  readonly webHookConfig: { readonly endpoint: string };
  readonly applicationId: string;
  readonly scope: string;
  readonly groups: readonly string[];
  readonly companyIds: readonly string[];
}

/** "Each application can have up to 5 subscriptions." */
export const MAX_SUBSCRIPTIONS = 5;
/** "Lowercase letters, numbers, "." and "-"" (the length cap is the sandbox's: Concur names none). */
const ID_PATTERN = /^[a-z0-9.-]{1,128}$/;

/** Topics and the resource scopes that open them (v4.expense-events.md "Scope Usage"). */
export const TOPIC_SCOPES: Readonly<Record<string, readonly string[]>> = {
  [EXPENSE_TOPIC]: ['expense.report.read', 'expense.report.readwrite'],
};

/** The topics a token with `scopes` may use; none without a topic's resource scope. */
export function topicsFor(scopes: ReadonlySet<string>): string[] {
  return Object.entries(TOPIC_SCOPES)
    .filter(([, needs]) => needs.some((s) => scopes.has(s)))
    .map(([topic]) => topic);
}

export class EventSubscriptions {
  private readonly byId = new Map<string, WebhookSubscription>();
  private readonly matchers = new Map<string, RegExp>();

  constructor(
    private readonly applicationId: string,
    private readonly companyId: string,
  ) {}

  list(): WebhookSubscription[] {
    return [...this.byId.values()];
  }

  get(id: string): WebhookSubscription | undefined {
    return this.byId.get(id);
  }

  /**
   * Creates or replaces subscription `body.id` (PUT is idempotent). Refuses a bad id, an unknown or
   * closed topic, a filter that is not a regex, an endpoint that is not an absolute http(s) URL,
   * and a sixth subscription, each with a 400 naming the field.
   */
  save(body: unknown, allowedTopics: readonly string[]): WebhookSubscription {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new SandboxError(400, 'the body must be a subscription object');
    const b = body as Record<string, unknown>;
    const id = b['id'];
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
      throw new SandboxError(400, 'id must be 1-128 lower-case letters, digits, "." or "-"');
    }
    const topic = b['topic'];
    if (typeof topic !== 'string' || topic === '') throw new SandboxError(400, 'topic is required');
    if (!allowedTopics.includes(topic)) throw new SandboxError(400, `topic ${topic} is not available to this application (see GET /events/v4/topics)`);
    const filter = b['filter'] === undefined || b['filter'] === null ? '.*' : b['filter'];
    if (typeof filter !== 'string') throw new SandboxError(400, 'filter must be a regular expression string');
    let matcher: RegExp;
    try {
      matcher = new RegExp(`^(?:${filter})$`);
    } catch {
      throw new SandboxError(400, `filter ${JSON.stringify(filter)} is not a valid regular expression`);
    }
    const config = b['webHookConfig'];
    const endpoint = typeof config === 'object' && config !== null ? (config as Record<string, unknown>)['endpoint'] : undefined;
    if (typeof endpoint !== 'string' || !isHttpUrl(endpoint)) throw new SandboxError(400, 'webHookConfig.endpoint must be an absolute http(s) URL');
    if (!this.byId.has(id) && this.byId.size >= MAX_SUBSCRIPTIONS) {
      throw new SandboxError(400, `the application already has ${MAX_SUBSCRIPTIONS} subscriptions, the most ESS allows; delete one first`);
    }
    const saved: WebhookSubscription = {
      id,
      topic,
      filter,
      webHookConfig: { endpoint },
      applicationId: this.applicationId,
      scope: '',
      groups: [],
      companyIds: [this.companyId],
    };
    this.byId.set(id, saved);
    this.matchers.set(id, matcher);
    return saved;
  }

  delete(id: string): boolean {
    this.matchers.delete(id);
    return this.byId.delete(id);
  }

  /** Subscriptions on `topic` whose filter matches `eventType` whole. */
  matching(topic: string, eventType: string): WebhookSubscription[] {
    return this.list().filter((s) => s.topic === topic && (this.matchers.get(s.id)?.test(eventType) ?? false));
  }
}

function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}
