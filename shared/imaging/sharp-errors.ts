/**
 * libvips reports bad input as plain Error messages. Those that describe the input (retrying
 * the same bytes fails the same way) become PermanentError with a message a user can act on;
 * everything else is left alone and treated as transient.
 */
import { AppError, PermanentError, type ErrorCode } from '../errors';

const INPUT_ERRORS: ReadonlyArray<[RegExp, ErrorCode, string]> = [
  [/exceeds pixel limit/i, 'input_too_large', 'The image has more pixels than MAX_INPUT_PIXELS allows'],
  [
    /unsupported image format|not a known (file )?format|is not in a known format|operation is blocked/i,
    'not_an_image',
    'The input is not a supported image',
  ],
  [/window too large|image too small/i, 'filter_not_applicable', 'The image is too small for this filter'],
  [
    /premature end|truncated|out of data|unexpected end|read error|short read|end of file/i,
    'corrupt_image',
    'The image is truncated',
  ],
  [
    /corrupt|invalid|bad |damaged|not a jpeg|libpng|vipsjpeg|vipspng|webp|heif|gifload|tiff|decode|unable to (load|read)/i,
    'corrupt_image',
    'The image data is corrupt',
  ],
];

export function toPermanentIfInputError(err: unknown): unknown {
  if (err instanceof AppError || !(err instanceof Error)) return err;
  const match = INPUT_ERRORS.find(([pattern]) => pattern.test(err.message));
  if (!match) return err;
  const [, code, summary] = match;
  return new PermanentError(code, `${summary}: ${err.message.trim().split('\n')[0]}`, { cause: err });
}
