/**
 * `jobs` lists jobs newest first (GET /jobs, following the continuation with --all); `job <id>` shows one
 * with each task's failure, image and attempts; `retry <id>` re-runs its failed tasks; `delete <id>` asks,
 * then deletes its task records, results, index row, dead letters and callback (the master key, as purge).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { isoTime } from '../../../shared/http/job-actions';
import { jobIdOf } from '../../../shared/http/jobs';
import { ApiError, KEY_ENV, type ApiClient } from '../api';
import type { CliContext } from '../context';
import { ms, table } from '../format';
import { isTty, writeLine, type CliIo } from '../io';
import { integerIn } from '../parse';
import type { JobStatus } from '../../../shared/tasks/jobs';
import type { DeleteReport, JobDetail, JobList, ListedJob, RetryOutcome } from '../types';
import { readAnswer } from './purge';

/** The API's job statuses (shared/tasks/jobs.ts JobStatus), not imported: that would load the storage SDKs. */
export const JOB_STATUSES = [
  'queued',
  'processing',
  'succeeded',
  'failed',
  'partially_failed',
] as const satisfies readonly JobStatus[];
const DURATION = /^(\d{1,6})([mhd])$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `--since`: an ISO 8601 time as the API takes it, or how long ago (`30m`, `6h`, `7d`) from `now`. */
export function sinceOption(value: string, now = new Date()): string {
  const ago = DURATION.exec(value.trim());
  if (ago) return new Date(now.getTime() - Number(ago[1]) * UNIT_MS[ago[2] as keyof typeof UNIT_MS]).toISOString();
  // the API's own check: a time it would refuse (no zone, 2026-02-30) is a bad command line, found before sending
  if (isoTime(value)) return value;
  throw new InvalidArgumentError(
    `expected an ISO 8601 time (2026-01-31T08:00:00Z) or a duration back from now (30m, 6h, 7d), received '${value}'`,
  );
}

function jobIdArgument(value: string): string {
  const jobId = jobIdOf(value);
  if (!jobId) throw new InvalidArgumentError(`expected a job id (UUID), received '${value}'`);
  return jobId;
}

const tally = (j: { counts: ListedJob['counts']; total: number }) =>
  `${j.counts.succeeded}/${j.counts.failed}/${j.total}`;

export function renderJobList(jobs: readonly ListedJob[]): string {
  if (jobs.length === 0) return 'no jobs';
  return table(
    ['job', 'status', 'created', 'ok/failed/total', 'capability', 'filters', 'retries'],
    jobs.map((j) => [j.job_id, j.status, j.created_at, tally(j), j.capability, j.filters.join(','), j.retries]),
  );
}

const shortError = (text: string | null, max = 80) =>
  text === null ? null : text.length > max ? `${text.slice(0, max - 1)}…` : text;

export function renderJob(job: JobDetail): string {
  const header = `job ${job.job_id}: ${job.status} · ${job.counts.succeeded} succeeded, ${job.counts.failed} failed, ${job.counts.queued} queued, ${job.counts.processing} processing of ${job.total}`;
  const rows = job.tasks.map((t) => [
    t.task_id.slice(t.task_id.lastIndexOf('_') + 1),
    t.image,
    t.status,
    t.attempts,
    ms(t.duration_ms),
    t.output ? `${t.output.width}x${t.output.height} ${t.output.format}` : null,
    t.failure_reason ? `${t.failure_reason}: ${shortError(t.error)}` : null,
  ]);
  const lines = [header, table(['task', 'image', 'status', 'attempts', 'took', 'result', 'failure'], rows)];
  const failed = job.tasks.filter((t) => t.status === 'failed').length;
  if (failed > 0) lines.push(`retry the ${failed} failed task(s) with: image-pipeline retry ${job.job_id}`);
  return lines.join('\n');
}

export interface JobsOptions {
  readonly status?: string;
  readonly since?: string;
  readonly limit?: number;
  readonly all?: boolean;
  readonly continuation?: string;
  readonly json?: boolean;
}

/** One page, or every page with --all (the continuation followed until the walk ends). */
export async function runJobs(api: ApiClient, io: CliIo, opts: JobsOptions): Promise<number> {
  const jobs: ListedJob[] = [];
  let continuation = opts.continuation;
  for (;;) {
    const query = new URLSearchParams();
    if (opts.status) query.set('status', opts.status);
    if (opts.since) query.set('since', opts.since);
    if (opts.limit) query.set('limit', String(opts.limit));
    if (continuation) query.set('continuation', continuation);
    const qs = query.toString();
    const page = await api.get<JobList>(`/jobs${qs ? `?${qs}` : ''}`);
    jobs.push(...page.jobs);
    continuation = page.continuation ?? undefined;
    if (!continuation || !opts.all) break;
  }
  if (opts.json) {
    writeLine(io.stdout, JSON.stringify({ jobs, continuation: continuation ?? null }, null, 2));
    return 0;
  }
  writeLine(io.stdout, renderJobList(jobs));
  if (continuation) writeLine(io.stdout, `more: --all, or --continuation ${continuation}`);
  return 0;
}

