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
  type IPolicy,
  type IRetryBackoffContext,
} from 'cockatiel';
import { retryAfterMs, type Logger } from '../../../core/index.js';

/** A `fetch` as openapi-fetch calls it. */
export type FetchLike = (request: Request) => Promise<Response>;

export interface ResilienceOptions {
  /** Per attempt. Concur says to allow 60 s for a reply (http-status-codes.markdown). */
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A `Retry-After` longer than this ends the call (the cycle fails cleanly and the next one resumes). */
  readonly maxRetryAfterMs: number;
}

export const defaultResilience: ResilienceOptions = {
  timeoutMs: 60_000,
  maxAttempts: 4,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 120_000,
};

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
    const duration = asked ?? next.duration;
    const self = new RetryAfterBackoff(this.options, next);
    return Object.assign(self, { duration });
  }
}

/** Opens after consecutive failures so a flaky identity API fails fast instead of stalling cycles. */
export function identityBreaker(halfOpenAfterMs = 30_000, failures = 3) {
  return circuitBreaker(handleAll, { halfOpenAfter: halfOpenAfterMs, breaker: new ConsecutiveBreaker(failures) });
}

/**
 * The fetch every Concur call goes through: a timeout per attempt, retries with backoff and jitter
 * on 408/429/5xx and network errors that honour `Retry-After`, optionally a circuit breaker, and a
 * log line with `concur-correlationid` for every failed attempt. Auth sits above this layer.
 */
/** `/api/v3.0/expense/reports/F4F0…` → `/api/v3.0/expense/reports/{id}`: a metric label with few values. */
export function endpointOf(method: string, path: string): string {
  const route = path
    .replace(/^(\/api\/v3\.0\/expense\/reports)\/[^/]+$/, '$1/{id}')
    .replace(/^(\/profile\/identity\/v4(?:\.1)?\/Users)\/(?!\.search)[^/]+$/, '$1/{id}')
    .replace(/^(\/profile\/spend\/v4\.1\/Users)\/[^/]+$/, '$1/{id}')
    .replace(/\/users\/[^/]+\//, '/users/{userId}/')
    .replace(/\/reports\/[^/]+\/(approve|sendBack)$/, '/reports/{reportId}/$1');
  return `${method} ${route}`;
}

/** Counts each attempt; `status` is the HTTP status, or `error` for a network failure or timeout. */
export type CallCounter = (endpoint: string, status: number | 'error') => void;

export function resilientFetch(
  logger: Logger,
  options: ResilienceOptions = defaultResilience,
  breaker?: IPolicy,
  base: FetchLike = (r) => fetch(r),
  count: CallCounter = () => {},
): FetchLike {
  const retryPolicy = retry(handleAll, { maxAttempts: options.maxAttempts - 1, backoff: new RetryAfterBackoff(options) });
  const perAttempt = timeout(options.timeoutMs, TimeoutStrategy.Aggressive);
  const policy = breaker ? wrap(breaker, retryPolicy, perAttempt) : wrap(retryPolicy, perAttempt);
  return async (request) => {
    const { method, url } = request;
    const path = new URL(url).pathname;
    try {
      return await policy.execute(async ({ signal }: { signal: AbortSignal }) => {
        const attemptSignal = AbortSignal.any([request.signal, signal]);
        let response: Response;
        try {
          // The body is read inside the attempt, so the timeout covers a reply that stalls mid-body
          // too, and the connection is free before any retry.
          response = await buffer(await base(new Request(request.clone(), { signal: attemptSignal })));
          count(endpointOf(method, path), response.status);
        } catch (error) {
          count(endpointOf(method, path), 'error');
          logger.warn({ method, path, err: (error as Error).message }, 'Concur call failed');
          throw error;
        }
        if (RETRYABLE.has(response.status)) {
          const correlationId = response.headers.get('concur-correlationid') ?? undefined;
          logger.warn(
            { method, path, status: response.status, correlationId, retryAfter: response.headers.get('retry-after') ?? undefined },
            'Concur call failed',
          );
          const wait = retryAfterMs(response.headers.get('retry-after'), { maxMs: Infinity });
          if (wait !== undefined && wait > options.maxRetryAfterMs) return response;
          throw new RetryableResponse(response);
        }
        return response;
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
