/** One block per filter: dimensions, channels and the perceptual property the filter promises. */
import sharp from 'sharp';
import { PermanentError } from '../../../shared/errors';
import {
  channelMeans,
  dHash,
  hammingDistance,
  highFrequencyEnergy,
  luma,
  mean,
  photo,
  pixelAt,
  pixels,
  run,
  solid,
  stdDev,
  type Pixels,
} from '../../helpers/images';

let input: Buffer;
let original: Pixels;
const png = { format: 'png' } as const;

beforeAll(async () => {
  input = await photo(320, 240);
  original = await pixels(input);
});

describe('resize', () => {
  it.each([
    ['cover', 200, 200, 200, 200],
    ['fill', 200, 100, 200, 100],
    ['contain', 200, 200, 200, 200],
    ['inside', 200, 200, 200, 150],
    ['outside', 200, 200, 267, 200],
  ])('fit %s into %i×%i gives %i×%i', async (fit, width, height, w, h) => {
    const out = await run(input, { filters: [{ name: 'resize', width, height, fit }] });
    expect([out.width, out.height]).toEqual([w, h]);
  });

  it('keeps the aspect ratio when one side is given', async () => {
    expect(await run(input, { filters: [{ name: 'resize', width: 160 }] })).toMatchObject({ width: 160, height: 120 });
    expect(await run(input, { filters: [{ name: 'resize', height: 60 }] })).toMatchObject({ width: 80, height: 60 });
  });

  it('cover crops without distortion: the picture stays perceptually the same at the same aspect', async () => {
    const out = await run(input, { filters: [{ name: 'resize', width: 800, height: 600 }], output: png });
    expect(hammingDistance(await dHash(input), await dHash(out.bytes))).toBeLessThanOrEqual(6);
  });

  it('contain letterboxes with the background colour', async () => {
    const out = await run(input, {
      filters: [{ name: 'resize', width: 320, height: 400, fit: 'contain', background: '#ff0000' }],
      output: png,
    });
    expect(pixelAt(out, 160, 2)).toEqual([255, 0, 0]);
  });
});

describe('crop', () => {
  it('cuts out exactly the region', async () => {
    const out = await run(input, {
      filters: [{ name: 'crop', left: 200, top: 50, width: 40, height: 30 }],
      output: png,
    });
    expect([out.width, out.height]).toEqual([40, 30]);
    expect(pixelAt(out, 5, 5)).toEqual(pixelAt(original, 205, 55));
  });

  it('refuses a region outside the image as a permanent error that names both sizes', async () => {
    const failure = run(input, { filters: [{ name: 'crop', left: 300, top: 0, width: 40, height: 30 }] });
    await expect(failure).rejects.toBeInstanceOf(PermanentError);
    await expect(failure).rejects.toThrow(/40×30 at left 300, top 0 does not fit inside the 320×240 image/);
  });
});

describe('rotate, flip, flop', () => {
  it('rotates by 90° swapping the sides, and by 30° enlarging the canvas', async () => {
    expect(await run(input, { filters: ['rotate'] })).toMatchObject({ width: 240, height: 320 });
    const tilted = await run(input, { filters: [{ name: 'rotate', angle: 30, background: '#ffffff' }], output: png });
    expect(tilted.width).toBeGreaterThan(380);
    expect(pixelAt(tilted, 1, 1)).toEqual([255, 255, 255]);
  });

  it('flip mirrors top to bottom and flop left to right', async () => {
    const flipped = await run(input, { filters: ['flip'], output: png });
    const flopped = await run(input, { filters: ['flop'], output: png });
    expect(pixelAt(flipped, 10, 0)).toEqual(pixelAt(original, 10, 239));
    expect(pixelAt(flopped, 0, 10)).toEqual(pixelAt(original, 319, 10));
  });
});

describe('grayscale', () => {
  it('writes a single-channel JPEG and PNG', async () => {
    for (const format of ['jpeg', 'png'] as const) {
      const out = await run(input, { filters: ['grayscale'], output: { format } });
      expect((await sharp(out.bytes).metadata()).channels).toBe(1);
    }
  });

  it('gives equal channels in formats that store RGB (WebP)', async () => {
    const out = await run(input, { filters: ['grayscale'], output: { format: 'webp', quality: 100 } });
    const [r, g, b] = channelMeans(out);
    expect(Math.abs(r - g)).toBeLessThan(1);
    expect(Math.abs(g - b)).toBeLessThan(1);
  });
});

