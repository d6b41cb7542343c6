import { PermanentError } from '../../errors';
import type { FilterDefinition } from '../filter';
import { num } from '../filter';

const median: FilterDefinition = {
  name: 'median',
  capability: 'heavy',
  description:
    'Replaces each pixel by the median of its size×size neighbourhood: removes salt-and-pepper noise, keeps edges.',
  params: {
    size: { type: 'integer', min: 3, max: 15, default: 3, description: 'odd window side in pixels' },
  },
  check: (p) =>
    num(p, 'size') % 2 === 0 ? [{ param: 'size', expected: 'an odd integer between 3 and 15', received: p.size }] : [],
  steps: [
    {
      op: 'median',
      apply: (image, p) => image.median(num(p, 'size')),
      outputSize: (p, ctx) => {
        const size = num(p, 'size');
        if (ctx.width < size || ctx.height < size) {
          throw new PermanentError(
            'filter_not_applicable',
            `median size ${size} needs an image of at least ${size}×${size} pixels but this one is ${ctx.width}×${ctx.height}`,
          );
        }
        return ctx;
      },
    },
  ],
};
export default median;
