/**
 * The idempotency key of an outbox entry: stable across retries and crashes, so a notifier that is
 * handed the same key twice shows one message. Built and read only here, so the planner, the reminder
 * scheduler, the outbox worker and the notifier kit cannot drift apart on its shape:
 *
 * - a message about one approval version: `<approval key>#<generation>.<revision>:<approver>:<channel>:<action>`,
 *   where the action is `notify`, `update`, `close` or `remind-<n>` (the n-th reminder for that version);
 * - a digest: `digest:<e-mail>:<channel>:<the approver's local date>`.
 *
 * The approval key and the approver id may contain colons (an external id often does), so a key is read
 * from both ends: the generation follows the last `#` that is followed by `<generation>.<revision>:`, and
 * the channel and action are the last two colon-separated parts. Channel ids never contain a colon
 * (deployment ids are `[a-z][a-z0-9-]*`), generations are short random ids.
 */

/** A message about one version of one approval, to one approver on one channel. */
export interface ApprovalMessageKey {
  readonly kind: 'approval';
  readonly approvalKey: string;
  /** Random id the approval got when it entered the queue (revisions restart if it leaves and comes back). */
  readonly generation: string;
  readonly revision: number;
  /** The approver's `sourceUserId`. */
  readonly approverId: string;
  readonly channel: string;
  readonly action: 'notify' | 'update' | 'close' | `remind-${number}`;
}

/** One digest to one person (by e-mail) on one channel for one of their local days. */
export interface DigestMessageKey {
  readonly kind: 'digest';
  readonly email: string;
  readonly channel: string;
  /** The approver's local date, `YYYY-MM-DD`. */
  readonly date: string;
}

export type IdempotencyKeyParts = ApprovalMessageKey | DigestMessageKey;

const DIGEST_PREFIX = 'digest:';
const APPROVAL_KEY = /^(.+)#([^#.:]+)\.(\d+):(.+):([^:]+):([^:]+)$/;
const DIGEST_KEY = /^digest:(.+):([^:]+):([^:]+)$/;
const ACTION = /^(?:notify|update|close|remind-[1-9]\d*)$/;
const GENERATION = /^[^#.:]+$/;
const CHANNEL = /^[^:]+$/;

/** Thrown for a key (or key parts) that do not have one of the two shapes above. */
export class IdempotencyKeyError extends Error {
  override readonly name = 'IdempotencyKeyError';
}

/** Builds the idempotency key for `parts`; throws {@link IdempotencyKeyError} for parts it could not read back. */
export function buildIdempotencyKey(parts: IdempotencyKeyParts): string {
  const bad = (what: string): never => {
    throw new IdempotencyKeyError(`cannot build an idempotency key: ${what}`);
  };
  if (!CHANNEL.test(parts.channel)) bad(`channel ${JSON.stringify(parts.channel)} is empty or contains ':'`);
  if (parts.kind === 'digest') {
    if (!parts.email) bad('the digest has no e-mail');
    if (!CHANNEL.test(parts.date)) bad(`date ${JSON.stringify(parts.date)} is empty or contains ':'`);
    return `${DIGEST_PREFIX}${parts.email}:${parts.channel}:${parts.date}`;
  }
  if (!parts.approvalKey) bad('the approval key is empty');
  if (parts.approvalKey.startsWith(DIGEST_PREFIX))
    bad(`approval key ${JSON.stringify(parts.approvalKey)} starts with '${DIGEST_PREFIX}', which marks a digest`);
  if (!GENERATION.test(parts.generation)) bad(`generation ${JSON.stringify(parts.generation)} is empty or contains '#', '.' or ':'`);
  if (!Number.isSafeInteger(parts.revision) || parts.revision < 0) bad(`revision ${parts.revision} is not a whole number ≥ 0`);
  if (!parts.approverId) bad('the approver id is empty');
  if (!ACTION.test(parts.action)) bad(`action ${JSON.stringify(parts.action)} is not notify, update, close or remind-<n>`);
  return `${parts.approvalKey}#${parts.generation}.${parts.revision}:${parts.approverId}:${parts.channel}:${parts.action}`;
}

/** Reads a key {@link buildIdempotencyKey} made; throws {@link IdempotencyKeyError} naming the expected shapes otherwise. */
export function parseIdempotencyKey(key: string): IdempotencyKeyParts {
  if (key.startsWith(DIGEST_PREFIX)) {
    const m = DIGEST_KEY.exec(key);
    if (m) return { kind: 'digest', email: m[1]!, channel: m[2]!, date: m[3]! };
  } else {
    const m = APPROVAL_KEY.exec(key);
    if (m && ACTION.test(m[6]!)) {
      return {
        kind: 'approval',
        approvalKey: m[1]!,
        generation: m[2]!,
        revision: Number(m[3]),
        approverId: m[4]!,
        channel: m[5]!,
        action: m[6] as ApprovalMessageKey['action'],
      };
    }
  }
  throw new IdempotencyKeyError(
    `malformed idempotency key ${JSON.stringify(key)}: expected '<approval key>#<generation>.<revision>:<approver>:<channel>:<notify|update|close|remind-n>' ` +
      `or 'digest:<e-mail>:<channel>:<date>'`,
  );
}
