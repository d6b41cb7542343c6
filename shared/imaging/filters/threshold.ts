import type { FilterDefinition } from '../filter';
import { num } from '../filter';

const threshold: FilterDefinition = {
  name: 'threshold',
  capability: 'light',
  description: 'Makes a black-and-white image: luminance at or above `level` becomes white, the rest black.',
  params: {
    level: { type: 'integer', min: 0, max: 255, default: 128, description: 'cut-off luminance' },
  },
  steps: [
    { op: 'threshold', makesGrey: true, apply: (image, p) => image.threshold(num(p, 'level'), { greyscale: true }) },
  ],
};
export default threshold;
