import type { FilterDefinition, ParamValues, Size, StepContext } from '../filter';
import { optNum, str } from '../filter';

const FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;

/** The size sharp will produce, so over-large results are refused before any pixel work. */
function resizedSize(p: ParamValues, ctx: StepContext): Size {
  const width = optNum(p, 'width');
  const height = optNum(p, 'height');
  if (width === undefined)
    return { width: Math.max(1, Math.round((ctx.width * height!) / ctx.height)), height: height! };
  if (height === undefined) return { width, height: Math.max(1, Math.round((ctx.height * width) / ctx.width)) };
  const fit = str(p, 'fit');
  if (fit === 'inside' || fit === 'outside') {
    const pick = fit === 'inside' ? Math.min : Math.max;
    const scale = pick(width / ctx.width, height / ctx.height);
    return { width: Math.max(1, Math.round(ctx.width * scale)), height: Math.max(1, Math.round(ctx.height * scale)) };
  }
  return { width, height };
}

const resize: FilterDefinition = {
  name: 'resize',
  capability: 'light',
  description:
    'Scales the image (Lanczos-3). With width and height, `fit` decides: cover crops to fill exactly, contain letterboxes, fill stretches, inside/outside keep aspect within/around the box. With one side, the aspect ratio is kept.',
  params: {
    width: {
      type: 'integer',
      min: 1,
      max: { limit: 'maxOutputWidth' },
      default: null,
      description: 'target width in pixels',
    },
    height: {
      type: 'integer',
      min: 1,
      max: { limit: 'maxOutputHeight' },
      default: null,
      description: 'target height in pixels',
    },
    fit: { type: 'enum', enum: FITS, default: 'cover', description: 'how the image fits both width and height' },
    background: { type: 'color', default: '#000000', description: 'letterbox colour for fit=contain' },
  },
  check: (p) =>
    p.width === null && p.height === null
      ? [{ param: 'width', expected: 'width or height (or both)', received: null }]
      : [],
  steps: [
    {
      op: 'geometry',
      apply: (image, p) =>
        image.resize({
          width: optNum(p, 'width'),
          height: optNum(p, 'height'),
          fit: str(p, 'fit') as (typeof FITS)[number],
          background: str(p, 'background'),
        }),
      outputSize: resizedSize,
    },
  ],
};
export default resize;
