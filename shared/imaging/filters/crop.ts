import { PermanentError } from '../../errors';
import type { FilterDefinition } from '../filter';
import { num } from '../filter';

const crop: FilterDefinition = {
  name: 'crop',
  capability: 'light',
  description:
    'Cuts out the rectangle at left/top of the given width and height; the region must lie inside the image.',
  params: {
    left: { type: 'integer', min: 0, max: 65535, default: 0, description: 'x of the top-left corner' },
    top: { type: 'integer', min: 0, max: 65535, default: 0, description: 'y of the top-left corner' },
    width: {
      type: 'integer',
      min: 1,
      max: { limit: 'maxOutputWidth' },
      required: true,
      description: 'region width in pixels',
    },
    height: {
      type: 'integer',
      min: 1,
      max: { limit: 'maxOutputHeight' },
      required: true,
      description: 'region height in pixels',
    },
  },
  steps: [
    {
      op: 'geometry',
      apply: (image, p) =>
        image.extract({ left: num(p, 'left'), top: num(p, 'top'), width: num(p, 'width'), height: num(p, 'height') }),
      outputSize: (p, ctx) => {
        const [left, top, width, height] = [num(p, 'left'), num(p, 'top'), num(p, 'width'), num(p, 'height')];
        if (left + width > ctx.width || top + height > ctx.height) {
          throw new PermanentError(
            'filter_not_applicable',
            `crop region ${width}×${height} at left ${left}, top ${top} does not fit inside the ${ctx.width}×${ctx.height} image: expected left + width ≤ ${ctx.width} and top + height ≤ ${ctx.height}`,
          );
        }
        return { width, height };
      },
    },
  ],
};
export default crop;
