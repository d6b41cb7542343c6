import type { FilterDefinition } from '../filter';
import { num } from '../filter';

const sharpen: FilterDefinition = {
  name: 'sharpen',
  capability: 'heavy',
  description:
    'Crisps edges with the 3×3 kernel [0,-a,0; -a,1+4a,-a; 0,-a,0] (a = `amount`); amount 1 is the classic OpenCV filter2D sharpen.',
  params: {
    amount: { type: 'number', min: 0.1, max: 5, default: 1, description: 'strength of the sharpening' },
  },
  steps: [
    {
      op: 'convolve',
      apply: (image, p) => {
        const a = num(p, 'amount');
        return image.convolve({ width: 3, height: 3, kernel: [0, -a, 0, -a, 1 + 4 * a, -a, 0, -a, 0] });
      },
    },
  ],
};
export default sharpen;
