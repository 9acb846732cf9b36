import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { APPROVAL_STATUSES, approvalKey, parseApprovalKey } from '../model/approval.js';

/**
 * What a source plugin hands the core, checked before any of it is committed: the host trusts no
 * plugin (design brief, "The public surface"). Pure and exported on its own, so a source contract
 * kit can run the same checks on a plugin's output in its tests.
 */

/** One thing wrong with one record a source yielded. */
export interface SourceOutputProblem {
  /**
   * The field at fault, as a path (`sourceUpdatedAt`, `approvers[0].sourceUserId`, `cursor`,
   * `completions[2].key`); {@link problemLabel} turns it into a bounded metric label.
   */
  readonly field: string;
  /** What is wrong with it, e.g. `must be ISO-8601 UTC (2026-11-30T09:15:00.000Z), got "30/11/2026"`. */
  readonly message: string;
  /** The record's key or external id, when it has one to name. */
  readonly record?: string | undefined;
}

/** `2026-11-30T09:15:00Z`, `…:00.123Z`: the form `Date.toISOString()` writes, any fraction, UTC only. */
const ISO_UTC = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?Z$';
/** The model's Money.value: a decimal string, never a float or a number with a thousands separator. */
const DECIMAL = '^-?\\d+(\\.\\d+)?$';

const isoUtc = { type: 'string', format: 'date-time', pattern: ISO_UTC };
const text = { type: 'string', minLength: 1 };
const optionalText = { type: 'string' };

const money = {
  type: 'object',
  required: ['value', 'currency'],
  properties: { value: { type: 'string', pattern: DECIMAL }, currency: { type: 'string', pattern: '^[A-Z]{3}$' } },
} as const;

/** The shape of `Approval` (core/model/approval.ts). Extra properties are the plugin's business. */
const approvalSchema = {
  type: 'object',
  required: ['key', 'source', 'kind', 'externalId', 'title', 'status', 'requester', 'approvers', 'sourceUpdatedAt', 'links'],
  properties: {
    key: text,
    source: text,
    kind: { type: 'string', minLength: 1, pattern: '^[^:]+$' },
    externalId: text,
    title: { type: 'string' },
    status: { enum: [...APPROVAL_STATUSES] },
    requester: { type: 'object', properties: { name: optionalText, email: optionalText } },
    approvers: {
      type: 'array',
      items: {
        type: 'object',
        required: ['sourceUserId'],
        properties: {
          sourceUserId: text,
          name: optionalText,
          email: optionalText,
          timeZone: optionalText,
          onBehalfOf: { type: 'object', required: ['sourceUserId'], properties: { sourceUserId: text, name: optionalText } },
        },
      },
    },
    amount: { ...money, type: ['object', 'null'] },
    submittedAt: { anyOf: [isoUtc, { type: 'null' }] },
    sourceUpdatedAt: isoUtc,
    links: { type: 'object', properties: { view: optionalText } },
    content: {
      type: 'object',
      additionalProperties: false,
      properties: {
        fields: {
          type: 'array',
          items: { type: 'object', required: ['label', 'value'], properties: { label: { type: 'string' }, value: { type: 'string' } } },
        },
        lineItems: {
          type: 'array',
          items: {
            type: 'object',
            required: ['label'],
            properties: { label: { type: 'string' }, amount: money, flags: { type: 'array', items: { type: 'string' } } },
          },
        },
        flags: { type: 'array', items: { type: 'string' } },
      },
    },
    sourceData: { type: 'object' },
  },
  // Earlier versions had one `details` bag; a source still yielding it would lose its card content silently.
  not: { required: ['details'] },
} as const;

const completionSchema = {
  type: 'object',
  required: ['key', 'status'],
  properties: { key: text, status: { enum: APPROVAL_STATUSES.filter((s) => s !== 'pending') } },
} as const;

let compiled: { approval: ValidateFunction; completion: ValidateFunction } | undefined;

/** Compiled once, on first use (tens of milliseconds), so a CLI command that never polls does not pay it. */
function validators(): { approval: ValidateFunction; completion: ValidateFunction } {
  if (!compiled) {
    // First error only: a refused record needs one reason, and stopping early keeps the check cheap.
    const ajv = new Ajv({ allErrors: false, strict: true, strictTypes: false, strictRequired: false, logger: false });
    addFormats.default(ajv, ['date-time']);
    compiled = { approval: ajv.compile(approvalSchema), completion: ajv.compile(completionSchema) };
  }
  return compiled;
}

/** `/approvers/0/sourceUserId` → `approvers[0].sourceUserId`. */
function fieldOf(error: ErrorObject, prefix: string): string {
  const parts = error.instancePath.split('/').slice(1);
  if (error.keyword === 'not' && error.instancePath === '') parts.push('details');
  if (error.keyword === 'required') parts.push(String((error.params as { missingProperty: string }).missingProperty));
  let out = prefix;
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out || '(record)';
}

