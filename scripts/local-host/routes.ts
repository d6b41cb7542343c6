/**
 * Function routes as the Functions host maps them. Each HTTP function becomes an ASP.NET Core
 * `Route` (Azure/azure-webjobs-sdk-extensions src/WebJobs.Extensions.Http/Routing/WebJobsRouteBuilder.cs
 * MapFunctionRoute) with an `HttpMethodRouteConstraint` for its methods
 * (Azure/azure-functions-host src/WebJobs.Script.WebHost/WebScriptHostHttpRoutesManager.cs), all in one
 * `RouteCollection` that tries them in order and takes the first that matches: the order of the
 * function metadata, sorted by name, case-insensitively (src/WebJobs.Script/Host/FunctionMetadataManager.cs).
 * So there is no template precedence between functions: a wrong method or a value that fails a
 * constraint simply does not match, and a request nothing matches falls off the pipeline (an empty 404).
 *
 * Templates follow ASP.NET Core's route template syntax (dotnet/aspnetcore src/Http/Routing/src/Patterns/
 * RoutePatternParser.cs, RouteParameterParser.cs): `{name}`, `{name?}`, `{name=default}`, `{*rest}`,
 * `{name:int:min(1)}`, literals matched case-insensitively, `{{`/`}}` for literal braces. Inline
 * constraints are those of RouteOptions' default ConstraintMap (src/Http/Routing/src/Constraints/*.cs),
 * looked up case-insensitively; an unknown one throws when the route is built, as RouteConstraintBuilder does,
 * which in the real host fails host start-up (ScriptHost.OnHostInitialized → InitializeHttpFunctionRoutes).
 */

export type Constraint = (value: string) => boolean;

interface Param {
  readonly kind: 'param';
  readonly name: string;
  readonly catchAll: boolean;
  readonly optional: boolean;
  readonly defaultValue?: string;
  readonly constraints: readonly { readonly text: string; readonly test: Constraint }[];
}
type Part = { readonly kind: 'literal'; readonly text: string } | Param;

export interface CompiledRoute {
  readonly template: string;
  readonly params: readonly Param[];
  /** The route values of a (Kestrel-decoded) path, or undefined when the template or a constraint does not match. */
  match(path: string): Record<string, string> | undefined;
}

/** .NET number parsing whitespace (NumberStyles.AllowLeadingWhite / AllowTrailingWhite). */
const WS = '[\\t\\n\\v\\f\\r ]*';
const INTEGER = new RegExp(`^${WS}([+-]?\\d+)${WS}$`);
const FLOAT = new RegExp(`^${WS}[+-]?(?:\\d[\\d,]*(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?${WS}$`);
const FLOAT_SYMBOL = new RegExp(`^${WS}[+-]?(?:infinity|∞|nan)${WS}$`, 'i');

/** int.TryParse / long.TryParse, NumberStyles.Integer, invariant culture (IntRouteConstraint, LongRouteConstraint). */
function integer(value: string, bits: 32 | 64): bigint | undefined {
  const m = INTEGER.exec(value);
  if (!m) return undefined;
  const n = BigInt(m[1]);
  const limit = 1n << BigInt(bits - 1);
  return n >= -limit && n < limit ? n : undefined;
}

const HEX = '[0-9a-fA-F]';
const GUID_D = `${HEX}{8}-${HEX}{4}-${HEX}{4}-${HEX}{4}-${HEX}{12}`;
const GUID = new RegExp(`^${WS}(?:${GUID_D}|${HEX}{32}|\\{${GUID_D}\\}|\\(${GUID_D}\\))${WS}$`);

/** The invariant culture's common DateTime.TryParse forms: ISO 8601 and M/d/yyyy, each with an optional time. */
const ISO_DATE =
  /^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\s*$/i;
const US_DATE = /^\s*(\d{1,2})\/(\d{1,2})\/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*(AM|PM))?)?\s*$/i;

