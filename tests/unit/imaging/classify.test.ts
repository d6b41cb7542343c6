/**
 * What a failed sharp call means: every sharp/libvips error we can provoke becomes a PermanentError
 * with a precise code (the task fails on its first delivery), and nothing else is mistaken for one.
 */
import { deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { AppError, PermanentError, type ErrorCode } from '../../../shared/errors';
import { loadSettings } from '../../../shared/config';
import { processImage } from '../../../shared/imaging/pipeline';
import { classifySharpError, type SharpCall } from '../../../shared/imaging/sharp-errors';
import { inputOptions } from '../../../shared/imaging/sharp-settings';
import { normalizeTaskSpec, type TaskSpecInput } from '../../../shared/imaging/spec';
import { pngClaiming } from '../../helpers/hostile';
import { photo } from '../../helpers/images';

const limits = loadSettings({});

/** Noisy pixels, so every encoder writes real entropy-coded data that truncation can cut. */
async function noisy(width: number, height: number): Promise<Sharp> {
  const data = Buffer.from(Array.from({ length: width * height * 3 }, (_, i) => (i * 7919) % 251));
  return sharp(
    await sharp(data, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer(),
  );
}

const cut = (buf: Buffer, fraction: number) => buf.subarray(0, Math.floor(buf.length * fraction));

function garble(buf: Buffer, from: number, length: number): Buffer {
  const out = Buffer.from(buf);
  for (let i = from; i < Math.min(out.length, from + length); i++) out[i] = (i * 31) & 0xff;
  return out;
}

/**
 * An 8-bit grey TIFF with its directory before the pixel data (as most cameras and tools write it;
 * libvips writes it last), so cutting the file keeps the header and loses pixels.
 */
function tiffDirectoryFirst(width: number, height: number, { deflate = false, keep = 1 } = {}): Buffer {
  const pixels = Buffer.from(Array.from({ length: width * height }, (_, i) => (i * 13) & 0xff));
  const data = deflate ? deflateSync(pixels) : pixels;
  const entries: [number, number, number][] = [
    [256, 3, width],
    [257, 3, height],
    [258, 3, 8],
    [259, 3, deflate ? 8 : 1],
    [262, 3, 1],
    [273, 4, 0], // StripOffsets, filled in below
    [277, 3, 1],
    [278, 3, height],
    [279, 4, data.length],
  ];
  const dataOffset = 8 + 2 + entries.length * 12 + 4;
  const out = Buffer.alloc(dataOffset + data.length);
  out.write('II*\0', 0, 'latin1');
  out.writeUInt32LE(8, 4);
  out.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, value], i) => {
    const at = 10 + i * 12;
    out.writeUInt16LE(tag, at);
    out.writeUInt16LE(type, at + 2);
    out.writeUInt32LE(1, at + 4);
    const v = tag === 273 ? dataOffset : value;
    if (type === 3) out.writeUInt16LE(v, at + 8);
    else out.writeUInt32LE(v, at + 8);
  });
  data.copy(out, dataOffset);
  return out.subarray(0, dataOffset + Math.floor(data.length * keep));
}

async function failureOf(input: Buffer, spec: TaskSpecInput = { filters: ['blur'] }): Promise<unknown> {
  return processImage(normalizeTaskSpec(spec, limits), input, limits).then(
    () => 'succeeded',
    (err: unknown) => err,
  );
}

function expectPermanent(outcome: unknown, code: ErrorCode): PermanentError {
  expect(outcome).toBeInstanceOf(PermanentError);
  expect((outcome as PermanentError).code).toBe(code);
  return outcome as PermanentError;
}

/** The error a raw sharp call rejects with. */
async function sharpError(run: () => Promise<unknown>): Promise<Error> {
  const outcome = await run().then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(Error);
  return outcome as Error;
}