describe('brightness and contrast', () => {
  it('brightness multiplies values: 1.5 raises the mean, 0.5 lowers it', async () => {
    const m = mean(original);
    expect(mean(await run(input, { filters: [{ name: 'brightness', factor: 1.5 }], output: png }))).toBeGreaterThan(
      m * 1.3,
    );
    expect(mean(await run(input, { filters: [{ name: 'brightness', factor: 0.5 }], output: png }))).toBeCloseTo(
      m * 0.5,
      -1,
    );
  });

  it('contrast widens the spread of luminance and keeps mid-grey in place', async () => {
    const out = await run(input, { filters: [{ name: 'contrast', factor: 1.5 }], output: png });
    expect(stdDev(luma(out))).toBeGreaterThan(stdDev(luma(original)) * 1.3);
    const grey = await run(await solid(8, 8, { r: 128, g: 128, b: 128 }), { filters: ['contrast'], output: png });
    expect(pixelAt(grey, 4, 4)).toEqual([128, 128, 128]);
  });
});

describe('colour filters', () => {
  const chroma = (p: Pixels) => {
    let sum = 0;
    for (let i = 0; i < p.data.length; i += p.channels)
      sum += Math.abs(p.data[i] - p.data[i + 1]) + Math.abs(p.data[i + 1] - p.data[i + 2]);
    return sum / (p.width * p.height);
  };

  it('saturation 2 raises chroma, 0 removes it', async () => {
    expect(chroma(await run(input, { filters: [{ name: 'saturation', factor: 2 }], output: png }))).toBeGreaterThan(
      chroma(original) * 1.3,
    );
    expect(chroma(await run(input, { filters: [{ name: 'saturation', factor: 0 }], output: png }))).toBeLessThan(3);
  });

  it('hue 180 turns a red patch cyan-ish and keeps its lightness close', async () => {
    const red = await solid(16, 16, { r: 200, g: 40, b: 40 });
    const out = await run(red, { filters: [{ name: 'hue', degrees: 180 }], output: png });
    const [r, g, b] = pixelAt(out, 8, 8);
    expect(g).toBeGreaterThan(r);
    expect(b).toBeGreaterThan(r);
  });

  it('sepia makes red ≥ green ≥ blue on average', async () => {
    const [r, g, b] = channelMeans(await run(input, { filters: ['sepia'], output: png }));
    expect(r).toBeGreaterThanOrEqual(g);
    expect(g).toBeGreaterThanOrEqual(b);
  });

  it('tint after grayscale colours a black-and-white photo with the tint hue', async () => {
    const out = await run(input, { filters: ['grayscale', { name: 'tint', color: '#704214' }], output: png });
    expect(out.channels).toBe(3);
    const [r, , b] = channelMeans(out);
    expect(r - b).toBeGreaterThan(10);
  });

  it('negate inverts every value', async () => {
    const out = await run(input, { filters: ['negate'], output: png });
    expect(pixelAt(out, 7, 9)).toEqual(pixelAt(original, 7, 9).map((v) => 255 - v));
  });

  it('gamma brightens mid-tones but leaves black and white in place', async () => {
    expect(mean(await run(input, { filters: ['gamma'], output: png }))).toBeGreaterThan(mean(original) + 15);
    const black = await run(await solid(4, 4, { r: 0, g: 0, b: 0 }), { filters: ['gamma'], output: png });
    const white = await run(await solid(4, 4, { r: 255, g: 255, b: 255 }), { filters: ['gamma'], output: png });
    expect(pixelAt(black, 1, 1)).toEqual([0, 0, 0]);
    expect(pixelAt(white, 1, 1)).toEqual([255, 255, 255]);
  });
});

describe('threshold and normalize', () => {
  it('threshold leaves one band of pure black and white', async () => {
    const out = await run(input, { filters: [{ name: 'threshold', level: 120 }], output: png });
    expect(out.channels).toBe(1);
    expect(new Set(out.data)).toEqual(new Set([0, 255]));
  });

  it('normalize stretches a dull image to the full range', async () => {
    const dull = await run(input, { filters: [{ name: 'contrast', factor: 0.3 }], output: png });
    const out = await run(dull.bytes, { filters: ['normalize'], output: png });
    const l = luma(out);
    expect(Math.max(...l) - Math.min(...l)).toBeGreaterThan(200);
    expect(stdDev(l)).toBeGreaterThan(stdDev(luma(dull)) * 2);
  });
});

