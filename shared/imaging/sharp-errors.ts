/**
 * What a failed sharp call means. libvips reports problems as plain Error messages; this module
 * classifies only errors thrown by a sharp call, knowing what that call did (read a header, decode
 * the input, run filters, encode a format), and only by messages that sharp and libvips really emit,
 * anchored at the start of the message. A recognised message becomes a PermanentError with a precise
 * code (retrying the same bytes fails the same way); anything else (a system error, an unknown
 * message, a non-Error) is returned unchanged and treated as transient.
 * Storage and network errors never reach this module: it only wraps sharp calls.
 */
import { AppError, PermanentError, type ErrorCode } from '../errors';
import type { Size } from './filter';
import type { InputFormat } from './input';
import { ENCODERS, formatLabel, type OutputFormat } from './output';

/** What one sharp call did, so an error is read in the light of the work that raised it. */
export interface SharpCall {
  /** The call read the input's header or decoded its pixels: the format its magic bytes named, or true if unknown. */
  readonly decodes?: InputFormat | true;
  /** The call ran filter steps. */
  readonly filters?: boolean;
  /** The call encoded the result: the format and the size it was given. */
  readonly encodes?: { readonly format: OutputFormat; readonly size: Size };
}

type Part = 'decodes' | 'filters' | 'encodes';

interface Rule {
  /** The part of a call that can raise the message; a call that did not do it never matches. */
  readonly part: Part;
  readonly pattern: RegExp;
  readonly code: ErrorCode;
  readonly summary: (call: SharpCall) => string;
}

const inputName = (call: SharpCall) =>
  typeof call.decodes === 'string' ? `The ${formatLabel(call.decodes)} image` : 'The image';

/**
 * libvips loaders' error domains (vips_error's first argument), as they prefix a message line. libheif
 * shares `heif:` between loader and saver, so only its input errors count.
 */
const DECODER_DOMAINS = [
  'VipsJpeg',
  'vipspng',
  'spng',
  'tiff2vips',
  'webp2vips',
  'webp',
  'heif: Invalid input',
  'heifload(?:_buffer|_source)?',
  'gifload(?:_buffer|_source)?',
  'jpegload(?:_buffer|_source)?',
  'pngload(?:_buffer|_source)?',
  'tiffload(?:_buffer|_source)?',
  'webpload(?:_buffer|_source)?',
].join('|');

/**
 * The messages are those provoked in tests/unit/imaging/classify.test.ts (plus the loader operation names
 * libvips may prefix instead of the library's). Encoder rules come first: a call that decodes a JPEG and
 * encodes one sees `VipsJpeg:` from both sides.
 */
const RULES: readonly Rule[] = [
  {
    part: 'encodes',
    // sharp's AssertImageTypeDimensions (src/common.cc)
    pattern: /^Processed image is too large for the (?:JPEG|WebP|GIF|HEIF|PNG) format$/,
    code: 'output_too_large_for_format',
    summary: (call) => encoderSummary(call),
  },
  {
    part: 'encodes',
    // libjpeg's JPEG_MAX_DIMENSION, below sharp's own 65535 check
    pattern: /^VipsJpeg: Maximum supported image dimension is \d+ pixels$/,
    code: 'output_too_large_for_format',
    summary: (call) => encoderSummary(call),
  },
  {
    part: 'decodes',
    pattern: /^Input image exceeds pixel limit$/,
    code: 'input_too_large',
    summary: () => 'The image has more pixels than MAX_INPUT_PIXELS allows',
  },
  {
    part: 'decodes',
    pattern: /^Input [Bb]uffer is empty$/,
    code: 'not_an_image',
    summary: () => 'The input is empty',
  },
  {
    part: 'decodes',
    pattern: /^Input buffer contains unsupported image format$/,
    code: 'not_an_image',
    summary: () => 'The input is not a supported image',
  },
  {
    part: 'decodes',
    pattern: /^Input buffer has corrupt header:/,
    code: 'corrupt_image',
    summary: (call) => `${inputName(call)} has a corrupt or truncated header`,
  },
  {
    part: 'decodes',
    // sharp (src/pipeline.cc) when a loader warning stops the pipeline under failOn: 'warning'
    pattern: /^Warning treated as error due to failOn setting$/,
    code: 'corrupt_image',
    summary: (call) => `${inputName(call)} data is damaged or truncated`,
  },
  {
    part: 'decodes',
    // the in-memory source ends before the offsets the file's own boxes point at
    pattern: /^source: bad seek to \d+$/,
    code: 'corrupt_image',
    summary: (call) => `${inputName(call)} data is truncated`,
  },
  {
    part: 'decodes',
    pattern: new RegExp(`^(?:${DECODER_DOMAINS}):`),
    code: 'corrupt_image',
    summary: (call) => `${inputName(call)} data is corrupt or truncated`,
  },
  {
    part: 'filters',
    // vips_rank (median) needs the window to fit inside the image
    pattern: /^rank: window too large$/,
    code: 'filter_not_applicable',
    summary: () => 'The image is smaller than the filter window',
  },
  {
    part: 'filters',
    pattern: /^extract_area: bad extract area$/,
    code: 'filter_not_applicable',
    summary: () => 'The region to cut out does not lie inside the image',
  },
];

function encoderSummary(call: SharpCall): string {
  const { format, size } = call.encodes!;
  const { maxWidth, maxHeight } = ENCODERS[format];
  return `The result (${size.width}×${size.height}) is too large for ${formatLabel(format)}, which holds at most ${maxWidth}×${maxHeight}`;
}

/** The lines of a libvips message, without repeats (libvips often logs the same line several times). */
function linesOf(message: string): string[] {
  return [...new Set(message.split('\n').map((l) => l.trim()))].filter((l) => l.length > 0);
}

const MAX_DETAIL_CHARS = 300;

/** What libvips said, short: the first line, and the first informative one after it if different. */
function detailOf(lines: readonly string[]): string {
  const said = lines.filter((l) => !/^source: bad seek to \d+$/.test(l));
  const text = (said.length > 0 ? said : lines).slice(0, 3).join('; ');
  return text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS - 1)}…` : text;
}

/**
 * The PermanentError a sharp call's error stands for, or the error itself when it says nothing
 * certain about the image (retrying may help, or it is a bug that should not blame the input).
 */
export function classifySharpError(err: unknown, call: SharpCall): unknown {
  if (err instanceof AppError || !(err instanceof Error)) return err;
  // Node system errors (ECONNRESET, ENOMEM, …) carry a code; libvips messages never do.
  if (typeof (err as { code?: unknown }).code === 'string') return err;
  const lines = linesOf(err.message);
  const first = lines[0] ?? '';
  const rule = RULES.find((r) => call[r.part] !== undefined && call[r.part] !== false && r.pattern.test(first));
  if (!rule) return err;
  let code = rule.code;
  let summary = rule.summary(call);
  // The magic bytes named a format libvips then cannot read: the file is damaged, not of another kind.
  if (code === 'not_an_image' && typeof call.decodes === 'string') {
    code = 'corrupt_image';
    summary = `${inputName(call)} cannot be read: its data is corrupt or truncated`;
  }
  return new PermanentError(code, `${summary} (${detailOf(lines)})`, { cause: err });
}

/** Runs one sharp call and classifies what it throws. */
export async function sharpCall<T>(call: SharpCall, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw classifySharpError(err, call);
  }
}
