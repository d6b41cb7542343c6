/**
 * Groups a task's filter steps into as few sharp instances as possible. sharp applies its
 * operations in a fixed order (SHARP_OP_ORDER) and each operation once, so steps share an
 * instance only while that order matches the user's order, with at most one geometry step;
 * otherwise the next step starts a new instance fed from the previous one's raw pixels (in
 * memory). Most real pipelines (resize → blur → brightness, grayscale → resize, …) are one
 * instance: one pass of libvips over the image.
 */
import { greyAfter, SHARP_OP_ORDER, type FilterStep, type ParamValues } from './filter';
import { getFilter } from './filters';
import type { FilterSpec } from './spec';

export interface PlannedStep {
  readonly step: FilterStep;
  readonly params: ParamValues;
  /** Index of the owning filter in the spec, for error messages and multi-step filters. */
  readonly filterIndex: number;
  /** The first step of its filter (the image size there is the filter's input size). */
  readonly startsFilter: boolean;
}

const rank = (step: FilterStep) => SHARP_OP_ORDER.indexOf(step.op);

export function planStages(filters: readonly FilterSpec[]): PlannedStep[][] {
  const stages: PlannedStep[][] = [[]];
  let grey = false; // whether a step so far has left the image as one grey band
  filters.forEach((spec, filterIndex) => {
    const filter = getFilter(spec.name);
    if (!filter) throw new Error(`planStages: unknown filter '${spec.name}' (specs are validated before planning)`);
    filter.steps.forEach((step, i) => {
      if (!fitsCurrentStage(stages[stages.length - 1], step, grey)) {
        stages.push([]);
        // the hand-off to a colour step expands the grey band to sRGB
        if (step.needsColour) grey = false;
      }
      stages[stages.length - 1].push({ step, params: spec, filterIndex, startsFilter: i === 0 });
      grey = greyAfter(step, grey);
    });
  });
  return stages.filter((s) => s.length > 0);
}

function fitsCurrentStage(stage: readonly PlannedStep[], step: FilterStep, grey: boolean): boolean {
  const last = stage[stage.length - 1];
  if (!last) return true;
  const secondGeometry = step.op === 'geometry' && stage.some((s) => s.step.op === 'geometry');
  return rank(step) > rank(last.step) && !secondGeometry && !(step.needsColour && grey);
}
