import type { FilterDefinition } from '../filter';
import { num, str } from '../filter';

const rotate: FilterDefinition = {
  name: 'rotate',
  capability: 'light',
  description:
    'Rotates clockwise by any angle; multiples of 90° are lossless, other angles enlarge the canvas and fill the corners with `background`.',
  params: {
    angle: { type: 'number', min: -360, max: 360, default: 90, description: 'degrees clockwise' },
    background: { type: 'color', default: '#000000', description: 'fill for the corners of non-right angles' },
  },
  steps: [
    {
      op: 'geometry',
      apply: (image, p) => image.rotate(num(p, 'angle'), { background: str(p, 'background') }),
      // libvips (vips_rotate → vips_affine) makes the bounding box of the turned rectangle, each side rounded to
      // the nearest pixel (resample/transform.c); multiples of 90° swap or keep the sides exactly.
      outputSize: (p, ctx) => {
        const radians = (num(p, 'angle') * Math.PI) / 180;
        const [cos, sin] = [Math.abs(Math.cos(radians)), Math.abs(Math.sin(radians))];
        const side = (v: number) => Math.max(1, Math.round(v));
        return { width: side(ctx.width * cos + ctx.height * sin), height: side(ctx.width * sin + ctx.height * cos) };
      },
    },
  ],
};
export default rotate;
