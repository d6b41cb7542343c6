import { ConfigError } from '../../../shared/errors';
import { LIMIT_SETTINGS, loadLimits } from '../../../shared/imaging/limits';

describe('limits from the environment', () => {
  it('has safe defaults', () => {
    expect(loadLimits({})).toEqual({
      maxInputPixels: 100_000_000,
      maxOutputWidth: 16383,
      maxOutputHeight: 16383,
      maxFiltersPerTask: 20,
    });
  });

  it('reads each setting, allowing digit separators', () => {
    expect(
      loadLimits({ MAX_INPUT_PIXELS: '50_000_000', MAX_OUTPUT_WIDTH: ' 4096 ', MAX_FILTERS_PER_TASK: '5' }),
    ).toMatchObject({
      maxInputPixels: 50_000_000,
      maxOutputWidth: 4096,
      maxFiltersPerTask: 5,
    });
  });

  it('reports every bad setting at once, naming the variable, the range and the value', () => {
    let error: unknown;
    try {
      loadLimits({ MAX_OUTPUT_WIDTH: 'wide', MAX_FILTERS_PER_TASK: '0' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).errors.map((e) => e.message)).toEqual([
      "Expected an integer between 1 and 65535 for MAX_OUTPUT_WIDTH but received 'wide' of type string",
      "Expected an integer between 1 and 200 for MAX_FILTERS_PER_TASK but received '0' of type string",
    ]);
  });

  it('documents why each default is what it is', () => {
    for (const setting of Object.values(LIMIT_SETTINGS)) expect(setting.reason.length).toBeGreaterThan(20);
  });
});
