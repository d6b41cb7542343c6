import { ValidationError } from '../../../shared/errors';
import { FILTER_NAMES } from '../../../shared/imaging/filters';
import { loadSettings } from '../../../shared/config';
import { normalizeTaskSpec, type TaskSpecInput } from '../../../shared/imaging/spec';

const limits = loadSettings({});

function problemsOf(input: TaskSpecInput, l = limits) {
  try {
    normalizeTaskSpec(input, l);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).errors;
  }
  throw new Error('expected a ValidationError');
}

describe('normalizeTaskSpec', () => {
  it('fills in every default and keeps pipeline order', () => {
    const spec = normalizeTaskSpec({ filters: ['blur', { name: 'resize', width: 800 }, 'grayscale'] }, limits);
    expect(spec).toEqual({
      filters: [
        { name: 'blur', radius: 3 },
        { name: 'resize', width: 800, height: null, fit: 'cover', background: '#000000' },
        { name: 'grayscale' },
      ],
      encoding: { format: 'jpeg', quality: 80 },
    });
  });

  it('takes parameters from filter_params for named filters; an object entry wins over filter_params', () => {
    const spec = normalizeTaskSpec(
      {
        filters: ['blur', { name: 'brightness', factor: 2 }],
        filter_params: { blur: { radius: 1.5 }, brightness: { factor: 0.5 } },
        output: { format: 'webp', quality: 60 },
      },
      limits,
    );
    expect(spec.filters).toEqual([
      { name: 'blur', radius: 1.5 },
      { name: 'brightness', factor: 2 },
    ]);
    expect(spec.encoding).toEqual({ format: 'webp', quality: 60 });
  });

  it('is idempotent, so queue messages are re-validated by the same function', () => {
    const once = normalizeTaskSpec(
      { filters: ['sepia', { name: 'rotate', angle: 45 }, 'tint'], output: { format: 'png' } },
      limits,
    );
    // A queue message carries the spec as JSON, its encoding under the user's name `output`.
    const message = JSON.parse(JSON.stringify({ filters: once.filters, output: once.encoding })) as TaskSpecInput;
    expect(normalizeTaskSpec(message, limits)).toEqual(once);
  });

  it('returns a deeply frozen spec', () => {
    const spec = normalizeTaskSpec({ filters: ['blur'] }, limits);
    expect(Object.isFrozen(spec)).toBe(true);
    expect(Object.isFrozen(spec.filters)).toBe(true);
    expect(Object.isFrozen(spec.filters[0])).toBe(true);
    expect(Object.isFrozen(spec.encoding)).toBe(true);
  });

  it('accepts an empty pipeline (a format conversion) and lower-cases colours', () => {
    expect(normalizeTaskSpec({ filters: [] }, limits).filters).toEqual([]);
    expect(normalizeTaskSpec({ filters: [{ name: 'tint', color: '#ABCDEF' }] }, limits).filters[0]).toEqual({
      name: 'tint',
      color: '#abcdef',
    });
  });
});

describe('validation messages', () => {
  it('lists every problem with field path, expected and received', () => {
    const problems = problemsOf({
      filters: ['blurr', { name: 'blur', radius: 0 }, { name: 'resize', fit: 'squash' }, 7],
      output: { format: 'gif', quality: 101 },
    });
    expect(problems.map((p) => p.field)).toEqual([
      'filters[0]',
      'filters[1].radius',
      'filters[2].fit',
      'filters[3]',
      'output.format',
      'output.quality',
    ]);
    expect(problems[1].message).toBe(
      'Expected number between 0.3 and 100 for filters[1].radius but received 0 of type number',
    );
    expect(problems[2]).toMatchObject({
      expected: 'one of cover, contain, fill, inside, outside',
      received: "'squash' of type string",
    });
    expect(problems[4].message).toBe(
      "Expected one of jpeg, png, webp, avif for output.format but received 'gif' of type string",
    );
  });

  it('names every known filter for an unknown one and suggests the closest', () => {
    const [p] = problemsOf({ filters: ['grayscal'] });
    for (const name of FILTER_NAMES) expect(p.message).toContain(name);
    expect(p.message).toContain("did you mean 'grayscale'?");
  });

  it('refuses unknown parameters and names the ones the filter takes', () => {
    const [p] = problemsOf({ filters: [{ name: 'blur', sigma: 2 }] });
    expect(p).toMatchObject({
      field: 'filters[0].sigma',
      message: "Unknown parameter filters[0].sigma: expected one of blur's parameters: radius",
    });
    const [q] = problemsOf({ filters: ['grayscale'], filter_params: { grayscale: { amount: 1 } } });
    expect(q.field).toBe('filter_params.grayscale.amount');
    expect(q.message).toContain('grayscale takes none');
  });

  it('treats inherited object keys as unknown parameters, not as known ones', () => {
    expect(problemsOf({ filters: [{ name: 'blur', toString: 1, constructor: 2 }] }).map((p) => p.field)).toEqual([
      'filters[0].toString',
      'filters[0].constructor',
    ]);
    expect(problemsOf({ filters: ['blur'], filter_params: JSON.parse('{"__proto__": {"radius": 1}}') })[0].field).toBe(
      'filter_params.__proto__',
    );
  });

  it('points at filter_params when a bad value came from there', () => {
    const [p] = problemsOf({ filters: ['blur'], filter_params: { blur: { radius: 'big' } } });
    expect(p.field).toBe('filter_params.blur.radius');
  });

  it('refuses filter_params for filters not in the pipeline', () => {
    const [p] = problemsOf({ filters: ['blur'], filter_params: { sharpen: { amount: 2 } } });
    expect(p.field).toBe('filter_params.sharpen');
  });

  it('checks rules across parameters (resize needs a side, median an odd size, crop needs a region)', () => {
    expect(problemsOf({ filters: ['resize'] })[0]).toMatchObject({
      field: 'filters[0].width',
      expected: 'width or height (or both)',
    });
    expect(problemsOf({ filters: [{ name: 'median', size: 4 }] })[0].field).toBe('filters[0].size');
    expect(problemsOf({ filters: ['crop'] }).map((p) => p.field)).toEqual(['filters[0].width', 'filters[0].height']);
    expect(problemsOf({ filters: [{ name: 'normalize', lower: 60, upper: 40 }] })[0].field).toBe('filters[0].lower');
  });

  it('refuses non-integers, strings and non-finite numbers; null means the default', () => {
    expect(problemsOf({ filters: [{ name: 'resize', width: 10.5 }] })[0].expected).toBe('integer between 1 and 16383');
    expect(problemsOf({ filters: [{ name: 'brightness', factor: '2' }] })[0].received).toBe("'2' of type string");
    expect(problemsOf({ filters: [{ name: 'brightness', factor: Infinity }] })[0].received).toBe(
      'Infinity of type number',
    );
    expect(normalizeTaskSpec({ filters: [{ name: 'brightness', factor: null }] }, limits).filters[0]).toEqual({
      name: 'brightness',
      factor: 1.5,
    });
  });

  it('follows configured limits: output size and filters per task', () => {
    const tight = loadSettings({ MAX_OUTPUT_WIDTH: '1000', MAX_FILTERS_PER_TASK: '2' });
    expect(problemsOf({ filters: [{ name: 'resize', width: 1001 }] }, tight)[0].message).toContain(
      'between 1 and 1000',
    );
    expect(problemsOf({ filters: ['blur', 'blur', 'blur'] }, tight)[0]).toMatchObject({
      field: 'filters',
      expected: 'at most 2 filters (MAX_FILTERS_PER_TASK)',
    });
  });

  it('refuses wrong shapes at the top level with a clear message', () => {
    expect(problemsOf({ filters: 'blur' })[0].message).toBe(
      `Expected an array of filter names or {"name": ...} objects for filters but received 'blur' of type string`,
    );
    expect(problemsOf({ filters: [], filter_params: [1] })[0].field).toBe('filter_params');
    expect(problemsOf({ filters: [], output: 'png' })[0].field).toBe('output');
    expect(problemsOf({ filters: [{ radius: 3 }] })[0].message).toContain('an object with a string "name"');
  });
});

