/** Waiting for jobs: poll GET /jobs/{id} until no task is queued or processing, or the time is up. */
import type { ApiClient } from './api';
import { sleep } from './io';
import { isFinished, type Job } from './types';

export interface WaitOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
  /** Called after every poll with the latest state of every job. */
  readonly onPoll?: (jobs: readonly Job[]) => void;
}

/** The last state of each job: finished ones, and unfinished ones when the wait ran out or was interrupted. */
export async function waitForJobs(api: ApiClient, jobIds: readonly string[], options: WaitOptions): Promise<Job[]> {
  const deadline = Date.now() + options.timeoutMs;
  const latest = new Map<string, Job>();
  for (;;) {
    const open = jobIds.filter((id) => !latest.has(id) || !isFinished(latest.get(id)!.status));
    // A few at a time: a long stress run has many jobs, and the app serves the CLI and the workers alike.
    for (let i = 0; i < open.length; i += 8) {
      const jobs = await Promise.all(open.slice(i, i + 8).map((id) => api.get<Job>(`/jobs/${id}`)));
      for (const job of jobs) latest.set(job.job_id, job);
    }
    const all = jobIds.map((id) => latest.get(id)!);
    options.onPoll?.(all);
    if (all.every((j) => isFinished(j.status)) || Date.now() >= deadline || options.signal?.aborted) return all;
    await sleep(Math.min(options.intervalMs ?? 1000, deadline - Date.now()), options.signal);
  }
}

export function taskCounts(jobs: readonly Job[]): {
  total: number;
  succeeded: number;
  failed: number;
  finished: number;
} {
  let total = 0,
    succeeded = 0,
    failed = 0;
  for (const job of jobs) {
    total += job.total;
    succeeded += job.counts.succeeded;
    failed += job.counts.failed;
  }
  return { total, succeeded, failed, finished: succeeded + failed };
}
