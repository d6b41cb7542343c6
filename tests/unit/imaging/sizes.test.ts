/**
 * Pixel amplification: every size a pipeline will make is known from the header alone and checked
 * before any pixel work, against MAX_OUTPUT_WIDTH/HEIGHT/PIXELS and the output format's own limits.
 */
import sharp from 'sharp';
import { PermanentError } from '../../../shared/errors';
import { loadSettings, type Settings } from '../../../shared/config';
import type { OutputFormat } from '../../../shared/imaging/output';
import { processImage } from '../../../shared/imaging/pipeline';
import { checkPipelineSizes, planStages, type StartImage } from '../../../shared/imaging/plan';
import { normalizeTaskSpec, type TaskSpecInput } from '../../../shared/imaging/spec';
import { photo, solid } from '../../helpers/images';

const limits = loadSettings({});
/** The largest MAX_OUTPUT_PIXELS an operator may set. */
const roomy = loadSettings({ MAX_OUTPUT_PIXELS: String(0x3fff * 0x3fff * 4) });

const AMPLIFIER: TaskSpecInput = {
  filters: [
    { name: 'resize', width: 16383, height: 16383 },
    { name: 'rotate', angle: 45 },
  ],
};

/** The pre-check alone, given only what a header tells. */
function sizesOf(input: TaskSpecInput, start: StartImage, settings: Settings = limits, format?: OutputFormat) {
  const spec = normalizeTaskSpec(input, settings);
  return checkPipelineSizes(planStages(spec.filters), start, format ?? spec.encoding.format, settings);
}