function isDateTime(value: string): boolean {
  const iso = ISO_DATE.exec(value);
  const us = iso ? undefined : US_DATE.exec(value);
  if (!iso && !us) return false;
  const [year, month, day] = iso ? [iso[1], iso[2], iso[3]] : [us![3], us![1], us![2]];
  const [hour, minute, second] = (iso ? [iso[4], iso[5], iso[6]] : [us![4], us![5], us![6]]).map((v) => Number(v ?? 0));
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  const validDate = date.getUTCMonth() === Number(month) - 1 && date.getUTCDate() === Number(day);
  const maxHour = us?.[7] ? 12 : 23;
  return validDate && Number(year) >= 1 && hour <= maxHour && minute <= 59 && second <= 59;
}

/** FileNameRouteConstraint.IsFileName: the last segment has a dot followed by something that is not a dot. */
function isFileName(value: string): boolean {
  const last = value.slice(value.lastIndexOf('/') + 1);
  const dot = last.indexOf('.');
  return dot >= 0 && /[^.]/.test(last.slice(dot + 1));
}

/** decimal.MaxValue (79228162514264337593543950335) as near as a double gets. */
const DECIMAL_MAX = 7.922816251426434e28;

type Factory = (args: readonly string[], raw: string) => Constraint;

const noArgs =
  (test: Constraint): Factory =>
  (args) => {
    if (args.length) throw new Error(`takes no arguments, got ${args.length}`);
    return test;
  };

function longArgs(args: readonly string[], count: number): bigint[] {
  if (args.length !== count) throw new Error(`takes ${count} argument${count > 1 ? 's' : ''}, got ${args.length}`);
  return args.map((a) => {
    const n = integer(a, 64);
    if (n === undefined) throw new Error(`'${a}' is not a 64-bit integer`);
    return n;
  });
}

/** RouteOptions' default ConstraintMap (dotnet/aspnetcore src/Http/Routing/src/RouteOptions.cs). */
const CONSTRAINTS: Record<string, Factory> = {
  int: noArgs((v) => integer(v, 32) !== undefined),
  long: noArgs((v) => integer(v, 64) !== undefined),
  bool: noArgs((v) => /^\s*(true|false)\s*$/i.test(v)),
  // DoubleRouteConstraint, FloatRouteConstraint: NumberStyles.Float | AllowThousands, invariant culture
  double: noArgs((v) => FLOAT.test(v) || FLOAT_SYMBOL.test(v)),
  float: noArgs((v) => FLOAT.test(v) || FLOAT_SYMBOL.test(v)),
  decimal: noArgs((v) => FLOAT.test(v) && Math.abs(Number(v.trim().replace(/,/g, ''))) <= DECIMAL_MAX),
  guid: noArgs((v) => GUID.test(v)),
  datetime: noArgs(isDateTime),
  // AlphaRouteConstraint: RegexRouteConstraint("^[a-z]*$"), so case-insensitive
  alpha: noArgs((v) => /^[a-z]*$/i.test(v)),
  required: noArgs((v) => v !== ''),
  file: noArgs(isFileName),
  nonfile: noArgs((v) => !isFileName(v)),
  minlength: (args) => {
    const [n] = longArgs(args, 1);
    return (v) => BigInt(v.length) >= n;
  },
  maxlength: (args) => {
    const [n] = longArgs(args, 1);
    return (v) => BigInt(v.length) <= n;
  },
  length: (args) => {
    if (args.length === 1) {
      const [n] = longArgs(args, 1);
      return (v) => BigInt(v.length) === n;
    }
    const [min, max] = longArgs(args, 2);
    if (min > max) throw new Error(`the minimum length ${min} is above the maximum ${max}`);
    return (v) => BigInt(v.length) >= min && BigInt(v.length) <= max;
  },
  min: (args) => {
    const [min] = longArgs(args, 1);
    return (v) => (integer(v, 64) ?? min - 1n) >= min;
  },
  max: (args) => {
    const [max] = longArgs(args, 1);
    return (v) => (integer(v, 64) ?? max + 1n) <= max;
  },
  range: (args) => {
    const [min, max] = longArgs(args, 2);
    if (min > max) throw new Error(`the minimum ${min} is above the maximum ${max}`);
    return (v) => {
      const n = integer(v, 64);
      return n !== undefined && n >= min && n <= max;
    };
  },
  // RegexRouteConstraint / RegexInlineRouteConstraint: RegexOptions.CultureInvariant | IgnoreCase, IsMatch,
  // so not anchored unless the pattern anchors itself; the whole argument text is the pattern
  regex: (_args, raw) => {
    const pattern = new RegExp(raw, 'i');
    return (v) => pattern.test(v);
  },
};

