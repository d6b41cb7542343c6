/**
 * Deterministic, photo-like sample images for tests and benchmarks of the pipeline.
 * Nothing is downloaded: every pixel comes from a PRNG seeded by the file name, so a given
 * sharp/libvips build always produces byte-identical files. Pixels are built as raw buffers
 * (never SVG, which the app blocks process-wide) and only encoded by sharp.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { SAMPLES_DIR } from './paths';
import sharp, { type Sharp } from 'sharp';

export interface SampleSpec {
  name: string;
  /** As seen after EXIF auto-orientation; the stored pixel grid is transposed for orientations 5-8. */
  width: number;
  height: number;
  format: 'jpeg' | 'png';
  alpha?: boolean;
  orientation?: number;
  description: string;
}

export const SAMPLE_SET: readonly SampleSpec[] = Object.freeze([
  { name: 'sample_640x480.jpg', width: 640, height: 480, format: 'jpeg', description: 'VGA landscape photo' },
  { name: 'sample_1280x720.jpg', width: 1280, height: 720, format: 'jpeg', description: 'HD 720p landscape photo' },
  { name: 'sample_1920x1080.jpg', width: 1920, height: 1080, format: 'jpeg', description: 'Full HD landscape photo' },
  { name: 'sample_4k.jpg', width: 3840, height: 2160, format: 'jpeg', description: '4K UHD landscape photo' },
  {
    name: 'sample_portrait_1200x1600.jpg',
    width: 1200,
    height: 1600,
    format: 'jpeg',
    orientation: 6,
    description: 'Portrait as seen after auto-orient; stored as 1600x1200 pixels tagged EXIF orientation 6',
  },
  {
    name: 'sample_alpha_1024.png',
    width: 1024,
    height: 1024,
    format: 'png',
    alpha: true,
    description: 'RGBA PNG with a soft-edged circular alpha mask (transparent corners, opaque centre)',
  },
]);

const JPEG_QUALITY = 90;
const SHAPE_COUNT = 36;
// Sensor-like grain: mostly luminance, a little colour. Gives JPEGs a camera-like entropy.
const LUMA_GRAIN_SIGMA = 8;
const CHROMA_GRAIN_SIGMA = 3.5;

type Rng = () => number; // uniform uint32

interface Canvas {
  data: Uint8ClampedArray;
  width: number;
  height: number;
  channels: number;
}

interface Shape {
  box: boolean;
  cx: number;
  cy: number;
  rx: number;
  ry: number;
  angle: number;
  feather: number;
  colour: readonly number[];
  opacity: number;
  shade: number;
}

// Local bindings: hot loops read them as locals, not as properties of the global Math object
// (which is much slower inside test sandboxes such as jest's vm contexts).
const { imul, sqrt, log, cos, sin, PI, min, max, floor, ceil, abs, hypot } = Math;

