import type { FilterDefinition } from '../filter';
import { num } from '../filter';

const saturation: FilterDefinition = {
  name: 'saturation',
  capability: 'heavy',
  description: 'Scales colourfulness in LCh: 0 is grey, 1 keeps the image, 2 doubles the chroma.',
  params: {
    factor: { type: 'number', min: 0, max: 10, default: 1.5, description: 'chroma multiplier; 1 = unchanged' },
  },
  steps: [{ op: 'modulate', needsColour: true, apply: (image, p) => image.modulate({ saturation: num(p, 'factor') }) }],
};
export default saturation;
