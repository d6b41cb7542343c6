/**
 * `compare`: the same images and pipeline three ways, like the original system's compare-all:
 * in this process one after another, in this process all at once (Promise.all, so libvips
 * spreads them over its threads), and through the queues of the running app. The in-process
 * runs use the app's own processImage, so only the execution model differs.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { processImage } from '../../../shared/imaging/pipeline';
import type { TaskSpec } from '../../../shared/imaging/spec';
import { appSettings } from '../../../shared/config';
import { SAMPLES_DIR } from '../../paths';
import { generateSamples } from '../../samples';
import { ApiError, ApiUnreachable, type ApiClient } from '../api';
import type { CliContext } from '../context';
import { fixed, ms, table } from '../format';
import { UsageError, writeLine, type CliIo } from '../io';
import { waitForJobs } from '../jobs';
import { filterList, integerIn, jsonObject, positiveNumber, type FilterEntry } from '../parse';
import { checkedSpec } from '../pipeline';
import type { SubmittedJob } from '../types';

/** The original system's example parameters (also the benchmark's): resize 800×600, blur 3, brightness 1.5. */
export const DEFAULT_COMPARE_FILTERS: readonly FilterEntry[] = Object.freeze([
  { name: 'resize', width: 800, height: 600 },
  { name: 'blur', radius: 3 },
  { name: 'brightness', factor: 1.5 },
]);
const IMAGE_EXTENSIONS = new Set([
  '.jpg',
  '.jpeg',
  '.png',
  '.webp',
  '.avif',
  '.gif',
  '.tif',
  '.tiff',
  '.heic',
  '.heif',
]);

export interface CompareOptions {
  readonly images?: string;
  readonly filters: readonly FilterEntry[];
  readonly params?: Record<string, unknown>;
  readonly count?: number;
  readonly timeout: number;
}

interface Run {
  readonly mode: string;
  readonly wallMs?: number;
  readonly note: string;
}

