/**
 * The task spec: user input (filter names or objects, filter_params, output) turned into one
 * frozen, fully normalized value with every default filled in, or one ValidationError that
 * lists every problem. Normalizing a normalized spec returns an equal spec, so queue messages
 * are re-validated with this same function.
 */
import { MAX_REPORTED_PROBLEMS, ValidationError, type FieldProblem } from '../errors';
import { resolveBound, type FilterDefinition, type ParamSpec, type ParamValue } from './filter';
import { FILTER_NAMES, getFilter } from './filters';
import type { Limits } from './limits';
import { appSettings } from '../config';
import { DEFAULT_ENCODING, OUTPUT_FORMATS, type Encoding, type OutputFormat } from './output';
import {
  closest,
  inRange,
  isFiniteNumber,
  isInteger,
  isPlainObject,
  fieldProblem,
  shownKey,
  unknownKeyProblems,
  type PlainObject,
} from '../validation';

/** A filter with its name and every parameter, e.g. `{ name: 'blur', radius: 3 }`. */
export type FilterSpec = Readonly<{ name: string } & Record<string, ParamValue>>;

export interface TaskSpec {
  readonly filters: readonly FilterSpec[];
  /** Read from the user's `output`. */
  readonly encoding: Encoding;
}

export interface TaskSpecInput {
  readonly filters?: unknown;
  readonly filter_params?: unknown;
  readonly output?: unknown;
}

const COLOR = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;

export function normalizeTaskSpec(input: TaskSpecInput, limits: Limits = appSettings()): TaskSpec {
  const problems: FieldProblem[] = [];
  const filterParams = readFilterParams(input.filter_params, problems);
  const filters = readFilters(input.filters, filterParams, limits, problems);
  const encoding = readEncoding(input.output, problems);
  if (problems.length > 0) throw new ValidationError(problems, 'task spec');
  return Object.freeze({ filters: Object.freeze(filters), encoding });
}

/** filter_params, refused whole (without looking at each key) when it has more keys than there are filters. */
function readFilterParams(value: unknown, problems: FieldProblem[]): PlainObject {
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) {
    problems.push(fieldProblem('filter_params', 'an object mapping filter names to parameter objects', value));
    return {};
  }
  const count = Object.keys(value).length;
  if (count > FILTER_NAMES.length) {
    const expected = `at most ${FILTER_NAMES.length} keys, one per filter (${FILTER_NAMES.join(', ')})`;
    problems.push({
      ...fieldProblem('filter_params', expected, value),
      message: `Expected ${expected} for filter_params but received ${count} keys`,
    });
    return {};
  }
  return value;
}

function readFilters(
  value: unknown,
  filterParams: PlainObject,
  limits: Limits,
  problems: FieldProblem[],
): FilterSpec[] {
  if (!Array.isArray(value)) {
    problems.push(fieldProblem('filters', 'an array of filter names or {"name": ...} objects', value));
    return [];
  }
  if (value.length > limits.maxFiltersPerTask) {
    // one problem for the list, none per item: a million entries cost one check
    problems.push(fieldProblem('filters', `at most ${limits.maxFiltersPerTask} filters (MAX_FILTERS_PER_TASK)`, value));
    return [];
  }
  const used = new Set<string>();
  const filters = value.flatMap((entry: unknown, i) => {
    // a known filter counts as used even when its parameters are refused, so its filter_params are not also "unused"
    const name: unknown = isPlainObject(entry) ? entry.name : entry;
    if (typeof name === 'string' && getFilter(name)) used.add(name);
    const spec = readFilter(entry, `filters[${i}]`, filterParams, limits, problems);
    return spec ? [spec] : [];
  });
  for (const [name, params] of Object.entries(filterParams)) {
    if (!getFilter(name)) problems.push(unknownFilter(`filter_params.${shownKey(name)}`, name));
    else if (!used.has(name))
      problems.push(
        fieldProblem(
          `filter_params.${name}`,
          `parameters only for filters in the list (${[...used].join(', ') || 'none'})`,
          params,
        ),
      );
  }
  return filters;
}

function unknownFilter(field: string, name: unknown): FieldProblem {
  const hint = typeof name === 'string' ? closest(name, FILTER_NAMES) : undefined;
  const p = fieldProblem(field, `one of the filters ${FILTER_NAMES.join(', ')}`, name);
  return hint ? { ...p, message: `${p.message} (did you mean '${hint}'?)` } : p;
}

