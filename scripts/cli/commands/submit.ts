/**
 * `submit <files or blob names...>`: the pipeline is checked first, with the API's own
 * normalizeTaskSpec, so a misspelt filter costs no upload; then local files are uploaded (PUT
 * /images/<basename>?overwrite=true: the file named on the command line is the one processed, even
 * when an older image has its name), names of images already in the container are used as they are, and one
 * job runs them all. Each result is downloaded into --out after its source image
 * (photo.jpg → photo.png), never over an existing file (photo-1.png). Exit 1 when any task failed.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { IMAGE_NAME } from '../../../shared/storage/images';
import type { ApiClient } from '../api';
import type { CliContext } from '../context';
import { ms, table } from '../format';
import { UsageError, writeLine, type CliIo } from '../io';
import { taskCounts, waitForJobs } from '../jobs';
import { filterList, integerIn, jsonObject, positiveNumber, type FilterEntry } from '../parse';
import { checkedSpec, UNBOUNDED } from '../pipeline';
import { progress } from '../progress';
import type { ImageList, Job, StoredImage, SubmittedJob, TaskRecord } from '../types';

const OUTPUT_FORMATS = ['jpeg', 'png', 'webp', 'avif'];
const NAME_RULE = 'letters, digits, dots, dashes or underscores (1-200, not starting with a dot, no "..")';

export interface SubmitOptions {
  readonly filters: readonly FilterEntry[];
  readonly params?: Record<string, unknown>;
  readonly format?: string;
  readonly quality?: number;
  readonly out: string;
  readonly timeout: number;
}

export type ImageInput =
  | { readonly kind: 'file'; readonly file: string; readonly name: string }
  | { readonly kind: 'blob'; readonly name: string };

/** Decided before anything is sent, so a typo fails the whole command instead of half-uploading. */
export function classifyInputs(inputs: readonly string[], cwd = process.cwd()): ImageInput[] {
  const classified = inputs.map((input): ImageInput => {
    const file = path.resolve(cwd, input);
    if (existsSync(file) && statSync(file).isFile()) {
      const name = path.basename(file);
      if (!IMAGE_NAME.test(name))
        throw new UsageError(`cannot upload ${input}: the API takes image names of ${NAME_RULE}; rename the file`);
      return { kind: 'file', file, name };
    }
    if (input.includes('/') || input.includes(path.sep)) throw new UsageError(`no such file: ${input}`);
    if (!IMAGE_NAME.test(input)) throw new UsageError(`${input} is not a file, nor an image name of ${NAME_RULE}`);
    return { kind: 'blob', name: input };
  });
  const uploads = new Map<string, string>();
  for (const input of classified.filter((i) => i.kind === 'file')) {
    const other = uploads.get(input.name);
    if (other !== undefined && other !== input.file)
      throw new UsageError(`${other} and ${input.file} would both be uploaded as ${input.name}; rename one`);
    uploads.set(input.name, input.file);
  }
  return classified;
}

/** The job's pipeline as the API will read it, checked before any upload. */
function checkPipeline(opts: Pick<SubmitOptions, 'filters' | 'params' | 'format' | 'quality'>): void {
  checkedSpec(
    { filters: opts.filters, filter_params: opts.params, output: outputOf(opts) },
    UNBOUNDED,
    'nothing was uploaded',
  );
}

function outputOf(opts: Pick<SubmitOptions, 'format' | 'quality'>): { format?: string; quality?: number } | undefined {
  const output = {
    ...(opts.format ? { format: opts.format } : {}),
    ...(opts.quality ? { quality: opts.quality } : {}),
  };
  return Object.keys(output).length > 0 ? output : undefined; // absent: the API's defaults
}

/** Image names given that are not in the container: asked only when there are files whose upload a typo would waste. */
async function checkBlobsExist(api: ApiClient, inputs: readonly ImageInput[]): Promise<void> {
  const named = inputs.filter((i) => i.kind === 'blob').map((i) => i.name);
  if (named.length === 0 || !inputs.some((i) => i.kind === 'file')) return;
  const listed = await api.get<ImageList>('/images');
  const present = new Set(listed.images.map((i) => i.name));
  const missing = named.filter((name) => !present.has(name));
  if (missing.length > 0)
    throw new UsageError(
      `not a local file, nor an image in the ${listed.container} container: ${missing.join(', ')}; nothing was uploaded`,
    );
}

const extensionOf = (t: TaskRecord): string => path.extname(t.output?.blob ?? '') || `.${t.output?.format ?? 'bin'}`;

/** photo.jpg → photo; a name without a dot stays whole. */
const stemOf = (image: string): string =>
  image.slice(0, image.lastIndexOf('.') > 0 ? image.lastIndexOf('.') : undefined);

