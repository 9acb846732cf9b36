import {
  defaultResilience,
  resilientFetch as sdkResilientFetch,
  type CallCounter,
  type FetchLike,
  type Logger,
  type ResilienceOptions,
} from '../../../core/index.js';

export { defaultResilience, type CallCounter, type FetchLike, type ResilienceOptions };

/** The identity API's circuit breaker: open after 3 failures in a row, try again after 30 s. */
export const IDENTITY_BREAKER = { failures: 3, halfOpenAfterMs: 30_000 } as const;

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

/**
 * The fetch every Concur call goes through: the SDK's resilient fetch (timeouts, retries honouring
 * `Retry-After` on 408/429/5xx and network errors, optionally a circuit breaker), counted by
 * Concur endpoint, with `concur-correlationid` in every failure log line. Auth sits above.
 */
export function resilientFetch(
  logger: Logger,
  resilience: ResilienceOptions = defaultResilience,
  breaker?: { readonly failures: number; readonly halfOpenAfterMs: number },
  base?: FetchLike,
  count?: CallCounter,
): FetchLike {
  return sdkResilientFetch({
    system: 'Concur',
    logger,
    resilience,
    breaker,
    base,
    count,
    endpointOf,
    logFields: (response) => ({ correlationId: response.headers.get('concur-correlationid') ?? undefined }),
  });
}
