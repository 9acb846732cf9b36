import { SeededRandom, deriveSeed } from './sandbox-random.js';

/**
 * Fault injection. Every faulted request makes its draws from one seeded stream, so the same seed
 * and the same sequence of requests give the same faults.
 */

/** Endpoint groups faults can be scoped to. */
export type EndpointGroup = 'token' | 'reports' | 'entries' | 'identity' | 'workflow' | 'events' | 'admin';
export const ENDPOINT_GROUPS: readonly EndpointGroup[] = ['token', 'reports', 'entries', 'identity', 'workflow', 'events', 'admin'];

export type FaultProfileName = 'none' | 'flaky' | 'chaos' | 'slow' | 'identity-down';

export type Latency = number | { readonly min: number; readonly max: number };

export interface FaultOptions {
  /** Added to every faulted request before anything else happens. */
  readonly latencyMs?: Latency;
  /** Share of requests answered 429 with `Retry-After` and the v4-rate-limit-429.json body. */
  readonly rate429?: number;
  /** Seconds in the Retry-After header (the documented example sends 0). Default 1. */
  readonly retryAfterSeconds?: number;
  /** Share answered 503 (maintenance, http-status-codes.markdown) in the endpoint's error shape. */
  readonly rate503?: number;
  /** Share that never answer; the socket is held until the client gives up or the sandbox closes. */
  readonly rateHang?: number;
  /** Share of v3 report-list pages sent as a 200 whose JSON body is cut short. */
  readonly rateMalformed?: number;
  /** Access tokens issued while set die after `expiringTokenSeconds` of sandbox time (~2 s). */
  readonly expiringTokens?: boolean;
  readonly expiringTokenSeconds?: number;
  /** Share of identity requests that time out: late by `identityTimeoutMs`, or hung when unset. */
  readonly identityTimeoutRate?: number;
  readonly identityTimeoutMs?: number;
  /** Every identity request gets 504 Gateway Timeout (a status Identity v4 documents). */
  readonly identityDown?: boolean;
  /** Groups the faults apply to. Default: the Concur API groups, not `token` or `admin`. */
  readonly scope?: readonly EndpointGroup[];
  /**
   * Endpoints answered as deprecated, whatever `scope` says: every response carries `x-api-warn`
   * and `sunset` with these values, as Concur's gateways do since March 2026.
   */
  readonly deprecations?: readonly SandboxDeprecation[];
}

export interface SandboxDeprecation {
  /** Method and route as the sandbox registers it: `GET /api/v3.0/expense/reports`, `GET /api/v3.0/expense/reports/:id`. */
  readonly endpoint: string;
  /** `x-api-warn`, e.g. `"/api/v3.0/expense/reports is deprecated; use /expensereports/v4/..."`. */
  readonly warning: string;
  /** `sunset`, an HTTP date, e.g. `Sun, 31 Jan 2027 00:00:00 GMT`. */
  readonly sunset: string;
}

export const DEFAULT_FAULT_SCOPE: readonly EndpointGroup[] = ['reports', 'entries', 'identity', 'workflow'];

export const FAULT_PROFILES: Readonly<Record<FaultProfileName, FaultOptions>> = {
  none: {},
  flaky: { rate429: 0.05, rate503: 0.03, latencyMs: { min: 0, max: 50 } },
  chaos: {
    latencyMs: { min: 0, max: 150 },
    rate429: 0.1,
    rate503: 0.05,
    rateHang: 0.02,
    rateMalformed: 0.05,
    expiringTokens: true,
    identityTimeoutRate: 0.2,
    identityTimeoutMs: 5_000,
  },
  slow: { latencyMs: { min: 200, max: 400 } },
  'identity-down': { identityDown: true },
};

export type FaultInput = FaultProfileName | FaultOptions;

export type FaultOutcome =
  | { readonly kind: 'none' }
  | { readonly kind: '429'; readonly retryAfterSeconds: number }
  | { readonly kind: '503' }
  | { readonly kind: '504' }
  | { readonly kind: 'hang' }
  | { readonly kind: 'malformed' }
  | { readonly kind: 'late'; readonly delayMs: number };

export interface FaultDecision {
  readonly latencyMs: number;
  readonly outcome: FaultOutcome;
}

const NO_FAULT: FaultDecision = { latencyMs: 0, outcome: { kind: 'none' } };