function shown(value: unknown): string {
  const s = value === undefined ? 'undefined' : JSON.stringify(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function valueAt(value: unknown, path: string): unknown {
  let current = value;
  for (const p of path.split('/').slice(1)) current = (current as Record<string, unknown> | undefined)?.[p];
  return current;
}

function describe(error: ErrorObject, value: unknown): string {
  const got = valueAt(value, error.instancePath);
  switch (error.keyword) {
    case 'required':
      return 'is missing';
    case 'format':
    case 'pattern':
      if (error.instancePath.endsWith('At')) return `must be ISO-8601 UTC (2026-11-30T09:15:00.000Z), got ${shown(got)}`;
      if (error.instancePath.endsWith('/value')) return `must be a decimal string ("1234.50"), got ${shown(got)}`;
      if (error.instancePath.endsWith('/currency')) return `must be an ISO 4217 code ("EUR"), got ${shown(got)}`;
      if (error.instancePath === '/kind') return `must not contain ":", got ${shown(got)}`;
      return `${error.message ?? 'is malformed'}, got ${shown(got)}`;
    case 'not':
      return 'has "details": card content goes in "content" (fields, lineItems, flags), the source\'s own data in "sourceData"';
    case 'additionalProperties':
      return `has "${(error.params as { additionalProperty: string }).additionalProperty}", which is not a content key (fields, lineItems, flags); the source's own data goes in "sourceData"`;
    case 'enum':
      return `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}, got ${shown(got)}`;
    case 'minLength':
      return 'must not be empty';
    case 'anyOf':
      return `must be ISO-8601 UTC (2026-11-30T09:15:00.000Z) or null, got ${shown(got)}`;
    default:
      return `${error.message ?? 'is invalid'}, got ${shown(got)}`;
  }
}

/** The key, else the external id, of something that may not be an approval at all. */
function recordOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { key, externalId } = value as { key?: unknown; externalId?: unknown };
  return typeof key === 'string' && key ? key : typeof externalId === 'string' && externalId ? externalId : undefined;
}

/**
 * Checks one approval a source yielded as source `sourceId`: the model's shape (statuses, ISO-8601
 * UTC times, approvers with a `sourceUserId`, decimal-string amounts), and a key of the form
 * `<sourceId>:<kind>:<externalId>` made of its own fields. Undefined when it is fine.
 */
export function checkApproval(sourceId: string, value: unknown, prefix = ''): SourceOutputProblem | undefined {
  const { approval: validate } = validators();
  if (!validate(value)) {
    // A failed anyOf (submittedAt: a time or null) lists each branch's error before its own.
    const error = validate.errors!.find((e) => e.keyword === 'anyOf') ?? validate.errors![0]!;
    return { field: fieldOf(error, prefix), message: describe(error, value), record: recordOf(value) };
  }
  const a = value as { key: string; source: string; kind: string; externalId: string };
  const expected = approvalKey(sourceId, a.kind, a.externalId);
  if (a.key !== expected) {
    return {
      field: `${prefix ? `${prefix}.` : ''}key`,
      message: `must be "${expected}" (<source>:<kind>:<externalId> of source "${sourceId}"), got ${shown(a.key)}`,
      record: a.key,
    };
  }
  if (a.source !== sourceId) {
    return { field: `${prefix ? `${prefix}.` : ''}source`, message: `must be "${sourceId}", got ${shown(a.source)}`, record: a.key };
  }
  return undefined;
}

/** Checks one completion: a key of this source and a status other than `pending`. */
export function checkCompletion(sourceId: string, value: unknown, prefix = ''): SourceOutputProblem | undefined {
  const { completion: validate } = validators();
  if (!validate(value)) {
    const error = validate.errors![0]!;
    return { field: fieldOf(error, prefix), message: describe(error, value), record: recordOf(value) };
  }
  const { key } = value as { key: string };
  let source: string | undefined;
  try {
    source = parseApprovalKey(key).source;
  } catch {
    source = undefined;
  }
  if (source !== sourceId) {
    return {
      field: `${prefix ? `${prefix}.` : ''}key`,
      message: `must be a key of source "${sourceId}" (<source>:<kind>:<externalId>), got ${shown(key)}`,
      record: key,
    };
  }
  return undefined;
}

/** A batch's cursor: absent (keep the committed one) or a string. */
export function checkCursor(value: unknown): SourceOutputProblem | undefined {
  return value === undefined || typeof value === 'string' ? undefined : { field: 'cursor', message: `must be a string or absent, got ${shown(value)}` };
}

/** One `verify` result: `{found: true, approval}` (checked as an approval) or `{found: false, externalId}`. */
export function checkVerifyResult(sourceId: string, value: unknown): SourceOutputProblem | undefined {
  if (typeof value !== 'object' || value === null) return { field: 'found', message: `must be an object with "found", got ${shown(value)}` };
  const r = value as { found?: unknown; approval?: unknown; externalId?: unknown };
  if (r.found === true) return checkApproval(sourceId, r.approval, 'approval');
  if (r.found === false) {
    return typeof r.externalId === 'string' && r.externalId
      ? undefined
      : { field: 'externalId', message: `must be a non-empty string, got ${shown(r.externalId)}` };
  }
  return { field: 'found', message: `must be true or false, got ${shown(r.found)}`, record: recordOf(r.approval) ?? recordOf(r) };
}

/**
 * The field of a problem without array indices (`approvers[0].sourceUserId` →
 * `approvers.sourceUserId`), so a metric labelled with it has a bounded number of series.
 */
export function problemLabel(problem: SourceOutputProblem): string {
  return problem.field.replace(/\[\d+\]/g, '');
}
