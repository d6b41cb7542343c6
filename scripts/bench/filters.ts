/**
 * The filter benchmark: per filter and image, decode an in-memory image + the filter + encode
 * JPEG quality 80, through the real pipeline (processImage), median of N runs after a warm-up.
 * Same JSON shape as ../shared/bench/peer_filters.py (Pillow + OpenCV), so both compare 1:1.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { processImage } from '../../shared/imaging/pipeline';
import { FILTER_NAMES } from '../../shared/imaging/filters';
import { normalizeTaskSpec, type TaskSpec } from '../../shared/imaging/spec';
import type { ParamValue } from '../../shared/imaging/filter';

/** The original system's example parameters; every other filter runs with its defaults. */
export const BENCH_PARAMS: Readonly<Record<string, Readonly<Record<string, ParamValue>>>> = {
  resize: { width: 800, height: 600 },
  blur: { radius: 3 },
  brightness: { factor: 1.5 },
  crop: { left: 0, top: 0, width: 400, height: 300 },
};

/** The six filters the original system had: the ones compared against Pillow/OpenCV. */
export const PEER_FILTERS = ['resize', 'blur', 'brightness', 'sharpen', 'edges', 'grayscale'] as const;

/** Decode + encode with no filter: the floor every filter's time sits on. */
export const BASELINE = 'none';

export interface ImageTiming {
  image: string;
  width: number;
  height: number;
  median_ms: number;
}
export interface FilterTiming {
  params: Record<string, ParamValue>;
  images: ImageTiming[];
  total_ms: number;
}
export interface BenchResult {
  tool: string;
  iterations: number;
  filters: Record<string, FilterTiming>;
}

export interface BenchImage {
  name: string;
  data: Buffer;
  width: number;
  height: number;
}

const IMAGE_FILE = /\.(jpe?g|png|webp)$/i;

/** The same files the peer script reads (jpg, jpeg, png, webp), sorted by name. */
export async function loadImages(dir: string): Promise<BenchImage[]> {
  const names = (await readdir(dir)).filter((n) => IMAGE_FILE.test(n)).sort();
  if (names.length === 0) throw new Error(`no .jpg/.jpeg/.png/.webp images in ${dir}`);
  return Promise.all(
    names.map(async (name) => {
      const data = await readFile(path.join(dir, name));
      const { width = 0, height = 0 } = await sharp(data).metadata();
      return { name, data, width, height };
    }),
  );
}

export function benchSpec(filter: string): TaskSpec {
  const filters = filter === BASELINE ? [] : [{ ...BENCH_PARAMS[filter], name: filter }];
  return normalizeTaskSpec({ filters, output: { format: 'jpeg', quality: 80 } });
}

export const median = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const round2 = (v: number) => Math.round(v * 100) / 100;

export async function timeFilter(
  filter: string,
  images: readonly BenchImage[],
  iterations: number,
): Promise<FilterTiming> {
  const spec = benchSpec(filter);
  const rows: ImageTiming[] = [];
  for (const image of images) {
    await processImage(spec, image.data);
    const samples: number[] = [];
    for (let i = 0; i < iterations; i++) {
      const start = performance.now();
      await processImage(spec, image.data);
      samples.push(performance.now() - start);
    }
    rows.push({ image: image.name, width: image.width, height: image.height, median_ms: round2(median(samples)) });
  }
  const params =
    filter === BASELINE ? {} : Object.fromEntries(Object.entries(spec.filters[0]).filter(([k]) => k !== 'name'));
  return { params, images: rows, total_ms: round2(rows.reduce((sum, r) => sum + r.median_ms, 0)) };
}

export function toolName(): string {
  return `sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips} (concurrency ${sharp.concurrency()})`;
}

export async function benchFilters(
  filters: readonly string[],
  images: readonly BenchImage[],
  iterations: number,
): Promise<BenchResult> {
  const result: BenchResult = { tool: toolName(), iterations, filters: {} };
  for (const filter of filters) result.filters[filter] = await timeFilter(filter, images, iterations);
  return result;
}

export function knownBenchFilters(): string[] {
  return [BASELINE, ...FILTER_NAMES];
}