/** Splits `{...}` parameter text into its name, constraints, default and optional marker (RouteParameterParser). */
function parseParam(text: string, template: string): Param {
  let rest = text;
  const catchAll = rest.startsWith('*');
  rest = rest.replace(/^\*{1,2}/, '');
  const nameEnd = rest.search(/[:=?]/);
  const name = nameEnd < 0 ? rest : rest.slice(0, nameEnd);
  rest = nameEnd < 0 ? '' : rest.slice(nameEnd);
  if (!/^[^{}/?*:=]+$/.test(name))
    throw new Error(
      `The route parameter name '${name}' in '${template}' is invalid (empty, or it contains {, }, /, ?, * or :)`,
    );
  const constraints: { text: string; test: Constraint }[] = [];
  while (rest.startsWith(':')) {
    rest = rest.slice(1);
    let end = 0;
    let depth = 0;
    for (; end < rest.length; end++) {
      const c = rest[end];
      if (c === '(') depth++;
      else if (c === ')') depth = Math.max(0, depth - 1);
      else if (depth === 0 && (c === ':' || c === '=' || (c === '?' && end === rest.length - 1))) break;
    }
    const constraintText = rest.slice(0, end);
    rest = rest.slice(end);
    constraints.push({ text: constraintText, test: resolveConstraint(name, constraintText, template) });
  }
  let optional = false;
  let defaultValue: string | undefined;
  if (rest.startsWith('=')) {
    defaultValue = rest.slice(1);
    if (defaultValue.endsWith('?'))
      throw new Error(`An optional parameter cannot have a default value: '${name}' in '${template}'`);
  } else if (rest === '?') optional = true;
  else if (rest !== '') throw new Error(`The route parameter '${text}' in '${template}' is not valid`);
  if (catchAll && optional)
    throw new Error(`A catch-all parameter cannot be marked optional: '${name}' in '${template}'`);
  return { kind: 'param', name, catchAll, optional: optional || catchAll, defaultValue, constraints };
}

/**
 * DefaultInlineConstraintResolver: `name` or `name(args)`, looked up case-insensitively; arguments are split
 * on commas except for regex, which takes the whole text. Unknown names fail as RouteConstraintBuilder does.
 */
