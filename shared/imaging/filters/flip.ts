import type { FilterDefinition } from '../filter';

const flip: FilterDefinition = {
  name: 'flip',
  capability: 'light',
  description: 'Mirrors the image top to bottom (about the horizontal axis).',
  params: {},
  steps: [{ op: 'geometry', apply: (image) => image.flip(), outputSize: (_p, ctx) => ctx }],
};
export default flip;
