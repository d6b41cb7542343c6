/**
 * Reads an image's header (no pixels are decoded) and refuses images over the pixel limit with
 * their real dimensions in the message: used before processing and before storing uploads.
 */
import sharp, { type Metadata } from 'sharp';
import { PermanentError } from '../errors';
import type { Limits } from './limits';
import { configureSharp } from './sharp-settings';
import { toPermanentIfInputError } from './sharp-errors';

configureSharp();

export async function readHeader(input: Buffer, limits: Limits): Promise<Metadata> {
  const meta = await sharp(input, { limitInputPixels: false, autoOrient: true })
    .metadata()
    .catch((err: unknown) => {
      throw toPermanentIfInputError(err);
    });
  const { width, height } = meta.autoOrient;
  if (width * height > limits.maxInputPixels) {
    throw new PermanentError(
      'input_too_large',
      `The image is ${width}×${height} = ${width * height} pixels: expected at most ${limits.maxInputPixels} (MAX_INPUT_PIXELS)`,
    );
  }
  return meta;
}
