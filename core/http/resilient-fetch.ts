import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker,
  handleAll,
  retry,
  timeout,
  wrap,
  type IBackoff,
  type IBackoffFactory,
  type IRetryBackoffContext,
} from 'cockatiel';
import type { Logger } from '../contracts/logger.js';
import { retryAfterMs } from '../pipeline/retry-after.js';

/** A `fetch` as openapi-fetch calls it. */
export type FetchLike = (request: Request) => Promise<Response>;

/** How hard a source plugin's client tries before a call fails. */
export interface ResilienceOptions {
  /** Per attempt, the body included. */
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /**
   * A `Retry-After` longer than this ends the call with that response (the cycle fails cleanly and
   * the next one resumes from its cursor) instead of holding the cycle until a quota resets.
   */
  readonly maxRetryAfterMs: number;
}

export const defaultResilience: ResilienceOptions = {
  timeoutMs: 60_000,
  maxAttempts: 4,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 120_000,
};

/** Counts each attempt; `status` is the HTTP status, or `error` for a network failure or timeout. */
export type CallCounter = (endpoint: string, status: number | 'error') => void;

export interface ResilientFetchOptions {
  /** The system called, in log lines: `<system> call failed`. */
  readonly system: string;
  readonly logger: Logger;
  readonly resilience?: ResilienceOptions | undefined;
  /** Opens after this many failed calls in a row and tries again after `halfOpenAfterMs`, so a flaky API fails fast instead of stalling cycles. */
  readonly breaker?: { readonly failures: number; readonly halfOpenAfterMs: number } | undefined;
  /** The metric label of a request (`GET /api/…/{id}`): few values, no ids, no query. Default: method and path. */
  readonly endpointOf?: ((method: string, path: string) => string) | undefined;
  readonly count?: CallCounter | undefined;
  /** What a failed attempt's log line adds from the response (a correlation id, the rate-limit rule). */
  readonly logFields?: ((response: Response) => Record<string, unknown>) | undefined;
  /** The fetch underneath (tests); default the global one. */
  readonly base?: FetchLike | undefined;
}

/** Status codes worth another attempt: timeouts, rate limits, and the 5xx of a service under load. */
const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

/** A response worth retrying, kept so the caller sees it if every attempt fails. */
class RetryableResponse extends Error {
  constructor(readonly response: Response) {
    super(`HTTP ${response.status}`);
  }
}

/** Waits what `Retry-After` asks (seconds or an HTTP date), else exponential backoff with jitter. */
class RetryAfterBackoff implements IBackoffFactory<IRetryBackoffContext<unknown>> {
  private readonly exponential: IBackoffFactory<unknown>;
  constructor(
    private readonly options: ResilienceOptions,
    state?: IBackoff<unknown>,
  ) {
    this.exponential = state ?? new ExponentialBackoff({ initialDelay: options.baseDelayMs, maxDelay: options.maxDelayMs });
  }
  next(context: IRetryBackoffContext<unknown>): IBackoff<IRetryBackoffContext<unknown>> {
    const next = this.exponential.next(context);
    const error = 'error' in context.result ? context.result.error : undefined;
    const header = error instanceof RetryableResponse ? error.response.headers.get('retry-after') : null;
    // Uncapped here: a wait past maxRetryAfterMs never gets this far (the call returns the response).
    const asked = retryAfterMs(header, { maxMs: Infinity });
    return Object.assign(new RetryAfterBackoff(this.options, next), { duration: asked ?? next.duration });
  }
}

/**
 * The fetch a source plugin's calls go through (cockatiel): a timeout per attempt that covers the
 * body too, retries with backoff and jitter on 408/429/5xx and network errors that honour
 * `Retry-After`, optionally a circuit breaker, every attempt counted by endpoint and status, and a
 * log line for every failed one (its path only: a query string can name people). Auth sits above.
 */
export function resilientFetch(options: ResilientFetchOptions): FetchLike {
  const resilience = options.resilience ?? defaultResilience;
  const endpointOf = options.endpointOf ?? ((method: string, path: string) => `${method} ${path}`);
  const count = options.count ?? (() => {});
  const base = options.base ?? ((r: Request) => fetch(r));
  const failed = `${options.system} call failed`;
  const retryPolicy = retry(handleAll, { maxAttempts: resilience.maxAttempts - 1, backoff: new RetryAfterBackoff(resilience) });
  const perAttempt = timeout(resilience.timeoutMs, TimeoutStrategy.Aggressive);
  const policy = options.breaker
    ? wrap(
        circuitBreaker(handleAll, { halfOpenAfter: options.breaker.halfOpenAfterMs, breaker: new ConsecutiveBreaker(options.breaker.failures) }),
        retryPolicy,
        perAttempt,
      )
    : wrap(retryPolicy, perAttempt);
  return async (request) => {
    const { method } = request;
    const path = new URL(request.url).pathname;
    const endpoint = endpointOf(method, path);
    try {
      return await policy.execute(async ({ signal }: { signal: AbortSignal }) => {
        let response: Response;
        try {
          // The body is read inside the attempt, so the timeout covers a reply that stalls
          // mid-body too, and the connection is free before any retry.
          response = await buffer(await base(new Request(request.clone(), { signal: AbortSignal.any([request.signal, signal]) })));
          count(endpoint, response.status);
        } catch (error) {
          count(endpoint, 'error');
          options.logger.warn({ method, path, err: (error as Error).message }, failed);
          throw error;
        }
        if (!RETRYABLE.has(response.status)) return response;
        const retryAfter = response.headers.get('retry-after') ?? undefined;
        options.logger.warn({ method, path, status: response.status, retryAfter, ...options.logFields?.(response) }, failed);
        const wait = retryAfterMs(retryAfter ?? null, { maxMs: Infinity });
        if (wait !== undefined && wait > resilience.maxRetryAfterMs) return response;
        throw new RetryableResponse(response);
      }, request.signal);
    } catch (error) {
      if (error instanceof RetryableResponse) return error.response;
      throw error;
    }
  };
}

const NULL_BODY = new Set([101, 204, 205, 304]);

async function buffer(response: Response): Promise<Response> {
  const body = NULL_BODY.has(response.status) ? null : await response.arrayBuffer();
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}
