/**
 * Lambda event filtering (an event source mapping's FilterCriteria), for the local runtime:
 * each `Filters[].Pattern` is a JSON string holding an EventBridge-style pattern, and a
 * record is sent to the function when it matches at least one of them. Records that match
 * none are dropped without an invocation (for a stream, as if processed).
 *
 * The subset implemented:
 * - nested objects: `{"dynamodb": {"NewImage": {...}}}` (every key must match);
 * - arrays of exact values (any one matches): strings, numbers, booleans, null;
 * - `{"exists": true | false}` (leaf values only, as in EventBridge);
 * - `{"prefix": "..."}` and `{"suffix": "..."}` (each also as `{"equals-ignore-case": "..."}`);
 * - `{"equals-ignore-case": "..."}`;
 * - `{"anything-but": value | [values] | {"prefix": "..."} | {"suffix": "..."}}`;
 * - `{"numeric": [">", 0, "<=", 5]}` (on JSON numbers only);
 * - `"$or": [pattern, ...]` at any object level.
 * Where the record holds an array, a matcher matches when any of its elements does.
 * Anything else (wildcard, cidr, ...) is rejected when the pattern is compiled, as Lambda
 * rejects an invalid pattern when the mapping is created.
 */

export type Pattern = { [key: string]: unknown };

type Leaf = string | number | boolean | null;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isLeaf = (v: unknown): v is Leaf => v === null || ['string', 'number', 'boolean'].includes(typeof v);

/** Parses and validates one `Filters[].Pattern`; throws on anything outside the supported subset. */
export function parsePattern(json: string): Pattern {
  let pattern: unknown;
  try {
    pattern = JSON.parse(json);
  } catch (err) {
    throw new Error(`invalid filter pattern (not JSON): ${json}: ${(err as Error).message}`);
  }
  if (!isObject(pattern)) throw new Error(`invalid filter pattern (not an object): ${json}`);
  validateObject(pattern, '');
  return pattern;
}

function validateObject(p: Record<string, unknown>, at: string): void {
  for (const [key, v] of Object.entries(p)) {
    const here = at ? `${at}.${key}` : key;
    if (key === '$or') {
      if (!Array.isArray(v) || v.length < 2 || !v.every(isObject)) throw new Error(`invalid filter pattern: ${here} must be an array of at least two patterns`);
      v.forEach((alt, i) => validateObject(alt as Record<string, unknown>, `${here}[${i}]`));
    } else if (Array.isArray(v)) {
      v.forEach((m) => validateMatcher(m, here));
    } else if (isObject(v)) {
      validateObject(v, here);
    } else {
      throw new Error(`invalid filter pattern: ${here} must be an array of matchers or an object (got ${JSON.stringify(v)})`);
    }
  }
}

function validateMatcher(m: unknown, at: string): void {
  if (isLeaf(m)) return;
  const bad = () => new Error(`invalid filter pattern: unsupported matcher ${JSON.stringify(m)} at ${at}`);
  if (!isObject(m) || Object.keys(m).length !== 1) throw bad();
  const [op, arg] = Object.entries(m)[0];
  switch (op) {
    case 'exists':
      if (typeof arg !== 'boolean') throw bad();
      return;
    case 'prefix':
    case 'suffix':
      if (typeof arg === 'string') return;
      if (isObject(arg) && Object.keys(arg).length === 1 && typeof arg['equals-ignore-case'] === 'string') return;
      throw bad();
    case 'equals-ignore-case':
      if (typeof arg !== 'string') throw bad();
      return;
    case 'anything-but':
      if (isLeaf(arg) || (Array.isArray(arg) && arg.every(isLeaf))) return;
      if (isObject(arg) && Object.keys(arg).length === 1 && ['prefix', 'suffix', 'equals-ignore-case'].includes(Object.keys(arg)[0])) {
        const inner = Object.values(arg)[0];
        if (typeof inner === 'string' || (Array.isArray(inner) && inner.every((s) => typeof s === 'string'))) return;
      }
      throw bad();
    case 'numeric': {
      if (!Array.isArray(arg) || arg.length === 0 || arg.length % 2 !== 0 || arg.length > 4) throw bad();
      for (let i = 0; i < arg.length; i += 2) {
        if (!['<', '<=', '=', '>=', '>'].includes(arg[i] as string) || typeof arg[i + 1] !== 'number') throw bad();
      }
      return;
    }
    default:
      throw bad();
  }
}

