/**
 * `stress <minutes> <tasks_per_batch>`: a steady load. Every --interval seconds one JSON job of
 * tasks_per_batch tasks is submitted (images cycled) until the minutes are up; then the run
 * waits (bounded) for every task and reports counts, throughput, latency and the scaling advice
 * the metrics snapshots gave meanwhile. Exit 0 only when every task succeeded.
 */
import { Option, type Command } from 'commander';
import type { ApiClient } from '../api';
import type { CliContext } from '../context';
import { fixed, ms, percentile, plural, report, seconds } from '../format';
import { sleep, writeLine, type CliIo } from '../io';
import { taskCounts, waitForJobs } from '../jobs';
import { filterList, integerIn, jsonObject, nameList, positiveNumber, type FilterEntry } from '../parse';
import { checkedSpec, UNBOUNDED } from '../pipeline';
import { progress } from '../progress';
import type { ImageList, Job, Snapshot, SubmittedJob, TaskRecord } from '../types';

export const DEFAULT_STRESS_FILTERS: readonly FilterEntry[] = Object.freeze([
  { name: 'resize', width: 800 },
  'grayscale',
]);
/** Snapshots are written every 10 s; polling twice as often sees each one. */
const METRICS_POLL_MS = 5000;

export interface StressOptions {
  readonly images?: string[];
  readonly filters: readonly FilterEntry[];
  readonly params?: Record<string, unknown>;
  readonly interval: number;
  readonly wait: number;
}

/** Scaling actions seen per capability, one vote per distinct snapshot (GET /metrics repeats the latest). */
export class RecommendationTally {
  private readonly seen = new Set<string>();
  private readonly actions = new Map<string, Map<string, number>>();
  private readonly maxRecommended = new Map<string, number>();

  record(snapshot: Snapshot): void {
    if (this.seen.has(snapshot.timestamp)) return;
    this.seen.add(snapshot.timestamp);
    for (const [capability, m] of Object.entries(snapshot.capabilities)) {
      const counts = this.actions.get(capability) ?? new Map<string, number>();
      counts.set(m.recommendation.action, (counts.get(m.recommendation.action) ?? 0) + 1);
      this.actions.set(capability, counts);
      this.maxRecommended.set(
        capability,
        Math.max(this.maxRecommended.get(capability) ?? 0, m.recommendation.recommended_workers),
      );
    }
  }

  get snapshots(): number {
    return this.seen.size;
  }

  describe(): string {
    if (this.actions.size === 0) return 'none (no metrics snapshot during the run)';
    return [...this.actions]
      .map(
        ([capability, counts]) =>
          `${capability}: ${[...counts].map(([action, n]) => `${action} ×${n}`).join(', ')} (recommended up to ${this.maxRecommended.get(capability)})`,
      )
      .join('; ');
  }
}

/** Polls GET /metrics until stopped; a failed poll is skipped, since the advice is a side show. */
async function watchMetrics(api: ApiClient, tally: RecommendationTally, stop: AbortSignal): Promise<void> {
  for (;;) {
    await api.get<Snapshot>('/metrics').then(
      (s) => tally.record(s),
      () => undefined,
    );
    if (stop.aborted) return;
    await sleep(METRICS_POLL_MS, stop);
  }
}

interface Outcome {
  readonly tasks: readonly TaskRecord[];
  readonly jobs: number;
  readonly submitMs: number;
  readonly waitMs: number;
  readonly batches: number;
  readonly intervalS: number;
}

