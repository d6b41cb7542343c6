/**
 * Output formats a task may ask for and their encoder settings. An output format is also an input
 * format, so its content type and file extension come from input.ts.
 */
import type { Sharp } from 'sharp';
import { PermanentError } from '../errors';
import type { Size } from './filter';

export const OUTPUT_FORMATS = ['jpeg', 'png', 'webp', 'avif'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** How a task's result is encoded: the `output` a user asks for. */
export interface Encoding {
  readonly format: OutputFormat;
  readonly quality: number;
}

export const DEFAULT_ENCODING: Encoding = Object.freeze({ format: 'jpeg', quality: 80 });

export interface Encoder {
  readonly alpha: boolean;
  /** Formats that store a single grey band natively get one; others are written as RGB. */
  readonly greyBand: boolean;
  /** The largest width and height the encoder writes; larger results are refused before any pixel work. */
  readonly maxWidth: number;
  readonly maxHeight: number;
  /** Where the limit comes from, for the error message. */
  readonly limitSource: string;
  encode(image: Sharp, quality: number): Sharp;
}

export const ENCODERS: { readonly [F in OutputFormat]: Encoder } = {
  // No optimiseCoding: the extra Huffman pass costs ~10% of a 4K task for ~3% smaller files,
  // and Pillow/OpenCV, whose output users compare against, do not do it either.
  jpeg: {
    alpha: false,
    greyBand: true,
    maxWidth: 65500,
    maxHeight: 65500,
    limitSource: "libjpeg's JPEG_MAX_DIMENSION",
    encode: (i, q) => i.jpeg({ quality: q, optimiseCoding: false }),
  },
  // quality does not apply to lossless PNG; level 6 is zlib's balanced default.
  png: {
    alpha: true,
    greyBand: true,
    maxWidth: 2 ** 31 - 1,
    maxHeight: 2 ** 31 - 1,
    limitSource: 'the PNG specification',
    encode: (i) => i.png({ compressionLevel: 6 }),
  },
  webp: {
    alpha: true,
    greyBand: false,
    maxWidth: 16383,
    maxHeight: 16383,
    limitSource: 'the WebP bitstream (14-bit sizes)',
    encode: (i, q) => i.webp({ quality: q }),
  },
  avif: {
    alpha: true,
    greyBand: false,
    maxWidth: 16384,
    maxHeight: 16384,
    limitSource: "sharp's HEIF/AVIF check",
    encode: (i, q) => i.avif({ quality: q }),
  },
};

const LABELS: Readonly<Record<string, string>> = { jpeg: 'JPEG', png: 'PNG', webp: 'WebP', avif: 'AVIF', heif: 'HEIF' };

/** A format as people write it: JPEG, PNG, WebP, AVIF, … */
export const formatLabel = (format: string): string => LABELS[format] ?? format.toUpperCase();

/** Refuses, before any pixel work, a result the chosen encoder cannot write, naming the formats that can. */
export function checkFitsFormat(size: Size, format: OutputFormat): void {
  const { maxWidth, maxHeight, limitSource } = ENCODERS[format];
  if (size.width <= maxWidth && size.height <= maxHeight) return;
  const fitting = OUTPUT_FORMATS.filter(
    (f) => size.width <= ENCODERS[f].maxWidth && size.height <= ENCODERS[f].maxHeight,
  );
  const instead = fitting.length > 0 ? `choose ${fitting.join(' or ')}, or make it smaller` : 'make it smaller';
  throw new PermanentError(
    'output_too_large_for_format',
    `The result would be ${size.width}×${size.height}: ${formatLabel(format)} holds at most ${maxWidth}×${maxHeight} (${limitSource}); ${instead}`,
  );
}
