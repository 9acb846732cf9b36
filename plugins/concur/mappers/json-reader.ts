/**
 * Reads untrusted JSON field by field, so a mapper never casts a vendor payload. Every failure names the
 * payload and the path of the offending field (`malformed Concur reports page: Items[3].LastModifiedDate is not
 * a string (got a number)`) and never the field's value: token responses go through here too.
 */

/** A Concur payload that does not have the shape the plugin relies on. */
export class ConcurPayloadError extends Error {
  override readonly name = 'ConcurPayloadError';

  constructor(
    /** What was being read, e.g. `Concur reports page`. */
    readonly payload: string,
    /** Path of the offending field from the payload's root, e.g. `Items[3].LastModifiedDate`; `` for the root. */
    readonly path: string,
    problem: string,
  ) {
    super(`malformed ${payload}: ${path === '' ? 'the body' : path} ${problem}`);
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The JSON type of a value, for error messages (never the value itself). */
export function jsonTypeOf(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' && !Number.isFinite(value)) return 'a non-finite number';
  return `a ${typeof value}`;
}

/** One value somewhere in a payload, with its path. */
export class JsonValue {
  constructor(
    readonly value: unknown,
    readonly path: string,
    readonly payload: string,
  ) {}

  static root(value: unknown, payload: string): JsonValue {
    return new JsonValue(value, '', payload);
  }

  fail(problem: string): never {
    throw new ConcurPayloadError(this.payload, this.path, problem);
  }

  private expected(what: string): never {
    return this.fail(this.value === undefined ? `is missing (expected ${what})` : `is not ${what} (got ${jsonTypeOf(this.value)})`);
  }

  get isAbsent(): boolean {
    return this.value === undefined;
  }

  get isNull(): boolean {
    return this.value === null;
  }

  object(): JsonObject {
    return isRecord(this.value) ? new JsonObject(this.value, this.path, this.payload) : this.expected('an object');
  }

  array(): JsonValue[] {
    const value = this.value;
    if (!Array.isArray(value)) return this.expected('an array');
    return value.map((item: unknown, i) => new JsonValue(item, `${this.path}[${i}]`, this.payload));
  }

  string(): string {
    return typeof this.value === 'string' ? this.value : this.expected('a string');
  }

  number(): number {
    return typeof this.value === 'number' && Number.isFinite(this.value) ? this.value : this.expected('a number');
  }

  boolean(): boolean {
    return typeof this.value === 'boolean' ? this.value : this.expected('a boolean');
  }
}

/** A JSON object in a payload; the `optional*` readers return `undefined` for an absent key, `nullable*` also pass `null`. */
export class JsonObject {
  constructor(
    private readonly fields: Readonly<Record<string, unknown>>,
    readonly path: string,
    readonly payload: string,
  ) {}

  static root(value: unknown, payload: string): JsonObject {
    return JsonValue.root(value, payload).object();
  }

  get(key: string): JsonValue {
    const value = Object.prototype.hasOwnProperty.call(this.fields, key) ? this.fields[key] : undefined;
    return new JsonValue(value, this.path === '' ? key : `${this.path}.${key}`, this.payload);
  }

  has(key: string): boolean {
    return this.get(key).value !== undefined;
  }

  fail(key: string, problem: string): never {
    return this.get(key).fail(problem);
  }

  string(key: string): string {
    return this.get(key).string();
  }
  number(key: string): number {
    return this.get(key).number();
  }
  boolean(key: string): boolean {
    return this.get(key).boolean();
  }
  object(key: string): JsonObject {
    return this.get(key).object();
  }
  array(key: string): JsonValue[] {
    return this.get(key).array();
  }

  optionalString(key: string): string | undefined {
    const v = this.get(key);
    return v.isAbsent ? undefined : v.string();
  }
  optionalNumber(key: string): number | undefined {
    const v = this.get(key);
    return v.isAbsent ? undefined : v.number();
  }
  optionalBoolean(key: string): boolean | undefined {
    const v = this.get(key);
    return v.isAbsent ? undefined : v.boolean();
  }
  optionalObject(key: string): JsonObject | undefined {
    const v = this.get(key);
    return v.isAbsent ? undefined : v.object();
  }
  optionalArray(key: string): JsonValue[] | undefined {
    const v = this.get(key);
    return v.isAbsent ? undefined : v.array();
  }

  nullableString(key: string): string | null | undefined {
    const v = this.get(key);
    return v.isAbsent ? undefined : v.isNull ? null : v.string();
  }
  nullableObject(key: string): JsonObject | null | undefined {
    const v = this.get(key);
    return v.isAbsent ? undefined : v.isNull ? null : v.object();
  }
}
