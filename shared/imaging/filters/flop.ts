import type { FilterDefinition } from '../filter';

const flop: FilterDefinition = {
  name: 'flop',
  capability: 'light',
  description: 'Mirrors the image left to right (about the vertical axis).',
  params: {},
  steps: [{ op: 'geometry', apply: (image) => image.flop(), outputSize: (_p, ctx) => ctx }],
};
export default flop;
