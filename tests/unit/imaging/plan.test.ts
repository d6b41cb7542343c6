import { loadSettings } from '../../../shared/config';
import { planStages } from '../../../shared/imaging/plan';
import { normalizeTaskSpec } from '../../../shared/imaging/spec';

const limits = loadSettings({});
const stagesOf = (filters: unknown[]) =>
  planStages(normalizeTaskSpec({ filters }, limits).filters).map((stage) =>
    stage.map((s) => `${s.params.name}:${s.step.op}`).join(' '),
  );

describe('planStages', () => {
  it('runs a pipeline whose order matches sharp’s fixed order in one instance', () => {
    expect(stagesOf([{ name: 'resize', width: 100 }, 'blur', 'sharpen', 'brightness', 'negate'])).toEqual([
      'resize:geometry blur:blur sharpen:convolve brightness:linear negate:negate',
    ]);
    expect(stagesOf(['grayscale', { name: 'resize', width: 100 }])).toEqual(['grayscale:greyscale resize:geometry']);
  });

  it('starts a new instance where sharp would reorder the user’s steps', () => {
    // sharp always blurs after resizing, so "blur then resize" needs two instances
    expect(stagesOf(['blur', { name: 'resize', width: 100 }])).toEqual(['blur:blur', 'resize:geometry']);
    expect(stagesOf(['brightness', 'contrast'])).toEqual(['brightness:linear', 'contrast:linear']);
  });

  it('allows one geometry step per instance and splits multi-step filters', () => {
    expect(stagesOf(['rotate', 'flip'])).toEqual(['rotate:geometry', 'flip:geometry']);
    expect(stagesOf(['pixelate'])).toEqual(['pixelate:geometry', 'pixelate:geometry']);
  });

  it('never lets a colour step share an instance with an earlier greyscale step', () => {
    expect(stagesOf(['grayscale', 'tint'])).toEqual(['grayscale:greyscale', 'tint:tint']);
    expect(stagesOf(['threshold', 'tint'])).toEqual(['threshold:threshold', 'tint:tint']);
    expect(stagesOf(['sepia', 'tint'])).toEqual(['sepia:recomb tint:tint']);
  });

  it('plans no instance for an empty pipeline', () => {
    expect(stagesOf([])).toEqual([]);
  });
});
