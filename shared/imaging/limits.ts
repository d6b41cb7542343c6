/**
 * The limits the imaging engine enforces against hostile or accidental input. Their values, ranges
 * and reasons are app settings (settings.ts); the engine takes any object that carries them.
 */
export interface Limits {
  /** Width × height of an input image (sharp `limitInputPixels`). */
  readonly maxInputPixels: number;
  readonly maxOutputWidth: number;
  readonly maxOutputHeight: number;
  /** Width × height of the result and of every intermediate image a step makes. */
  readonly maxOutputPixels: number;
  readonly maxFiltersPerTask: number;
}
