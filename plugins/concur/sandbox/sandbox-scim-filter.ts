/**
 * A small SCIM filter evaluator (RFC 7644 §3.4.2.2) covering what the sandbox needs: attribute
 * operators eq/ne/co/sw/ew/pr, `and`/`or`/`not`, and parentheses. Complex `[ ]` filters are not
 * supported and are refused as invalid, like any attribute the caller may not filter on.
 */

export type ScimValue = string | boolean | number | null;
/** Resolves an attribute path on one resource; multi-valued attributes return an array. */
export type ScimResolver<T> = (resource: T, path: string) => ScimValue | readonly ScimValue[] | undefined;

export class ScimFilterError extends Error {}

type Node =
  | { kind: 'cmp'; path: string; op: string; value: ScimValue }
  | { kind: 'pr'; path: string }
  | { kind: 'and' | 'or'; left: Node; right: Node }
  | { kind: 'not'; inner: Node };

type Token = { t: 'word'; v: string } | { t: 'str'; v: string } | { t: '(' } | { t: ')' };

function tokenize(filter: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < filter.length) {
    const c = filter.charAt(i);
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')') {
      tokens.push({ t: c });
      i++;
    } else if (c === '"') {
      let v = '';
      i++;
      while (i < filter.length && filter.charAt(i) !== '"') {
        if (filter.charAt(i) === '\\' && i + 1 < filter.length) i++;
        v += filter.charAt(i);
        i++;
      }
      if (i >= filter.length) throw new ScimFilterError('unterminated string in filter');
      i++;
      tokens.push({ t: 'str', v });
    } else if (c === '[' || c === ']') {
      throw new ScimFilterError('complex attribute filters ([ ]) are not supported by the sandbox');
    } else {
      let v = '';
      while (i < filter.length && !/[\s()"[\]]/.test(filter.charAt(i))) v += filter.charAt(i++);
      tokens.push({ t: 'word', v });
    }
  }
  return tokens;
}

const OPERATORS = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Node {
    const node = this.or();
    if (this.pos < this.tokens.length) throw new ScimFilterError('unexpected text after filter expression');
    return node;
  }

  private peekWord(): string | undefined {
    const t = this.tokens[this.pos];
    return t?.t === 'word' ? t.v.toLowerCase() : undefined;
  }

  private or(): Node {
    let left = this.and();
    while (this.peekWord() === 'or') {
      this.pos++;
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): Node {
    let left = this.unary();
    while (this.peekWord() === 'and') {
      this.pos++;
      left = { kind: 'and', left, right: this.unary() };
    }
    return left;
  }

  private unary(): Node {
    if (this.peekWord() === 'not') {
      this.pos++;
      return { kind: 'not', inner: this.group() };
    }
    const t = this.tokens[this.pos];
    if (t?.t === '(') return this.group();
    return this.comparison();
  }

  private group(): Node {
    if (this.tokens[this.pos]?.t !== '(') throw new ScimFilterError('expected "("');
    this.pos++;
    const inner = this.or();
    if (this.tokens[this.pos]?.t !== ')') throw new ScimFilterError('expected ")"');
    this.pos++;
    return inner;
  }

  private comparison(): Node {
    const pathTok = this.tokens[this.pos++];
    const opTok = this.tokens[this.pos++];
    if (pathTok?.t !== 'word' || opTok?.t !== 'word') throw new ScimFilterError('expected "<attribute> <operator> <value>"');
    const op = opTok.v.toLowerCase();
    if (op === 'pr') return { kind: 'pr', path: pathTok.v };
    if (!OPERATORS.has(op)) throw new ScimFilterError(`unknown operator "${opTok.v}"`);
    const valueTok = this.tokens[this.pos++];
    let value: ScimValue;
    if (valueTok?.t === 'str') value = valueTok.v;
    else if (valueTok?.t === 'word') {
      const w = valueTok.v.toLowerCase();
      if (w === 'true' || w === 'false') value = w === 'true';
      else if (w === 'null') value = null;
      else if (/^-?\d+(\.\d+)?$/.test(w)) value = Number(w);
      else throw new ScimFilterError(`string values must be quoted: ${valueTok.v}`);
    } else throw new ScimFilterError('missing comparison value');
    return { kind: 'cmp', path: pathTok.v, op, value };
  }
}

