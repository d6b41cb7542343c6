/** Test images made in memory and the perceptual measures tests assert on (never byte equality). */
import sharp from 'sharp';
import { normalizeTaskSpec, type TaskSpecInput } from '../../shared/imaging/spec';
import { processImage } from '../../shared/imaging/pipeline';

export interface Pixels {
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
}

/**
 * A deterministic photo-like RGB image: gradients, a disc at (0.3w, 0.5h) of radius 0.25h and a
 * box, with hard edges, plus fine uniform noise of ±noise/2.
 */
export async function photo(
  width = 320,
  height = 240,
  format: 'jpeg' | 'png' = 'png',
  { noise: amplitude = 16 } = {},
): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  let seed = 12345;
  const noise = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * amplitude;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inDisc = (x - width * 0.3) ** 2 + (y - height * 0.5) ** 2 < (height * 0.25) ** 2;
      const inBox = x > width * 0.6 && x < width * 0.85 && y > height * 0.2 && y < height * 0.7;
      const base = [40 + (150 * x) / width, 60 + (120 * y) / height, 170 - (100 * x) / width];
      const colour = inDisc ? [220, 200, 60] : inBox ? [30, 60, 140] : base;
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, colour[c] + noise()));
    }
  }
  const image = sharp(data, { raw: { width, height, channels: 3 } });
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 92 }).toBuffer();
}

export async function solid(
  width: number,
  height: number,
  rgba: { r: number; g: number; b: number; alpha?: number },
  format: 'png' | 'jpeg' = 'png',
): Promise<Buffer> {
  const channels = rgba.alpha === undefined ? 3 : 4;
  const image = sharp({ create: { width, height, channels, background: rgba } });
  return format === 'png' ? image.png().toBuffer() : image.jpeg().toBuffer();
}

/** Decoded pixels with the image's own bands (sharp would expand a grey image to RGB by default). */
export async function pixels(image: Buffer): Promise<Pixels> {
  const { channels = 3 } = await sharp(image).metadata();
  const decoder = channels <= 2 ? sharp(image).toColourspace('b-w') : sharp(image);
  const { data, info } = await decoder.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Runs one task spec through the real pipeline and decodes the result. */
export async function run(
  input: Buffer,
  spec: TaskSpecInput,
): Promise<Pixels & { bytes: Buffer; contentType: string }> {
  const out = await processImage(normalizeTaskSpec(spec), input);
  return { ...(await pixels(out.data)), bytes: out.data, contentType: out.info.content_type };
}

export function channelMeans(p: Pixels): number[] {
  const sums = new Array<number>(p.channels).fill(0);
  for (let i = 0; i < p.data.length; i++) sums[i % p.channels] += p.data[i];
  return sums.map((s) => s / (p.width * p.height));
}

export function mean(p: Pixels): number {
  const means = channelMeans(p);
  return means.slice(0, Math.min(3, means.length)).reduce((a, b) => a + b, 0) / Math.min(3, means.length);
}

/** Luma of each pixel (channel 0 for grey images). */
export function luma(p: Pixels): Float64Array {
  const out = new Float64Array(p.width * p.height);
  for (let i = 0; i < out.length; i++) {
    const o = i * p.channels;
    out[i] = p.channels >= 3 ? 0.299 * p.data[o] + 0.587 * p.data[o + 1] + 0.114 * p.data[o + 2] : p.data[o];
  }
  return out;
}

export function stdDev(values: Float64Array): number {
  const m = values.reduce((a, b) => a + b, 0) / values.length;
  return Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / values.length);
}

/** Mean absolute 4-neighbour Laplacian of luma: high-frequency energy. */
export function highFrequencyEnergy(p: Pixels): number {
  const l = luma(p);
  let sum = 0;
  for (let y = 1; y < p.height - 1; y++) {
    for (let x = 1; x < p.width - 1; x++) {
      const i = y * p.width + x;
      sum += Math.abs(4 * l[i] - l[i - 1] - l[i + 1] - l[i - p.width] - l[i + p.width]);
    }
  }
  return sum / ((p.width - 2) * (p.height - 2));
}

/** 64-bit difference hash of a 9×8 grey thumbnail, as in sharp's own tests. */
export async function dHash(image: Buffer): Promise<bigint> {
  const { data } = await sharp(image)
    .greyscale()
    .resize(9, 8, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  let hash = 0n;
  for (let y = 0; y < 8; y++)
    for (let x = 0; x < 8; x++) hash = (hash << 1n) | (data[y * 9 + x] < data[y * 9 + x + 1] ? 1n : 0n);
  return hash;
}

export function hammingDistance(a: bigint, b: bigint): number {
  let v = a ^ b;
  let n = 0;
  while (v) {
    n += Number(v & 1n);
    v >>= 1n;
  }
  return n;
}

export function pixelAt(p: Pixels, x: number, y: number): number[] {
  const o = (y * p.width + x) * p.channels;
  return [...p.data.subarray(o, o + p.channels)];
}
