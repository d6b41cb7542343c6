/** Hostile inputs are refused as PermanentError with a clear message and without large allocations. */
import sharp from 'sharp';
import { PermanentError } from '../../../shared/errors';
import { sniffFormat } from '../../../shared/imaging/input';
import { loadSettings } from '../../../shared/config';
import { processImage } from '../../../shared/imaging/pipeline';
import { normalizeTaskSpec } from '../../../shared/imaging/spec';
import { photo } from '../../helpers/images';
import { pngClaiming, randomBytes, SVG_EXTERNAL_HREF, SVG_PLAIN } from '../../helpers/hostile';

const limits = loadSettings({});
const spec = normalizeTaskSpec({ filters: ['blur', { name: 'resize', width: 100 }] }, limits);

async function refusal(input: Buffer): Promise<PermanentError> {
  const result = await processImage(spec, input, limits).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(result).toBeInstanceOf(PermanentError);
  return result as PermanentError;
}

describe('hostile inputs', () => {
  it('refuses zero bytes', async () => {
    const err = await refusal(Buffer.alloc(0));
    expect(err.code).toBe('not_an_image');
    expect(err.message).toMatch(/^The input is empty \(0 bytes\): expected jpeg, png, webp/);
  });

  it('refuses random bytes and shows what they start with', async () => {
    const err = await refusal(randomBytes(4096));
    expect(err.code).toBe('not_an_image');
    expect(err.message).toMatch(/received 4096 bytes starting with ([0-9a-f]{2} ){7}[0-9a-f]{2}$/);
  });

  it('refuses a truncated JPEG as corrupt', async () => {
    const jpeg = await photo(320, 240, 'jpeg');
    const err = await refusal(jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    expect(err.code).toBe('corrupt_image');
    expect(err.message).toMatch(/truncated|corrupt/i);
  });

  it('refuses a JPEG with garbage in the middle of its data', async () => {
    const jpeg = Buffer.from(await photo(320, 240, 'jpeg'));
    randomBytes(2000).copy(jpeg, Math.floor(jpeg.length / 3));
    expect((await refusal(jpeg)).code).toBe('corrupt_image');
  });

  it('refuses a PNG whose header claims 100000×100000 without allocating its pixels', async () => {
    const before = process.memoryUsage().rss;
    const err = await refusal(pngClaiming(100000, 100000));
    expect(err.code).toBe('input_too_large');
    expect(err.message).toContain('100000×100000 = 10000000000 pixels: expected at most 100000000 (MAX_INPUT_PIXELS)');
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a PNG header under the pixel limit whose data is missing', async () => {
    expect((await refusal(pngClaiming(2000, 2000))).code).toBe('corrupt_image');
  });

  it.each([
    ['plain SVG', SVG_PLAIN],
    ['SVG with external hrefs and an XML prolog', SVG_EXTERNAL_HREF],
    [
      'SVG after a byte-order mark and whitespace',
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('\n  '), SVG_PLAIN]),
    ],
    ['PDF', Buffer.from('%PDF-1.7\n1 0 obj <<>> endobj\n')],
  ])('refuses %s as a refused format, naming why', async (_name, input) => {
    const err = await refusal(input);
    expect(err.code).toBe('refused_format');
    expect(err.message).toMatch(/is not accepted: expected jpeg, png/);
  });

  it('blocks the SVG loader in libvips too, should anything skip the magic-byte check', async () => {
    expect(() => sniffFormat(SVG_PLAIN)).toThrow(PermanentError);
    await expect(sharp(SVG_EXTERNAL_HREF).metadata()).rejects.toThrow(/unsupported image format/);
  });

  it('accepts the photo formats users send: GIF, TIFF, WebP, AVIF', async () => {
    const base = sharp(await photo(64, 48));
    for (const encoded of [
      await base.clone().gif().toBuffer(),
      await base.clone().tiff().toBuffer(),
      await base.clone().webp().toBuffer(),
      await base.clone().avif().toBuffer(),
    ]) {
      const out = await processImage(spec, encoded, limits);
      expect(out.info).toMatchObject({ width: 100, height: 75, content_type: 'image/jpeg' });
    }
  });
});
