import type { ServiceIdentifier } from '../di.js';
import type { DeliveredEntry } from '../model/queue-types.js';

/**
 * What any host delivered, for channels whose pages every host serves (the web inbox): a host
 * holding an open page pushes to it what another host delivered. Bound by the host, read from
 * the queue's outbox.
 */
export interface DeliveryFeed {
  /** True when other hosts may deliver too (a queue shared by several hosts); else a channel's own pushes are all there is. */
  readonly shared: boolean;
  /** Entries delivered on `channel` that settled after `after`, oldest first, at most `limit`. */
  deliveredSince(channel: string, after: Date, limit: number): Promise<DeliveredEntry[]>;
}
export const DeliveryFeed: ServiceIdentifier<DeliveryFeed> = Symbol.for('approvals.core.DeliveryFeed');
