/**
 * What a filter is: a name, the capability whose workers run it, documented parameters and
 * one or more steps that add operations to a sharp pipeline. Filters only describe; the
 * pipeline module decides how steps share sharp instances.
 */
import type { Sharp } from 'sharp';
import type { CapabilityName } from '../capabilities';
import type { Limits } from './limits';

export type ParamValue = number | string | boolean | null;
export type ParamValues = Readonly<Record<string, ParamValue>>;

/** A bound may name a limit, so the catalog and validation follow the configured limits. */
export type Bound = number | { readonly limit: 'maxOutputWidth' | 'maxOutputHeight' };

interface ParamBase {
  readonly description: string;
  /** Required params have no default; optional ones without a value default to null. */
  readonly required?: boolean;
}
export type ParamSpec = ParamBase &
  (
    | {
        readonly type: 'integer' | 'number';
        readonly min: Bound;
        readonly max: Bound;
        readonly default?: number | null;
      }
    | { readonly type: 'enum'; readonly enum: readonly string[]; readonly default?: string }
    | { readonly type: 'boolean'; readonly default?: boolean }
    | { readonly type: 'color'; readonly default?: string }
  );

/**
 * sharp runs its operations in a fixed order whatever order they are called in
 * (src/pipeline.cc). A step names its operation so the planner only puts steps in one
 * sharp instance when that fixed order equals the user's order.
 */
export const SHARP_OP_ORDER = [
  'flatten',
  'greyscale',
  'geometry',
  'median',
  'threshold',
  'blur',
  'convolve',
  'recomb',
  'modulate',
  'sharpen',
  'gamma',
  'linear',
  'normalise',
  'tint',
  'negate',
] as const;
export type SharpOp = (typeof SHARP_OP_ORDER)[number];

export interface Size {
  readonly width: number;
  readonly height: number;
}

/** The image as a step receives it: exact size and bands at the start of its sharp instance. */
export interface StepContext extends Size {
  readonly channels: number;
  /** Size of the image when the filter that owns this step began (multi-step filters restore it). */
  readonly filterInput: Size;
}

export interface FilterStep {
  readonly op: SharpOp;
  /**
   * The step needs colour bands: it never shares a sharp instance with an earlier greyscale step, whose b-w output
   * would swallow it.
   */
  readonly needsColour?: boolean;
  /** The step leaves a single grey band (output is encoded as greyscale). */
  readonly makesGrey?: boolean;
  /** The step turns a grey image into a colour one. */
  readonly makesColour?: boolean;
  apply(image: Sharp, params: ParamValues, ctx: StepContext): Sharp;
  /**
   * The size the step produces, exactly as sharp will make it, so every limit is checked for the
   * whole pipeline before any pixel work (plan.ts checkPipelineSizes); it throws a PermanentError
   * when the step cannot apply to an image of the current size. Required for geometry steps; a step
   * without it keeps the size.
   */
  outputSize?(params: ParamValues, ctx: StepContext): Size;
}

/**
 * Whether the image is a single grey band after `step`, given whether it was before: the planner and the pipeline
 * both follow it.
 */
export function greyAfter(step: FilterStep, grey: boolean): boolean {
  if (step.makesColour) return false;
  return step.makesGrey === true || grey;
}

export interface FilterDefinition {
  readonly name: string;
  readonly capability: CapabilityName;
  /** One sentence a user reads in the catalog and the README. */
  readonly description: string;
  readonly params: Readonly<Record<string, ParamSpec>>;
  readonly steps: readonly FilterStep[];
  /** Cross-parameter rules (e.g. resize needs width or height); returns messages, not throws. */
  check?(params: ParamValues, limits: Limits): readonly { param: string; expected: string; received: unknown }[];
}

export function resolveBound(bound: Bound, limits: Limits): number {
  return typeof bound === 'number' ? bound : limits[bound.limit];
}

/** Typed reads of already-validated params. */
export const num = (p: ParamValues, key: string): number => p[key] as number;
export const optNum = (p: ParamValues, key: string): number | undefined =>
  p[key] === null ? undefined : (p[key] as number);
export const str = (p: ParamValues, key: string): string => p[key] as string;
