import type { Approval } from '../../core/model/approval.js';
import { approval } from './queue-fixtures.js';

/**
 * An approval with card content and source data, and the body an older version (one `details`
 * bag for both) stored for it: the queue adapters must read such rows as the new shape.
 */
export const withContent: Approval = approval('OLD1', {
  content: {
    fields: [{ label: 'Policy', value: 'Travel' }],
    lineItems: [{ label: 'Hotel', amount: { value: '120.00', currency: 'EUR' }, flags: ['missing receipt'] }],
    flags: ['exceptions'],
  },
  sourceData: { ownerLoginId: 'ada@acme.test', lastModifiedDate: '2026-11-29T09:00:00.123' },
});

/** `stored` (a body as the queue wrote it now) as a version before the split wrote it. */
export function legacyBody(stored: Record<string, unknown>): Record<string, unknown> {
  const { content, sourceData, ...rest } = stored as { content?: object; sourceData?: object };
  return { ...rest, details: { ...sourceData, ...content } };
}
