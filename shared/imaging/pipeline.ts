/**
 * spec + input bytes → output bytes + info. The header is read first and every size the pipeline
 * will make is checked from it (plan.ts) before any pixel is decoded. Steps then run in as few
 * sharp instances as the planner allows (usually one); the image never leaves memory between them.
 * Input, size and encoder problems become PermanentError (the task fails at once); an error of a
 * sharp call is classified by what that call did (sharp-errors.ts); anything else propagates as
 * transient.
 */
import sharp, { type Metadata, type Sharp } from 'sharp';
import type { TaskSpec } from './spec';
import { contentTypeOf, isSrgbProfile, sniffFormat } from './input';
import { readHeader } from './header';
import type { Limits } from './limits';
import { appSettings } from '../config';
import { ENCODERS, type Encoder, type Encoding, type OutputFormat } from './output';
import { checkPipelineSizes, planStages, type PlannedStep } from './plan';
import { configureSharp, inputOptions } from './sharp-settings';
import { sharpCall, type SharpCall } from './sharp-errors';
import { greyAfter, type Size, type StepContext } from './filter';

configureSharp();

export interface ProcessedInfo {
  readonly format: OutputFormat;
  readonly content_type: string;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly bytes: number;
}

export interface ProcessedImage {
  readonly data: Buffer;
  readonly info: ProcessedInfo;
}

interface Current {
  image: Sharp;
  ctx: { width: number; height: number; channels: number };
}

export async function processImage(
  spec: TaskSpec,
  input: Buffer,
  limits: Limits = appSettings(),
): Promise<ProcessedImage> {
  const format = sniffFormat(input);
  const { encoding } = spec;
  const encoder = ENCODERS[encoding.format];
  const meta = await readHeader(input, format, limits);
  const flattenAlpha = !encoder.alpha && meta.hasAlpha === true;
  const channels = (meta.channels ?? 3) - (flattenAlpha ? 1 : 0);
  const stages = planStages(spec.filters);
  const size = checkPipelineSizes(stages, { ...meta.autoOrient, channels }, encoding.format, limits);
  let current = openInput(input, meta, limits, flattenAlpha, channels);
  let grey = current.ctx.channels <= 2;
  const filterInputs = new Map<number, Size>();
  for (const [i, stage] of stages.entries()) {
    if (i > 0) {
      // the first hand-off runs the first stage, where the input is decoded
      const call: SharpCall = { decodes: i === 1 ? format : undefined, filters: true };
      current = await handOff(
        current.image,
        call,
        stage.some((s) => s.step.needsColour),
      );
    }
    ({ image: current.image, grey } = applyStage(current, stage, filterInputs));
  }
  const call: SharpCall = {
    decodes: stages.length <= 1 ? format : undefined,
    filters: stages.length > 0,
    encodes: { format: encoding.format, size },
  };
  return encode(current.image, grey && encoder.greyBand, encoder, encoding, call);
}

/** The first sharp instance, from the header already read: nothing is decoded until a pipeline runs. */
function openInput(input: Buffer, meta: Metadata, limits: Limits, flattenAlpha: boolean, channels: number): Current {
  const { width, height } = meta.autoOrient;
  let image = sharp(input, { ...inputOptions(limits), ignoreIcc: meta.icc !== undefined && isSrgbProfile(meta.icc) });
  // Formats without alpha get transparent areas composited onto white, not the black sharp would leave.
  if (flattenAlpha) image = image.flatten({ background: '#ffffff' });
  return { image, ctx: { width, height, channels } };
}

/** Adds a stage's steps to its sharp instance; sizes were checked for the whole pipeline beforehand. */
function applyStage(
  current: Current,
  stage: readonly PlannedStep[],
  filterInputs: Map<number, Size>,
): { image: Sharp; grey: boolean } {
  let { image } = current;
  let size: Size = current.ctx;
  let grey = current.ctx.channels <= 2;
  for (const planned of stage) {
    if (planned.startsFilter) filterInputs.set(planned.filterIndex, size);
    const ctx: StepContext = {
      ...size,
      channels: current.ctx.channels,
      filterInput: filterInputs.get(planned.filterIndex)!,
    };
    if (planned.step.outputSize) size = planned.step.outputSize(planned.params, ctx);
    image = planned.step.apply(image, planned.params, ctx);
    grey = greyAfter(planned.step, grey);
  }
  return { image, grey };
}

/**
 * Raw pixels of one sharp instance become the input of the next, in memory. A grey image stays
 * one band unless the next stage needs colour: tint on a 1-band raw input is silently lost, and
 * an instance that ran greyscale() cannot emit RGB, so the band is expanded in one more pass.
 */
async function handOff(image: Sharp, call: SharpCall, needsColour: boolean): Promise<Current> {
  const { data, info } = await sharpCall(call, () => image.raw().toBuffer({ resolveWithObject: true }));
  const raw = { width: info.width, height: info.height, channels: info.channels };
  if (!needsColour || raw.channels > 2) return { image: sharp(data, { raw }), ctx: raw };
  return handOff(sharp(data, { raw }).toColourspace('srgb'), {}, false);
}

async function encode(
  image: Sharp,
  greyBand: boolean,
  encoder: Encoder,
  encoding: Encoding,
  call: SharpCall,
): Promise<ProcessedImage> {
  const shaped = greyBand ? image.toColourspace('b-w') : image;
  const { data, info } = await sharpCall(call, () =>
    encoder.encode(shaped, encoding.quality).toBuffer({ resolveWithObject: true }),
  );
  return {
    data,
    info: {
      format: encoding.format,
      content_type: contentTypeOf(encoding.format),
      width: info.width,
      height: info.height,
      channels: info.channels,
      bytes: data.length,
    },
  };
}
