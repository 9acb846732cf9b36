import type { TriggerStore, SourceTriggers, TriggerSubmission, SourceTrigger } from '../contracts/source-triggers.js';
import type { Clock } from '../contracts/clock.js';

/** What the hub tells a source's runner. */
export interface TriggerListener {
  /** A push was stored: note it for the events health and take its triggers now. */
  noteEvent(): void;
  wake(): Promise<void>;
  /** A push was refused as not authentic. */
  noteRefused(): void;
}

/** Counts for the host's metrics. */
export type TriggerOutcome = 'added' | 'duplicate' | 'refused' | 'failed';

/** The longest trigger id or external id the hub stores: a push naming more is malformed. */
const MAX_ID_LENGTH = 256;

/**
 * Between source plugins' webhook routes and the runners: each source instance's container gets a
 * {@link SourceTriggers} from {@link forSource} at composition, before the runners exist; the host
 * attaches each runner when it makes it. A push that arrives before (or on a host that runs no
 * runner for the source) is stored all the same and taken by a runner's next scan.
 */
export class TriggerHub {
  private readonly listeners = new Map<string, TriggerListener>();

  constructor(
    private readonly store: TriggerStore,
    private readonly clock: Clock,
    private readonly count: (source: string, outcome: TriggerOutcome, n: number) => void = () => {},
  ) {}

  attach(source: string, listener: TriggerListener): void {
    this.listeners.set(source, listener);
  }

  forSource(source: string): SourceTriggers {
    return {
      submit: async (triggers) => {
        const now = this.clock.now().toISOString();
        const stored: SourceTrigger[] = triggers.map((t, i) => ({ ...checked(source, t, i), receivedAt: now }));
        let result: TriggerSubmission;
        try {
          result = await this.store.addTriggers(source, stored);
        } catch (error) {
          this.count(source, 'failed', stored.length);
          throw error;
        }
        this.count(source, 'added', result.added);
        this.count(source, 'duplicate', result.duplicates);
        const listener = this.listeners.get(source);
        listener?.noteEvent();
        if (result.added > 0) void listener?.wake();
        return result;
      },
      refused: () => {
        this.count(source, 'refused', 1);
        this.listeners.get(source)?.noteRefused();
      },
    };
  }
}

function checked(source: string, trigger: Omit<SourceTrigger, 'receivedAt'>, index: number): Omit<SourceTrigger, 'receivedAt'> {
  const where = `source "${source}": trigger ${index}`;
  for (const field of ['id', 'externalId'] as const) {
    const value: unknown = trigger[field];
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
      throw new TypeError(`${where}: ${field} must be a non-empty string of at most ${MAX_ID_LENGTH} characters`);
    }
  }
  if (trigger.data !== undefined && (typeof trigger.data !== 'object' || trigger.data === null || Array.isArray(trigger.data))) {
    throw new TypeError(`${where}: data must be a JSON object when given`);
  }
  return { id: trigger.id, externalId: trigger.externalId, ...(trigger.data !== undefined ? { data: trigger.data } : {}) };
}
