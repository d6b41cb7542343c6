import type { FilterDefinition } from '../filter';

const negate: FilterDefinition = {
  name: 'negate',
  capability: 'light',
  description: 'Inverts every colour value (a photographic negative); transparency is kept.',
  params: {},
  steps: [{ op: 'negate', apply: (image) => image.negate({ alpha: false }) }],
};
export default negate;