export interface CompiledScimFilter<T> {
  matches(resource: T): boolean;
  /** Every attribute path the filter names (for allow-listing). */
  readonly paths: readonly string[];
  /** For `path eq "value"` filters: the single path and value, so callers can use an index. */
  readonly equality?: { readonly path: string; readonly value: ScimValue };
}

const compare = (actual: ScimValue, op: string, expected: ScimValue): boolean => {
  if (typeof actual === 'string' && typeof expected === 'string') {
    // userName and emails.value are caseExact=false in SCIM's core schema.
    const a = actual.toLowerCase();
    const e = expected.toLowerCase();
    switch (op) {
      case 'eq':
        return a === e;
      case 'ne':
        return a !== e;
      case 'co':
        return a.includes(e);
      case 'sw':
        return a.startsWith(e);
      case 'ew':
        return a.endsWith(e);
      case 'gt':
        return a > e;
      case 'ge':
        return a >= e;
      case 'lt':
        return a < e;
      case 'le':
        return a <= e;
    }
    return false;
  }
  if (op === 'eq') return actual === expected;
  if (op === 'ne') return actual !== expected;
  return false;
};

/**
 * Parses `filter` and checks every attribute path against `allowed` (case-insensitive) and every
 * operator against `operators`. Throws {@link ScimFilterError} for anything else.
 */
export function compileScimFilter<T>(
  filter: string,
  resolve: ScimResolver<T>,
  allowed: readonly string[],
  operators: readonly string[] = ['eq', 'ne', 'co', 'sw', 'ew', 'pr', 'gt', 'ge', 'lt', 'le'],
): CompiledScimFilter<T> {
  const root = new Parser(tokenize(filter)).parse();
  const paths: string[] = [];
  const allowedLower = new Set(allowed.map((p) => p.toLowerCase()));
  const check = (node: Node): void => {
    switch (node.kind) {
      case 'cmp':
      case 'pr':
        if (!allowedLower.has(node.path.toLowerCase())) throw new ScimFilterError(`filtering on "${node.path}" is not supported`);
        if (!operators.includes(node.kind === 'pr' ? 'pr' : node.op)) {
          throw new ScimFilterError(`operator "${node.kind === 'pr' ? 'pr' : node.op}" is not supported here`);
        }
        paths.push(node.path);
        return;
      case 'not':
        check(node.inner);
        return;
      default:
        check(node.left);
        check(node.right);
    }
  };
  check(root);
  const evaluate = (node: Node, resource: T): boolean => {
    switch (node.kind) {
      case 'cmp': {
        const actual = resolve(resource, node.path);
        if (actual === undefined) return false;
        const values: readonly ScimValue[] = Array.isArray(actual) ? actual : [actual as ScimValue];
        return values.some((v) => compare(v, node.op, node.value));
      }
      case 'pr': {
        const actual = resolve(resource, node.path);
        return Array.isArray(actual) ? actual.length > 0 : actual !== undefined && actual !== null && actual !== '';
      }
      case 'not':
        return !evaluate(node.inner, resource);
      case 'and':
        return evaluate(node.left, resource) && evaluate(node.right, resource);
      case 'or':
        return evaluate(node.left, resource) || evaluate(node.right, resource);
    }
  };
  return {
    matches: (resource) => evaluate(root, resource),
    paths,
    ...(root.kind === 'cmp' && root.op === 'eq' ? { equality: { path: root.path, value: root.value } } : {}),
  };
}
