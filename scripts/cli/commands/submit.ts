/**
 * `submit <files or blob names...>`: local files are uploaded (PUT /images/<basename>), names
 * of images already in the container are used as they are; one job runs them all. The results
 * are downloaded into --out as <task_id>.<ext>. Exit 1 when any task failed.
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
import { progress } from '../progress';
import type { Job, StoredImage, SubmittedJob, TaskRecord } from '../types';

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

const extensionOf = (t: TaskRecord): string => path.extname(t.output?.blob ?? '') || `.${t.output?.format ?? 'bin'}`;

async function download(api: ApiClient, job: Job, outDir: string): Promise<Map<string, string>> {
  await mkdir(outDir, { recursive: true });
  const files = new Map<string, string>();
  for (const task of job.tasks.filter((t) => t.status === 'succeeded')) {
    const data = await api.download(`/tasks/${task.task_id}/result`);
    const file = path.join(outDir, `${task.task_id}${extensionOf(task)}`);
    await writeFile(file, data);
    files.set(task.task_id, file);
  }
  return files;
}

function resultTable(job: Job, files: Map<string, string>): string {
  const rows = job.tasks.map((t) => [
    t.task_id,
    t.image,
    t.status,
    t.output ? `${t.output.width}×${t.output.height} ${t.output.format}` : null,
    t.output?.bytes,
    ms(t.duration_ms),
    files.get(t.task_id) ??
      (t.status === 'failed' ? `${t.failure_reason ?? t.failure_type}: ${t.error ?? ''}`.trim() : null),
  ]);
  return table(['task', 'image', 'status', 'result', 'bytes', 'took', 'file / failure'], rows);
}

export async function runSubmit(
  api: ApiClient,
  io: CliIo,
  inputs: readonly string[],
  opts: SubmitOptions,
): Promise<number> {
  const classified = classifyInputs(inputs);
  for (const input of classified.filter((i) => i.kind === 'file')) {
    // The API sniffs the bytes, so the declared type only has to be an accepted one.
    const stored = await api.put<StoredImage>(
      `/images/${encodeURIComponent(input.name)}`,
      await readFile(input.file),
      'application/octet-stream',
    );
    writeLine(io.stdout, `uploaded ${input.file} as ${stored.name} (${stored.bytes} bytes)`);
  }
  const output = {
    ...(opts.format ? { format: opts.format } : {}),
    ...(opts.quality ? { quality: opts.quality } : {}),
  };
  const submitted = await api.post<SubmittedJob>('/jobs', {
    images: classified.map((i) => i.name),
    filters: opts.filters,
    ...(opts.params ? { filter_params: opts.params } : {}),
    ...(Object.keys(output).length > 0 ? { output } : {}), // absent: the API's defaults
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
    .option('--out <dir>', 'where the results go', './results')
    .option('--timeout <seconds>', 'longest wait for the job', positiveNumber, 300)
    .action(async (inputs: string[], opts: SubmitOptions, cmd: Command) =>
      ctx.exit(await runSubmit(ctx.api(cmd), ctx.io, inputs, opts)),
    );
}
