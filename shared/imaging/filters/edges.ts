import type { FilterDefinition } from '../filter';

const edges: FilterDefinition = {
  name: 'edges',
  capability: 'heavy',
  description: 'Edge map: a Laplacian on luminance, so flat areas go black and edges show as bright lines (one grey band).',
  params: {},
  steps: [
    { op: 'greyscale', makesGrey: true, apply: (image) => image.greyscale() },
    { op: 'convolve', apply: (image) => image.convolve({ width: 3, height: 3, kernel: [0, -1, 0, -1, 4, -1, 0, -1, 0], scale: 0.5 }) },
  ],
};
export default edges;
