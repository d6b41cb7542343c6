/** The local host's function allow-list, read as the Functions host reads it. */
import { selectedFunctions } from '../../../scripts/local-host/host-config';
import { selectFunctions } from '../../../scripts/local-host/host';
import type { RegisteredFunction } from '../../../scripts/local-host/functions-core';

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

it('refuses a malformed host.json list and names that no file registers', () => {
  expect(() => selectedFunctions('health', {})).toThrow(
    /host.json functions: expected an array of function names but received "health"/,
  );
  expect(() => selectFunctions(all, ['processHeavvy'])).toThrow(
    /"processHeavvy", which no function file registers; registered: collectMetrics, health, poisonHeavy, processHeavy/,
  );
});
