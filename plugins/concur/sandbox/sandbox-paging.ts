import { randomBytes } from 'node:crypto';

/**
 * Listing snapshots. Concur documents no order for the v3 list, only an opaque `offset` carried
 * by `NextPage`; the sandbox freezes the filtered result set when the first page is asked for, so
 * following NextPage yields every matching report exactly once, and each later page costs O(page).
 * Old snapshots are evicted least-recently-used; an evicted offset is refused with a 400.
 */
export class SnapshotStore<T> {
  private readonly snapshots = new Map<string, readonly T[]>();

  constructor(private readonly maxSnapshots = 32) {}

  create(items: readonly T[]): string {
    const id = randomBytes(9).toString('base64url');
    this.snapshots.set(id, items);
    while (this.snapshots.size > this.maxSnapshots) {
      const oldest = this.snapshots.keys().next();
      if (oldest.done) break;
      this.snapshots.delete(oldest.value);
    }
    return id;
  }

  get(id: string): readonly T[] | undefined {
    const items = this.snapshots.get(id);
    if (items) {
      this.snapshots.delete(id);
      this.snapshots.set(id, items);
    }
    return items;
  }

  clear(): void {
    this.snapshots.clear();
  }
}

/** The opaque page marker: base64url of `<kind>.<key>.<position>`. */
export function encodeOffset(kind: string, key: string, position: number): string {
  return Buffer.from(`${kind}.${key}.${position}`, 'utf8').toString('base64url');
}

export function decodeOffset(kind: string, token: string): { key: string; position: number } | undefined {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  const m = /^([^.]+)\.([^.]+)\.(\d+)$/.exec(text);
  if (!m || m[1] !== kind || m[2] === undefined || m[3] === undefined) return undefined;
  return { key: m[2], position: Number(m[3]) };
}

/** Builds an absolute NextPage URL: the request's own query with `offset` replaced. */
export function nextPageUrl(baseUrl: string, path: string, query: URLSearchParams, offsetParam: string, offset: string): string {
  const q = new URLSearchParams(query);
  q.set(offsetParam, offset);
  return `${baseUrl}${path}?${q.toString()}`;
}