export function stressReport(o: Outcome, tally: RecommendationTally): { text: string; ok: boolean } {
  const succeeded = o.tasks.filter((t) => t.status === 'succeeded');
  const failed = o.tasks.filter((t) => t.status === 'failed');
  const unfinished = o.tasks.length - succeeded.length - failed.length;
  const done = [...succeeded, ...failed].filter((t) => t.completed_at);
  const latencies = done.map((t) => Date.parse(t.completed_at!) - Date.parse(t.created_at));
  const first = Math.min(...o.tasks.map((t) => Date.parse(t.created_at)));
  const last = Math.max(...done.map((t) => Date.parse(t.completed_at!)));
  const spanMin = done.length > 0 ? Math.max(1, last - first) / 60000 : 0;
  const reasons = new Map<string, number>();
  for (const t of failed)
    reasons.set(t.failure_reason ?? 'unknown', (reasons.get(t.failure_reason ?? 'unknown') ?? 0) + 1);
  const rows: [string, string][] = [
    [
      'duration',
      `${seconds(o.submitMs)} submitting (${plural(o.batches, 'batch', 'batches')} every ${o.intervalS} s), ${seconds(o.waitMs)} waiting`,
    ],
    ['submitted', `${plural(o.tasks.length, 'task')} in ${plural(o.jobs, 'job')}`],
    ['succeeded', String(succeeded.length)],
    ['failed', String(failed.length)],
    ['unfinished', String(unfinished)],
    [
      'throughput',
      spanMin > 0
        ? `${fixed(succeeded.length / spanMin, 1)} tasks/min (succeeded, first submission to last completion)`
        : '-',
    ],
    ['latency p50', ms(percentile(latencies, 0.5))],
    ['latency p95', ms(percentile(latencies, 0.95))],
    ['recommendations', `${tally.describe()} over ${plural(tally.snapshots, 'snapshot')}`],
  ];
  if (reasons.size > 0) rows.push(['failure reasons', [...reasons].map(([r, n]) => `${r} ×${n}`).join(', ')]);
  return { text: `stress report\n${report(rows)}`, ok: o.tasks.length > 0 && succeeded.length === o.tasks.length };
}

interface Plan {
  readonly images: readonly string[];
  readonly perBatch: number;
  readonly batches: number;
  readonly intervalMs: number;
  readonly durationMs: number;
}

interface Submissions {
  readonly jobIds: readonly string[];
  readonly tasks: number;
  readonly elapsedMs: number;
  /** The first refused or failed submission; it ends the submitting phase. */
  readonly refusal?: unknown;
}

/**
 * Fire and forget on a fixed schedule, so a slow answer does not lower the arrival rate under
 * test; the phase lasts the full duration even though the last batch goes out earlier.
 */
async function submitOnSchedule(
  api: ApiClient,
  io: CliIo,
  plan: Plan,
  opts: StressOptions,
  stop: AbortController,
): Promise<Submissions> {
  const jobIds: string[] = [];
  let tasks = 0;
  let refusal: unknown;
  let cursor = 0;
  const bar = progress(io.stdout, 'submitting', plan.batches);
  const submit = async (): Promise<void> => {
    const images = Array.from({ length: plan.perBatch }, () => plan.images[cursor++ % plan.images.length]);
    try {
      const job = await api.post<SubmittedJob>('/jobs', {
        images,
        filters: opts.filters,
        ...(opts.params ? { filter_params: opts.params } : {}),
      });
      jobIds.push(job.job_id);
      tasks += job.tasks.length;
      bar.update(jobIds.length, `batches, ${tasks} tasks submitted`);
    } catch (err) {
      refusal ??= err;
      stop.abort();
    }
  };
  const start = Date.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < plan.batches && !stop.signal.aborted; i++) {
    await sleep(start + i * plan.intervalMs - Date.now(), stop.signal);
    if (!stop.signal.aborted) inFlight.push(submit());
  }
  await sleep(start + plan.durationMs - Date.now(), stop.signal);
  await Promise.all(inFlight);
  bar.stop();
  return { jobIds, tasks, elapsedMs: Date.now() - start, ...(refusal === undefined ? {} : { refusal }) };
}

