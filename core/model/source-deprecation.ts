/**
 * An endpoint a source system said is deprecated, e.g. through Concur's `x-api-warn` and `sunset`
 * response headers. A source plugin records each one it sees in its `SourceState` under
 * {@link DEPRECATIONS_STATE_KEY} with {@link addDeprecation}; `approvals-hub diagnostics` lists them,
 * from any process, since the state lives in the queue store.
 */
export interface SourceDeprecation {
  /** Method and route pattern, as in `approvals_hub_source_calls_total` (`GET /api/v3.0/expense/reports`). */
  readonly endpoint: string;
  /** What the source said about it (Concur: the endpoint and its replacement); null if it said nothing. */
  readonly warning: string | null;
  /** When the source says the endpoint goes away, as it sent it (an HTTP date in Concur's `sunset`). */
  readonly sunset: string | null;
  /** When this endpoint was first seen with this warning and sunset (ISO). */
  readonly firstSeen: string;
}

/** The `SourceState` key a source's deprecations are kept under (a JSON array of {@link SourceDeprecation}). */
export const DEPRECATIONS_STATE_KEY = 'deprecations';

/** Bounds what a misbehaving gateway (a new value on every response) can make a source store. */
const MAX_KEPT = 50;
const MAX_TEXT = 500;

/** A header value as stored: trimmed, without control characters, at most 500 characters; null when absent. */
export function deprecationText(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const text = value.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  return text === '' ? null : text.slice(0, MAX_TEXT);
}

/** The deprecations kept in a `SourceState` value; anything unreadable counts as none. */
export function parseDeprecations(stored: string | undefined): SourceDeprecation[] {
  if (!stored) return [];
  try {
    const value: unknown = JSON.parse(stored);
    return Array.isArray(value) ? value.filter(isDeprecation) : [];
  } catch {
    return [];
  }
}

function isDeprecation(v: unknown): v is SourceDeprecation {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as Record<string, unknown>;
  const text = (x: unknown) => x === null || typeof x === 'string';
  return typeof d.endpoint === 'string' && typeof d.firstSeen === 'string' && text(d.warning) && text(d.sunset);
}

/**
 * `kept` with `seen` added, or undefined when an entry for the same endpoint, warning and sunset is
 * already there (nothing to write). Keeps the newest 50 entries.
 */
export function addDeprecation(kept: readonly SourceDeprecation[], seen: SourceDeprecation): SourceDeprecation[] | undefined {
  if (kept.some((d) => d.endpoint === seen.endpoint && d.warning === seen.warning && d.sunset === seen.sunset)) return undefined;
  return [...kept, seen].slice(-MAX_KEPT);
}
