/**
 * Groups a task's filter steps into as few sharp instances as possible. sharp applies its
 * operations in a fixed order (SHARP_OP_ORDER) and each operation once, so steps share an
 * instance only while that order matches the user's order, with at most one geometry step;
 * otherwise the next step starts a new instance fed from the previous one's raw pixels (in
 * memory). Most real pipelines (resize → blur → brightness, grayscale → resize, …) are one
 * instance: one pass of libvips over the image.
 *
 * It also knows every image a pipeline will make: from the header's size alone, each step's
 * outputSize gives the next size, so over-large pipelines are refused before any pixel work.
 */
import { PermanentError } from '../errors';
import { greyAfter, SHARP_OP_ORDER, type FilterStep, type ParamValues, type Size, type StepContext } from './filter';
import { getFilter } from './filters';
import type { Limits } from './limits';
import { checkFitsFormat, type OutputFormat } from './output';
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

/** The image a pipeline starts from, as the header describes it (EXIF orientation applied). */
export interface StartImage extends Size {
  readonly channels: number;
}

interface Bounds extends Size {
  readonly pixels: number;
  /** Whether the input's own size raised a bound above the configured limit. */
  readonly raised: boolean;
}

/**
 * The output limits, or the input's own size where it is larger: a filter may not make an image
 * over them, and an accepted input is never refused for the size it already has.
 */
function boundsFor(start: Size, limits: Limits): Bounds {
  const pixels = start.width * start.height;
  return {
    width: Math.max(limits.maxOutputWidth, start.width),
    height: Math.max(limits.maxOutputHeight, start.height),
    pixels: Math.max(limits.maxOutputPixels, pixels),
    raised:
      start.width > limits.maxOutputWidth || start.height > limits.maxOutputHeight || pixels > limits.maxOutputPixels,
  };
}

function checkStepSize(size: Size, planned: PlannedStep, bounds: Bounds): void {
  const step = `filters[${planned.filterIndex}] (${planned.params.name}) would make a ${size.width}×${size.height} image`;
  const own = bounds.raised ? ", or the input's own size where larger" : '';
  if (size.width > bounds.width || size.height > bounds.height) {
    throw new PermanentError(
      'output_too_large',
      `${step}: expected at most ${bounds.width}×${bounds.height} (MAX_OUTPUT_WIDTH × MAX_OUTPUT_HEIGHT${own})`,
    );
  }
  if (size.width * size.height > bounds.pixels) {
    throw new PermanentError(
      'output_too_large',
      `${step} = ${size.width * size.height} pixels: expected at most ${bounds.pixels} pixels (MAX_OUTPUT_PIXELS${own})`,
    );
  }
}

/**
 * Every size the pipeline will produce, from the header alone: refuses (output_too_large) a step
 * whose image would exceed MAX_OUTPUT_WIDTH, MAX_OUTPUT_HEIGHT or MAX_OUTPUT_PIXELS, a step that
 * cannot apply to its image's size (filter_not_applicable), and a result the output format cannot
 * hold (output_too_large_for_format). Nothing is decoded; returns the result's size.
 */
export function checkPipelineSizes(
  stages: readonly (readonly PlannedStep[])[],
  start: StartImage,
  format: OutputFormat,
  limits: Limits,
): Size {
  const bounds = boundsFor(start, limits);
  let size: Size = { width: start.width, height: start.height };
  let filterInput = size;
  for (const planned of stages.flat()) {
    if (planned.startsFilter) filterInput = size;
    if (!planned.step.outputSize) continue; // every other step keeps the size (filters/index.ts checks it)
    const ctx: StepContext = { ...size, channels: start.channels, filterInput };
    const made = planned.step.outputSize(planned.params, ctx);
    size = { width: made.width, height: made.height };
    checkStepSize(size, planned, bounds);
  }
  checkFitsFormat(size, format);
  return size;
}
