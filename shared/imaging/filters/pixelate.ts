import type { FilterDefinition } from '../filter';
import { num } from '../filter';

const blocks = (side: number, size: number) => Math.max(1, Math.ceil(side / size));

const pixelate: FilterDefinition = {
  name: 'pixelate',
  capability: 'light',
  description: 'Mosaic: averages size×size blocks and scales them back up with hard edges; the image keeps its size.',
  params: {
    size: { type: 'integer', min: 2, max: 512, default: 12, description: 'block side in pixels' },
  },
  // Two resizes cannot share one sharp instance, so this filter is two steps (the planner splits them).
  steps: [
    {
      op: 'geometry',
      apply: (image, p, ctx) =>
        image.resize({
          width: blocks(ctx.width, num(p, 'size')),
          height: blocks(ctx.height, num(p, 'size')),
          fit: 'fill',
        }),
      outputSize: (p, ctx) => ({
        width: blocks(ctx.width, num(p, 'size')),
        height: blocks(ctx.height, num(p, 'size')),
      }),
    },
    {
      op: 'geometry',
      apply: (image, _p, ctx) =>
        image.resize({ width: ctx.filterInput.width, height: ctx.filterInput.height, fit: 'fill', kernel: 'nearest' }),
      outputSize: (_p, ctx) => ctx.filterInput,
    },
  ],
};
export default pixelate;
