import sharp from 'sharp';
import { PermanentError } from '../../../shared/errors';
import { loadSettings } from '../../../shared/config';
import { processImage } from '../../../shared/imaging/pipeline';
import { normalizeTaskSpec, type TaskSpecInput } from '../../../shared/imaging/spec';
import { channelMeans, dHash, hammingDistance, mean, photo, pixelAt, pixels, run, solid } from '../../helpers/images';

const limits = loadSettings({});
const spec = (input: TaskSpecInput) => normalizeTaskSpec(input, limits);
let input: Buffer;

beforeAll(async () => {
  input = await photo(320, 240, 'jpeg');
});

describe('output formats', () => {
  it.each([
    ['jpeg', 'image/jpeg', 'jpeg'],
    ['png', 'image/png', 'png'],
    ['webp', 'image/webp', 'webp'],
    ['avif', 'image/avif', 'heif'],
  ] as const)('%s is encoded as %s', async (format, contentType, detected) => {
    const out = await processImage(spec({ filters: ['flop'], output: { format } }), input, limits);
    expect(out.info).toMatchObject({
      format,
      content_type: contentType,
      width: 320,
      height: 240,
      bytes: out.data.length,
    });
    expect((await sharp(out.data).metadata()).format).toBe(detected);
  });

  it('uses the quality setting', async () => {
    const low = await processImage(spec({ filters: [], output: { format: 'jpeg', quality: 20 } }), input, limits);
    const high = await processImage(spec({ filters: [], output: { format: 'jpeg', quality: 95 } }), input, limits);
    expect(low.info.bytes).toBeLessThan(high.info.bytes / 2);
  });
});

