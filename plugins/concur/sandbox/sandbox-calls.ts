/**
 * Call accounting: every request the sandbox serves outside `/_admin`, by endpoint key
 * (`GET /api/v3.0/expense/reports`, `GET /api/v3.0/expense/reports/:id`, …) and by status.
 * A request is counted when it arrives; its status when the response is handed to the socket
 * (`aborted` if the client hung up first). Tests and benchmarks read it to prove call budgets.
 */

export interface EndpointCalls {
  total: number;
  byStatus: Record<string, number>;
}

export interface CallCounts {
  total: number;
  byEndpoint: Record<string, EndpointCalls>;
  byStatus: Record<string, number>;
  /** Correlation ids callers sent (`concur-correlationid` request header), by endpoint, the last 100 each. */
  correlationIds: Record<string, string[]>;
}

export class CallLog {
  private counts: CallCounts = { total: 0, byEndpoint: {}, byStatus: {}, correlationIds: {} };

  arrived(key: string): void {
    this.counts.total++;
    const e = (this.counts.byEndpoint[key] ??= { total: 0, byStatus: {} });
    e.total++;
  }

  finished(key: string, status: number | 'aborted'): void {
    const s = String(status);
    const e = (this.counts.byEndpoint[key] ??= { total: 0, byStatus: {} });
    e.byStatus[s] = (e.byStatus[s] ?? 0) + 1;
    this.counts.byStatus[s] = (this.counts.byStatus[s] ?? 0) + 1;
  }

  correlated(key: string, correlationId: string): void {
    const ids = (this.counts.correlationIds[key] ??= []);
    ids.push(correlationId);
    if (ids.length > 100) ids.shift();
  }

  /** A deep copy, safe to keep and compare. */
  snapshot(): CallCounts {
    return structuredClone(this.counts);
  }

  reset(): void {
    this.counts = { total: 0, byEndpoint: {}, byStatus: {}, correlationIds: {} };
  }
}

/** Calls to `key` (optionally only those answered with `status`) in a snapshot. */
export function callsTo(counts: CallCounts, key: string, status?: number | 'aborted'): number {
  const e = counts.byEndpoint[key];
  if (!e) return 0;
  return status === undefined ? e.total : (e.byStatus[String(status)] ?? 0);
}
