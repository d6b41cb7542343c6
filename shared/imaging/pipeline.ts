/**
 * spec + input bytes → output bytes + info. Steps run in as few sharp instances as the planner
 * allows (usually one); the image never leaves memory between them. Input problems become
 * PermanentError (the task fails at once); anything else propagates as transient.
 */
import sharp, { type Sharp } from 'sharp';
import { PermanentError } from '../errors';
import type { TaskSpec } from './spec';
import { contentTypeOf, isSrgbProfile, sniffFormat } from './input';
import { readHeader } from './header';
import type { Limits } from './limits';
import { appSettings } from '../config';
import { ENCODERS, type Encoder, type Encoding, type OutputFormat } from './output';
import { planStages, type PlannedStep } from './plan';
import { configureSharp, inputOptions } from './sharp-settings';
import { toPermanentIfInputError } from './sharp-errors';
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
  sniffFormat(input);
  const { encoding } = spec;
  const encoder = ENCODERS[encoding.format];
  try {
    let current = await openInput(input, limits, !encoder.alpha);
    let grey = current.ctx.channels <= 2;
    const filterInputs = new Map<number, Size>();
    for (const [i, stage] of planStages(spec.filters).entries()) {
      if (i > 0)
        current = await handOff(
          current.image,
          stage.some((s) => s.step.needsColour),
        );
      ({ image: current.image, grey } = applyStage(current, stage, filterInputs, limits));
    }
    return await encode(current.image, grey && encoder.greyBand, encoder, encoding);
  } catch (err) {
    throw toPermanentIfInputError(err);
  }
}

async function openInput(input: Buffer, limits: Limits, flattenAlpha: boolean): Promise<Current> {
  const meta = await readHeader(input, limits);
  const { width, height } = meta.autoOrient;
  let image = sharp(input, { ...inputOptions(limits), ignoreIcc: meta.icc !== undefined && isSrgbProfile(meta.icc) });
  const channels = meta.channels ?? 3;
  // Formats without alpha get transparent areas composited onto white, not the black sharp would leave.
  if (flattenAlpha && meta.hasAlpha) image = image.flatten({ background: '#ffffff' });
  return { image, ctx: { width, height, channels: flattenAlpha && meta.hasAlpha ? channels - 1 : channels } };
}

function applyStage(
  current: Current,
  stage: readonly PlannedStep[],
  filterInputs: Map<number, Size>,
  limits: Limits,
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
    if (planned.step.outputSize) size = checkedSize(planned.step.outputSize(planned.params, ctx), planned, limits);
    image = planned.step.apply(image, planned.params, ctx);
    grey = greyAfter(planned.step, grey);
  }
  return { image, grey };
}

function checkedSize(size: Size, planned: PlannedStep, limits: Limits): Size {
  if (size.width > limits.maxOutputWidth || size.height > limits.maxOutputHeight) {
    throw new PermanentError(
      'output_too_large',
      `filters[${planned.filterIndex}] (${planned.params.name}) would make a ${size.width}×${size.height} image: expected at most ${limits.maxOutputWidth}×${limits.maxOutputHeight} (MAX_OUTPUT_WIDTH × MAX_OUTPUT_HEIGHT)`,
    );
  }
  return size;
}

/**
 * Raw pixels of one sharp instance become the input of the next, in memory. A grey image stays
 * one band unless the next stage needs colour: tint on a 1-band raw input is silently lost, and
 * an instance that ran greyscale() cannot emit RGB, so the band is expanded in one more pass.
 */
async function handOff(image: Sharp, needsColour: boolean): Promise<Current> {
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  const raw = { width: info.width, height: info.height, channels: info.channels };
  if (!needsColour || raw.channels > 2) return { image: sharp(data, { raw }), ctx: raw };
  return handOff(sharp(data, { raw }).toColourspace('srgb'), false);
}

async function encode(image: Sharp, greyBand: boolean, encoder: Encoder, encoding: Encoding): Promise<ProcessedImage> {
  const shaped = greyBand ? image.toColourspace('b-w') : image;
  const { data, info } = await encoder.encode(shaped, encoding.quality).toBuffer({ resolveWithObject: true });
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