/** Writes <stem><ext>, else <stem>-1<ext>, <stem>-2<ext>, …: never over a file, this run's or an earlier one's. */
async function saveNew(outDir: string, stem: string, ext: string, data: Buffer): Promise<string> {
  for (let n = 0; ; n++) {
    const file = path.join(outDir, `${stem}${n === 0 ? '' : `-${n}`}${ext}`);
    try {
      await writeFile(file, data, { flag: 'wx' });
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** Task id → the file its result was saved as, in task order so the names are predictable. */
async function download(api: ApiClient, job: Job, outDir: string): Promise<Map<string, string>> {
  await mkdir(outDir, { recursive: true });
  const files = new Map<string, string>();
  const succeeded = job.tasks
    .filter((t) => t.status === 'succeeded')
    .sort((a, b) => a.task_id.localeCompare(b.task_id));
  for (const task of succeeded) {
    const data = await api.download(`/tasks/${task.task_id}/result`);
    files.set(task.task_id, await saveNew(outDir, stemOf(task.image), extensionOf(task), data));
  }
  return files;
}

function resultTable(job: Job, files: ReadonlyMap<string, string>): string {
  const rows = job.tasks.map((t) => [
    t.task_id,
    t.image,
    t.status,
    t.output ? `${t.output.width}×${t.output.height} ${t.output.format}` : null,
    t.output?.bytes,
    ms(t.duration_ms),
    files.has(t.task_id)
      ? path.basename(files.get(t.task_id)!)
      : t.status === 'failed'
        ? `${t.failure_reason ?? t.failure_type}: ${t.error ?? ''}`.trim()
        : null,
  ]);
  return table(['task', 'image', 'status', 'result', 'bytes', 'took', 'saved as / failure'], rows);
}

export async function runSubmit(
  api: ApiClient,
  io: CliIo,
  inputs: readonly string[],
  opts: SubmitOptions,
): Promise<number> {
  const classified = classifyInputs(inputs);
  checkPipeline(opts);
  await checkBlobsExist(api, classified);
  for (const input of classified.filter((i) => i.kind === 'file')) {
    // The API sniffs the bytes, so the declared type only has to be an accepted one.
    const stored = await api.put<StoredImage>(
      `/images/${encodeURIComponent(input.name)}?overwrite=true`,
      await readFile(input.file),
      'application/octet-stream',
    );
    writeLine(io.stdout, `uploaded ${input.file} as ${stored.name} (${stored.bytes} bytes)`);
  }
  const output = outputOf(opts);
  const submitted = await api.post<SubmittedJob>('/jobs', {
    images: classified.map((i) => i.name),
    filters: opts.filters,
    ...(opts.params ? { filter_params: opts.params } : {}),
    ...(output ? { output } : {}),
  });
  writeLine(
    io.stdout,
    `job ${submitted.job_id}: ${submitted.tasks.length} task(s) on ${[...new Set(submitted.tasks.map((t) => t.capability))].join(', ')}`,
  );

  const bar = progress(io.stdout, 'processing', submitted.tasks.length);
  let job: Job;
  try {
    [job] = await waitForJobs(api, [submitted.job_id], {
      timeoutMs: opts.timeout * 1000,
      intervalMs: 500,
      onPoll: (jobs) => {
        const c = taskCounts(jobs);
        bar.update(c.finished, `finished (${c.succeeded} succeeded, ${c.failed} failed)`);
      },
    });
  } finally {
    bar.stop();
  }
  const files = await download(api, job, path.resolve(opts.out));
  writeLine(io.stdout, resultTable(job, files));
  const unfinished = job.counts.queued + job.counts.processing;
  if (job.counts.failed > 0) writeLine(io.stderr, `error: ${job.counts.failed} task(s) failed; the table says why`);
  if (unfinished > 0)
    writeLine(
      io.stderr,
      `error: ${unfinished} task(s) still unfinished after ${opts.timeout} s; follow them at ${submitted.status_url}`,
    );
  writeLine(io.stdout, `job ${job.job_id}: ${job.status}; ${files.size} result(s) in ${path.resolve(opts.out)}`);
  return job.status === 'succeeded' ? 0 : 1;
}

export function registerSubmit(program: Command, ctx: CliContext): void {
  program
    .command('submit')
    .description('upload local files (blob names are used as they are), run one job, download the results')
    .argument('<images...>', 'image files to upload, or names of images already in the container')
    .requiredOption('--filters <list>', 'filter names (resize,blur) or a JSON array of filters', filterList)
    .option('--params <json>', 'filter_params as JSON, e.g. {"resize":{"width":800}}', jsonObject)
    .addOption(new Option('--format <format>', 'output format').choices(OUTPUT_FORMATS))
    .option('--quality <n>', 'output quality 1-100', integerIn(1, 100))
    .option('--out <dir>', 'where the results go, named after their source images', './results')
    .option('--timeout <seconds>', 'longest wait for the job', positiveNumber, 300)
    .action(async (inputs: string[], opts: SubmitOptions, cmd: Command) =>
      ctx.exit(await runSubmit(ctx.api(cmd), ctx.io, inputs, opts)),
    );
}
