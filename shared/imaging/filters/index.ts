/**
 * The filter registry: every other module in this folder default-exports one FilterDefinition
 * whose name is its file name. Adding a filter is adding a file; the catalog, validation,
 * routing and the README table all follow.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { CAPABILITIES } from '../../capabilities';
import type { FilterDefinition } from '../filter';

const MODULE = /^(?!index\.)([a-z][a-z0-9_]*)\.(ts|js)$/;

function loadFilters(): ReadonlyMap<string, FilterDefinition> {
  const files = readdirSync(__dirname)
    .filter((f) => MODULE.test(f) && !f.endsWith('.d.ts'))
    .sort();
  const filters = new Map<string, FilterDefinition>();
  for (const file of files) {
    const expected = MODULE.exec(file)![1];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const def = (require(path.join(__dirname, file)) as { default?: FilterDefinition }).default;
    assertWellFormed(def, expected, file);
    filters.set(def.name, Object.freeze(def));
  }
  return filters;
}

/** A malformed filter module fails loudly at start-up, never at request time. */
function assertWellFormed(
  def: FilterDefinition | undefined,
  expected: string,
  file: string,
): asserts def is FilterDefinition {
  const fail = (why: string) => {
    throw new Error(`filter module ${file}: ${why}`);
  };
  if (!def || typeof def !== 'object') return fail('expected a default export of a FilterDefinition');
  if (def.name !== expected) fail(`expected name '${expected}' (the file name) but found '${def.name}'`);
  if (!CAPABILITIES.some((c) => c.name === def.capability)) fail(`unknown capability '${def.capability}'`);
  if (!def.description) fail('missing description');
  if (!Array.isArray(def.steps) || def.steps.length === 0) fail('expected at least one step');
  // sizes are checked before any pixel work from outputSize alone: only geometry may change the size
  if (def.steps.some((s) => s.op === 'geometry' && !s.outputSize)) fail('a geometry step must declare outputSize');
  if ('name' in def.params) fail("a parameter may not be called 'name' (it names the filter in a spec)");
}

export const FILTERS: ReadonlyMap<string, FilterDefinition> = loadFilters();
export const FILTER_NAMES: readonly string[] = Object.freeze([...FILTERS.keys()]);

export function getFilter(name: string): FilterDefinition | undefined {
  return FILTERS.get(name);
}
