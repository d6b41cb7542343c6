import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { generateSamples, renderSample, SAMPLE_SET } from '../../../scripts/samples';
import { highFrequencyEnergy, pixels } from '../../helpers/images';

describe('sample images', () => {
  let dir: string;
  let files: string[];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'samples-'));
    files = await generateSamples(dir);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes the whole set: several sizes, a 4K JPEG, an EXIF-rotated portrait and a PNG with alpha', async () => {
    expect(files.map((f) => path.basename(f))).toEqual(SAMPLE_SET.map((s) => s.name));
    const shown = await Promise.all(files.map(async (f) => (await sharp(f).metadata()).autoOrient));
    expect(shown).toContainEqual({ width: 3840, height: 2160 });
    expect(shown).toContainEqual({ width: 1200, height: 1600 });
    expect(new Set(shown.map((s) => s.width)).size).toBeGreaterThanOrEqual(4);
    const portrait = await sharp(path.join(dir, 'sample_portrait_1200x1600.jpg')).metadata();
    expect([portrait.width, portrait.height, portrait.orientation]).toEqual([1600, 1200, 6]);
  });

  it('the PNG has real transparency: fully clear and fully opaque pixels', async () => {
    const png = await pixels(await sharp(path.join(dir, 'sample_alpha_1024.png')).toBuffer());
    const alphas = png.data.filter((_, i) => i % 4 === 3);
    expect(png.channels).toBe(4);
    expect(alphas.some((a) => a === 0) && alphas.some((a) => a === 255)).toBe(true);
  });

  it('looks like a photo: texture and realistic JPEG sizes, not flat colour', async () => {
    const small = await pixels(await sharp(path.join(dir, 'sample_640x480.jpg')).toBuffer());
    expect(highFrequencyEnergy(small)).toBeGreaterThan(3);
    expect((await stat(path.join(dir, 'sample_4k.jpg'))).size).toBeGreaterThan(1_000_000);
  });

  it('is deterministic and leaves existing files alone', async () => {
    const spec = SAMPLE_SET[0];
    expect((await renderSample(spec)).equals(await renderSample(spec))).toBe(true);
    const before = (await stat(files[0])).mtimeMs;
    await generateSamples(dir);
    expect((await stat(files[0])).mtimeMs).toBe(before);
  });
});