function refusal(run: () => unknown): PermanentError {
  let thrown: unknown;
  try {
    run();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(PermanentError);
  return thrown as PermanentError;
}

/** How many sharp pipelines produced pixels while `run` ran (header reads do not count), and its outcome. */
async function pixelPipelines(run: () => Promise<unknown>): Promise<{ runs: number; outcome: unknown }> {
  const toBuffer = jest.spyOn(sharp.prototype, 'toBuffer');
  const toFile = jest.spyOn(sharp.prototype, 'toFile');
  try {
    const outcome = await run().catch((err: unknown) => err);
    return { runs: toBuffer.mock.calls.length + toFile.mock.calls.length, outcome };
  } finally {
    toBuffer.mockRestore();
    toFile.mockRestore();
  }
}

/** The PermanentError `run` rejects with, having made no pixels. */
async function refusedBeforePixels(run: () => Promise<unknown>): Promise<PermanentError> {
  const { runs, outcome } = await pixelPipelines(run);
  expect(outcome).toBeInstanceOf(PermanentError);
  expect(runs).toBe(0);
  return outcome as PermanentError;
}

let tinyPng: Buffer;

beforeAll(async () => {
  tinyPng = await solid(10, 10, { r: 10, g: 200, b: 30 });
});

describe('the whole pipeline is sized from the header before any pixel work', () => {
  it('refuses a 10×10 image resized to 16383×16383 from its header size alone (268 MP over MAX_OUTPUT_PIXELS)', () => {
    const err = refusal(() => sizesOf(AMPLIFIER, { width: 10, height: 10, channels: 3 }));
    expect(err.code).toBe('output_too_large');
    expect(err.message).toBe(
      'filters[0] (resize) would make a 16383×16383 image = 268402689 pixels: expected at most 100000000 pixels (MAX_OUTPUT_PIXELS)',
    );
  });

  it('with MAX_OUTPUT_PIXELS at its maximum, names the rotate whose canvas outgrows MAX_OUTPUT_WIDTH × MAX_OUTPUT_HEIGHT', () => {
    const err = refusal(() => sizesOf(AMPLIFIER, { width: 10, height: 10, channels: 3 }, roomy));
    expect(err.code).toBe('output_too_large');
    expect(err.message).toBe(
      'filters[1] (rotate) would make a 23169×23169 image: expected at most 16383×16383 (MAX_OUTPUT_WIDTH × MAX_OUTPUT_HEIGHT)',
    );
  });

  it('processImage fails the 10×10 PNG + resize 16383×16383 + rotate 45 without running a pixel pipeline', async () => {
    for (const settings of [limits, roomy]) {
      const spec = normalizeTaskSpec(AMPLIFIER, settings);
      expect((await refusedBeforePixels(() => processImage(spec, tinyPng, settings))).code).toBe('output_too_large');
    }
    // the probe does see pipelines that run: resize alone, then rotate in a second instance
    const fine = normalizeTaskSpec({
      filters: [
        { name: 'resize', width: 20 },
        { name: 'rotate', angle: 45 },
      ],
    });
    const { runs, outcome } = await pixelPipelines(() => processImage(fine, tinyPng, limits));
    expect(outcome).toMatchObject({ info: { width: 28, height: 28 } });
    expect(runs).toBe(2);
  });

  it('checks intermediate images too: upscaling and shrinking back is refused at the upscale', async () => {
    const spec = { filters: [{ name: 'resize', width: 12000, height: 12000 }, 'blur', { name: 'resize', width: 100 }] };
    expect(refusal(() => sizesOf(spec, { width: 10, height: 10, channels: 3 })).message).toMatch(
      /^filters\[0\] \(resize\) would make a 12000×12000 image = 144000000 pixels/,
    );
    const err = await refusedBeforePixels(() => processImage(normalizeTaskSpec(spec), tinyPng, limits));
    expect(err.code).toBe('output_too_large');
  });

  it('refuses a filter that cannot apply to the size an earlier step makes, before any pixel work', async () => {
    const spec = normalizeTaskSpec({
      filters: [
        { name: 'resize', width: 8, height: 8 },
        { name: 'median', size: 15 },
      ],
    });
    const err = await refusedBeforePixels(() => processImage(spec, tinyPng, limits));
    expect(err.code).toBe('filter_not_applicable');
    expect(err.message).toMatch(/median size 15 needs an image of at least 15×15 pixels but this one is 8×8/);
  });

  it('lets a pipeline up to the limits through: resize to 10000×10000 (100 MP) is within MAX_OUTPUT_PIXELS', () => {
    const filters = [{ name: 'resize', width: 10000, height: 10000 }];
    expect(sizesOf({ filters }, { width: 10, height: 10, channels: 3 })).toEqual({ width: 10000, height: 10000 });
  });

  it('never refuses an input for the size it already has, only for what a filter adds', () => {
    const narrow = loadSettings({ MAX_OUTPUT_WIDTH: '100', MAX_OUTPUT_HEIGHT: '300', MAX_OUTPUT_PIXELS: '1000' });
    const start = { width: 320, height: 240, channels: 3 };
    expect(sizesOf({ filters: [] }, start, narrow)).toEqual({ width: 320, height: 240 });
    expect(sizesOf({ filters: ['flip', 'blur'] }, start, narrow)).toEqual({ width: 320, height: 240 });
    expect(refusal(() => sizesOf({ filters: ['rotate'] }, start, narrow)).message).toBe(
      "filters[0] (rotate) would make a 240×320 image: expected at most 320×300 (MAX_OUTPUT_WIDTH × MAX_OUTPUT_HEIGHT, or the input's own size where larger)",
    );
  });
});

describe("the output format's own limits are checked before any pixel work", () => {
  it.each([
    ['jpeg', { width: 100000, height: 1 }, 'JPEG holds at most 65500×65500', 'choose png, or make it smaller'],
    ['webp', { width: 20000, height: 10 }, 'WebP holds at most 16383×16383', 'choose jpeg or png, or make it smaller'],
    ['avif', { width: 10, height: 16385 }, 'AVIF holds at most 16384×16384', 'choose jpeg or png, or make it smaller'],
  ] as const)('%s: a %o result fails output_too_large_for_format', (format, start, holds, instead) => {
    const err = refusal(() => sizesOf({ filters: [], output: { format } }, { ...start, channels: 3 }));
    expect(err.code).toBe('output_too_large_for_format');
    expect(err.message).toContain(`The result would be ${start.width}×${start.height}: ${holds}`);
    expect(err.message).toContain(instead);
  });

  it('a 100000×1 image encoded to JPEG fails at once, without a pixel pipeline; PNG holds it', async () => {
    const wide = await sharp({ create: { width: 100000, height: 1, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const err = await refusedBeforePixels(() => processImage(normalizeTaskSpec({ filters: [] }), wide, limits));
    expect(err.code).toBe('output_too_large_for_format');
    const png = await processImage(normalizeTaskSpec({ filters: ['negate'], output: { format: 'png' } }), wide, limits);
    expect([png.info.width, png.info.height]).toEqual([100000, 1]);
  });

  it('a resize to 20000 wide is refused for WebP when the operator allows it in general', () => {
    const wide = loadSettings({ MAX_OUTPUT_WIDTH: '65535' });
    const err = refusal(() =>
      sizesOf(
        { filters: [{ name: 'resize', width: 20000 }], output: { format: 'webp' } },
        { ...{ width: 320, height: 24 }, channels: 3 },
        wide,
      ),
    );
    expect(err.code).toBe('output_too_large_for_format');
  });
});

describe('each outputSize is exactly the size sharp makes', () => {
  const cases: TaskSpecInput['filters'][] = [
    [{ name: 'rotate', angle: 45 }],
    [{ name: 'rotate', angle: 1 }],
    [{ name: 'rotate', angle: -33.3 }],
    [{ name: 'rotate', angle: 200.3 }],
    [
      { name: 'rotate', angle: 90 },
      { name: 'rotate', angle: 12.5 },
    ],
    [{ name: 'resize', width: 77 }],
    [{ name: 'resize', height: 33 }],
    [{ name: 'resize', width: 50, height: 50, fit: 'inside' }],
    [{ name: 'resize', width: 13, height: 17, fit: 'outside' }],
    [{ name: 'resize', width: 13, height: 17, fit: 'contain' }],
    [
      { name: 'crop', left: 3, top: 5, width: 40, height: 30 },
      { name: 'pixelate', size: 7 },
    ],
    [{ name: 'rotate', angle: 30 }, { name: 'pixelate', size: 9 }, 'flip'],
  ];
  it.each(cases.map((filters) => [JSON.stringify(filters), filters]))('%s', async (_name, filters) => {
    for (const [width, height] of [
      [320, 240],
      [3, 7],
      [101, 33],
    ]) {
      const image = await photo(width, height);
      const spec = normalizeTaskSpec({ filters, output: { format: 'png' } });
      const predicted = (() => {
        try {
          return checkPipelineSizes(planStages(spec.filters), { width, height, channels: 3 }, 'png', limits);
        } catch (err) {
          return err instanceof PermanentError ? err.code : err;
        }
      })();
      const made = await processImage(spec, image, limits).then(
        (out) => ({ width: out.info.width, height: out.info.height }),
        (err: unknown) => (err instanceof PermanentError ? err.code : err),
      );
      expect([width, height, predicted]).toEqual([width, height, made]);
    }
  });
});
