import type { FilterDefinition } from '../filter';
import { num } from '../filter';

const gamma: FilterDefinition = {
  name: 'gamma',
  capability: 'light',
  description: 'Brightens mid-tones with out = in^(1/gamma), leaving black and white in place.',
  params: {
    gamma: { type: 'number', min: 1, max: 3, default: 1.8, description: 'exponent divisor; 1 = unchanged' },
  },
  // sharp's gamma(in, out) darkens by `in` before resizing and brightens by `out` after it; with in = 1 only
  // the brightening remains, which is the user-facing gamma adjustment.
  steps: [{ op: 'gamma', apply: (image, p) => image.gamma(1, num(p, 'gamma')) }],
};
export default gamma;