describe('damaged inputs fail permanently through processImage, each as corrupt_image', () => {
  const cases: [string, () => Promise<Buffer>, RegExp][] = [
    ['JPEG cut in its header', async () => cut(await (await noisy(64, 48)).jpeg().toBuffer(), 0.1), /corrupt header/],
    ['JPEG cut in its data', async () => cut(await (await noisy(64, 48)).jpeg().toBuffer(), 0.5), /premature end/],
    [
      'JPEG with garbage in its entropy-coded data',
      async () => {
        const jpeg = await (await noisy(64, 48)).jpeg().toBuffer();
        return garble(jpeg, Math.floor(jpeg.length / 3), 200);
      },
      /Corrupt JPEG data/,
    ],
    ['PNG cut in its data', async () => cut(await (await noisy(64, 48)).png().toBuffer(), 0.5), /libpng read error/],
    [
      'PNG with a damaged chunk',
      async () => {
        const png = await (await noisy(64, 48)).png().toBuffer();
        png[40] ^= 0xff;
        return png;
      },
      /corrupt header/,
    ],
    ['PNG whose header claims pixels its data lacks', async () => pngClaiming(2000, 2000), /libpng read error/],
    ['WebP cut anywhere', async () => cut(await (await noisy(64, 48)).webp().toBuffer(), 0.9), /unable to parse/],
    ['GIF cut anywhere', async () => cut(await (await noisy(64, 48)).gif().toBuffer(), 0.5), /Unexpected end of GIF/],
    [
      'GIF with garbage in its frame',
      async () => {
        const gif = await (await noisy(64, 48)).gif().toBuffer();
        return garble(gif, Math.floor(gif.length / 3), 200);
      },
      /Invalid frame data/,
    ],
    [
      'AVIF cut in its data',
      async () => cut(await (await noisy(64, 48)).avif().toBuffer(), 0.5),
      /heif: Invalid input/,
    ],
    ['AVIF cut in its boxes', async () => cut(await (await noisy(64, 48)).avif().toBuffer(), 0.1), /corrupt header/],
    [
      'TIFF (directory last) cut, so libvips cannot find its directory',
      async () => cut(await (await noisy(64, 48)).tiff({ compression: 'lzw' }).toBuffer(), 0.6),
      /unsupported image format/,
    ],
    [
      'TIFF (directory first) cut in its pixels: a libtiff warning under failOn',
      async () => tiffDirectoryFirst(640, 480, { keep: 0.5 }),
      /^The TIFF image data is damaged or truncated \(Warning treated as error due to failOn setting; Bogus "StripByteCounts"/,
    ],
    [
      'TIFF (directory first, small) cut in its pixels',
      async () => tiffDirectoryFirst(64, 48, { keep: 0.5 }),
      /Read error at scanline/,
    ],
    [
      'TIFF with garbage in its deflate stream',
      async () => garble(tiffDirectoryFirst(64, 48, { deflate: true }), 150, 400),
      /Decoding error/,
    ],
  ];

  it.each(cases)('%s', async (_name, make, message) => {
    const input = await make();
    const err = expectPermanent(await failureOf(input), 'corrupt_image');
    expect(err.message).toMatch(message);
    expect(err.message.length).toBeLessThan(400);
  });

  it('says which format was damaged and keeps what libvips said, once per line', async () => {
    const jpeg = cut(await (await noisy(64, 48)).jpeg().toBuffer(), 0.1);
    const err = expectPermanent(await failureOf(jpeg), 'corrupt_image');
    expect(err.message).toMatch(/^The JPEG image has a corrupt or truncated header \(Input buffer has corrupt header:/);
    expect(err.message.match(/premature end of JPEG image/g)).toHaveLength(1);
  });

  it('classifies a damaged image the same whether the pipeline is one sharp instance or several', async () => {
    const jpeg = cut(await (await noisy(64, 48)).jpeg().toBuffer(), 0.5);
    for (const filters of [[], ['blur'], ['blur', { name: 'resize', width: 10 }], ['grayscale', 'tint', 'flip']])
      expectPermanent(await failureOf(jpeg, { filters }), 'corrupt_image');
  });

  it('refuses an input over MAX_INPUT_PIXELS as input_too_large', async () => {
    expectPermanent(await failureOf(pngClaiming(100000, 100000)), 'input_too_large');
  });
});

describe('errors provoked from sharp itself, read in the light of the call', () => {
  const size = (width: number, height: number) => ({ width, height });
  const blank = (width: number, height: number) =>
    sharp({ create: { width, height, channels: 3, background: '#808080' } });

  it.each([
    ['JPEG over 65535 (sharp)', 'jpeg', 65536, /^Processed image is too large for the JPEG format$/],
    ['JPEG over 65500 (libjpeg)', 'jpeg', 65501, /^VipsJpeg: Maximum supported image dimension is 65500 pixels$/],
    ['WebP over 16383', 'webp', 16384, /^Processed image is too large for the WebP format$/],
    ['AVIF over 16384', 'avif', 16385, /^Processed image is too large for the HEIF format$/],
  ] as const)('%s is output_too_large_for_format', async (_name, format, width, raw) => {
    const err = await sharpError(() => blank(width, 1).toFormat(format).toBuffer());
    expect(err.message).toMatch(raw);
    const call: SharpCall = { encodes: { format, size: size(width, 1) } };
    const classified = expectPermanent(classifySharpError(err, call), 'output_too_large_for_format');
    expect(classified.message).toMatch(new RegExp(`^The result \\(${width}×1\\) is too large for `));
    // the same message from a call that did not encode says nothing certain
    expect(classifySharpError(err, { filters: true })).toBe(err);
  });

  it('the input pixel limit is input_too_large', async () => {
    const png = await photo(64, 48);
    const err = await sharpError(() => sharp(png, { ...inputOptions(limits), limitInputPixels: 100 }).toBuffer());
    expect(err.message).toBe('Input image exceeds pixel limit');
    expectPermanent(classifySharpError(err, { decodes: 'png' }), 'input_too_large');
  });

  it('a median window larger than the image is filter_not_applicable', async () => {
    const dot = await photo(2, 2);
    const err = await sharpError(() => sharp(dot).median(15).toBuffer());
    expect(err.message).toBe('rank: window too large');
    expectPermanent(classifySharpError(err, { decodes: 'png', filters: true }), 'filter_not_applicable');
    expect(classifySharpError(err, { decodes: 'png' })).toBe(err);
  });

  it('a region outside the image is filter_not_applicable', async () => {
    const err = await sharpError(async () =>
      sharp(await photo(2, 2))
        .extract({ left: 0, top: 0, width: 10, height: 10 })
        .toBuffer(),
    );
    expect(err.message).toBe('extract_area: bad extract area');
    expectPermanent(classifySharpError(err, { filters: true }), 'filter_not_applicable');
  });

  it.each([
    ['BMP', Buffer.concat([Buffer.from('BM'), Buffer.alloc(100)])],
    ['random bytes', Buffer.from('hello world, not an image at all')],
    ['SVG (its loader is blocked)', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')],
  ])(
    'an unsupported format (%s) is not_an_image, or corrupt_image when its magic bytes named a format',
    async (_n, bytes) => {
      const err = await sharpError(() => sharp(bytes).metadata());
      expect(err.message).toBe('Input buffer contains unsupported image format');
      expectPermanent(classifySharpError(err, { decodes: true }), 'not_an_image');
      const damaged = expectPermanent(classifySharpError(err, { decodes: 'tiff' }), 'corrupt_image');
      expect(damaged.message).toMatch(/^The TIFF image cannot be read: its data is corrupt or truncated/);
    },
  );
});

describe('classifySharpError over raw messages', () => {
  /** Calls as the pipeline makes them, by name. */
  const CALLS = {
    'a header read': { decodes: 'jpeg' },
    'a header read of an unknown format': { decodes: true },
    'a hand-off after decoding': { filters: true },
    'a single-instance encode': {
      decodes: 'jpeg',
      filters: true,
      encodes: { format: 'jpeg', size: { width: 100000, height: 1 } },
    },
  } satisfies Record<string, SharpCall>;
  type CallName = keyof typeof CALLS;

  it.each<[string, CallName, ErrorCode]>([
    ['Processed image is too large for the JPEG format', 'a single-instance encode', 'output_too_large_for_format'],
    [
      'VipsJpeg: Maximum supported image dimension is 65500 pixels',
      'a single-instance encode',
      'output_too_large_for_format',
    ],
    ['VipsJpeg: premature end of JPEG image', 'a single-instance encode', 'corrupt_image'],
    ['VipsJpeg: Corrupt JPEG data: bad Huffman code', 'a header read', 'corrupt_image'],
    ['Input buffer has corrupt header: VipsJpeg: premature end of JPEG image', 'a header read', 'corrupt_image'],
    ['Input buffer has corrupt header:', 'a header read', 'corrupt_image'],
    ['vipspng: libpng read error', 'a header read', 'corrupt_image'],
    [
      'tiff2vips: Read error at scanline 23; got 0 bytes, expected 64\ntiff2vips: read error',
      'a header read',
      'corrupt_image',
    ],
    ['Warning treated as error due to failOn setting\nerror in tile 0 x 0', 'a header read', 'corrupt_image'],
    ['gifload_buffer: Unexpected end of GIF source data', 'a header read', 'corrupt_image'],
    ['webp: unable to parse image', 'a header read', 'corrupt_image'],
    [
      'source: bad seek to 1024\nheif: Invalid input: Unspecified: Corrupt frame detected (2.0)',
      'a header read',
      'corrupt_image',
    ],
    ['heif: Invalid input: No meta box found (2.0)', 'a header read', 'corrupt_image'],
    ['Input image exceeds pixel limit', 'a header read', 'input_too_large'],
    ['Input buffer contains unsupported image format', 'a header read of an unknown format', 'not_an_image'],
    ['Input buffer contains unsupported image format', 'a header read', 'corrupt_image'],
    ['Input Buffer is empty', 'a header read of an unknown format', 'not_an_image'],
    ['rank: window too large', 'a hand-off after decoding', 'filter_not_applicable'],
    ['extract_area: bad extract area', 'a hand-off after decoding', 'filter_not_applicable'],
  ])('%j in %s is %s', (message, call, code) => {
    const err = new Error(message);
    const classified = expectPermanent(classifySharpError(err, CALLS[call]), code);
    expect(classified.cause).toBe(err);
  });

  it.each<[string, CallName]>([
    // decoder messages from a call that decoded nothing (raw pixels handed between instances)
    ['VipsJpeg: premature end of JPEG image', 'a hand-off after decoding'],
    ['Input buffer has corrupt header:', 'a hand-off after decoding'],
    ['Warning treated as error due to failOn setting', 'a hand-off after decoding'],
    // an encoder message from a call that encoded nothing
    ['Processed image is too large for the WebP format', 'a header read'],
    // a filter message from a call that ran no filter
    ['rank: window too large', 'a header read'],
    // a known phrase that is not at the start of the message
    ['upload failed: Input buffer has corrupt header:', 'a single-instance encode'],
    ['the blob looks corrupt or truncated', 'a single-instance encode'],
    ['Invalid storage response: webp: unable to parse image', 'a single-instance encode'],
    // whatever else libvips or the process may say
    ['Internal error', 'a single-instance encode'],
    ['Could not allocate enough memory for raw output', 'a single-instance encode'],
    ['Unknown error', 'a single-instance encode'],
    // libheif's saver shares the loader's domain; only its input errors are the image's fault
    ['heif: Encoder plugin generated an error: Unsupported parameter', 'a single-instance encode'],
    ['', 'a single-instance encode'],
  ])('%j in %s passes through unclassified (transient)', (message, call) => {
    const err = new Error(message);
    expect(classifySharpError(err, CALLS[call])).toBe(err);
  });

  it('passes system errors, app errors and non-errors through', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104 });
    expect(classifySharpError(reset, CALLS['a single-instance encode'])).toBe(reset);
    const disguised = Object.assign(new Error('VipsJpeg: premature end of JPEG image'), { code: 'EIO' });
    expect(classifySharpError(disguised, CALLS['a single-instance encode'])).toBe(disguised);
    const app = new AppError('storage_unavailable', 'Storage is unavailable');
    expect(classifySharpError(app, CALLS['a single-instance encode'])).toBe(app);
    expect(classifySharpError('VipsJpeg: premature end of JPEG image', CALLS['a single-instance encode'])).toBe(
      'VipsJpeg: premature end of JPEG image',
    );
    expect(classifySharpError(undefined, CALLS['a single-instance encode'])).toBeUndefined();
  });
});
