import { APPROVAL_STATUSES, approvalKey, parseApprovalKey, type Approval } from '../../model/approval.js';

/** `YYYY-MM-DDTHH:MM:SS[.fraction]Z`: the only time format the core compares and sorts as text. */
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
/** Deliberately loose: one `@`, no spaces, a dot in the domain. The identity directory owns real validation. */
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Whether `value` is an ISO-8601 UTC time string (`2026-03-02T09:00:00.000Z`) naming a real instant. */
export function isIsoUtc(value: unknown): value is string {
  return typeof value === 'string' && ISO_UTC.test(value) && Number.isFinite(Date.parse(value));
}

/** Whether `value` looks like an e-mail address. */
export function isEmailAddress(value: unknown): value is string {
  return typeof value === 'string' && EMAIL.test(value);
}

/**
 * Everything wrong with one approval a source yielded, as sentences naming the approval and the
 * field (empty when it is well-formed). `sourceId` is the source instance's id; `kinds`, when
 * given, the approval kinds the source may report.
 */
export function approvalProblems(a: Approval, sourceId: string, kinds?: readonly string[]): string[] {
  const problems: string[] = [];
  const where = `approval ${JSON.stringify(a?.key)}`;
  if (typeof a !== 'object' || a === null) return [`yielded ${JSON.stringify(a)} instead of an approval`];
  try {
    parseApprovalKey(a.key);
  } catch {
    problems.push(`${where}: key is not <source>:<kind>:<externalId>`);
  }
  if (a.source !== sourceId) problems.push(`${where}: source is ${JSON.stringify(a.source)}, expected the instance id ${JSON.stringify(sourceId)}`);
  if (typeof a.key !== 'string' || !a.key.startsWith(`${sourceId}:${a.kind}:`)) {
    problems.push(`${where}: key does not start with "${sourceId}:${a.kind}:" (<sourceId>:<kind>:)`);
  } else if (a.key !== approvalKey(sourceId, a.kind, a.externalId)) {
    problems.push(`${where}: key is not approvalKey(source, kind, externalId) = ${JSON.stringify(approvalKey(sourceId, a.kind, a.externalId))}`);
  }
  if (kinds && !kinds.includes(a.kind)) problems.push(`${where}: kind ${JSON.stringify(a.kind)} is not one of ${kinds.join(', ')}`);
  if (typeof a.externalId !== 'string' || a.externalId === '') problems.push(`${where}: externalId is empty`);
  if (typeof a.title !== 'string') problems.push(`${where}: title is not a string`);
  if (!(APPROVAL_STATUSES as readonly string[]).includes(a.status)) {
    problems.push(`${where}: status ${JSON.stringify(a.status)} is not one of ${APPROVAL_STATUSES.join(', ')}`);
  }
  if (!isIsoUtc(a.sourceUpdatedAt)) problems.push(`${where}: sourceUpdatedAt ${JSON.stringify(a.sourceUpdatedAt)} is not an ISO-8601 UTC time`);
  if (a.submittedAt !== undefined && a.submittedAt !== null && !isIsoUtc(a.submittedAt)) {
    problems.push(`${where}: submittedAt ${JSON.stringify(a.submittedAt)} is not an ISO-8601 UTC time`);
  }
  if (typeof a.requester !== 'object' || a.requester === null) problems.push(`${where}: requester is missing`);
  else if (a.requester.email !== undefined && !isEmailAddress(a.requester.email)) {
    problems.push(`${where}: requester email ${JSON.stringify(a.requester.email)} is not an e-mail address`);
  }
  if (!Array.isArray(a.approvers)) problems.push(`${where}: approvers is not an array`);
  else {
    a.approvers.forEach((p, i) => {
      if (typeof p?.sourceUserId !== 'string' || p.sourceUserId === '') problems.push(`${where}: approvers[${i}] has no sourceUserId`);
      if (p?.email !== undefined && !isEmailAddress(p.email))
        problems.push(`${where}: approvers[${i}].email ${JSON.stringify(p.email)} is not an e-mail address (leave it absent while unresolved)`);
    });
    if (a.status === 'pending' && a.approvers.length === 0) problems.push(`${where}: pending with no approver`);
  }
  if (a.amount !== undefined && a.amount !== null) {
    if (typeof a.amount.value !== 'string' || !/^-?\d+(\.\d+)?$/.test(a.amount.value))
      problems.push(`${where}: amount.value ${JSON.stringify(a.amount.value)} is not a decimal string`);
    if (typeof a.amount.currency !== 'string' || !/^[A-Z]{3}$/.test(a.amount.currency))
      problems.push(`${where}: amount.currency ${JSON.stringify(a.amount.currency)} is not an ISO 4217 code`);
  }
  if (typeof a.links !== 'object' || a.links === null) problems.push(`${where}: links is missing`);
  if ('details' in a)
    problems.push(`${where}: has "details"; card content goes in "content" (fields, lineItems, flags), the source's own data in "sourceData"`);
  if (a.content !== undefined) problems.push(...contentProblems(a.content).map((p) => `${where}: ${p}`));
  if (a.sourceData !== undefined) {
    try {
      const json = JSON.stringify(a.sourceData);
      if (JSON.stringify(JSON.parse(json)) !== json || typeof a.sourceData !== 'object' || a.sourceData === null || Array.isArray(a.sourceData))
        throw new Error();
    } catch {
      problems.push(`${where}: sourceData is not a JSON-serialisable object`);
    }
  }
  return problems;
}

const isText = (v: unknown): boolean => typeof v === 'string';
const isTextList = (v: unknown): boolean => Array.isArray(v) && v.every(isText);

/** What is wrong with an approval's `content` (the same rules as the host's boundary check). */
function contentProblems(content: unknown): string[] {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) return ['content is not an object'];
  const c = content as Record<string, unknown>;
  const out: string[] = [];
  for (const k of Object.keys(c))
    if (k !== 'fields' && k !== 'lineItems' && k !== 'flags' && c[k] !== undefined)
      out.push(`content.${k} is not a content key (fields, lineItems, flags); the source's own data goes in sourceData`);
  if (c.fields !== undefined && !(Array.isArray(c.fields) && c.fields.every((f) => isText(f?.label) && isText(f?.value))))
    out.push('content.fields must be a list of {label, value} strings');
  if (
    c.lineItems !== undefined &&
    !(Array.isArray(c.lineItems) && c.lineItems.every((l) => isText(l?.label) && (l.flags === undefined || isTextList(l.flags))))
  )
    out.push('content.lineItems must be a list of {label, amount?, flags?}');
  if (c.flags !== undefined && !isTextList(c.flags)) out.push('content.flags must be a list of strings');
  return out;
}
