import type { FilterDefinition } from '../filter';
import { num } from '../filter';

const contrast: FilterDefinition = {
  name: 'contrast',
  capability: 'light',
  description: 'Stretches (factor > 1) or flattens (factor < 1) values around mid-grey 128; 1 keeps the image.',
  params: {
    factor: { type: 'number', min: 0, max: 10, default: 1.3, description: 'slope around mid-grey; 1 = unchanged' },
  },
  // +0.5 makes the cast to 8 bits round instead of truncate, so mid-grey maps onto itself.
  steps: [{ op: 'linear', apply: (image, p) => image.linear(num(p, 'factor'), 128 * (1 - num(p, 'factor')) + 0.5) }],
};
export default contrast;
