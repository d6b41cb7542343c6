/** The filter catalog as the API shows it: every filter with its parameters' types, ranges and defaults. */
import { FILTERS } from './filters';
import { resolveBound, type ParamSpec } from './filter';
import type { Limits } from './limits';

export interface CatalogParam {
  readonly type: ParamSpec['type'];
  readonly description: string;
  readonly required: boolean;
  readonly default?: unknown;
  readonly min?: number;
  readonly max?: number;
  readonly enum?: readonly string[];
}

export function filterCatalog(limits: Limits) {
  return [...FILTERS.values()].map((f) => ({
    name: f.name,
    capability: f.capability,
    description: f.description,
    params: Object.fromEntries(Object.entries(f.params).map(([name, spec]) => [name, catalogParam(spec, limits)])),
  }));
}

function catalogParam(spec: ParamSpec, limits: Limits): CatalogParam {
  const base = {
    type: spec.type,
    description: spec.description,
    required: spec.required === true,
    ...(spec.default !== undefined ? { default: spec.default } : {}),
  };
  if (spec.type === 'integer' || spec.type === 'number')
    return { ...base, min: resolveBound(spec.min, limits), max: resolveBound(spec.max, limits) };
  if (spec.type === 'enum') return { ...base, enum: spec.enum };
  return base;
}
