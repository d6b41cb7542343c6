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
  ['SVG/XML (vector images can reference external files and URLs)', (b) => /^(\xef\xbb\xbf)?\s*</.test(ascii(b, 0, 64))],
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
  throw new PermanentError('not_an_image', `The input is not an image: ${expected}; received ${input.length} bytes starting with ${head}`);
}
