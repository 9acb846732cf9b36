import { Ajv, type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import { isTimeZone, parseClockTime } from '../pipeline/reminder-scheduler.js';
import { isSecretRef } from './secrets.js';

/**
 * The JSON Schema keywords the host adds to ajv, for the deployment schema and every plugin's
 * `configSchema` (see `ConfigSchemaProperty` in plugin-api.ts and README "Write a source plugin").
 */
export const CONFIG_KEYWORDS = ['secret', 'httpsUrl', 'clockTime', 'timeZone'] as const;

const REFERENCES = Symbol.for('approvals-hub.config.secretReferences');

/**
 * What `validate.call(context, config)` hands the `secret` keyword: the JSON pointers (relative
 * to the validated value) where the deployment file had a secret reference. Without it the
 * keyword checks the value itself has a reference's shape.
 */
export interface SecretReferenceContext {
  readonly [REFERENCES]: ReadonlySet<string>;
}

export function secretReferenceContext(pointers: Iterable<string>): SecretReferenceContext {
  return { [REFERENCES]: new Set(pointers) };
}

/** JSON pointers of every secret reference (`{"env": …}`, `{"file": …}`) in `value`. */
export function secretReferencePointers(value: unknown, pointer = ''): string[] {
  if (isSecretRef(value)) return [pointer];
  if (Array.isArray(value)) return value.flatMap((v, i) => secretReferencePointers(v, `${pointer}/${i}`));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => secretReferencePointers(v, `${pointer}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`));
  }
  return [];
}

/** The value at a JSON pointer, or `undefined`. */
export function valueAt(value: unknown, pointer: string): unknown {
  let current = value;
  for (const raw of pointer.split('/').slice(1)) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[raw.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return current;
}

function fail(check: unknown, keyword: string, message: string): false {
  (check as { errors: Partial<ErrorObject>[] }).errors = [{ keyword, message, params: {} }];
  return false;
}

export function isAcceptableUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

function hasUserInfo(value: string): boolean {
  const url = new URL(value);
  return url.username !== '' || url.password !== '';
}

/** Adds the host's keywords ({@link CONFIG_KEYWORDS}) and the standard formats to `ajv`. */
export function addConfigKeywords(ajv: Ajv): Ajv {
  addFormats.default(ajv);
  // `"secret": true` marks a field the deployment file must give as a reference ({"env": "NAME"}
  // or {"file": "path"}), never a literal. Validated after the references are resolved (the
  // context says where they were), so the field's other keywords (`type`, `minLength`, `pattern`)
  // apply to the secret itself, whatever the reference looked like.
  ajv.addKeyword({
    keyword: 'secret',
    schemaType: 'boolean',
    errors: true,
    validate: function check(this: unknown, wanted: boolean, data: unknown, _schema?: unknown, cxt?: { instancePath: string }): boolean {
      if (!wanted) return true;
      const references = (this as Partial<SecretReferenceContext> | undefined)?.[REFERENCES];
      const referenced = references ? references.has(cxt?.instancePath ?? '') : isSecretRef(data);
      return referenced || fail(check, 'secret', 'must be a secret reference such as {"env": "NAME"} or {"file": "path"}, not a literal');
    },
  });
  // `"httpsUrl": true`: an https URL; plain http only on loopback (the sandbox, local fakes).
  ajv.addKeyword({
    keyword: 'httpsUrl',
    schemaType: 'boolean',
    type: 'string',
    errors: true,
    validate: function check(wanted: boolean, data: string): boolean {
      if (!wanted) return true;
      // The message never repeats the value: it may hold the very password it complains about.
      const message = !isAcceptableUrl(data)
        ? 'must be an https URL (http is allowed only on 127.0.0.1 or localhost)'
        : hasUserInfo(data)
          ? 'must not carry a user name or password (user:pass@); credentials belong in a secret reference'
          : undefined;
      return message === undefined || fail(check, 'httpsUrl', message);
    },
  });
  // `"clockTime": true`: a local time of day, `HH:MM` on a 24-hour clock.
  ajv.addKeyword({
    keyword: 'clockTime',
    schemaType: 'boolean',
    type: 'string',
    errors: true,
    validate: function check(wanted: boolean, data: string): boolean {
      return !wanted || parseClockTime(data) !== undefined || fail(check, 'clockTime', 'must be a time of day as HH:MM, from 00:00 to 23:59');
    },
  });
  // `"timeZone": true`: an IANA time zone name this runtime knows.
  ajv.addKeyword({
    keyword: 'timeZone',
    schemaType: 'boolean',
    type: 'string',
    errors: true,
    validate: function check(wanted: boolean, data: string): boolean {
      return !wanted || isTimeZone(data) || fail(check, 'timeZone', 'must be an IANA time zone such as "Europe/Berlin" or "UTC"');
    },
  });
  return ajv;
}

/**
 * Compiles a plugin's `configSchema` in ajv's strict mode, so a misspelt keyword (`requried`,
 * `sekret`) or format is an error instead of a constraint that silently checks nothing. Returns
 * the problem, or `undefined` when the schema is sound. `strictTypes` and `strictRequired` stay off:
 * `{"secret": true, "minLength": 32}` (no `type`) and `required` inside `if` are deliberate.
 */
export function configSchemaProblem(schema: unknown): string | undefined {
  strictAjv ??= addConfigKeywords(new Ajv({ allErrors: true, useDefaults: true, strict: true, strictTypes: false, strictRequired: false, logger: false }));
  try {
    strictAjv.compile(schema as object);
    return undefined;
  } catch (error) {
    const message = (error as Error).message;
    const unknown = /^strict mode: unknown keyword: "([^"]+)"/.exec(message);
    if (unknown) return `configSchema uses unknown keyword "${unknown[1]}" (JSON Schema keywords and the host's ${CONFIG_KEYWORDS.join(', ')} only)`;
    return `configSchema is not a valid schema: ${message}`;
  } finally {
    // One plugin's `$id` must not collide with the next one's.
    strictAjv.removeSchema(schema as object);
  }
}

let strictAjv: Ajv | undefined;