describe('input handling', () => {
  it('applies EXIF orientation before filters (a stored 40×20 with orientation 6 is a 20×40 portrait)', async () => {
    const stored = Buffer.alloc(40 * 20 * 3);
    for (let i = 0; i < 40 * 20; i++) stored.set(i % 40 < 20 ? [255, 0, 0] : [0, 0, 255], i * 3);
    const jpeg = await sharp(stored, { raw: { width: 40, height: 20, channels: 3 } })
      .jpeg({ quality: 95 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const out = await run(jpeg, { filters: [{ name: 'resize', width: 10 }], output: { format: 'png' } });
    expect([out.width, out.height]).toEqual([10, 20]);
    expect(pixelAt(out, 5, 2)[0]).toBeGreaterThan(200); // the stored left (red) half is on top
    expect(pixelAt(out, 5, 17)[2]).toBeGreaterThan(200);
  });

  it('composites transparency onto white for JPEG and keeps it for PNG', async () => {
    const clear = await solid(16, 16, { r: 0, g: 0, b: 0, alpha: 0 });
    expect(pixelAt(await run(clear, { filters: [] }), 8, 8).every((v) => v > 250)).toBe(true);
    const kept = await run(clear, { filters: ['blur'], output: { format: 'png' } });
    expect(kept.channels).toBe(4);
    expect(pixelAt(kept, 8, 8)[3]).toBe(0);
  });

  it('keeps a greyscale input one band, and colours it when a colour filter asks', async () => {
    const grey = await sharp(await photo(64, 48))
      .greyscale()
      .toColourspace('b-w')
      .jpeg()
      .toBuffer();
    expect((await run(grey, { filters: ['blur'] })).channels).toBe(1);
    const toned = await run(grey, { filters: ['sepia'], output: { format: 'png' } });
    expect(toned.channels).toBe(3);
    const [r, , b] = channelMeans(toned);
    expect(r).toBeGreaterThan(b + 10);
  });
});

describe('stages', () => {
  it('a pipeline split into stages equals running its filters one after the other', async () => {
    const steps = ['blur', { name: 'resize', width: 160 }, 'brightness', 'contrast'];
    const together = await run(input, { filters: steps, output: { format: 'png' } });
    let bytes = input;
    for (const step of steps) bytes = (await run(bytes, { filters: [step], output: { format: 'png' } })).bytes;
    const separately = await pixels(bytes);
    expect([together.width, together.height]).toEqual([separately.width, separately.height]);
    expect(Math.abs(mean(together) - mean(separately))).toBeLessThan(1.5);
    expect(hammingDistance(await dHash(together.bytes), await dHash(bytes))).toBeLessThanOrEqual(2);
  });

  it('runs every filter of the registry in one long pipeline without losing the image', async () => {
    const all = [
      'crop',
      'pixelate',
      'edges',
      'tint',
      'sepia',
      'rotate',
      'flip',
      'flop',
      'grayscale',
      'gamma',
      'hue',
      'saturation',
      'median',
      'normalize',
      'negate',
      'threshold',
      'emboss',
      'sharpen',
      'blur',
      'contrast',
      'brightness',
      'resize',
    ];
    const roomy = loadSettings({ MAX_FILTERS_PER_TASK: '30' });
    const out = await processImage(
      normalizeTaskSpec(
        { filters: all, filter_params: { crop: { width: 200, height: 100 }, resize: { width: 50 } } },
        roomy,
      ),
      input,
      roomy,
    );
    expect([out.info.width, out.info.height]).toEqual([50, 100]);
  });
});

describe('limits', () => {
  it('refuses an input over MAX_INPUT_PIXELS as permanent', async () => {
    const small = loadSettings({ MAX_INPUT_PIXELS: '10000' });
    const failure = processImage(normalizeTaskSpec({ filters: [] }, small), input, small);
    await expect(failure).rejects.toMatchObject({ code: 'input_too_large' });
    await expect(failure).rejects.toThrow('320×240 = 76800 pixels: expected at most 10000 (MAX_INPUT_PIXELS)');
  });

  it('refuses a result over MAX_OUTPUT_WIDTH/HEIGHT before doing the work', async () => {
    // 320×240 turned by 45° needs a 396×396 canvas
    const small = loadSettings({ MAX_OUTPUT_WIDTH: '390', MAX_OUTPUT_HEIGHT: '400' });
    const rotated = processImage(normalizeTaskSpec({ filters: [{ name: 'rotate', angle: 45 }] }, small), input, small);
    await expect(rotated).rejects.toBeInstanceOf(PermanentError);
    await expect(rotated).rejects.toMatchObject({ code: 'output_too_large' });
    const tall = processImage(
      normalizeTaskSpec({ filters: ['rotate', { name: 'resize', width: 390 }] }, small),
      input,
      small,
    );
    await expect(tall).rejects.toThrow(
      'filters[1] (resize) would make a 390×520 image: expected at most 390×400 (MAX_OUTPUT_WIDTH × MAX_OUTPUT_HEIGHT)',
    );
  });
});

describe('colour profiles', () => {
  const tagged = (profile: string) =>
    sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 100, b: 50 } } })
      .withIccProfile(profile)
      .png()
      .toBuffer();

  it('recognises an sRGB profile by its description and nothing else', async () => {
    const { isSrgbProfile } = await import('../../../shared/imaging/input');
    expect(isSrgbProfile((await sharp(await tagged('srgb')).metadata()).icc!)).toBe(true);
    expect(isSrgbProfile((await sharp(await tagged('p3')).metadata()).icc!)).toBe(false);
    expect(isSrgbProfile(Buffer.alloc(200))).toBe(false);
  });

  it('converts a Display P3 image to sRGB and leaves an sRGB-tagged one as it is', async () => {
    // withIccProfile stores sRGB (200,100,50) as P3 values; honouring the profile brings it back
    const p3 = await tagged('p3');
    const stored = [...(await sharp(p3, { ignoreIcc: true }).raw().toBuffer()).subarray(0, 3)];
    const fromP3 = pixelAt(await run(p3, { filters: [], output: { format: 'png' } }), 4, 4);
    expect(Math.max(...stored.map((v, i) => Math.abs(v - [200, 100, 50][i])))).toBeGreaterThan(5);
    expect(Math.max(...fromP3.map((v, i) => Math.abs(v - [200, 100, 50][i])))).toBeLessThanOrEqual(2);
    expect(pixelAt(await run(await tagged('srgb'), { filters: [], output: { format: 'png' } }), 4, 4)).toEqual([
      200, 100, 50,
    ]);
  });
});