function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = imul(a ^ (a >>> 15), 1 | a);
    t = (t + imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

const unit = (rng: Rng): number => rng() / 4294967296;
const between = (rng: Rng, lo: number, hi: number): number => lo + (hi - lo) * unit(rng);
const smoothstep = (t: number): number => t * t * (3 - 2 * t);

/** FNV-1a, so each sample gets its own stable scene without a hand-maintained seed list. */
function seedFromName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Table lookups keep the per-pixel grain loop free of log/sqrt/cos calls. */
const GAUSSIAN_TABLE = ((): Float32Array => {
  const rng = mulberry32(0x9e3779b9);
  const table = new Float32Array(1024);
  for (let i = 0; i < table.length; i++) {
    const u1 = (rng() + 1) / 4294967297; // never 0, so log() stays finite
    table[i] = sqrt(-2 * log(u1)) * cos(2 * PI * unit(rng));
  }
  return table;
})();

/** Low-frequency colour field: a coarse random colour grid, smoothly interpolated, with a vignette. */
function paintColourField(c: Canvas, rng: Rng): void {
  const { data, width: w, height: h, channels } = c;
  const gx = 5,
    gy = 4;
  const base = [between(rng, 60, 190), between(rng, 60, 190), between(rng, 60, 190)];
  const grid = new Float32Array(gx * gy * 3).map((_, k) => base[k % 3] + between(rng, -70, 70));
  const cellOfX = new Uint16Array(w),
    tOfX = new Float32Array(w),
    vigOfX = new Float32Array(w);
  for (let x = 0; x < w; x++) {
    const fx = (x / max(1, w - 1)) * (gx - 1),
      cell = min(floor(fx), gx - 2);
    cellOfX[x] = cell;
    tOfX[x] = smoothstep(fx - cell);
    vigOfX[x] = (x / w - 0.5) ** 2;
  }
  const row = new Float32Array(gx * 3);
  for (let y = 0; y < h; y++) {
    const fy = (y / max(1, h - 1)) * (gy - 1),
      cy = min(floor(fy), gy - 2);
    const ty = smoothstep(fy - cy),
      vigY = (y / h - 0.5) ** 2;
    const top = cy * gx * 3,
      bottom = top + gx * 3;
    for (let k = 0; k < gx * 3; k++) row[k] = grid[top + k] + (grid[bottom + k] - grid[top + k]) * ty;
    for (let x = 0, o = y * w * channels; x < w; x++, o += channels) {
      const i = cellOfX[x] * 3,
        t = tOfX[x],
        vignette = 1 - 0.6 * (vigOfX[x] + vigY);
      data[o] = (row[i] + (row[i + 3] - row[i]) * t) * vignette;
      data[o + 1] = (row[i + 1] + (row[i + 4] - row[i + 1]) * t) * vignette;
      data[o + 2] = (row[i + 2] + (row[i + 5] - row[i + 2]) * t) * vignette;
    }
  }
}

/** Sizes scale with the short side so every resolution shows the same kind of scene. */
function randomShape(rng: Rng, w: number, h: number): Shape {
  const unitSize = min(w, h),
    r = unitSize * between(rng, 0.03, 0.25);
  const hardEdge = unit(rng) < 0.35; // mix crisp (anti-aliased only) and defocused edges
  return {
    box: unit(rng) < 0.4,
    cx: between(rng, -0.05, 1.05) * w,
    cy: between(rng, -0.05, 1.05) * h,
    rx: r,
    ry: r * between(rng, 0.35, 1),
    angle: between(rng, 0, PI),
    feather: hardEdge ? 1 : unitSize * between(rng, 0.005, 0.04),
    colour: [between(rng, 10, 245), between(rng, 10, 245), between(rng, 10, 245)],
    opacity: between(rng, 0.55, 1),
    shade: between(rng, -0.3, 0.3),
  };
}

/** Signed distance (px, negative inside) to a rotated ellipse (approximate) or box, in shape-local coords. */
function signedDistance(s: Shape, u: number, v: number): number {
  if (!s.box) return (sqrt((u / s.rx) ** 2 + (v / s.ry) ** 2) - 1) * s.ry;
  const qx = abs(u) - s.rx,
    qy = abs(v) - s.ry;
  const ox = max(qx, 0),
    oy = max(qy, 0); // hypot is far slower than sqrt in V8
  return sqrt(ox * ox + oy * oy) + min(max(qx, qy), 0);
}

/** Alpha-blends one shape; a linear shade across it fakes lighting so shapes are not flat fills. */
function paintShape(c: Canvas, s: Shape): void {
  const { data, width: w, height: h, channels } = c;
  const cosA = cos(s.angle),
    sinA = sin(s.angle),
    reach = hypot(s.rx, s.ry) + s.feather;
  const x0 = max(0, floor(s.cx - reach)),
    x1 = min(w, ceil(s.cx + reach));
  const y0 = max(0, floor(s.cy - reach)),
    y1 = min(h, ceil(s.cy + reach));
  const [r, g, b] = s.colour;
  for (let y = y0; y < y1; y++) {
    const dy = y + 0.5 - s.cy;
    for (let x = x0, o = (y * w + x0) * channels; x < x1; x++, o += channels) {
      const dx = x + 0.5 - s.cx,
        u = dx * cosA + dy * sinA,
        v = dy * cosA - dx * sinA;
      const coverage = min(1, 0.5 - signedDistance(s, u, v) / s.feather);
      if (coverage <= 0) continue;
      const a = coverage * s.opacity,
        shade = 1 + (s.shade * u) / reach;
      data[o] += (r * shade - data[o]) * a;
      data[o + 1] += (g * shade - data[o + 1]) * a;
      data[o + 2] += (b * shade - data[o + 2]) * a;
    }
  }
}

/** One PRNG draw per pixel feeds three 10-bit table indices: shared luma grain plus two colour-difference terms. */
function addGrain(c: Canvas, rng: Rng): void {
  const { data, channels } = c,
    end = c.width * c.height * channels;
  for (let o = 0; o < end; o += channels) {
    const bits = rng();
    const luma = GAUSSIAN_TABLE[bits & 1023] * LUMA_GRAIN_SIGMA;
    const warm = GAUSSIAN_TABLE[(bits >>> 10) & 1023] * CHROMA_GRAIN_SIGMA;
    const cool = GAUSSIAN_TABLE[(bits >>> 20) & 1023] * CHROMA_GRAIN_SIGMA;
    data[o] += luma + warm;
    data[o + 1] += luma - (warm + cool) * 0.5;
    data[o + 2] += luma + cool;
  }
}

/** Opaque disc fading to fully transparent corners, so consumers see alpha 0, 255 and everything between. */
function applyCircularAlpha(c: Canvas): void {
  const { data, width: w, height: h, channels } = c,
    short = min(w, h);
  const inner = short * 0.36,
    outer = short * 0.47;
  for (let y = 0; y < h; y++) {
    const dy2 = (y + 0.5 - h / 2) ** 2;
    for (let x = 0, o = y * w * channels + 3; x < w; x++, o += channels) {
      data[o] = ((outer - sqrt((x + 0.5 - w / 2) ** 2 + dy2)) / (outer - inner)) * 255;
    }
  }
}

function paintPhoto(width: number, height: number, channels: number, seed: number): Canvas {
  const canvas: Canvas = { data: new Uint8ClampedArray(width * height * channels).fill(255), width, height, channels };
  const rng = mulberry32(seed);
  paintColourField(canvas, rng);
  const shapes = Array.from({ length: SHAPE_COUNT }, () => randomShape(rng, width, height));
  shapes.sort((p, q) => q.rx * q.ry - p.rx * p.ry); // big shapes behind small ones, like a scene
  for (const shape of shapes) paintShape(canvas, shape);
  addGrain(canvas, mulberry32(seed ^ 0x5bd1e995));
  return canvas;
}

/** Inverse of what a viewer applies for each EXIF orientation, so auto-orient restores the upright render. */
const STORE_FOR_ORIENTATION: Readonly<Record<number, (img: Sharp) => Sharp>> = {
  1: (img) => img,
  2: (img) => img.flop(),
  3: (img) => img.rotate(180),
  4: (img) => img.flip(),
  5: (img) => img.rotate(270).flop(),
  6: (img) => img.rotate(270),
  7: (img) => img.rotate(90).flop(),
  8: (img) => img.rotate(90),
};

export async function renderSample(spec: SampleSpec): Promise<Buffer> {
  const { width, height, orientation } = spec;
  const channels = spec.alpha ? 4 : 3;
  const canvas = paintPhoto(width, height, channels, seedFromName(spec.name));
  if (spec.alpha) applyCircularAlpha(canvas);
  let img = sharp(canvas.data, { raw: { width, height, channels } });
  if (orientation !== undefined) {
    const store = STORE_FOR_ORIENTATION[orientation];
    if (!store) throw new RangeError(`${spec.name}: EXIF orientation must be 1-8, got ${orientation}`);
    img = store(img).withMetadata({ orientation });
  }
  return spec.format === 'jpeg' ? img.jpeg({ quality: JPEG_QUALITY }).toBuffer() : img.png().toBuffer();
}

export async function generateSamples(dir: string, opts: { force?: boolean } = {}): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const spec of SAMPLE_SET) {
    const file = path.join(dir, spec.name);
    if (opts.force || !existsSync(file)) {
      // Write-then-rename so an interrupted run never leaves a truncated file that later runs would skip.
      const partial = `${file}.${process.pid}.partial`;
      await writeFile(partial, await renderSample(spec));
      await rename(partial, file);
    }
    files.push(file);
  }
  return files;
}

const USAGE = 'usage: node dist/scripts/samples.js [--out DIR] [--force]';

async function main(argv: string[]): Promise<number> {
  let values: { out?: string; force?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: { out: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }));
    if (values.out === '') throw new Error('--out needs a directory');
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const outDir = path.resolve(values.out ?? SAMPLES_DIR);
  const files = await generateSamples(outDir, { force: values.force === true });
  for (const [i, file] of files.entries()) {
    const { name, width, height, orientation } = SAMPLE_SET[i];
    const tag = orientation ? ` (EXIF orientation ${orientation})` : '';
    process.stdout.write(`${name}\t${width}x${height}${tag}\t${(await stat(file)).size} bytes\n`);
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
