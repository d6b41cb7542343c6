import type { FilterDefinition } from '../filter';

const emboss: FilterDefinition = {
  name: 'emboss',
  capability: 'heavy',
  description: 'Relief effect: a 3×3 directional kernel makes edges look raised, lit from the top left.',
  params: {},
  steps: [
    {
      op: 'convolve',
      apply: (image) => image.convolve({ width: 3, height: 3, kernel: [-2, -1, 0, -1, 1, 1, 0, 1, 2] }),
    },
  ],
};
export default emboss;
