import type { FilterDefinition } from '../filter';

const grayscale: FilterDefinition = {
  name: 'grayscale',
  capability: 'light',
  description:
    'Converts to one band of luminance; JPEG and PNG output is written as a true single-channel greyscale image.',
  params: {},
  steps: [{ op: 'greyscale', makesGrey: true, apply: (image) => image.greyscale() }],
};
export default grayscale;