/** Validates a profile name or options object; throws RangeError on anything out of range. */
export function resolveFaults(input: FaultInput | undefined): FaultOptions {
  if (input === undefined) return {};
  if (typeof input === 'string') {
    const profile = FAULT_PROFILES[input];
    if (!profile) throw new RangeError(`unknown fault profile "${input}" (one of ${Object.keys(FAULT_PROFILES).join(', ')})`);
    return profile;
  }
  if (typeof input !== 'object' || input === null) throw new RangeError('faults must be a profile name or an options object');
  const rates = ['rate429', 'rate503', 'rateHang', 'rateMalformed', 'identityTimeoutRate'] as const;
  for (const key of rates) {
    const v = input[key];
    if (v !== undefined && (typeof v !== 'number' || !(v >= 0 && v <= 1))) throw new RangeError(`${key} must be in [0, 1]`);
  }
  const sum = (input.rate429 ?? 0) + (input.rate503 ?? 0) + (input.rateHang ?? 0) + (input.rateMalformed ?? 0);
  if (sum > 1) throw new RangeError('rate429 + rate503 + rateHang + rateMalformed must not exceed 1');
  const lat = input.latencyMs;
  if (lat !== undefined) {
    const ok = typeof lat === 'number' ? lat >= 0 : lat.min >= 0 && lat.max >= lat.min;
    if (!ok) throw new RangeError('latencyMs must be >= 0, or {min, max} with 0 <= min <= max');
  }
  for (const key of ['retryAfterSeconds', 'expiringTokenSeconds', 'identityTimeoutMs'] as const) {
    const v = input[key];
    if (v !== undefined && !(typeof v === 'number' && v >= 0)) throw new RangeError(`${key} must be a number >= 0`);
  }
  for (const g of input.scope ?? []) {
    if (!ENDPOINT_GROUPS.includes(g)) throw new RangeError(`unknown endpoint group "${g}" in scope`);
  }
  if (input.deprecations !== undefined && !Array.isArray(input.deprecations)) throw new RangeError('deprecations must be an array');
  for (const [i, d] of (input.deprecations ?? []).entries()) {
    if (typeof d !== 'object' || d === null || typeof d.endpoint !== 'string' || !/^[A-Z]+ \/\S*$/.test(d.endpoint)) {
      throw new RangeError(`deprecations[${i}].endpoint must be a method and a route, e.g. "GET /api/v3.0/expense/reports"`);
    }
    for (const key of ['warning', 'sunset'] as const) {
      if (typeof d[key] !== 'string' || d[key] === '' || /[\r\n]/.test(d[key]))
        throw new RangeError(`deprecations[${i}].${key} must be a non-empty one-line string`);
    }
  }
  return input;
}

export class FaultInjector {
  private options: FaultOptions = {};
  private readonly rng: SeededRandom;

  constructor(seed: number, input?: FaultInput) {
    this.rng = new SeededRandom(deriveSeed(seed, 0xfa017));
    this.set(input);
  }

  set(input: FaultInput | undefined): void {
    this.options = resolveFaults(input);
  }

  get current(): FaultOptions {
    return this.options;
  }

  /** Lifetime of newly issued access tokens when the expiringTokens fault is on. */
  get tokenLifetimeOverride(): number | undefined {
    return this.options.expiringTokens ? (this.options.expiringTokenSeconds ?? 2) : undefined;
  }

  /** The deprecation headers for `endpoint` (`GET /api/v3.0/expense/reports`), if it is set to send them. */
  deprecation(endpoint: string): SandboxDeprecation | undefined {
    return this.options.deprecations?.find((d) => d.endpoint === endpoint);
  }

  /** Decides what happens to one request of `group`; `isReportList` enables malformed pages. */
  decide(group: EndpointGroup, isReportList: boolean): FaultDecision {
    const o = this.options;
    const scope = o.scope ?? DEFAULT_FAULT_SCOPE;
    if (!scope.includes(group)) return NO_FAULT;
    const latencyMs = this.latency(o.latencyMs);
    if (group === 'identity') {
      if (o.identityDown) return { latencyMs, outcome: { kind: '504' } };
      if (o.identityTimeoutRate && this.rng.next() < o.identityTimeoutRate) {
        return {
          latencyMs,
          outcome: o.identityTimeoutMs === undefined ? { kind: 'hang' } : { kind: 'late', delayMs: o.identityTimeoutMs },
        };
      }
    }
    const anyRate = (o.rateHang ?? 0) + (o.rate429 ?? 0) + (o.rate503 ?? 0) + (o.rateMalformed ?? 0);
    if (anyRate === 0) return { latencyMs, outcome: { kind: 'none' } };
    let r = this.rng.next();
    if ((r -= o.rateHang ?? 0) < 0) return { latencyMs, outcome: { kind: 'hang' } };
    if ((r -= o.rate429 ?? 0) < 0) return { latencyMs, outcome: { kind: '429', retryAfterSeconds: o.retryAfterSeconds ?? 1 } };
    if ((r -= o.rate503 ?? 0) < 0) return { latencyMs, outcome: { kind: '503' } };
    if (isReportList && (r -= o.rateMalformed ?? 0) < 0) return { latencyMs, outcome: { kind: 'malformed' } };
    return { latencyMs, outcome: { kind: 'none' } };
  }

  private latency(l: Latency | undefined): number {
    if (l === undefined) return 0;
    if (typeof l === 'number') return l;
    return l.min + Math.floor(this.rng.next() * (l.max - l.min + 1));
  }
}