/** Whether `event` matches `pattern` (a parsed, validated pattern). */
export function matchesPattern(pattern: Pattern, event: unknown): boolean {
  return matchObject(pattern, event);
}

function matchObject(p: Record<string, unknown>, value: unknown): boolean {
  // A pattern object against an array of objects: any element.
  if (Array.isArray(value) && value.length > 0) return value.some((el) => matchObject(p, el));
  const fields = isObject(value) ? value : {};
  for (const [key, sub] of Object.entries(p)) {
    if (key === '$or') {
      if (!(sub as Record<string, unknown>[]).some((alt) => matchObject(alt, value))) return false;
    } else if (Array.isArray(sub)) {
      if (!matchField(sub, fields[key])) return false;
    } else if (!matchObject(sub as Record<string, unknown>, fields[key])) {
      return false;
    }
  }
  return true;
}

function matchField(matchers: unknown[], value: unknown): boolean {
  // The field's leaf values: none when it is absent, each element of an array.
  const present = value !== undefined;
  const leaves = (Array.isArray(value) ? value : present ? [value] : []).filter(isLeaf);
  return matchers.some((m) => matchOne(m, leaves, present));
}

function matchOne(m: unknown, leaves: Leaf[], present: boolean): boolean {
  if (isLeaf(m)) return leaves.some((v) => v === m);
  const [op, arg] = Object.entries(m as Record<string, unknown>)[0];
  const strings = leaves.filter((v): v is string => typeof v === 'string');
  switch (op) {
    case 'exists':
      return arg ? leaves.length > 0 : !present;
    case 'prefix':
    case 'suffix':
      return strings.some((s) => affix(op, arg, s));
    case 'equals-ignore-case':
      return strings.some((s) => s.toLowerCase() === (arg as string).toLowerCase());
    case 'anything-but':
      return leaves.some((v) => !excluded(arg, v));
    case 'numeric':
      return leaves.some((v) => typeof v === 'number' && numeric(arg as Array<string | number>, v));
    default:
      return false;
  }
}

function affix(op: string, arg: unknown, s: string): boolean {
  const ignoreCase = isObject(arg);
  const want = ignoreCase ? (arg['equals-ignore-case'] as string).toLowerCase() : (arg as string);
  const have = ignoreCase ? s.toLowerCase() : s;
  return op === 'prefix' ? have.startsWith(want) : have.endsWith(want);
}

function excluded(arg: unknown, v: Leaf): boolean {
  if (isLeaf(arg)) return v === arg;
  if (Array.isArray(arg)) return arg.includes(v);
  const [op, inner] = Object.entries(arg as Record<string, unknown>)[0];
  if (typeof v !== 'string') return false;
  const list = Array.isArray(inner) ? (inner as string[]) : [inner as string];
  if (op === 'equals-ignore-case') return list.some((x) => x.toLowerCase() === v.toLowerCase());
  return list.some((x) => (op === 'prefix' ? v.startsWith(x) : v.endsWith(x)));
}

function numeric(cond: Array<string | number>, v: number): boolean {
  for (let i = 0; i < cond.length; i += 2) {
    const n = cond[i + 1] as number;
    const ok = { '<': v < n, '<=': v <= n, '=': v === n, '>=': v >= n, '>': v > n }[cond[i] as string];
    if (!ok) return false;
  }
  return true;
}

/**
 * A mapping's FilterCriteria as a predicate: true when there are no filters, or when the
 * record matches any one of them.
 */
export function compileFilterCriteria(patterns: readonly string[] | undefined): (event: unknown) => boolean {
  const parsed = (patterns ?? []).map(parsePattern);
  if (parsed.length === 0) return () => true;
  return (event) => parsed.some((p) => matchesPattern(p, event));
}