function resolveConstraint(param: string, text: string, template: string): Constraint {
  const m = /^([^(]*)(?:\((.*)\))?$/s.exec(text);
  const key = (m?.[1] ?? text).toLowerCase();
  const factory = Object.hasOwn(CONSTRAINTS, key) ? CONSTRAINTS[key] : undefined;
  if (!m || !factory)
    throw new Error(
      `The constraint entry '${param}' - '${text}' on the route '${template}' could not be resolved by the constraint ` +
        `resolver of type 'DefaultInlineConstraintResolver' (known: ${Object.keys(CONSTRAINTS).join(', ')})`,
    );
  const raw = m[2] ?? '';
  try {
    return factory(m[2] === undefined ? [] : raw.split(',').map((a) => a.trim()), raw);
  } catch (err) {
    throw new Error(
      `The constraint '${text}' of '${param}' on the route '${template}' is not valid: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/** One path segment of a template: literal text and `{parameters}`, with `{{` and `}}` for literal braces. */
function parseSegment(segment: string, template: string): Part[] {
  const parts: Part[] = [];
  let literal = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if ((c === '{' || c === '}') && segment[i + 1] === c) {
      literal += c;
      i++;
    } else if (c === '{') {
      let text = '';
      let j = i + 1;
      for (; j < segment.length; j++) {
        if (segment[j] === '}' && segment[j + 1] === '}') text += segment[++j];
        else if (segment[j] === '{' && segment[j + 1] === '{') text += segment[++j];
        else if (segment[j] === '}') break;
        else text += segment[j];
      }
      if (j >= segment.length) throw new Error(`There is an incomplete parameter in the route template '${template}'`);
      if (literal) parts.push({ kind: 'literal', text: literal });
      literal = '';
      parts.push(parseParam(text, template));
      i = j;
    } else if (c === '}') throw new Error(`There is an unmatched '}' in the route template '${template}'`);
    else literal += c;
  }
  if (literal) parts.push({ kind: 'literal', text: literal });
  if (parts.some((p, k) => p.kind === 'param' && k > 0 && parts[k - 1].kind === 'param'))
    throw new Error(`Two parameters must be separated by a literal in '${template}'`);
  return parts;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Compiles `<prefix>/<route>` into a matcher; throws for a template ASP.NET Core would refuse. */
export function compileRoute(template: string): CompiledRoute {
  const segments = template
    .split('/')
    .filter((s, i, all) => s !== '' || (i > 0 && i < all.length - 1))
    .map((s) => parseSegment(s, template));
  const params: Param[] = [];
  // a trailing run of segments that are one optional (or defaulted, or catch-all) parameter may be left out
  let optionalFrom = segments.length;
  while (optionalFrom > 0) {
    const s = segments[optionalFrom - 1];
    if (s.length === 1 && s[0].kind === 'param' && (s[0].optional || s[0].defaultValue !== undefined)) optionalFrom--;
    else break;
  }
  segments.forEach((s, i) => {
    if (s.some((p) => p.kind === 'param' && p.catchAll) && i !== segments.length - 1)
      throw new Error(`A catch-all parameter can only appear as the last segment of the route template '${template}'`);
  });
  let source = '';
  segments.forEach((parts, i) => {
    let body = '';
    for (const p of parts) {
      if (p.kind === 'literal') body += escape(p.text);
      else {
        params.push(p);
        body += p.catchAll ? '(.*)' : '([^/]+)';
      }
    }
    source += i >= optionalFrom ? `(?:/${body}` : `/${body}`;
  });
  source += ')?'.repeat(segments.length - optionalFrom);
  const pattern = new RegExp(`^${source}/?$`, 'i');
  return {
    template,
    params,
    match(path) {
      const m = pattern.exec(path);
      if (!m) return undefined;
      const values: Record<string, string> = {};
      for (const [i, p] of params.entries()) {
        const value = m[i + 1] === '' && p.catchAll ? undefined : (m[i + 1] ?? p.defaultValue);
        if (value === undefined) continue; // OptionalRouteConstraint: no value, nothing to check
        if (!p.constraints.every((c) => c.test(value))) return undefined;
        values[p.name] = value;
      }
      return values;
    },
  };
}

/** HttpMethodRouteConstraint: the methods compared case-insensitively; none listed means every method. */
export function allowsMethod(methods: readonly string[] | undefined, method: string): boolean {
  return !methods?.length || methods.some((m) => m.toUpperCase() === method.toUpperCase());
}

/** StringComparer.OrdinalIgnoreCase, the order FunctionMetadataManager sorts functions (and so routes) in. */
export function byNameIgnoringCase(a: string, b: string): number {
  const x = a.toUpperCase();
  const y = b.toUpperCase();
  return x < y ? -1 : x > y ? 1 : 0;
}
