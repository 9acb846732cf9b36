import type { ServiceIdentifier } from '../di.js';

/**
 * The host's Prometheus metrics (prom-client), served on `/metrics`. Bound by the host in the root
 * container, so plugins count their own calls. Single binding.
 */
export interface Metrics {
  /** One call to a source system: `source` instance, `endpoint` (method + route pattern), HTTP `status` or `error`. */
  sourceCall(source: string, endpoint: string, status: number | 'error'): void;
  /** One response in which a source system flagged `endpoint` (method + route pattern) as deprecated. */
  sourceDeprecation(source: string, endpoint: string): void;
  /** Prometheus text exposition of every metric. */
  render(): Promise<string>;
  readonly contentType: string;
}
export const Metrics: ServiceIdentifier<Metrics> = Symbol.for('approvals.core.Metrics');
