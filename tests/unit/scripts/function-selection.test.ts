/** The local host's function allow-list, read as the Functions host reads it. */
import { selectedFunctions } from '../../../scripts/local-host/host-config';
import { selectFunctions } from '../../../scripts/local-host/host';
import type { RegisteredFunction } from '../../../scripts/local-host/functions-core';
import { servedCapabilities } from '../../../shared/metrics/worker-stats';

const fn = (name: string) =>
  ({ name, trigger: { type: 'queueTrigger' }, handler: async () => undefined }) as unknown as RegisteredFunction;
const all = ['health', 'processHeavy', 'poisonHeavy', 'collectMetrics'].map(fn);

it('runs everything without a selection', () => {
  expect(selectedFunctions(undefined, {})).toBeNull();
  expect(selectFunctions(all, null)).toBe(all);
});

it('takes AzureFunctionsJobHost__functions__N in index order, over host.json functions', () => {
  const env = {
    AzureFunctionsJobHost__functions__10: 'collectMetrics',
    AzureFunctionsJobHost__functions__2: 'poisonHeavy',
    AzureFunctionsJobHost__functions__0: ' processHeavy ',
    OTHER: 'x',
  };
  expect(selectedFunctions(['health'], env)).toEqual(['processHeavy', 'poisonHeavy', 'collectMetrics']);
  expect(selectedFunctions(['health'], {})).toEqual(['health']);
  expect(selectFunctions(all, ['poisonHeavy', 'processHeavy']).map((f) => f.name)).toEqual([
    'processHeavy',
    'poisonHeavy',
  ]);
});

it('refuses a malformed host.json list', () => {
  expect(() => selectedFunctions('health', {})).toThrow(
    /host.json functions: expected an array of function names but received "health"/,
  );
});

// Mirrors azure-functions-host src/WebJobs.Script/Host/FunctionMetadataManager.cs (ApplyAllowList): a function
// runs when any allow-list name equals its name under StringComparison.CurrentCultureIgnoreCase; names no
// function has are simply not matched (the host starts; the local host also logs a warning).
it('matches names case-insensitively, as the real host does', () => {
  const lines: string[] = [];
  const picked = selectFunctions(all, ['PROCESSHEAVY', 'collectmetrics'], (l) => lines.push(l));
  expect(picked.map((f) => f.name)).toEqual(['processHeavy', 'collectMetrics']);
  expect(lines.join('\n')).toMatch(/running only the selected functions: PROCESSHEAVY, collectmetrics/);
  expect(lines.join('\n')).not.toMatch(/warning/);
});

it('ignores names no function file registers, with a warning, instead of refusing to start', () => {
  const lines: string[] = [];
  const picked = selectFunctions(all, ['processHeavvy', 'health'], (l) => lines.push(l));
  expect(picked.map((f) => f.name)).toEqual(['health']);
  expect(lines.join('\n')).toMatch(
    /warning: .*"processHeavvy", which no function file registers \(ignored\); registered: collectMetrics, health, poisonHeavy, processHeavy/,
  );
  // nothing matches: no function runs (the real host starts with none too)
  expect(selectFunctions(all, ['nope'])).toEqual([]);
});

it('the worker registry counts a capability as served under the same case-insensitive match', () => {
  expect(servedCapabilities({ AzureFunctionsJobHost__functions__0: 'PROCESSHEAVY' })).toEqual(['heavy']);
  expect(servedCapabilities({ AzureFunctionsJobHost__functions__0: 'nothing' })).toEqual([]);
});
