import {
  defaultResilience,
  resilientFetch as sdkResilientFetch,
  type CallCounter,
  type FetchLike,
  type Logger,
  type ResilienceOptions,
} from '../../../core/index.js';

export { defaultResilience, type CallCounter, type FetchLike, type ResilienceOptions };

/** `/api/now/table/sys_user/6816…` → `/api/now/table/sys_user/{sys_id}`: a metric label with few values. */
export function endpointOf(method: string, path: string): string {
  return `${method} ${path.replace(/^(\/api\/now\/(?:v\d+\/)?table\/[^/]+)\/[^/]+$/, '$1/{sys_id}')}`;
}

/**
 * The fetch every ServiceNow call goes through: the SDK's resilient fetch (docs/servicenow-api.md
 * section 7: a rate-limit rule answers 429 with the seconds to wait in `Retry-After`), counted by
 * table, with the rate-limit rule that refused a call in its log line. Auth sits above.
 */
export function resilientFetch(logger: Logger, resilience: ResilienceOptions = defaultResilience, count?: CallCounter, base?: FetchLike): FetchLike {
  return sdkResilientFetch({
    system: 'ServiceNow',
    logger,
    resilience,
    count,
    base,
    endpointOf,
    logFields: (response) => ({ rateLimitRule: response.headers.get('x-ratelimit-rule') ?? undefined }),
  });
}