describe('neighbourhood filters', () => {
  it('blur lowers high-frequency energy, more with a bigger radius', async () => {
    const before = highFrequencyEnergy(original);
    const soft = highFrequencyEnergy(await run(input, { filters: [{ name: 'blur', radius: 1 }], output: png }));
    const softer = highFrequencyEnergy(await run(input, { filters: [{ name: 'blur', radius: 3 }], output: png }));
    expect(soft).toBeLessThan(before * 0.5);
    expect(softer).toBeLessThan(soft);
  });

  it('sharpen raises high-frequency energy and keeps the mean', async () => {
    const out = await run(input, { filters: ['sharpen'], output: png });
    expect(highFrequencyEnergy(out)).toBeGreaterThan(highFrequencyEnergy(original) * 1.5);
    expect(Math.abs(mean(out) - mean(original))).toBeLessThan(4);
  });

  it('edges is mostly dark with bright lines along the shapes', async () => {
    const shapes = await photo(320, 240, 'png', { noise: 0 });
    const out = await run(shapes, { filters: ['edges'], output: png });
    expect(out.channels).toBe(1);
    const bright = out.data.filter((v) => v > 64).length / out.data.length;
    expect(mean(out)).toBeLessThan(20);
    expect(bright).toBeGreaterThan(0.003);
    expect(bright).toBeLessThan(0.15);
    // the disc's rim is an edge: walking across it the map lights up, inside it stays dark
    const across = [...Array(12).keys()].map((i) => pixelAt(out, 96 + 54 + i, 120)[0]);
    expect(Math.max(...across)).toBeGreaterThan(60);
    expect(pixelAt(out, 96, 120)[0]).toBeLessThan(10);
  });

  it('median removes salt-and-pepper noise', async () => {
    const noisy = Buffer.from(original.data);
    for (let i = 0; i < noisy.length; i += 3 * 37) noisy.fill(i % 2 ? 255 : 0, i, i + 3);
    const speckled = await sharp(noisy, { raw: { width: 320, height: 240, channels: 3 } })
      .png()
      .toBuffer();
    const extremes = (p: Pixels) => luma(p).filter((v) => v === 0 || v === 255).length;
    const out = await run(speckled, { filters: ['median'], output: png });
    expect(extremes(out)).toBeLessThan(extremes(await pixels(speckled)) / 10);
  });

  it('emboss keeps flat areas and raises relief along edges', async () => {
    const flat = await run(await solid(16, 16, { r: 90, g: 90, b: 90 }), { filters: ['emboss'], output: png });
    expect(pixelAt(flat, 8, 8)).toEqual([90, 90, 90]);
    expect(highFrequencyEnergy(await run(input, { filters: ['emboss'], output: png }))).toBeGreaterThan(
      highFrequencyEnergy(original),
    );
  });

  it('pixelate keeps the size and makes uniform blocks', async () => {
    const out = await run(input, { filters: [{ name: 'pixelate', size: 16 }], output: png });
    expect([out.width, out.height]).toEqual([320, 240]);
    const block = new Set<string>();
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) block.add(pixelAt(out, 32 + x, 48 + y).join());
    expect(block.size).toBe(1);
  });
});

describe('tiny images', () => {
  it('every filter handles a 1×1 image or refuses it as permanent with the reason', async () => {
    const dot = await solid(1, 1, { r: 200, g: 100, b: 50 });
    const { FILTER_NAMES } = await import('../../../shared/imaging/filters');
    for (const name of FILTER_NAMES) {
      const entry = name === 'crop' ? { name, width: 1, height: 1 } : name === 'resize' ? { name, width: 4 } : name;
      const outcome = await run(dot, { filters: [entry] }).then(
        (out) => `${out.width}×${out.height}`,
        (err: unknown) => (err instanceof PermanentError ? err.code : `transient: ${String(err)}`),
      );
      expect([name, outcome]).toEqual([
        name,
        name === 'median' ? 'filter_not_applicable' : expect.stringMatching(/^\d+×\d+$/),
      ]);
    }
  });
});