function readFilter(
  entry: unknown,
  field: string,
  filterParams: PlainObject,
  limits: Limits,
  problems: FieldProblem[],
): FilterSpec | undefined {
  const named = typeof entry === 'string' ? { name: entry } : entry;
  if (!isPlainObject(named) || typeof named.name !== 'string') {
    problems.push(fieldProblem(field, 'a filter name or an object with a string "name"', entry));
    return undefined;
  }
  const filter = getFilter(named.name);
  if (!filter) {
    problems.push(unknownFilter(typeof entry === 'string' ? field : `${field}.name`, named.name));
    return undefined;
  }
  const shared = filterParams[filter.name];
  const sharedParams = isPlainObject(shared) ? shared : {};
  if (shared !== undefined && !isPlainObject(shared))
    problems.push(fieldProblem(`filter_params.${filter.name}`, `an object of ${filter.name} parameters`, shared));
  const before = problems.length;
  const params = readParams(
    filter,
    { ...sharedParams, ...named },
    (key) =>
      Object.hasOwn(sharedParams, key) && !Object.hasOwn(named, key)
        ? `filter_params.${filter.name}.${shownKey(key)}`
        : `${field}.${shownKey(key)}`,
    limits,
    problems,
  );
  if (problems.length > before) return undefined;
  for (const c of filter.check?.(params, limits) ?? [])
    problems.push(fieldProblem(`${field}.${c.param}`, c.expected, c.received));
  return Object.freeze({ name: filter.name, ...params });
}

function readParams(
  filter: FilterDefinition,
  given: PlainObject,
  fieldOf: (key: string) => string,
  limits: Limits,
  problems: FieldProblem[],
): Record<string, ParamValue> {
  const known = Object.keys(filter.params);
  const unknown = Object.keys(given).filter((key) => key !== 'name' && !Object.hasOwn(filter.params, key));
  const expected = known.length
    ? `one of ${filter.name}'s parameters: ${known.join(', ')}`
    : `no parameters (${filter.name} takes none)`;
  // past the cap, the last reported problem counts the rest
  const described = unknown.length > MAX_REPORTED_PROBLEMS ? MAX_REPORTED_PROBLEMS - 1 : unknown.length;
  for (const key of unknown.slice(0, described)) {
    const hint = closest(key, known);
    problems.push({
      ...fieldProblem(fieldOf(key), expected, given[key]),
      message: `Unknown parameter ${fieldOf(key)}: expected ${expected}${hint ? ` (did you mean '${hint}'?)` : ''}`,
    });
  }
  if (described < unknown.length) {
    const more = unknown.length - described;
    problems.push({ field: fieldOf('…'), expected, message: `${more} more unknown parameters of ${filter.name}` });
  }
  const params: Record<string, ParamValue> = {};
  for (const [key, spec] of Object.entries(filter.params)) {
    const value = readParam(spec, given[key], fieldOf(key), limits, problems);
    if (value !== undefined) params[key] = value;
  }
  return params;
}

function readParam(
  spec: ParamSpec,
  value: unknown,
  field: string,
  limits: Limits,
  problems: FieldProblem[],
): ParamValue | undefined {
  if (value === undefined || value === null) {
    if (!spec.required) return spec.default ?? null;
    problems.push(fieldProblem(field, `${expectedOf(spec, limits)} (required)`, value));
    return undefined;
  }
  if (accepts(spec, value, limits))
    return spec.type === 'color' ? (value as string).toLowerCase() : (value as ParamValue);
  problems.push(fieldProblem(field, expectedOf(spec, limits), value));
  return undefined;
}

function accepts(spec: ParamSpec, value: unknown, limits: Limits): boolean {
  switch (spec.type) {
    case 'integer':
    case 'number':
      return (
        (spec.type === 'integer' ? isInteger(value) : isFiniteNumber(value)) &&
        inRange(value as number, resolveBound(spec.min, limits), resolveBound(spec.max, limits))
      );
    case 'enum':
      return typeof value === 'string' && spec.enum.includes(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'color':
      return typeof value === 'string' && COLOR.test(value);
  }
}

export function expectedOf(spec: ParamSpec, limits: Limits): string {
  switch (spec.type) {
    case 'integer':
    case 'number':
      return `${spec.type === 'integer' ? 'integer' : 'number'} between ${resolveBound(spec.min, limits)} and ${resolveBound(spec.max, limits)}`;
    case 'enum':
      return `one of ${spec.enum.join(', ')}`;
    case 'boolean':
      return 'true or false';
    case 'color':
      return 'a colour as #rgb or #rrggbb';
  }
}

function readEncoding(value: unknown, problems: FieldProblem[]): Encoding {
  if (value === undefined || value === null) return DEFAULT_ENCODING;
  if (!isPlainObject(value)) {
    problems.push(fieldProblem('output', 'an object {"format": "jpeg|png|webp|avif", "quality": 1-100}', value));
    return DEFAULT_ENCODING;
  }
  problems.push(...unknownKeyProblems(Object.keys(value), ['format', 'quality'], (key) => `output.${key}`, 'option'));
  const format = value.format ?? DEFAULT_ENCODING.format;
  const quality = value.quality ?? DEFAULT_ENCODING.quality;
  if (typeof format !== 'string' || !(OUTPUT_FORMATS as readonly string[]).includes(format))
    problems.push(fieldProblem('output.format', `one of ${OUTPUT_FORMATS.join(', ')}`, format));
  if (!isInteger(quality) || !inRange(quality, 1, 100))
    problems.push(fieldProblem('output.quality', 'integer between 1 and 100', quality));
  return Object.freeze({ format: format as OutputFormat, quality: quality as number });
}
