/**
 * Output formats a task may ask for and their encoder settings. An output format is also an input
 * format, so its content type and file extension come from input.ts.
 */
import type { Sharp } from 'sharp';

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
  encode(image: Sharp, quality: number): Sharp;
}

export const ENCODERS: { readonly [F in OutputFormat]: Encoder } = {
  // No optimiseCoding: the extra Huffman pass costs ~10% of a 4K task for ~3% smaller files,
  // and Pillow/OpenCV, whose output users compare against, do not do it either.
  jpeg: {
    alpha: false,
    greyBand: true,
    encode: (i, q) => i.jpeg({ quality: q, optimiseCoding: false }),
  },
  // quality does not apply to lossless PNG; level 6 is zlib's balanced default.
  png: {
    alpha: true,
    greyBand: true,
    encode: (i) => i.png({ compressionLevel: 6 }),
  },
  webp: {
    alpha: true,
    greyBand: false,
    encode: (i, q) => i.webp({ quality: q }),
  },
  avif: {
    alpha: true,
    greyBand: false,
    encode: (i, q) => i.avif({ quality: q }),
  },
};