function errorOf(input: TaskSpecInput, l = limits): ValidationError {
  try {
    normalizeTaskSpec(input, l);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('bounded work on hostile specs', () => {
  it('refuses an over-long filter list with one problem, without validating its items', () => {
    const err = errorOf({ filters: Array.from({ length: 1_000_000 }, (_, i) => `nope${i}`) });
    expect(err.total).toBe(1);
    expect(err.errors).toEqual([expect.objectContaining({ field: 'filters', received: 'an array of 1000000 items' })]);
  });

  it('refuses filter_params with more keys than the catalog has filters, without looking at each', () => {
    const filterParams = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`f${i}`, {}]));
    const err = errorOf({ filters: ['blur'], filter_params: filterParams });
    expect(err.total).toBe(1);
    expect(err.errors[0]).toMatchObject({ field: 'filter_params' });
    expect(err.errors[0].message).toContain('received 100000 keys');
  });

  it('reports at most 20 unknown parameters of one filter and counts the rest', () => {
    const entry = Object.fromEntries([['name', 'blur'], ...Array.from({ length: 50_000 }, (_, i) => [`k${i}`, 1])]);
    const err = errorOf({ filters: [entry] });
    expect(err.errors).toHaveLength(20);
    expect(err.total).toBe(20);
    expect(err.errors[19].message).toBe('49981 more unknown parameters of blur');
  });

  it('cuts long keys in field paths and messages, so an answer stays small', () => {
    const key = 'x'.repeat(1_000_000);
    const err = errorOf({ filters: [{ name: 'blur', [key]: 1 }], filter_params: { [key]: {} }, output: { [key]: 1 } });
    expect(JSON.stringify(err.errors).length + err.message.length).toBeLessThan(5000);
    const cut = `${'x'.repeat(40)}…`;
    expect(err.errors.map((p) => p.field)).toEqual([`filters[0].${cut}`, `filter_params.${cut}`, `output.${cut}`]);
  });
});

describe('no false or silent mistakes', () => {
  it('a filter whose own parameters are refused still counts as in the list for filter_params', () => {
    const problems = problemsOf({ filters: ['blur'], filter_params: { blur: { radius: 'big' } } });
    expect(problems.map((p) => p.field)).toEqual(['filter_params.blur.radius']);
    expect(problems.map((p) => p.message).join(' ')).not.toContain('parameters only for filters in the list');
    const both = problemsOf({ filters: [{ name: 'resize', width: 0 }], filter_params: { resize: { fit: 'inside' } } });
    expect(both.map((p) => p.field)).toEqual(['filters[0].width']);
  });

  it('suggests the closest parameter and output option for a misspelt one', () => {
    expect(problemsOf({ filters: [{ name: 'blur', radious: 2 }] })[0].message).toContain("did you mean 'radius'?");
    expect(problemsOf({ filters: [], output: { fromat: 'png' } })[0]).toMatchObject({
      field: 'output.fromat',
      message: "Unknown option output.fromat: expected one of format, quality (did you mean 'format'?)",
    });
  });
});
