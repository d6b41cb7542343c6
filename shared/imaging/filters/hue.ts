import type { FilterDefinition } from '../filter';
import { num } from '../filter';

const hue: FilterDefinition = {
  name: 'hue',
  capability: 'heavy',
  description: 'Rotates every hue around the LCh colour wheel by `degrees`, keeping lightness and chroma.',
  params: {
    degrees: { type: 'integer', min: -360, max: 360, default: 90, description: 'hue rotation in degrees' },
  },
  steps: [{ op: 'modulate', needsColour: true, apply: (image, p) => image.modulate({ hue: num(p, 'degrees') }) }],
};
export default hue;