async function waitForTasks(
  api: ApiClient,
  io: CliIo,
  submitted: Submissions,
  waitS: number,
  signal: AbortSignal,
): Promise<{ jobs: Job[]; waitMs: number }> {
  const start = Date.now();
  const bar = progress(io.stdout, 'waiting', submitted.tasks);
  try {
    const jobs = await waitForJobs(api, submitted.jobIds, {
      timeoutMs: waitS * 1000,
      signal,
      onPoll: (latest) => {
        const c = taskCounts(latest);
        bar.update(c.finished, `tasks finished (${c.succeeded} succeeded, ${c.failed} failed)`);
      },
    });
    return { jobs, waitMs: Date.now() - start };
  } finally {
    bar.stop();
  }
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export async function runStress(
  api: ApiClient,
  io: CliIo,
  minutes: number,
  perBatch: number,
  opts: StressOptions,
): Promise<number> {
  checkedSpec({ filters: opts.filters, filter_params: opts.params }, UNBOUNDED, 'nothing was submitted');
  const images = opts.images ?? (await api.get<ImageList>('/images')).images.map((i) => i.name);
  if (images.length === 0)
    throw new Error(
      `no images to process: the container behind ${api.url('/images')} is empty (upload some with the submit command, or pass --images)`,
    );
  // Whole milliseconds, so 0.7 min at 6 s is 7 batches, not 8 from floating-point residue.
  const durationMs = Math.round(minutes * 60000);
  const intervalMs = Math.max(1, Math.round(opts.interval * 1000));
  const plan: Plan = { images, perBatch, batches: Math.ceil(durationMs / intervalMs), intervalMs, durationMs };
  const filterNames = opts.filters.map((f) => (typeof f === 'string' ? f : String(f.name))).join(',');
  writeLine(
    io.stdout,
    `stress: ${plural(plan.batches, 'batch', 'batches')} of ${plural(perBatch, 'task')} (${filterNames}) every ${opts.interval} s for ${minutes} min against ${api.baseUrl}, cycling ${plural(images.length, 'image')}`,
  );

  const interrupted = io.interrupts();
  const stop = new AbortController(); // Ctrl-C or a refused submission ends the submitting phase early
  interrupted.addEventListener('abort', () => stop.abort(), { once: true });
  const tally = new RecommendationTally();
  const stopWatching = new AbortController();
  const watcher = watchMetrics(api, tally, stopWatching.signal);
  let submitted: Submissions;
  let waited: { jobs: Job[]; waitMs: number };
  try {
    submitted = await submitOnSchedule(api, io, plan, opts, stop);
    // Nothing ran: the refusal (the API's error as the client raised it) is the whole story.
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    if (submitted.refusal !== undefined && submitted.jobIds.length === 0) throw submitted.refusal;
    waited = await waitForTasks(api, io, submitted, opts.wait, interrupted);
  } finally {
    stopWatching.abort();
    await watcher;
  }

  const outcome = {
    tasks: waited.jobs.flatMap((j) => j.tasks),
    jobs: waited.jobs.length,
    submitMs: submitted.elapsedMs,
    waitMs: waited.waitMs,
    batches: submitted.jobIds.length,
    intervalS: opts.interval,
  };
  const { text, ok } = stressReport(outcome, tally);
  writeLine(io.stdout, text);
  if (submitted.refusal !== undefined)
    writeLine(io.stderr, `error: submissions stopped early: ${message(submitted.refusal)}`);
  if (interrupted.aborted) writeLine(io.stderr, 'interrupted: the report covers what had finished');
  return ok && submitted.refusal === undefined && !interrupted.aborted ? 0 : 1;
}

export function registerStress(program: Command, ctx: CliContext): void {
  program
    .command('stress')
    .description(
      'submit a job every --interval seconds for <minutes>, wait for the tasks, report throughput, latency and scaling advice',
    )
    .argument('<minutes>', 'how long to keep submitting (may be fractional, above 0)', positiveNumber)
    .argument('<tasks_per_batch>', 'tasks per job, an integer from 1 to 100', integerIn(1, 100))
    .option('--images <names>', 'comma-separated image names in the container (default: all of them, cycled)', nameList)
    .addOption(
      new Option('--filters <list>', 'filter names (a,b) or a JSON array of filters')
        .argParser(filterList)
        .default(DEFAULT_STRESS_FILTERS, 'resize width 800, grayscale'),
    )
    .option('--params <json>', 'filter_params as JSON, e.g. {"blur":{"radius":2}}', jsonObject)
    .option('--interval <seconds>', 'seconds between batches', positiveNumber, 5)
    .option('--wait <seconds>', 'longest wait for the last tasks after submitting ends', positiveNumber, 120)
    .action(async (minutes: number, perBatch: number, opts: StressOptions, cmd: Command) =>
      ctx.exit(await runStress(ctx.api(cmd), ctx.io, minutes, perBatch, opts)),
    );
}
