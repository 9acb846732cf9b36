import {
  ExponentialBackoff,
  TimeoutStrategy,
  handleAll,
  retry,
  timeout,
  wrap,
  type IBackoff,
  type IBackoffFactory,
  type IRetryBackoffContext,
} from 'cockatiel';
import { retryAfterMs, type Logger } from '../../../core/index.js';

/** A `fetch` as openapi-fetch calls it. */
export type FetchLike = (request: Request) => Promise<Response>;

export interface ResilienceOptions {
  /** Per attempt. */
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /**
   * A `Retry-After` longer than this ends the call with the 429 (the cycle fails cleanly and the
   * next one resumes from its cursor) instead of holding the cycle for an hourly rule's reset.
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

/** 429 (rate-limit rules, semaphores) and the 5xx ServiceNow answers under load (docs/servicenow-api.md sections 6, 7). */
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

/** `/api/now/table/sys_user/6816…` → `/api/now/table/sys_user/{sys_id}`: a metric label with few values. */
export function endpointOf(method: string, path: string): string {
  return `${method} ${path.replace(/^(\/api\/now\/(?:v\d+\/)?table\/[^/]+)\/[^/]+$/, '$1/{sys_id}')}`;
}

/** Counts each attempt; `status` is the HTTP status, or `error` for a network failure or timeout. */
export type CallCounter = (endpoint: string, status: number | 'error') => void;

/**
 * The fetch every ServiceNow call goes through: a timeout per attempt (covering the body too), and
 * retries with backoff and jitter on 408/429/5xx and network errors that honour `Retry-After`
 * (docs/servicenow-api.md section 7: a rate-limit rule answers 429 with the seconds to wait). Each
 * failed attempt is logged without its query string (it can name people). Auth sits above this.
 */
export function resilientFetch(
  logger: Logger,
  options: ResilienceOptions = defaultResilience,
  count: CallCounter = () => {},
  base: FetchLike = (r) => fetch(r),
): FetchLike {
  const policy = wrap(
    retry(handleAll, { maxAttempts: options.maxAttempts - 1, backoff: new RetryAfterBackoff(options) }),
    timeout(options.timeoutMs, TimeoutStrategy.Aggressive),
  );
  return async (request) => {
    const { method } = request;
    const endpoint = endpointOf(method, new URL(request.url).pathname);
    try {
      return await policy.execute(async ({ signal }: { signal: AbortSignal }) => {
        let response: Response;
        try {
          response = await buffer(await base(new Request(request.clone(), { signal: AbortSignal.any([request.signal, signal]) })));
          count(endpoint, response.status);
        } catch (error) {
          count(endpoint, 'error');
          logger.warn({ endpoint, err: (error as Error).message }, 'ServiceNow call failed');
          throw error;
        }
        if (!RETRYABLE.has(response.status)) return response;
        const retryAfter = response.headers.get('retry-after') ?? undefined;
        logger.warn(
          { endpoint, status: response.status, retryAfter, rateLimitRule: response.headers.get('x-ratelimit-rule') ?? undefined },
          'ServiceNow call failed',
        );
        const wait = retryAfterMs(retryAfter, { maxMs: Infinity });
        if (wait !== undefined && wait > options.maxRetryAfterMs) return response;
        throw new RetryableResponse(response);
      }, request.signal);
    } catch (error) {
      if (error instanceof RetryableResponse) return error.response;
      throw error;
    }
  };
}

const NULL_BODY = new Set([101, 204, 205, 304]);

/** Reads the body inside the attempt, so the timeout covers a reply that stalls mid-body and the connection is free before a retry. */
async function buffer(response: Response): Promise<Response> {
  const body = NULL_BODY.has(response.status) ? null : await response.arrayBuffer();
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}
