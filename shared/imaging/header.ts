/**
 * What an image is, from its header alone (no pixels are decoded): its format, size and bands for
 * GET /api/images/{name}/info, the checks an upload passes before it is stored, and the pixel limit
 * checked before processing, with the real dimensions in the message.
 */
import sharp, { type Metadata } from 'sharp';
import { PermanentError } from '../errors';
import { assertComplete, sniffFormat, type InputFormat } from './input';
import type { Limits } from './limits';
import { configureSharp } from './sharp-settings';
import { sharpCall } from './sharp-errors';

configureSharp();

export interface ImageInfo {
  readonly format: InputFormat;
  /** As displayed: EXIF orientation applied. */
  readonly width: number;
  readonly height: number;
  readonly bytes: number;
  readonly channels: number | null;
  readonly space: string | null;
  readonly has_alpha: boolean;
  readonly orientation: number;
}

/** The header of an input whose magic bytes named `format`. */
async function metadataOf(input: Buffer, format: InputFormat): Promise<Metadata> {
  return sharpCall({ decodes: format }, () => sharp(input, { limitInputPixels: false, autoOrient: true }).metadata());
}

function checkPixels(meta: Metadata, limits: Limits): void {
  const { width, height } = meta.autoOrient;
  if (width * height > limits.maxInputPixels) {
    throw new PermanentError(
      'input_too_large',
      `The image is ${width}×${height} = ${width * height} pixels: expected at most ${limits.maxInputPixels} (MAX_INPUT_PIXELS)`,
    );
  }
}

function infoOf(format: InputFormat, input: Buffer, meta: Metadata): ImageInfo {
  return {
    format,
    width: meta.autoOrient.width,
    height: meta.autoOrient.height,
    bytes: input.length,
    channels: meta.channels ?? null,
    space: meta.space ?? null,
    has_alpha: meta.hasAlpha ?? false,
    orientation: meta.orientation ?? 1,
  };
}

/** The header of an image to process (of the format its magic bytes named), refused over MAX_INPUT_PIXELS. */
export async function readHeader(input: Buffer, format: InputFormat, limits: Limits): Promise<Metadata> {
  const meta = await metadataOf(input, format);
  checkPixels(meta, limits);
  return meta;
}

/** Describes a stored image whatever its size (the limits apply to work, not to looking). */
export async function describeImage(input: Buffer): Promise<ImageInfo> {
  const format = sniffFormat(input);
  return infoOf(format, input, await metadataOf(input, format));
}

/** An upload is an accepted format (magic bytes), whole (JPEG and PNG end markers) and within MAX_INPUT_PIXELS. */
export async function checkUpload(input: Buffer, limits: Limits): Promise<ImageInfo> {
  const format = sniffFormat(input);
  assertComplete(format, input);
  const meta = await readHeader(input, format, limits);
  return infoOf(format, input, meta);
}
