import { SeededRandom, deriveSeed } from './sandbox-random.js';

/** Endpoint groups faults can be scoped to. */
export type EndpointGroup = 'table' | 'token' | 'admin';

export type FaultProfileName = 'none' | 'flaky' | 'slow' | 'storm';

export interface FaultOptions {
  /** Added to every faulted request: a number of ms, or a range drawn per request. */
  readonly latencyMs?: number | { readonly min: number; readonly max: number };
  /** Share of requests answered 429 with Retry-After and the X-RateLimit-* headers. */
  readonly rate429?: number;
  /** Seconds in Retry-After. Default 1. */
  readonly retryAfterSeconds?: number;
  /** Share answered 500 Internal Server Error. */
  readonly rate500?: number;
  /** Share answered 503 Service Unavailable. */
  readonly rate503?: number;
  /** Groups the faults apply to. Default: `table` (the token endpoint and /_admin are exempt). */
  readonly scope?: readonly EndpointGroup[];
}

export type FaultInput = FaultProfileName | FaultOptions;

export const FAULT_PROFILES: Readonly<Record<FaultProfileName, FaultOptions>> = {
  none: {},
  flaky: { rate429: 0.05, rate500: 0.02, rate503: 0.03, latencyMs: { min: 0, max: 50 } },
  slow: { latencyMs: { min: 200, max: 400 } },
  storm: { rate429: 0.5, retryAfterSeconds: 2 },
};

export type FaultOutcome =
  { readonly kind: 'none' } | { readonly kind: '429'; readonly retryAfterSeconds: number } | { readonly kind: '500' } | { readonly kind: '503' };

export interface FaultDecision {
  readonly latencyMs: number;
  readonly outcome: FaultOutcome;
}

export function resolveFaults(input: FaultInput | undefined): FaultOptions {
  if (input === undefined) return {};
  if (typeof input === 'string') {
    const profile = FAULT_PROFILES[input];
    if (!profile) throw new RangeError(`unknown fault profile "${input}" (one of ${Object.keys(FAULT_PROFILES).join(', ')})`);
    return profile;
  }
  for (const key of ['rate429', 'rate500', 'rate503'] as const) {
    const v = input[key];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= 1)) throw new RangeError(`${key} must be in [0, 1]`);
  }
  if ((input.rate429 ?? 0) + (input.rate500 ?? 0) + (input.rate503 ?? 0) > 1) throw new RangeError('rate429 + rate500 + rate503 must not exceed 1');
  const lat = input.latencyMs;
  if (lat !== undefined && !(typeof lat === 'number' ? lat >= 0 : lat.min >= 0 && lat.max >= lat.min)) {
    throw new RangeError('latencyMs must be >= 0, or {min, max} with 0 <= min <= max');
  }
  if (input.retryAfterSeconds !== undefined && !(input.retryAfterSeconds >= 0)) throw new RangeError('retryAfterSeconds must be >= 0');
  for (const g of input.scope ?? []) if (!['table', 'token', 'admin'].includes(g)) throw new RangeError(`unknown endpoint group "${g}" in scope`);
  return input;
}

/**
 * Fault injection: rates drawn from one seeded stream, plus storms, where the next N requests in scope
 * are all answered 429 (what an inbound rate-limit rule does once its hourly count is spent).
 */
export class FaultInjector {
  private options: FaultOptions = {};
  private readonly rng: SeededRandom;
  private storm: { left: number; retryAfterSeconds: number } | undefined;

  constructor(seed: number, input?: FaultInput) {
    this.rng = new SeededRandom(deriveSeed(seed, 0xfa017));
    this.set(input);
  }

  set(input: FaultInput | undefined): void {
    this.options = resolveFaults(input);
  }

  /** The next `requests` requests in scope get 429 with `Retry-After: retryAfterSeconds`. */
  startStorm(requests: number, retryAfterSeconds: number): void {
    if (!Number.isInteger(requests) || requests < 0) throw new RangeError('a storm needs a whole number of requests >= 0');
    this.storm = requests > 0 ? { left: requests, retryAfterSeconds } : undefined;
  }

  decide(group: EndpointGroup): FaultDecision {
    const o = this.options;
    if (!(o.scope ?? ['table']).includes(group)) return { latencyMs: 0, outcome: { kind: 'none' } };
    const latencyMs = o.latencyMs === undefined ? 0 : typeof o.latencyMs === 'number' ? o.latencyMs : this.rng.int(o.latencyMs.min, o.latencyMs.max);
    if (this.storm) {
      const { retryAfterSeconds } = this.storm;
      if (--this.storm.left <= 0) this.storm = undefined;
      return { latencyMs, outcome: { kind: '429', retryAfterSeconds } };
    }
    if ((o.rate429 ?? 0) + (o.rate500 ?? 0) + (o.rate503 ?? 0) === 0) return { latencyMs, outcome: { kind: 'none' } };
    let r = this.rng.next();
    if ((r -= o.rate429 ?? 0) < 0) return { latencyMs, outcome: { kind: '429', retryAfterSeconds: o.retryAfterSeconds ?? 1 } };
    if ((r -= o.rate500 ?? 0) < 0) return { latencyMs, outcome: { kind: '500' } };
    if ((r -= o.rate503 ?? 0) < 0) return { latencyMs, outcome: { kind: '503' } };
    return { latencyMs, outcome: { kind: 'none' } };
  }
}