export async function runJob(api: ApiClient, io: CliIo, jobId: string, opts: { json?: boolean }): Promise<number> {
  const job = await api.get<JobDetail>(`/jobs/${jobId}`);
  writeLine(io.stdout, opts.json ? JSON.stringify(job, null, 2) : renderJob(job));
  return 0;
}

export async function runRetry(api: ApiClient, io: CliIo, jobId: string): Promise<number> {
  const outcome = await api.post<RetryOutcome>(`/jobs/${jobId}/retry`);
  if (outcome.requeued.length === 0) writeLine(io.stdout, `job ${jobId}: no failed task to retry`);
  else writeLine(io.stdout, `job ${jobId}: requeued ${outcome.requeued.length} failed task(s) as a new attempt`);
  for (const task of outcome.requeued) writeLine(io.stdout, `  ${task}`);
  return 0;
}

export const deleteQuestion = (baseUrl: string, jobId: string): string =>
  `Delete job ${jobId} (its task records and results; source images are kept) at ${baseUrl}? [y/N]`;

export async function runDelete(
  api: ApiClient,
  io: CliIo,
  jobId: string,
  opts: { yes?: boolean; force?: boolean },
): Promise<number> {
  if (!opts.yes) {
    io.stdout.write(`${deleteQuestion(api.baseUrl, jobId)} `);
    const answer = await readAnswer(io);
    if (answer === undefined && !isTty(io.stdin)) {
      writeLine(io.stderr, '\nerror: refusing to delete: stdin is not a terminal and no answer came; pass --yes');
      return 2;
    }
    if (!/^\s*y(es)?\s*$/i.test(answer ?? '')) {
      writeLine(io.stdout, 'Nothing deleted.');
      return 1;
    }
  }
  let report: DeleteReport;
  try {
    report = await api.delete<DeleteReport>(`/jobs/${jobId}${opts.force ? '?force=true' : ''}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401)
      throw new Error(
        `${err.url} answered HTTP 401: delete needs the app's master key; pass it with --key or ${KEY_ENV}`,
      );
    throw err;
  }
  const d = report.deleted;
  writeLine(
    io.stdout,
    `deleted job ${report.job_id}: ${d.task_records} task record(s), ${d.results} result(s)` +
      `${d.job_record ? ', its index row' : ''}${d.dead_letters ? `, ${d.dead_letters} dead letter(s)` : ''}` +
      `${d.callback ? ', its callback' : ''}; kept ${report.kept.join(', ')}`,
  );
  return 0;
}

export function registerJobs(program: Command, ctx: CliContext): void {
  program
    .command('jobs')
    .description('jobs newest first, with their status and task counts')
    .addOption(new Option('--status <status>', 'only jobs with this status').choices(JOB_STATUSES))
    .option('--since <time>', 'only jobs created since: an ISO 8601 time, or 30m, 6h, 7d ago', (v) => sinceOption(v))
    .option('--limit <n>', 'jobs per page (1-100, default 20)', integerIn(1, 100))
    .option('--all', 'every page, following the continuation')
    .option('--continuation <token>', 'start where a previous page ended')
    .option('--json', 'the API answer as JSON')
    .action(async (opts: JobsOptions, cmd: Command) => ctx.exit(await runJobs(ctx.api(cmd), ctx.io, opts)));

  program
    .command('job')
    .description("one job: each task's status, attempts, result and failure")
    .argument('<id>', 'the job id', jobIdArgument)
    .option('--json', 'the API answer as JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) =>
      ctx.exit(await runJob(ctx.api(cmd), ctx.io, id, opts)),
    );

  program
    .command('retry')
    .description("put a job's failed tasks back on their queue, as a new attempt each")
    .argument('<id>', 'the job id', jobIdArgument)
    .action(async (id: string, _opts: unknown, cmd: Command) => ctx.exit(await runRetry(ctx.api(cmd), ctx.io, id)));

  program
    .command('delete')
    .description(
      "delete a job's task records, results, index row, dead letters and callback (asks first; needs the master key)",
    )
    .argument('<id>', 'the job id', jobIdArgument)
    .option('--yes', 'do not ask')
    .option('--force', 'also when tasks are still queued or processing')
    .action(async (id: string, opts: { yes?: boolean; force?: boolean }, cmd: Command) =>
      ctx.exit(await runDelete(ctx.api(cmd, 'admin'), ctx.io, id, opts)),
    );
}
