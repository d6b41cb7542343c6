/**
 * What an input buffer is, decided from its first bytes before libvips sees it, so refusals
 * are clear and cheap: not an image, a refused format (SVG/PDF can reference external
 * resources), or an accepted photo format.
 */
import { PermanentError } from '../errors';

export const ACCEPTED_INPUT_FORMATS = ['jpeg', 'png', 'webp', 'avif', 'heif', 'gif', 'tiff'] as const;
export type InputFormat = (typeof ACCEPTED_INPUT_FORMATS)[number];

const ascii = (buf: Buffer, start: number, end: number) => buf.subarray(start, end).toString('latin1');

const MAGIC: ReadonlyArray<[InputFormat, (b: Buffer) => boolean]> = [
  ['jpeg', (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ['png', (b) => ascii(b, 0, 8) === '\x89PNG\r\n\x1a\n'],
  ['gif', (b) => ascii(b, 0, 4) === 'GIF8'],
  ['webp', (b) => ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP'],
  ['tiff', (b) => ['II*\0', 'MM\0*'].includes(ascii(b, 0, 4))],
  ['avif', (b) => ascii(b, 4, 8) === 'ftyp' && /^avi[fs]/.test(ascii(b, 8, 12))],
  ['heif', (b) => ascii(b, 4, 8) === 'ftyp' && /^(heic|heix|hevc|heim|heis|mif1|msf1)/.test(ascii(b, 8, 12))],
];

/** Formats people send that we refuse by policy, each with the reason the user is told. */
const REFUSED: ReadonlyArray<[string, (b: Buffer) => boolean]> = [
  [
    'SVG/XML (vector images can reference external files and URLs)',
    (b) => /^(\xef\xbb\xbf)?\s*</.test(ascii(b, 0, 64)),
  ],
  ['PDF (documents are not images)', (b) => ascii(b, 0, 5) === '%PDF-'],
];

export function sniffFormat(input: Buffer): InputFormat {
  const expected = `expected ${ACCEPTED_INPUT_FORMATS.join(', ')}`;
  if (input.length === 0) throw new PermanentError('not_an_image', `The input is empty (0 bytes): ${expected}`);
  const format = MAGIC.find(([, test]) => test(input))?.[0];
  if (format) return format;
  const refused = REFUSED.find(([, test]) => test(input))?.[0];
  if (refused) throw new PermanentError('refused_format', `${refused} is not accepted: ${expected}`);
  const head = input.subarray(0, 8).toString('hex').replace(/(..)/g, '$1 ').trim();
  throw new PermanentError(
    'not_an_image',
    `The input is not an image: ${expected}; received ${input.length} bytes starting with ${head}`,
  );
}

/**
 * Whether an embedded ICC profile describes sRGB (by its 'desc' tag, as in "sRGB IEC61966-2.1").
 * Converting sRGB to sRGB is an identity that still costs a float pass over every pixel, so
 * such profiles are ignored; any other profile (Display P3, Adobe RGB, …) is honoured.
 */
export function isSrgbProfile(icc: Buffer): boolean {
  if (icc.length < 132) return false;
  const tags = icc.readUInt32BE(128);
  for (let i = 0; i < tags && 132 + 12 * (i + 1) <= icc.length; i++) {
    const entry = 132 + 12 * i;
    if (icc.toString('latin1', entry, entry + 4) !== 'desc') continue;
    const offset = icc.readUInt32BE(entry + 4);
    const size = icc.readUInt32BE(entry + 8);
    // v2 'desc' stores ASCII, v4 'mluc' stores UTF-16BE: strip NULs so both read as text.
    const text = icc.toString('latin1', offset, Math.min(icc.length, offset + size)).replace(/\0/g, '');
    return /\bsRGB\b/.test(text);
  }
  return false;
}

/** How each format is named as a file and over HTTP: blob names and Content-Type headers come from here. */
const FILE_TYPES: Readonly<Record<InputFormat, { readonly contentType: string; readonly extension: string }>> = {
  jpeg: { contentType: 'image/jpeg', extension: 'jpg' },
  png: { contentType: 'image/png', extension: 'png' },
  webp: { contentType: 'image/webp', extension: 'webp' },
  avif: { contentType: 'image/avif', extension: 'avif' },
  heif: { contentType: 'image/heif', extension: 'heif' },
  gif: { contentType: 'image/gif', extension: 'gif' },
  tiff: { contentType: 'image/tiff', extension: 'tiff' },
};

export const contentTypeOf = (format: InputFormat): string => FILE_TYPES[format].contentType;
export const extensionOf = (format: InputFormat): string => FILE_TYPES[format].extension;

/**
 * Cheap completeness checks for uploads: a JPEG ends with its end-of-image marker (possibly
 * followed by a little padding) and a PNG with its IEND chunk. A cut-off upload is refused at
 * once instead of failing later in a worker.
 */
export function assertComplete(format: InputFormat, input: Buffer): void {
  const tail = input.subarray(Math.max(0, input.length - 4096));
  const complete =
    format === 'jpeg'
      ? tail.includes(Buffer.from([0xff, 0xd9]))
      : format === 'png'
        ? tail.includes(Buffer.from('IEND', 'latin1'))
        : true;
  if (!complete) {
    throw new PermanentError(
      'corrupt_image',
      `The ${format.toUpperCase()} data ends before the image does (${input.length} bytes received): the upload is truncated`,
    );
  }
}
