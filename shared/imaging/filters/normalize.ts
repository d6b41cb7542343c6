import type { FilterDefinition } from '../filter';
import { num } from '../filter';

const normalize: FilterDefinition = {
  name: 'normalize',
  capability: 'heavy',
  description:
    'Auto-levels: stretches luminance so the `lower` percentile becomes black and the `upper` percentile white.',
  params: {
    lower: { type: 'number', min: 0, max: 99, default: 1, description: 'percentile mapped to black' },
    upper: { type: 'number', min: 1, max: 100, default: 99, description: 'percentile mapped to white' },
  },
  check: (p) =>
    num(p, 'lower') >= num(p, 'upper')
      ? [{ param: 'lower', expected: `a percentile below upper (${num(p, 'upper')})`, received: p.lower }]
      : [],
  steps: [
    { op: 'normalise', apply: (image, p) => image.normalise({ lower: num(p, 'lower'), upper: num(p, 'upper') }) },
  ],
};
export default normalize;
