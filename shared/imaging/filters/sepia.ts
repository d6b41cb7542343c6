import type { FilterDefinition } from '../filter';
import { num } from '../filter';

// The classic sepia-tone matrix (rows produce R, G, B from R, G, B).
const SEPIA = [
  [0.393, 0.769, 0.189],
  [0.349, 0.686, 0.168],
  [0.272, 0.534, 0.131],
];

/** Blend between the identity and the sepia matrix so `amount` fades the effect in. */
function sepiaMatrix(amount: number): [[number, number, number], [number, number, number], [number, number, number]] {
  const row = (r: number) =>
    [0, 1, 2].map((c) => (1 - amount) * (r === c ? 1 : 0) + amount * SEPIA[r][c]) as [number, number, number];
  return [row(0), row(1), row(2)];
}

const sepia: FilterDefinition = {
  name: 'sepia',
  capability: 'heavy',
  description:
    'Warm brown old-photo toning with the standard sepia colour matrix; `amount` blends it with the original.',
  params: {
    amount: { type: 'number', min: 0, max: 1, default: 1, description: '0 = unchanged, 1 = full sepia' },
  },
  steps: [
    {
      op: 'recomb',
      needsColour: true,
      makesColour: true,
      apply: (image, p) => image.recomb(sepiaMatrix(num(p, 'amount'))),
    },
  ],
};
export default sepia;
