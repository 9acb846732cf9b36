import { DEPRECATIONS_STATE_KEY, addDeprecation, deprecationText, parseDeprecations, type Clock, type Logger, type SourceState } from '../../../core/index.js';
import { endpointOf, type FetchLike } from './resilient-fetch.js';

/**
 * Concur's runtime deprecation signal (API release notes, 2026-03-03, "Now Available: API
 * Deprecation Headers"; see docs/concur-api.md): a response from a deprecated API carries
 * `x-api-warn` (the endpoint and its replacement) and `sunset` (the decommission date). Concur keeps
 * a deprecated API at least 12 months and gives 30 days' notice before it is switched off, so these
 * headers are the early warning: each response that has them is counted
 * (`approvals_hub_source_deprecations_total`), each endpoint and value is logged once at warn level
 * per process and recorded once in the source's durable state, where `approvals-hub diagnostics`
 * reads it.
 */
export class DeprecationWatch {
  /** Endpoint + values this process has logged and recorded. */
  private readonly seen = new Set<string>();
  /** Records are read-modify-write of one state value: one at a time. */
  private recording: Promise<void> = Promise.resolve();

  constructor(
    private readonly state: SourceState,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly count: (endpoint: string) => void,
  ) {}

  /** `inner`, with every response checked for the deprecation headers. */
  wrap(inner: FetchLike): FetchLike {
    return async (request) => {
      const response = await inner(request);
      const warning = deprecationText(response.headers.get('x-api-warn'));
      const sunset = deprecationText(response.headers.get('sunset'));
      if (warning !== null || sunset !== null) await this.saw(endpointOf(request.method, new URL(request.url).pathname), warning, sunset);
      return response;
    };
  }

  private async saw(endpoint: string, warning: string | null, sunset: string | null): Promise<void> {
    this.count(endpoint);
    const id = JSON.stringify([endpoint, warning, sunset]);
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.logger.warn({ endpoint, xApiWarn: warning, sunset }, 'Concur flags this endpoint as deprecated');
    const firstSeen = this.clock.now().toISOString();
    this.recording = this.recording
      .then(async () => {
        const kept = addDeprecation(parseDeprecations(await this.state.get(DEPRECATIONS_STATE_KEY)), { endpoint, warning, sunset, firstSeen });
        if (kept) await this.state.set(DEPRECATIONS_STATE_KEY, JSON.stringify(kept));
      })
      .catch((error: unknown) => {
        // Losing the record costs a diagnostics line, not the call: the log line and the metric stand.
        this.logger.warn({ endpoint, err: (error as Error).message }, 'could not record a Concur deprecation');
      });
    await this.recording;
  }
}