async function loadImages(
  dir: string | undefined,
  count: number | undefined,
): Promise<{ name: string; data: Buffer }[]> {
  const folder = path.resolve(dir ?? SAMPLES_DIR);
  // The default set is generated on first use, as `npm run samples` would.
  if (!dir && !existsSync(folder)) await generateSamples(folder);
  if (!existsSync(folder)) throw new UsageError(`--images: no such folder ${folder}`);
  const names = (await readdir(folder)).filter((f) => IMAGE_EXTENSIONS.has(path.extname(f).toLowerCase())).sort();
  if (names.length === 0) throw new Error(`no images in ${folder}`);
  const chosen = names.slice(0, count ?? names.length);
  return Promise.all(chosen.map(async (name) => ({ name, data: await readFile(path.join(folder, name)) })));
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

/** Its own prefix, so comparing never overwrites a user's image of the same name in the container. */
export const uploadName = (file: string): string =>
  `compare-${file.replace(/[^A-Za-z0-9._-]/g, '_').replace(/\.{2,}/g, '.')}`.slice(0, 200);

/** Uploads first (not timed: the in-process runs read from memory too), then times submit → last task done. */
async function viaQueues(
  api: ApiClient,
  images: { name: string; data: Buffer }[],
  spec: TaskSpec,
  timeoutS: number,
): Promise<Run> {
  for (const image of images)
    await api.put(`/images/${encodeURIComponent(uploadName(image.name))}`, image.data, 'application/octet-stream');
  const start = performance.now();
  const job = await api.post<SubmittedJob>('/jobs', {
    images: images.map((i) => uploadName(i.name)),
    filters: spec.filters,
    output: spec.encoding,
  });
  const [done] = await waitForJobs(api, [job.job_id], { timeoutMs: timeoutS * 1000, intervalMs: 100 });
  const wallMs = performance.now() - start;
  if (done.status !== 'succeeded')
    return {
      mode: 'queues (running app)',
      note: `job ${done.job_id} ${done.status}: ${done.counts.succeeded} succeeded, ${done.counts.failed} failed`,
    };
  const worker = done.tasks.reduce((sum, t) => sum + (t.duration_ms ?? 0), 0);
  return { mode: 'queues (running app)', wallMs, note: `job ${done.job_id}, ${Math.round(worker)} ms of worker time` };
}

/** What the speed-up column means, printed under the table. */
export const SPEED_UP_LEGEND = [
  'speed-up = wall time of the in-process sequential run ÷ wall time of this mode, same images and pipeline:',
  '  1.00× is as fast as processing one image after another in this process, 2.00× twice as fast, below 1.00× slower.',
  '  The queued run is timed from submitting the job to seeing its last task done (polled every 100 ms), so it',
  '  includes queueing, task records and reading inputs from and writing results to storage; uploading the',
  '  inputs beforehand is not timed. The in-process runs work on images already in memory.',
].join('\n');

export function compareTable(runs: readonly Run[], imageCount: number): string {
  const baseline = runs[0]?.wallMs;
  const rows = runs.map((r) => [
    r.mode,
    imageCount,
    ms(r.wallMs),
    r.wallMs === undefined ? null : ms(r.wallMs / imageCount),
    r.wallMs === undefined || baseline === undefined ? null : `${fixed(baseline / r.wallMs, 2)}×`,
    r.note,
  ]);
  return `${table(['mode', 'images', 'wall time', 'per image', 'speed-up', 'note'], rows)}\n${SPEED_UP_LEGEND}`;
}

export async function runCompare(api: ApiClient, io: CliIo, opts: CompareOptions): Promise<number> {
  const spec = checkedSpec({ filters: opts.filters, filter_params: opts.params }, appSettings(), 'nothing was run');
  const images = await loadImages(opts.images, opts.count);
  writeLine(
    io.stdout,
    `compare: ${images.length} image(s) (${images.map((i) => i.name).join(', ')}) through ${spec.filters.map((f) => f.name).join(' → ')}, ${spec.encoding.format}`,
  );
  // One untimed pass warms sharp up (library load, thread pool) so the first mode is not penalised.
  await processImage(spec, images[0].data);
  const sequential = await timed(async () => {
    for (const image of images) await processImage(spec, image.data);
  });
  const parallel = await timed(() => Promise.all(images.map((image) => processImage(spec, image.data))));
  const runs: Run[] = [
    { mode: 'in-process sequential', wallMs: sequential, note: 'processImage one by one' },
    { mode: 'in-process parallel', wallMs: parallel, note: 'Promise.all' },
  ];
  let failure: Error | undefined;
  try {
    runs.push(await viaQueues(api, images, spec, opts.timeout));
  } catch (err) {
    if (!(err instanceof ApiError || err instanceof ApiUnreachable)) throw err;
    failure = err;
    runs.push({ mode: 'queues (running app)', note: 'not run: see the error below' });
  }
  writeLine(io.stdout, compareTable(runs, images.length));
  if (failure) throw failure;
  return runs.every((r) => r.wallMs !== undefined) ? 0 : 1;
}

export function registerCompare(program: Command, ctx: CliContext): void {
  program
    .command('compare')
    .description("time the same images in-process (sequential, parallel) and through the running app's queues")
    .option('--images <dir>', 'folder of images (default: the generated samples)')
    .addOption(
      new Option('--filters <list>', 'filter names (a,b) or a JSON array of filters')
        .argParser(filterList)
        .default(DEFAULT_COMPARE_FILTERS, 'resize 800×600, blur radius 3, brightness 1.5'),
    )
    .option('--params <json>', 'filter_params as JSON', jsonObject)
    .option('--count <n>', 'use only the first n images', integerIn(1, 100))
    .option('--timeout <seconds>', 'longest wait for the queued job', positiveNumber, 300)
    .action(async (opts: CompareOptions, cmd: Command) => ctx.exit(await runCompare(ctx.api(cmd), ctx.io, opts)));
}
