import type { FilterDefinition } from '../filter';
import { str } from '../filter';

const tint: FilterDefinition = {
  name: 'tint',
  capability: 'light',
  description:
    "Keeps each pixel's lightness and gives it the chroma of `color` (duotone); after grayscale it colours a black-and-white photo.",
  params: {
    color: { type: 'color', default: '#704214', description: 'tint colour as #rrggbb' },
  },
  steps: [{ op: 'tint', needsColour: true, makesColour: true, apply: (image, p) => image.tint(str(p, 'color')) }],
};
export default tint;
