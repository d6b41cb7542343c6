import { FILTERS } from '../../../shared/imaging/filters';
import { CAPABILITIES } from '../../../shared/capabilities';
import { capabilityFor, capabilityTable } from '../../../shared/tasks/routing';

describe('routing by capability', () => {
  it('sends a pipeline to the most expensive capability among its filters', () => {
    expect(capabilityFor(['resize', 'grayscale']).name).toBe('light');
    expect(capabilityFor(['resize', 'blur', 'grayscale']).name).toBe('heavy');
    expect(capabilityFor(['median']).queue).toBe('tasks-heavy');
  });

  it('sends an empty pipeline (format conversion) to the cheapest capability', () => {
    expect(capabilityFor([])).toBe(CAPABILITIES[0]);
  });

  it('gives every capability a queue and a poison queue, and every filter exactly one capability', () => {
    const table = capabilityTable();
    expect(table.map((r) => [r.name, r.queue, r.poison_queue])).toEqual(
      CAPABILITIES.map((c) => [c.name, c.queue, `${c.queue}-poison`]),
    );
    expect(table.flatMap((r) => r.filters).sort()).toEqual([...FILTERS.keys()].sort());
  });

  it('keeps queue names valid for Azure Storage (3-63 chars, lower-case letters, digits, single dashes)', () => {
    for (const row of capabilityTable()) {
      for (const q of [row.queue, row.poison_queue]) expect(q).toMatch(/^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/);
    }
  });

  it('refuses to route a filter it does not know (specs are validated first)', () => {
    expect(() => capabilityFor(['nope'])).toThrow(/unknown filter 'nope'/);
  });
});
