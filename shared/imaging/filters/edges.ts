import type { FilterDefinition } from '../filter';

const edges: FilterDefinition = {
  name: 'edges',
  capability: 'heavy',
  description:
    'Edge map: a Laplacian on luminance with a noise floor, so flat and grainy areas go black and edges show as bright lines (one grey band).',
  params: {},
  steps: [
    { op: 'greyscale', makesGrey: true, apply: (image) => image.greyscale() },
    // Laplacian at twice its gain, minus 16: lines come out bright while film grain and JPEG
    // noise (responses under 8 levels) fall to black, as Canny's low threshold would drop them.
    {
      op: 'convolve',
      apply: (image) => image.convolve({ width: 3, height: 3, kernel: [0, -2, 0, -2, 8, -2, 0, -2, 0], offset: -16 }),
    },
  ],
};
export default edges;
