import { readFileSync } from 'node:fs';
import { FILTERS, FILTER_NAMES } from '../../../shared/imaging/filters';
import { SHARP_OP_ORDER } from '../../../shared/imaging/filter';
import { CAPABILITIES } from '../../../shared/capabilities';
import { README, regenerate } from '../../../scripts/docs';

describe('filter registry', () => {
  it('has at least 15 filters, sorted, each named after its file', () => {
    expect(FILTER_NAMES.length).toBeGreaterThanOrEqual(15);
    expect([...FILTER_NAMES]).toEqual([...FILTER_NAMES].sort());
  });

  it("keeps the original system's six filters with its parameter names", () => {
    const params = (name: string) => Object.keys(FILTERS.get(name)!.params);
    expect(params('resize')).toEqual(expect.arrayContaining(['width', 'height', 'fit']));
    expect(FILTERS.get('resize')!.params.fit).toMatchObject({ default: 'cover' });
    expect(params('blur')).toEqual(['radius']);
    expect(params('brightness')).toEqual(['factor']);
    for (const name of ['sharpen', 'edges', 'grayscale']) expect(FILTERS.has(name)).toBe(true);
  });

  it('documents every filter and parameter, with sane ranges and defaults inside them', () => {
    for (const filter of FILTERS.values()) {
      expect(filter.description.length).toBeGreaterThan(20);
      expect(CAPABILITIES.map((c) => c.name)).toContain(filter.capability);
      for (const op of filter.steps.map((s) => s.op)) expect(SHARP_OP_ORDER).toContain(op);
      for (const [name, spec] of Object.entries(filter.params)) {
        expect(spec.description).not.toHaveLength(0);
        if (
          (spec.type === 'integer' || spec.type === 'number') &&
          typeof spec.min === 'number' &&
          typeof spec.max === 'number'
        ) {
          expect(spec.min).toBeLessThan(spec.max);
          if (typeof spec.default === 'number') expect(spec.default >= spec.min && spec.default <= spec.max).toBe(true);
        }
        if (spec.type === 'enum' && spec.default !== undefined) expect(spec.enum).toContain(spec.default);
        expect(name).not.toBe('name');
      }
    }
  });

  it('declares the output size of every step that can change it, so sizes are checked before pixel work', () => {
    for (const filter of FILTERS.values())
      for (const step of filter.steps)
        if (step.op === 'geometry') expect([filter.name, typeof step.outputSize]).toEqual([filter.name, 'function']);
  });

  it('README tables are generated from the registry (run `npm run docs` after changing a filter)', () => {
    const readme = readFileSync(README, 'utf8');
    expect(regenerate(readme)).toBe(readme);
  });
});
